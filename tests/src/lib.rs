//! Shared pieces of vpnfp's privileged tests and demo: network-namespace
//! guards, a two-namespace lab, frame builders and a BPF_PROG_TEST_RUN
//! harness around the real XDP program.

pub mod captures;
pub mod corpus;
pub mod fixtures;
pub mod frames;
pub mod fuzz;
pub mod harness;
pub mod lab;
pub mod netns;
pub mod parity;
pub mod scenario;
pub mod scratch;
pub mod script;
pub mod vpnlab;

/// Whether a privileged test can run. As root: yes. Otherwise in CI the test
/// fails loudly; outside CI it skips with the reason.
pub fn privileged(test: &str) -> bool {
    // SAFETY: no arguments.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: needs root, and CI must run it: run `cargo xtask test` as root");
    }
    eprintln!("SKIPPED {test}: needs root (BPF, network namespaces); run `sudo cargo xtask test`");
    false
}

/// The vpnfp controller binary `cargo xtask test` built (with the program).
pub fn vpnfp_bin() -> std::path::PathBuf {
    let path = std::env::var_os("VPNFP_BIN")
        .expect("VPNFP_BIN is not set: run the tests with `cargo xtask test`");
    std::path::PathBuf::from(path)
}

/// `vpnfp report --store STORE ARGS...`: its standard output; panics with
/// its standard error if it fails.
pub fn vpnfp_report(store: &std::path::Path, args: &[&std::ffi::OsStr]) -> Vec<u8> {
    let out = std::process::Command::new(vpnfp_bin())
        .args(["report", "--store"])
        .arg(store)
        .args(args)
        .env_remove("VPNFP_STORE")
        .output()
        .expect("running vpnfp report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Pins the calling thread to one CPU.
pub fn pin_to_cpu(cpu: usize) {
    vpnfp::source::kernel::sys::pin_to_cpu(cpu).expect("sched_setaffinity");
}

/// BPF_PROG_TEST_RUN of the program `fd` on `frame`, `repeat` times in one
/// call, on this thread's CPU (two threads can run one program at once).
pub fn test_run_repeat(fd: &std::os::fd::OwnedFd, frame: &[u8], repeat: u32) {
    use std::os::fd::AsFd;
    vpnfp::source::kernel::sys::test_run(fd.as_fd(), frame, repeat).expect("BPF_PROG_TEST_RUN");
}
