//! Builds the XDP object (nightly, bpf-linker) and the controller embedding it.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::{check, setup};

pub struct Built {
    pub object: PathBuf,
    pub controller: PathBuf,
}

/// A cargo command with the environment every build of ours shares, so cargo
/// never sees two configurations flip-flop and rebuild.
pub fn cargo(root: &Path, built: &Built) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root)
        .env("VPNFP_EBPF_OBJECT", &built.object);
    cmd
}

pub fn all(root: &Path, release: bool) -> anyhow::Result<Built> {
    setup::ensure(root)?;
    let object = ebpf(root)?;
    let profile = if release { "release" } else { "debug" };
    let built = Built {
        controller: root.join("target").join(profile).join("vpnfp"),
        object,
    };
    let mut cmd = cargo(root, &built);
    cmd.args(["build", "-p", "vpnfp", "--bin", "vpnfp"]);
    if release {
        cmd.arg("--release");
    }
    check(cmd)?;
    Ok(built)
}

/// Builds one of the tools crate's programs (lab, demo, bench, fuzz, corpus) in release
/// mode; returns its path.
pub fn tool(root: &Path, built: &Built, name: &str) -> anyhow::Result<PathBuf> {
    let mut cmd = cargo(root, built);
    cmd.args(["build", "--release", "-p", "vpnfp-tools", "--bin", name]);
    check(cmd)?;
    Ok(root.join("target/release").join(name))
}

/// Always an optimised build: the verifier rejects unoptimised BPF code.
fn ebpf(root: &Path) -> anyhow::Result<PathBuf> {
    check(ebpf_cargo(root, "build", &[])?)?;
    Ok(root.join("target/bpfel-unknown-none/release/vpnfp-ebpf"))
}

/// `cargo +nightly SUBCOMMAND` for the eBPF crate, bpf-linker on PATH.
pub fn ebpf_cargo(root: &Path, subcommand: &str, extra: &[&str]) -> anyhow::Result<Command> {
    let path = std::env::join_paths(std::iter::once(setup::bpf_linker_bin_dir()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))?;
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root.join("vpnfp-ebpf"))
        .env("PATH", path)
        // We run under the stable toolchain's cargo: ask for the nightly.
        .env_remove("RUSTC")
        .env_remove("RUSTUP_TOOLCHAIN")
        .args([
            "+nightly",
            subcommand,
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
        ])
        .args(extra);
    Ok(cmd)
}
