//! Replay mode: capture files through the userspace engine, each packet at
//! its own timestamp, several files as one stream. Each file is opened when
//! its turn comes (a list longer than the open-file limit is fine); a file
//! that fails is reported with its offset and the replay goes on with the
//! next one.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use vpnfp_common::{Outcome, Parsed, config::Arrival};

use crate::{
    engine::{Engine, Stage},
    model::Fact,
    source::capture::{Capture, CaptureError, LOOKAHEAD, Packet},
};

/// Replays `paths` in order through `engine`, then ends every flow (`exit`).
/// Returns the files that failed (each after what it held before the
/// failure was replayed).
pub fn replay_files(
    paths: &[PathBuf],
    engine: &mut Engine,
    mut on_fact: impl FnMut(Fact<'_>),
    mut on_error: impl FnMut(&CaptureError),
) -> Vec<CaptureError> {
    let mut errors = Vec::new();
    // One pace for all the files: many small captures are timed as one.
    let mut parses = Parses::default();
    for path in paths {
        let result = Capture::open(path).and_then(|capture| {
            // Record numbers start again.
            parses.ring = Default::default();
            capture.for_each(|mut packet| {
                // The kernel programs' parse, and what provider links wrap.
                let parsed = parses.turn(&mut packet, engine);
                // A capture does not say where a frame entered: nothing is taken as spoofed.
                engine.frame(
                    packet.data,
                    parsed,
                    Arrival::Elsewhere,
                    packet.ts_ns,
                    &mut on_fact,
                );
            })
        });
        if let Err(e) = result {
            on_error(&e);
            errors.push(e);
        }
    }
    engine.finish(&mut on_fact);
    errors
}

/// Ring slots: the records from the current one to [`LOOKAHEAD`] on.
const RING: usize = (LOOKAHEAD as usize + 1).next_power_of_two();

/// The parses of the frames read ahead, kept for their turn, and the
/// prefetches they drive: a flow's index bucket when its frame is
/// [`LOOKAHEAD`] records ahead, its entries half-way, each frame parsed
/// once. With 100,000 hosts visited in turn, replay spent 60% of its time
/// waiting for the host table's entries; with them prefetched it reads
/// 1.4-1.65 x faster. Where a capture's packets come host by host (the lab's
/// captures), the entries are in cache anyway and the prefetches cost
/// 10-20%: [`Pace`] measures which way is faster and keeps to it.
#[derive(Default)]
struct Parses {
    /// By record number modulo [`RING`]: the number and its parse.
    ring: [Option<(u64, Result<Parsed, Outcome>)>; RING],
    pace: Pace,
}

impl Parses {
    /// Parses and prefetches for the frames ahead (when that pays);
    /// returns `packet`'s parse, the same either way.
    #[inline]
    fn turn(&mut self, packet: &mut Packet<'_>, engine: &Engine) -> Result<Parsed, Outcome> {
        if !self.pace.prefetching() {
            return packet.link.parse_capture(packet.data);
        }
        let slot = |n: u64| (n % RING as u64) as usize;
        if let Some(frame) = packet.ahead.frame() {
            let n = packet.number + LOOKAHEAD;
            let parsed = frame.link.parse_capture(frame.data);
            if let Ok(p) = &parsed {
                engine.prefetch(p, Stage::Index);
            }
            self.ring[slot(n)] = Some((n, parsed));
        }
        let half = packet.number + LOOKAHEAD / 2;
        if let Some((n, Ok(p))) = &self.ring[slot(half)]
            && *n == half
        {
            engine.prefetch(p, Stage::Entry);
        }
        match self.ring[slot(packet.number)].take() {
            Some((n, parsed)) if n == packet.number => parsed,
            // Not read ahead (the buffer's end, or prefetching just began).
            _ => packet.link.parse_capture(packet.data),
        }
    }
}

/// Packets per measured stretch: a few milliseconds of replay.
const STRETCH: u32 = 1 << 15;
/// Stretches kept to a choice before it is measured again (the capture's
/// mix may change).
const KEEP_STRETCHES: u32 = 32;

/// Stretches at the start of a replay that are not timed.
const WARM_UP_STRETCHES: u32 = 4;

/// Decides whether prefetching pays by timing it: one stretch with, one
/// without, then the faster way for the next [`KEEP_STRETCHES`]. A wrong
/// choice (a noisy machine) costs speed only: the results are the same.
struct Pace {
    on: bool,
    phase: Phase,
    packets: u32,
    started: Instant,
}

#[derive(Clone, Copy)]
enum Phase {
    /// Timing a stretch with prefetching.
    TimingOn,
    /// Timing one without; the stretch with took this long.
    TimingOff { with: Duration },
    /// Keeping to the choice for this many more stretches.
    Keeping(u32),
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            // The first stretches fill the tables and fault their pages in:
            // slower either way, so not timed; and without prefetching, the
            // cheaper way for a capture smaller than they are.
            on: false,
            phase: Phase::Keeping(WARM_UP_STRETCHES),
            packets: 0,
            started: Instant::now(),
        }
    }
}

impl Pace {
    /// Whether to prefetch for this packet.
    #[inline]
    fn prefetching(&mut self) -> bool {
        self.packets += 1;
        if self.packets == STRETCH {
            self.stretch_done();
        }
        self.on
    }

    #[cold]
    fn stretch_done(&mut self) {
        self.took(self.started.elapsed());
        self.packets = 0;
        self.started = Instant::now();
    }

