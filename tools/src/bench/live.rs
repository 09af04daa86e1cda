//! Packets per second received on a veth with (i) no program, (ii) vpnfp in
//! XDP mode, (iii) vpnfp in NFQUEUE mode.
//!
//! Generator: the kernel's XDP live-frames mode (BPF_PROG_TEST_RUN with
//! BPF_F_TEST_XDP_LIVE_FRAMES) running a program that returns XDP_TX on one
//! end of the pair: frames go out in batches without a socket, an skb or a
//! copy from userspace, the fastest sender available here (AF_PACKET pays
//! a syscall and an skb per packet). The far end's GRO is on, which veth
//! needs to take XDP-sent frames when no XDP program is attached, so all
//! three cases receive through the same path. The sender's end carries an
//! empty XDP program, which live frames need.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use aya::programs::{TestRun, TestRunAttrs, TestRunOptions};
use vpnfp::{
    engine::EngineSettings,
    source::{
        kernel::{AttachMode, Capacities, KernelFingerprinter},
        nfqueue::{Chain, NfqueueFingerprinter, NfqueueOptions},
    },
};
use vpnfp_common::{KernelConfig, maps};

use super::{Figure, Size};
use vpnfp_tests::{
    frames,
    netns::{self, NetNs},
};

const TX_IF: &str = "btx0";
const RX_IF: &str = "brx0";

struct Pair {
    sender: NetNs,
    sink: NetNs,
    frame: Vec<u8>,
}

impl Pair {
    fn new() -> Self {
        let sender = NetNs::new("bgen");
        let sink = NetNs::new("bsink");
        sender.ip(&[
            "link",
            "add",
            TX_IF,
            "type",
            "veth",
            "peer",
            "name",
            RX_IF,
            "netns",
            sink.name(),
        ]);
        sink.ip(&["addr", "add", "192.168.1.1/24", "dev", RX_IF]);
        sender.ip(&["link", "set", TX_IF, "up"]);
        sink.ip(&["link", "set", RX_IF, "up"]);
        // ethtool: `cargo xtask setup` installs it.
        sink.run("ethtool", &["-K", RX_IF, "gro", "on"]);
        // A VPN-like flow addressed to the sink's MAC, so the sink's stack
        // (and netfilter) takes it.
        let mut frame = frames::udp(
            std::net::Ipv4Addr::new(192, 168, 1, 10),
            std::net::Ipv4Addr::new(198, 51, 100, 7),
            &[],
        );
        frame[..6].copy_from_slice(&sink.mac(RX_IF));
        Self {
            sender,
            sink,
            frame,
        }
    }

