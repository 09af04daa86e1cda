//! `cargo xtask corpus [DIR]`: the precision scorecard. Replays every
//! capture of DIR (laid out like nDPI's test suite: `pcap/` and
//! `expected/FILE.out`) with `vpnfp replay` and compares vpnfp's flows
//! with nDPI's, flow by flow. Prints the card and writes it as JSON.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;

#[derive(Parser)]
#[command(about = "vpnfp's flows against nDPI's labels on a corpus of real captures")]
struct Args {
    /// The corpus (default: $VPNFP_CORPUS, else ../shared/corpus/ndpi-dev).
    dir: Option<PathBuf>,
    /// Write the scorecard as JSON here.
    #[arg(long, default_value = "target/corpus/scorecard.json")]
    json: PathBuf,
    /// The vpnfp binary (default: $VPNFP_BIN).
    #[arg(long, env = "VPNFP_BIN")]
    vpnfp: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(dir) = args.dir.or_else(vpnfp_tests::corpus::locate) else {
        eprintln!(
            "vpnfp-corpus: no corpus: give its directory, or set VPNFP_CORPUS, or put it at ../shared/corpus/ndpi-dev"
        );
        return ExitCode::FAILURE;
    };
    let card = match vpnfp_tests::corpus::score(&args.vpnfp, &dir) {
        Ok(card) => card,
        Err(e) => {
            eprintln!("vpnfp-corpus: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", card.render());
    if let Some(parent) = args.json.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let json = serde_json::to_string_pretty(&card.to_json()).expect("JSON");
    if let Err(e) = std::fs::write(&args.json, json) {
        eprintln!("vpnfp-corpus: writing {}: {e}", args.json.display());
        return ExitCode::FAILURE;
    }
    println!("written: {}", args.json.display());
    ExitCode::SUCCESS
}
