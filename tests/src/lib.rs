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

/// Pins the calling thread to one CPU.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one bit set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let rc = libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            rc,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// BPF_PROG_TEST_RUN of the program `fd` on `frame`, `repeat` times in one
/// call, on this thread's CPU. Raw, because aya's test_run needs the
/// program exclusively and two threads must run at once.
pub fn test_run_repeat(fd: &std::os::fd::OwnedFd, frame: &[u8], repeat: u32) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    #[derive(Default)]
    struct TestAttr {
        prog_fd: u32,
        retval: u32,
        data_size_in: u32,
        data_size_out: u32,
        data_in: u64,
        data_out: u64,
        repeat: u32,
        duration: u32,
        ctx_size_in: u32,
        ctx_size_out: u32,
        ctx_in: u64,
        ctx_out: u64,
        flags: u32,
        cpu: u32,
        batch_size: u32,
        _pad: u32,
    }
    const BPF_PROG_TEST_RUN: libc::c_long = 10;
    let attr = TestAttr {
        prog_fd: fd.as_raw_fd() as u32,
        data_size_in: frame.len() as u32,
        data_in: frame.as_ptr() as u64,
        repeat,
        ..TestAttr::default()
    };
    // SAFETY: `attr` points at a live frame; the kernel writes only retval
    // and duration into it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &attr as *const TestAttr,
            size_of::<TestAttr>() as u32,
        )
    };
    assert_eq!(
        rc,
        0,
        "BPF_PROG_TEST_RUN: {}",
        std::io::Error::last_os_error()
    );
}
