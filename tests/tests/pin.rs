//! `--pin`: a restarted controller continues the window the last one began;
//! stale pins are refused with an explanation.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use vpnfp::source::kernel::{Capacities, KernelFingerprinter};
use vpnfp_common::{InternalRanges, KernelConfig, NANOS_PER_SEC, maps};
use vpnfp_tests::{
    lab::{ChildGuard, Lab, ROUTER_IF, Sender, send_paced},
    privileged,
    scenario::{VPN_HOST, VPN_SERVER},
    vpnfp_bin,
};

/// A BPF filesystem of the test's own, mounted in the root mount namespace
/// (so pins outlive `ip netns exec`'s private mounts), removed on drop.
struct BpfFs(PathBuf);

impl BpfFs {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vpnfp-bpffs-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "bpf", "bpf"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount -t bpf");
        Self(dir)
    }
    fn pins(&self) -> PathBuf {
        self.0.join("vpnfp")
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.pins());
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn run_vpnfp(lab: &Lab, pins: &Path, extra: &[&str]) -> ChildGuard {
    run_vpnfp_window(lab, pins, "3", extra)
}

fn run_vpnfp_window(lab: &Lab, pins: &Path, window: &str, extra: &[&str]) -> ChildGuard {
    let mut child = ChildGuard(Some(
        lab.router
            .command(vpnfp_bin())
            .args([
                "run", "--iface", ROUTER_IF, "--window", window, "--count", "100", "--json",
                "--pin",
            ])
            .arg(pins)
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting vpnfp"),
    ));
    lab.wait_for_xdp(child.child(), Duration::from_secs(20));
    child
}

