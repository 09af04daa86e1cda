//! Embeds the XDP object that `cargo xtask build` compiled (nightly +
//! bpf-linker) and names in VPNFP_EBPF_OBJECT. Without it the controller
//! still builds (so a plain `cargo test` needs no nightly) and `vpnfp run`
//! explains how to get a binary that carries the program.
use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(vpnfp_has_ebpf)");
    println!("cargo::rerun-if-env-changed=VPNFP_EBPF_OBJECT");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = out.join("vpnfp-ebpf.o");
    match env::var_os("VPNFP_EBPF_OBJECT") {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            println!("cargo::rerun-if-changed={}", path.display());
            fs::copy(&path, &target)
                .unwrap_or_else(|e| panic!("VPNFP_EBPF_OBJECT={}: {e}", path.display()));
            println!("cargo::rustc-cfg=vpnfp_has_ebpf");
        }
        _ => fs::write(&target, []).expect("write placeholder object"),
    }
}
