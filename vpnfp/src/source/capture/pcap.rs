//! Classic pcap: a 24-byte file header, then 16-byte record headers.

use std::io::Read;

use super::{
    Ahead, Endian, LOOKAHEAD, LinkType, Packet, ReadError, Source, source::Buffered, to_ns,
    unsupported_link,
};

/// Larger records are corruption, not packets (libpcap's largest snap
/// length is 256 KiB).
const MAX_RECORD: u32 = 16 << 20;

#[derive(Clone, Copy)]
pub struct Format {
    endian: Endian,
    /// Fraction units per second: microseconds or nanoseconds.
    per_second: u64,
}

impl Format {
    pub fn from_magic(magic: [u8; 4]) -> Option<Self> {
        let (big, per_second) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, 1_000_000),
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, 1_000_000),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, 1_000_000_000),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, 1_000_000_000),
            _ => return None,
        };
        Some(Self {
            endian: Endian { big },
            per_second,
        })
    }
}

pub fn read<R: Read>(
    source: &mut Source<R>,
    format: Format,
    each: &mut impl FnMut(Packet<'_>),
) -> Result<(), ReadError> {
    let io = |source: &Source<R>, e: std::io::Error| (source.offset(), format!("read error: {e}"));
    if source.fill(24).map_err(|e| io(source, e))? < 24 {
        return Err((0, "truncated pcap file header".into()));
    }
    let header = source.peek(24);
    // The low 16 bits are the link type; the high bits may carry FCS info.
    let code = format.endian.u32(header, 20) & 0xffff;
    let link = LinkType::from_code(code).ok_or_else(|| (20, unsupported_link(code)))?;
    source.consume(24);
    let mut walk = Walk {
        at: source.offset(),
        lead: 0,
        endian: format.endian,
    };
    let mut number = 0;
    loop {
        let at = source.offset();
        let have = source.fill(16).map_err(|e| io(source, e))?;
        if have == 0 {
            return Ok(());
        }
        if have < 16 {
            return Err((at, format!("truncated record header ({have} of 16 bytes)")));
        }
        let h = source.peek(16);
        let (secs, frac, caplen) = (
            format.endian.u32(h, 0),
            format.endian.u32(h, 4),
            format.endian.u32(h, 8),
        );
        if caplen > MAX_RECORD {
            return Err((
                at,
                format!("corrupt record header (captured length {caplen})"),
            ));
        }
        let total = 16 + caplen as usize;
        let have = source.fill(total).map_err(|e| io(source, e))?;
        if have < total {
            return Err((
                at,
                format!(
                    "truncated record: {caplen} bytes announced, {} present",
                    have - 16
                ),
            ));
        }
        let ts_ns =
            (secs as u64 * 1_000_000_000).saturating_add(to_ns(frac as u64, format.per_second));
        each(Packet {
            ts_ns,
            link,
            data: &source.peek(total)[16..],
            number,
            ahead: Ahead {
                walk: Some(super::Walker::Pcap(&mut walk, source.buffered(), link)),
            },
        });
        source.consume(total);
        walk.passed(source.offset());
        number += 1;
    }
}

/// Walks record headers ahead of the reader, in what the buffer holds,
/// to find the record [`LOOKAHEAD`] on. A record it cannot read (not yet
/// buffered, or corrupt) just has no frame ahead: the reader itself
/// reports what is wrong when it gets there.
pub(super) struct Walk {
    /// File offset of the record `lead` records after the current one.
    at: u64,
    lead: u64,
    endian: Endian,
}

impl Walk {
    #[inline]
    pub(super) fn frame<'a>(&mut self, buffered: Buffered<'a>) -> Option<&'a [u8]> {
        loop {
            let header = buffered.at(self.at, 16)?;
            let caplen = self.endian.u32(header, 8);
            if caplen > MAX_RECORD {
                return None;
            }
            let data = buffered.at(self.at + 16, caplen as usize)?;
            if self.lead == LOOKAHEAD {
                return Some(data);
            }
            self.at += 16 + caplen as u64;
            self.lead += 1;
        }
    }

    /// The current record was consumed; `next` is the next one's offset.
    #[inline]
    fn passed(&mut self, next: u64) {
        if self.lead > 0 {
            self.lead -= 1;
        } else {
            self.at = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{
        LOOKAHEAD,
        test_files::{pcap, read_all},
    };

    /// Frames of many sizes, 2.5 MiB in all: records cross the 1 MiB
    /// read buffer's end again and again.
    fn frames() -> Vec<Vec<u8>> {
        (0..3_000u32)
            .map(|i| {
                let len = [60, 1514, 9000, 14, 0][i as usize % 5] + (i as usize % 7);
                (0..len).map(|b| (b as u32 ^ i) as u8).collect()
            })
            .collect()
    }

    #[test]
    fn the_frame_read_ahead_is_the_record_lookahead_on() {
        let frames = frames();
        for (step, ask_every) in [(usize::MAX, 1), (4_096, 1), (100, 1), (usize::MAX, 37)] {
            let (seen, error) = read_all(pcap(&frames), step, ask_every);
            assert_eq!(error, None);
            assert_eq!(seen.len(), frames.len());
            let mut ahead_given = 0;
            for (i, (number, data, ahead)) in seen.iter().enumerate() {
                assert_eq!(*number, i as u64);
                assert_eq!(data, &frames[i]);
                if let Some((_, ahead)) = ahead {
                    ahead_given += 1;
                    let later = frames.get(i + LOOKAHEAD as usize);
                    assert_eq!(Some(ahead), later, "record {i}, reads of {step}");
                }
            }
            // Whole reads: only records at the buffer's end (and the
            // file's last ones) have none.
            if step == usize::MAX {
                let asked = frames.len() / ask_every as usize;
                assert!(ahead_given > asked * 9 / 10, "{ahead_given} of {asked}");
            }
        }
    }

    #[test]
    fn a_corrupt_record_ahead_is_reported_when_the_reader_gets_there() {
        let frames = frames();
        let mut file = pcap(&frames[..100]);
        let corrupt_at = file.len() as u64;
        // A record header announcing 1 GiB.
        file.extend_from_slice(&[0; 8]);
        file.extend_from_slice(&(1u32 << 30).to_le_bytes());
        file.extend_from_slice(&(1u32 << 30).to_le_bytes());
        file.extend_from_slice(&[0; 64]);
        let (seen, error) = read_all(file, usize::MAX, 1);
        assert_eq!(seen.len(), 100, "every record before it is delivered");
        assert!(
            seen.iter()
                .all(|(n, _, ahead)| ahead.is_none() || *n + LOOKAHEAD < 100)
        );
        assert_eq!(error, Some(corrupt_at));
    }
}
