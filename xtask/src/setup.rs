//! Installs what a fresh machine of this kind lacks, idempotently: each step
//! first checks, so a second run takes seconds.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::{check, which};

/// Commands (or files) the tests, the demo and the lab use, and the Debian
/// package of each.
const DEBIAN_TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("iptables", "iptables"),
    ("setpriv", "util-linux"),
    ("nsenter", "util-linux"),
    // The metrics test scrapes with a real HTTP client; the lab fetches pages.
    ("curl", "curl"),
    // The benchmark: veth GRO switch, and the libpcap read floor.
    ("ethtool", "ethtool"),
    ("tcpdump", "tcpdump"),
    ("ping", "iputils-ping"),
    ("openssl", "openssl"),
    // The lab of real VPNs.
    ("openvpn", "openvpn"),
    ("wireguard-go", "wireguard-go"),
    ("wg", "wireguard-tools"),
    ("ocserv", "ocserv"),
    ("openconnect", "openconnect"),
    ("/usr/lib/ipsec/charon", "strongswan-charon"),
    ("swanctl", "strongswan-swanctl"),
    (
        "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so",
        "libcharon-extra-plugins",
    ),
    ("ss-server", "shadowsocks-libev"),
    // The tools that hide.
    ("obfs4proxy", "obfs4proxy"),
    ("v2ray", "v2ray"),
    ("trojan", "trojan"),
    ("ss-v2ray-plugin", "shadowsocks-v2ray-plugin"),
    ("obfs-server", "simple-obfs"),
    ("stunnel4", "stunnel4"),
    ("kcptun-server", "kcptun"),
    ("tincd", "tinc"),
    ("iodined", "iodine"),
    ("dns2tcpd", "dns2tcp"),
    ("ptunnel-ng", "ptunnel-ng"),
    ("sshd", "openssh-server"),
    ("ssh", "openssh-client"),
    ("iperf3", "iperf3"),
    ("dnsmasq", "dnsmasq-base"),
    // Outside opinions on the lab's captures, and the replay comparison.
    ("ndpiReader", "libndpi-bin"),
    ("tshark", "tshark"),
    // The IPFIX round trip (nfcapd, nfdump) and its cross-check.
    ("nfcapd", "nfdump"),
    ("softflowd", "softflowd"),
    // The HTML report, checked in a real browser.
    ("chromium", "chromium"),
    ("unshare", "util-linux"),
];

fn present(tool: &str) -> bool {
    if tool.starts_with('/') {
        Path::new(tool).exists()
    } else {
        which(tool).is_some()
    }
}

/// The bpf-linker release that builds against LLVM 22 (the nightly's).
const BPF_LINKER_VERSION: &str = "0.13.0";

/// Where the nightly's LLVM is linked for bpf-linker and bpf-linker is
/// installed: under CARGO_HOME so `cargo clean` keeps it (its rpath points here).
pub fn tools_dir() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"));
    cargo_home.join("vpnfp")
}

pub fn bpf_linker_bin_dir() -> PathBuf {
    tools_dir().join("bin")
}

pub fn ensure(_root: &Path) -> anyhow::Result<()> {
    debian_packages()?;
    let sysroot = nightly_sysroot()?;
    rust_src(&sysroot)?;
    bpf_linker(&sysroot)?;
    Ok(())
}

fn debian_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = DEBIAN_TOOLS
        .iter()
        .filter(|(tool, _)| !present(tool))
        .map(|&(_, package)| package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // SAFETY: no arguments.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "missing Debian packages {}: run `sudo apt-get install {}` or run this as root",
            missing.join(" "),
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let mut update = Command::new("apt-get");
    update.args(["update", "-qq"]);
    check(update)?;
    // Several of these packages ship daemons (ocserv, sshd, openvpn,
    // iperf3): the lab runs its own inside namespaces, so the packages'
    // services must not start on the machine. Debian's policy-rc.d says
    // so for the install only; it is removed afterwards.
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let ours = !policy.exists();
    if ours {
        std::fs::write(
            policy,
            "#!/bin/sh\n# vpnfp xtask setup: no services during its install\nexit 101\n",
        )
        .context("writing /usr/sbin/policy-rc.d")?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755))?;
    }
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    let result = check(install);
    if ours {
        let _ = std::fs::remove_file(policy);
    }
    result
}

fn nightly_sysroot() -> anyhow::Result<PathBuf> {
    let out = Command::new("rustc")
        .args(["+nightly", "--print", "sysroot"])
        .output()
        .context("running rustc +nightly (is rustup installed?)")?;
    if !out.status.success() {
        bail!(
            "no nightly toolchain ({}): the eBPF crate needs one; `rustup toolchain install nightly`",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

fn rust_src(sysroot: &Path) -> anyhow::Result<()> {
    if sysroot.join("lib/rustlib/src/rust/library/core").is_dir() {
        return Ok(());
    }
    eprintln!("xtask: installing the nightly's rust-src (for -Z build-std=core)");
    let mut cmd = Command::new("rustup");
    cmd.args(["component", "add", "rust-src", "--toolchain", "nightly"]);
    check(cmd)
}

/// bpf-linker must use the LLVM that emitted the bitcode: the nightly's own
/// shared libLLVM, which it links through a directory of two symlinks.
fn bpf_linker(sysroot: &Path) -> anyhow::Result<()> {
    let bin = bpf_linker_bin_dir().join("bpf-linker");
    let llvm_lib = tools_dir().join("llvm/lib");
    if bin.is_file()
        && Command::new(&bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        return Ok(());
    }
    let libllvm = std::fs::read_dir(sysroot.join("lib"))
        .context("reading the nightly's lib directory")?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM.so."))
        })
        .context("the nightly ships no libLLVM.so.*: cannot build bpf-linker against it")?;
    let major = libllvm
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("libLLVM.so."))
        .and_then(|v| v.split('.').next())
        .context("cannot read the LLVM version from the nightly's libLLVM name")?
        .to_string();
    std::fs::create_dir_all(&llvm_lib)?;
    for name in [
        "libLLVM.so".into(),
        libllvm.file_name().unwrap().to_os_string(),
    ] {
        let link = llvm_lib.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&libllvm, &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    eprintln!(
        "xtask: building bpf-linker {BPF_LINKER_VERSION} against the nightly's LLVM {major} (about a minute)"
    );
    let mut cmd = Command::new("cargo");
    cmd.args([
        "install",
        "bpf-linker",
        "--version",
        BPF_LINKER_VERSION,
        "--no-default-features",
        "--features",
    ])
    .arg(format!("llvm-{major}"))
    .arg("--root")
    .arg(tools_dir())
    .env("LLVM_PREFIX", tools_dir().join("llvm"))
    // Newer releases of bpf-linker's dependencies may need a newer rustc.
    .env("CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS", "fallback");
    check(cmd)
}