    fn received(&self) -> u64 {
        let out = self.sink.ip(&["-j", "-s", "link", "show", "dev", RX_IF]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j -s");
        v[0]["stats64"]["rx"]["packets"]
            .as_u64()
            .expect("rx packets")
    }

    /// Sends `packets` frames, `chunk` per test_run call, paced to `rate`
    /// packets per second if given; returns the seconds it took.
    fn send(&self, packets: u64, chunk: u32, rate: Option<f64>) -> f64 {
        let index = self.sender.if_index(TX_IF);
        let frame = self.frame.clone();
        self.sender.enter(move || {
            let mut fp = KernelFingerprinter::load(Capacities::default(), 0).expect("load");
            // Live frames need the device's XDP receive queue registered,
            // which veth does only while an XDP program is attached: the
            // empty one, on the sender's end (nothing arrives there).
            fp.other_program_mut(maps::BENCH_BASELINE)
                .expect("baseline program")
                .attach_to_if_index(index, aya::programs::XdpMode::Driver)
                .expect("attach to the sender's end");
            let tx = fp.other_program_mut(maps::BENCH_TX).expect("tx program");
            // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex.
            // The kernel wants data_end to equal the frame's length.
            let mut ctx = [0u8; 24];
            ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
            ctx[12..16].copy_from_slice(&index.to_ne_bytes());
            let start = Instant::now();
            let mut sent = 0u64;
            while sent < packets {
                let n = (chunk as u64).min(packets - sent) as u32;
                if let Some(rate) = rate {
                    let due = start + Duration::from_secs_f64(sent as f64 / rate);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                }
                tx.test_run(TestRunOptions {
                    data_in: Some(&frame),
                    ctx_in: Some(&ctx),
                    repeat: n,
                    attrs: TestRunAttrs::new().xdp_live_frames(64),
                    ..TestRunOptions::default()
                })
                .expect("live frames test_run");
                sent += n as u64;
            }
            start.elapsed().as_secs_f64()
        })
    }
}

/// One trial: offered and received rates, and what the fingerprinter saw.
struct Trial {
    offered_pps: f64,
    received_pps: f64,
    received: u64,
    fingerprinted: u64,
}

fn trial(
    pair: &Pair,
    packets: u64,
    rate: Option<f64>,
    fingerprinted: impl FnOnce() -> u64,
) -> Trial {
    let before = pair.received();
    let secs = pair.send(packets, if rate.is_some() { 256 } else { 4096 }, rate);
    std::thread::sleep(Duration::from_millis(300));
    let received = pair.received() - before;
    Trial {
        offered_pps: packets as f64 / secs,
        received_pps: received as f64 / secs,
        received,
        fingerprinted: fingerprinted(),
    }
}

fn config() -> KernelConfig {
    super::research_config()
}

/// NFQUEUE on the sink's PREROUTING, packets paced to `rate`: (fingerprinted
/// all, trial).
fn nfqueue_trial(pair: &Pair, packets: u64, rate: Option<f64>) -> (bool, Trial) {
    let options = NfqueueOptions {
        queue_num: 1,
        chain: Chain::Prerouting,
        ifaces: vec![RX_IF.to_string()],
        queue_len: 2048,
        copy_range: 20,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = stop.clone();
        let sink = pair.sink.name().to_string();
        std::thread::spawn(move || {
            netns::move_this_thread(&sink);
            let settings = EngineSettings {
                max_hosts: 1_000,
                ..EngineSettings::new(config())
            };
            let mut fp = NfqueueFingerprinter::start(options, settings).expect("start NFQUEUE");
            while !stop.load(Ordering::Relaxed) {
                if fp.poll(&mut |_| {}).expect("poll") == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            fp.stop(&mut |_| {}).expect("stop NFQUEUE")
        })
    };
    // Let the rule and queue come up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pair.sink.nfqueue_bound() || pair.sink.vpnfp_rules().is_empty() {
        assert!(Instant::now() < deadline, "NFQUEUE did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut stats = None;
    let t = trial(pair, packets, rate, || {
        stop.store(true, Ordering::Relaxed);
        let s = worker.join().expect("NFQUEUE thread");
        let seen = s.counters.seen;
        stats = Some(s);
        seen
    });
    let stats = stats.unwrap();
    (stats.missed == 0 && t.fingerprinted >= t.received, t)
}

pub fn figures(size: Size) -> Vec<Figure> {
    let (packets, nfq_trial_secs, steps) = match size {
        Size::Full => (5_000_000u64, 1.0, 7),
        Size::Smoke => (50_000, 0.1, 2),
    };
    let pair = Pair::new();
    let mut out = Vec::new();

    // (i) no program.
    let bare = trial(&pair, packets, None, || 0);

    // (ii) XDP mode.
    let fp = pair.sink.enter(|| {
        let mut fp = KernelFingerprinter::load(Capacities::default(), 0).expect("load");
        fp.configure(&config()).expect("configure");
        fp.attach(RX_IF, AttachMode::Native, false).expect("attach");
        fp
    });
    let seen_before = fp.counters().expect("counters").seen;
    let xdp = trial(&pair, packets, None, || {
        fp.counters().expect("counters").seen - seen_before
    });
    drop(fp);
    let xdp_missed = xdp.received.saturating_sub(xdp.fingerprinted);

    let cond = |t: &Trial| {
        format!(
            "{packets} frames of 64 bytes, one flow, live-frames generator (offered {:.0} pps); 2 cores shared by sender and receiver",
            t.offered_pps
        )
    };
    out.push(Figure::new(
        "veth receive rate, no program",
        bare.received_pps,
        "packets/s",
        cond(&bare),
    ));
    out.push(
        Figure::new(
            "veth receive rate, vpnfp XDP",
            xdp.received_pps,
            "packets/s",
            cond(&xdp),
        )
        .against(bare.received_pps)
        .target(
            ">= 0.9 x no program",
            xdp.received_pps >= 0.9 * bare.received_pps,
        ),
    );
    out.push(
        Figure::new(
            "XDP packets missed by the fingerprinter",
            xdp_missed as f64,
            "packets",
            format!(
                "{} received, {} fingerprinted",
                xdp.received, xdp.fingerprinted
            ),
        )
        .target("0", xdp_missed == 0),
    );

    // (iii) NFQUEUE: its full-speed rate, then the highest paced rate with
    // nothing missed (doubling, then bisecting).
    let (_, full) = nfqueue_trial(&pair, packets, None);
    out.push(
        Figure::new(
            "veth receive rate, vpnfp NFQUEUE, unpaced",
            full.fingerprinted as f64 / (packets as f64 / full.offered_pps),
            "fingerprinted packets/s",
            format!(
                "{} of {} received packets fingerprinted, the rest passed unseen (fail-open)",
                full.fingerprinted, full.received
            ),
        )
        .against(bare.received_pps),
    );
    let mut good = 0.0f64;
    let mut bad = None::<f64>;
    let mut rate = 20_000.0f64;
    for _ in 0..steps * 2 {
        let n = (rate * nfq_trial_secs) as u64;
        let (ok, _) = nfqueue_trial(&pair, n.max(1_000), Some(rate));
        if ok {
            good = good.max(rate);
        } else {
            bad = Some(bad.map_or(rate, |b: f64| b.min(rate)));
        }
        rate = match bad {
            None => rate * 2.0,
            Some(b) => (good + b) / 2.0,
        };
        if bad.is_some_and(|b| b - good < b * 0.05) {
            break;
        }
    }
    out.push(
        Figure::new("NFQUEUE highest rate with 0 missed", good, "packets/s", format!("paced live frames, {nfq_trial_secs} s trials, queue 2048, copy range 20; first failing rate {}", bad.map_or("none found".into(), |b| format!("{b:.0}"))))
    );
    let xdp_zero_miss = if xdp_missed == 0 {
        xdp.received_pps
    } else {
        0.0
    };
    out.push(Figure::new(
        "XDP / NFQUEUE zero-miss rate",
        xdp_zero_miss / good.max(1.0),
        "ratio",
        "XDP's full received rate with 0 missed over NFQUEUE's highest rate with 0 missed",
    ));
    out
}
