//! Shared pieces of vpnfp's privileged tests and demo: network-namespace
//! guards, a two-namespace lab, frame builders and a BPF_PROG_TEST_RUN
//! harness around the real XDP program.

pub mod bench;
pub mod captures;
pub mod fixtures;
pub mod frames;
pub mod fuzz;
pub mod harness;
pub mod lab;
pub mod netns;
pub mod scenario;
pub mod script;

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