fn stop(mut child: ChildGuard) -> Vec<serde_json::Value> {
    assert!(child.terminate(Duration::from_secs(10)).success());
    let out = child.0.take().unwrap().wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn a_restart_with_pin_continues_the_window() {
    if !privileged("a_restart_with_pin_continues_the_window") {
        return;
    }
    let fs = BpfFs::new("restart");
    let lab = Lab::new(&[VPN_HOST]);
    let mut senders = [Sender::new(lab.socket(VPN_HOST), vec![VPN_SERVER])];

    // First run: one second of a 6 s window, then stop. The window leaves
    // the restart (stop, load, verify, attach) 4 s: with 3 s it had 1 s,
    // which a loaded machine overran one run in three.
    let first = run_vpnfp_window(&lab, &fs.pins(), "6", &[]);
    let started = unix_now();
    let phase1 = send_paced(&mut senders, 300, Duration::from_secs(1))[0];
    let first_events = stop(first);
    assert!(
        first_events.iter().all(|e| e["event"] == "flow"),
        "no window closed yet: {first_events:?}"
    );
    assert!(fs.pins().join(maps::HOSTS4).exists());

    // Second run: the window goes on and closes with both runs' packets.
    let second = run_vpnfp_window(&lab, &fs.pins(), "6", &[]);
    let restarted = unix_now();
    eprintln!(
        "measured: stop and restart took {:.2} s",
        restarted - started - 1.0
    );
    let phase2 = send_paced(&mut senders, 300, Duration::from_secs(6))[0];
    let reports: Vec<serde_json::Value> = stop(second)
        .into_iter()
        .filter(|e| e["event"] == "suspected_vpn")
        .collect();
    let first_report = reports
        .first()
        .expect("the window closed in the second run");
    let start = first_report["window_start"].as_f64().unwrap();
    let count = first_report["count_this"].as_u64().unwrap();
    assert!(
        start < restarted && start >= started - 1.0,
        "began in the first run: {first_report}"
    );
    assert!(
        count > phase1 + 300,
        "{count} packets: the first run's {phase1} are in: {first_report}"
    );
    assert!(count <= phase1 + phase2, "{first_report}");
}

#[test]
fn stale_pins_are_refused_with_an_explanation() {
    if !privileged("stale_pins_are_refused_with_an_explanation") {
        return;
    }
    let fs = BpfFs::new("stale");
    let lab = Lab::new(&[]);
    let config = KernelConfig::new(NANOS_PER_SEC, InternalRanges::research());
    let refuse = |message: &str| {
        let out = lab
            .router
            .command(vpnfp_bin())
            .args(["run", "--iface", ROUTER_IF, "--pin"])
            .arg(fs.pins())
            .args(if message.contains("--max-hosts") {
                &["--max-hosts", "1000"][..]
            } else {
                &[]
            })
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{message:?} in {stderr}");
        assert!(
            stderr.contains("rm -r"),
            "says how to start fresh: {stderr}"
        );
        assert!(!lab.router.has_xdp(ROUTER_IF), "nothing attached");
    };

    // Pins made for another capacity.
    let pinned = || Capacities {
        pin_dir: Some(fs.pins()),
        ..Capacities::default()
    };
    let mut fp = KernelFingerprinter::load(pinned(), 0).unwrap();
    fp.configure(&config).unwrap();
    drop(fp);
    refuse("holds 131072 entries but this run asks for 1000 (--max-hosts)");

    // A config written by another layout version.
    let mut fp = KernelFingerprinter::load(pinned(), 0).unwrap();
    let mut other = config;
    other.magic = 0x7670_0000;
    fp.configure(&other).unwrap();
    drop(fp);
    refuse("from another version");
    let _ = std::fs::remove_dir_all(fs.pins());

    // A map of another shape where the host map should be.
    let mut fp = KernelFingerprinter::load(Capacities::default(), 0).unwrap();
    std::fs::create_dir_all(fs.pins()).unwrap();
    match fp.ebpf_mut().map_mut(maps::FLOWS4).unwrap() {
        aya::maps::Map::HashMap(data) => data.pin(fs.pins().join(maps::HOSTS4)).unwrap(),
        other => panic!("{other:?}"),
    }
    drop(fp);
    refuse("key/value 16/56 bytes, this version uses 4/56");
    let _ = std::fs::remove_dir_all(fs.pins());

    // A pin left by an older layout (a map name this version does not use).
    let mut fp = KernelFingerprinter::load(Capacities::default(), 0).unwrap();
    std::fs::create_dir_all(fs.pins()).unwrap();
    match fp.ebpf_mut().map_mut(maps::COUNTERS).unwrap() {
        aya::maps::Map::PerCpuArray(data) => data.pin(fs.pins().join("VPNFP_HOSTS")).unwrap(),
        other => panic!("{other:?}"),
    }
    drop(fp);
    refuse("holds VPNFP_HOSTS, which this vpnfp does not pin");
}

/// One owner per pin directory: a second vpnfp is refused while the first
/// runs; a killed owner's lock does not block the next one.
#[test]
fn a_pin_directory_has_one_owner_and_a_killed_owner_frees_it() {
    if !privileged("a_pin_directory_has_one_owner_and_a_killed_owner_frees_it") {
        return;
    }
    let fs = BpfFs::new("owner");
    let lab = Lab::new(&[VPN_HOST]);
    // 3 s windows (run_vpnfp's); the second instance asks for 1000 s.
    let first = run_vpnfp(&lab, &fs.pins(), &[]);
    let out = lab
        .router
        .command(vpnfp_bin())
        .args(["run", "--iface", ROUTER_IF, "--window", "1000", "--pin"])
        .arg(fs.pins())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is in use by another vpnfp (pid"),
        "{stderr}"
    );
    // The first one's config was not touched: its 3 s windows still close.
    let mut senders = [Sender::new(lab.socket(VPN_HOST), vec![VPN_SERVER])];
    send_paced(&mut senders, 200, Duration::from_millis(3_500));
    std::thread::sleep(Duration::from_millis(1_500));
    let mut first = first;
    first.child().kill().unwrap();
    let out = first.0.take().unwrap().wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"event\":\"suspected_vpn\""),
        "the first instance's 3 s window closed: {stdout}"
    );
    // SIGKILL: the lock went with the process.
    let second = run_vpnfp(&lab, &fs.pins(), &[]);
    drop(stop(second));
}

/// Under `ip netns exec`, /sys/fs/bpf is a private, empty mount: pins made
/// there would vanish with the run. Refused, with what to do.
#[test]
fn pin_in_a_private_sys_fs_bpf_is_refused_with_advice() {
    if !privileged("pin_in_a_private_sys_fs_bpf_is_refused_with_advice") {
        return;
    }
    let lab = Lab::new(&[]);
    let out = lab
        .router
        .command(vpnfp_bin())
        .args(["run", "--iface", ROUTER_IF, "--pin"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mount namespace of its own"), "{stderr}");
    assert!(
        stderr.contains("mount -t bpf bpf /run/vpnfp/bpf"),
        "{stderr}"
    );
    assert!(!lab.router.has_xdp(ROUTER_IF), "nothing attached");
}
