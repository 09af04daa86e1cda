//! `cargo xtask bench`: prints the figures as a table and writes
//! bench/results.json. `--smoke` runs everything small, in seconds, and
//! fails if the one-host cost over the floor grew by more than 25% over
//! bench/baseline.json's;
//! `--only cost,live,replay,memory` runs some parts. Only a full run writes
//! bench/results.json.

use std::{path::PathBuf, process::ExitCode};

use vpnfp_tools::bench::{self, Size};

fn main() -> ExitCode {
    // SAFETY: no arguments.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "vpnfp-bench: needs root (BPF, network namespaces): run `sudo cargo xtask bench`"
        );
        return ExitCode::FAILURE;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let size = if args.iter().any(|a| a == "--smoke") {
        Size::Smoke
    } else {
        Size::Full
    };
    let root = PathBuf::from(std::env::var_os("VPNFP_ROOT").unwrap_or_else(|| ".".into()));
    let scratch = root.join("target/vpnfp-bench");
    // `--only cost,replay` runs some parts (and still writes results.json).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').map(String::from).collect::<Vec<_>>());
    let parts: Vec<&str> = match &only {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => bench::PARTS.to_vec(),
    };
    if let Some(bad) = parts
        .iter()
        .find(|p| !bench::PARTS.contains(p) && !bench::EXTRA_PARTS.contains(p))
    {
        eprintln!(
            "vpnfp-bench: no part {bad}; parts: {}",
            bench::PARTS.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let figures = bench::run(size, &parts, &scratch, |what| {
        eprintln!("bench: {what} ...")
    });
    let table = bench::table(&figures);
    println!("{table}");
    if size == Size::Smoke && parts.iter().any(|p| *p == "cost" || *p == "steady") {
        // The regression guard: the one-host ratio against the baseline's.
        let path = root.join("bench/baseline.json");
        let verdict = bench::Baseline::read(&path).and_then(|b| bench::guard(&figures, &b));
        match verdict {
            Ok(said) => eprintln!("{said}"),
            Err(why) => {
                eprintln!("vpnfp-bench: {why}");
                return ExitCode::FAILURE;
            }
        }
    }
    if only.is_some() || size == Size::Smoke {
        // results.json holds the full table only.
        eprintln!("bench: a partial or smoke run: bench/results.json left as it was");
        return ExitCode::SUCCESS;
    }
    let out = root.join("bench/results.json");
    if let Err(e) = bench::write_json(&figures, &out) {
        eprintln!("vpnfp-bench: writing {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    eprintln!("bench: wrote {}", out.display());
    ExitCode::SUCCESS
}