    /// The stretch just ended took `took`: what comes next.
    fn took(&mut self, took: Duration) {
        (self.on, self.phase) = match self.phase {
            Phase::TimingOn => (false, Phase::TimingOff { with: took }),
            Phase::TimingOff { with } => (with < took, Phase::Keeping(KEEP_STRETCHES)),
            Phase::Keeping(n) if n <= 1 => (true, Phase::TimingOn),
            Phase::Keeping(n) => (self.on, Phase::Keeping(n - 1)),
        };
    }
}

#[cfg(test)]
mod tests {
    use vpnfp_common::{InternalRanges, KernelConfig, NANOS_PER_SEC};

    use super::*;
    use crate::{
        engine::EngineSettings,
        source::capture::{
            Capture, LinkType,
            test_files::{Item, pcap, pcapng},
        },
    };

    /// Ethernet, IPv4 UDP from 10.0.x.y to 198.51.100.z, or (every fifth)
    /// an ARP frame, or (every seventh) a truncated one.
    fn frame(i: u32) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        if i % 5 == 4 {
            f.extend_from_slice(&[0x08, 0x06]);
            f.extend_from_slice(&[0; 28]);
            return f;
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[10, 0, (i >> 8) as u8, i as u8]);
        ip[16..20].copy_from_slice(&[198, 51, 100, (i % 7) as u8]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&((1024 + i % 60_000) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 53, 0, 20, 0, 0]);
        f.extend_from_slice(&[7u8; 12]);
        if i % 7 == 6 {
            f.truncate(30);
        }
        f
    }

    /// Each packet's parse through `Parses`, prefetching on or off.
    fn parses(
        file: Vec<u8>,
        prefetching: bool,
    ) -> Vec<(Result<Parsed, Outcome>, LinkType, Vec<u8>)> {
        let config = KernelConfig::new(NANOS_PER_SEC, InternalRanges::research());
        let mut engine = Engine::new(EngineSettings::new(config));
        let mut parses = Parses::default();
        parses.pace.on = prefetching;
        parses.pace.phase = Phase::Keeping(u32::MAX);
        let mut out = Vec::new();
        Capture::from_reader("test".into(), Box::new(std::io::Cursor::new(file)))
            .for_each(|mut packet| {
                let parsed = parses.turn(&mut packet, &engine);
                out.push((parsed, packet.link, packet.data.to_vec()));
                engine.frame(
                    packet.data,
                    parsed,
                    Arrival::Elsewhere,
                    packet.ts_ns,
                    &mut |_| {},
                );
            })
            .expect("reads");
        out
    }

    #[test]
    fn a_parse_read_ahead_is_the_packets_own() {
        let frames: Vec<Vec<u8>> = (0..70_000).map(frame).collect();
        // pcapng: every third packet on a raw IP interface, without its
        // Ethernet header, so that a frame ahead parsed as the current
        // packet's link would be wrong.
        let mut items = vec![Item::Interface(1), Item::Interface(101)];
        items.extend(frames.iter().enumerate().map(|(i, f)| match i % 3 {
            2 if f.len() > 14 => Item::Packet(1, &f[14..]),
            _ => Item::Packet(0, f),
        }));
        for file in [pcap(&frames), pcapng(&items)] {
            let with = parses(file.clone(), true);
            let without = parses(file, false);
            assert_eq!(with.len(), frames.len());
            for (i, ((a, link, data), (b, ..))) in with.iter().zip(&without).enumerate() {
                assert_eq!(*a, link.parse_capture(data), "packet {i}, prefetching");
                assert_eq!(a, b, "packet {i}");
            }
        }
    }

    #[test]
    fn the_pace_times_both_ways_then_keeps_to_the_faster() {
        let mut pace = Pace::default();
        // Whether it prefetches in the middle of each of the next `n`
        // stretches (a choice takes effect with a stretch's last packet).
        let stretches = |pace: &mut Pace, n: u32| -> Vec<bool> {
            (0..n)
                .map(|_| {
                    let during: Vec<bool> = (0..STRETCH).map(|_| pace.prefetching()).collect();
                    during[STRETCH as usize / 2]
                })
                .collect()
        };
        // Untimed warm-up, not prefetching; then one stretch timed with and
        // one without.
        let start = stretches(&mut pace, WARM_UP_STRETCHES + 2);
        let mut expected = vec![false; WARM_UP_STRETCHES as usize];
        expected.extend([true, false]);
        assert_eq!(start, expected);
        // Then one choice for KEEP_STRETCHES stretches, then timing again.
        let kept = stretches(&mut pace, KEEP_STRETCHES);
        assert!(kept.iter().all(|on| *on == kept[0]), "{kept:?}");
        assert_eq!(stretches(&mut pace, 2), [true, false]);
    }

    #[test]
    fn the_pace_keeps_the_way_whose_stretch_took_less() {
        let ms = Duration::from_millis;
        for (with, without, keeps) in [(ms(4), ms(7), true), (ms(9), ms(7), false)] {
            let mut pace = Pace {
                on: true,
                phase: Phase::TimingOn,
                ..Pace::default()
            };
            pace.took(with);
            assert!(!pace.on, "the second stretch is timed without");
            pace.took(without);
            assert_eq!(pace.on, keeps, "{with:?} with, {without:?} without");
            for _ in 1..KEEP_STRETCHES {
                pace.took(ms(1));
                assert_eq!(pace.on, keeps);
            }
            pace.took(ms(1));
            assert!(pace.on && matches!(pace.phase, Phase::TimingOn));
        }
    }
}
