//! The vpnfp command line: `vpnfp run` watches live traffic, `vpnfp replay`
//! reads captures, `vpnfp report` reads the store.

mod cli;
mod commands;

use std::{io::Write, process::ExitCode};

use clap::Parser;

/// mimalloc instead of glibc's malloc: replay allocates per flow
/// (identification's entries, names), and on a capture where two frames
/// in three start a flow the allocator's speed shows (see the bench's
/// churn rows).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (mimalloc.h, `mi_option_e`): how long
/// freed memory waits before it goes back to the OS; -1 never.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // vpnfp's tables are bounded, and what a replay or a run frees is soon
    // wanted again: giving it back to the OS (mimalloc's default, after a
    // delay) cost a churning replay a third of its wall time in system
    // time. Set first, before the allocator's arena grows.
    // SAFETY: sets one allocator option; any value is valid.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let cli = cli::Cli::parse();
    // -v is about vpnfp's own decisions, not aya's loader chatter.
    let level = match cli.verbose {
        0 => "info",
        1 => "info,vpnfp=debug,vpnfp_ebpf=debug",
        _ => "debug,vpnfp=trace,vpnfp_ebpf=trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_target(false)
        .init();
    let result = match cli.command {
        cli::Command::Run(args) => commands::run::run(args, cli.verbose),
        cli::Command::Replay(args) => commands::replay::run(args),
        cli::Command::Report(args) => commands::report::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One clear line; details (like a verifier log) only with -v.
            // A closed stderr must not turn the error into a panic.
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "vpnfp: error: {e:#}");
            if cli.verbose > 0
                && let Some(log) = e
                    .chain()
                    .find_map(|c| c.downcast_ref::<vpnfp::source::kernel::KernelError>())
                    .and_then(|x| x.verifier_log())
            {
                let _ = writeln!(stderr, "verifier log:\n{log}");
            }
            ExitCode::FAILURE
        }
    }
}
