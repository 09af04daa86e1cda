//! The vpnfp command line: `vpnfp run` watches live traffic, `vpnfp replay`
//! reads captures, `vpnfp report` reads the store.

mod cli;
mod commands;

use std::{
    io::{self, BufWriter, Stderr, Write},
    process::ExitCode,
    sync::{Mutex, OnceLock},
};

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
    let mut logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level));
    logger.format_target(false);
    // Captures on disk only: `replay -` may be reading a live capture
    // (`tcpdump -w - | vpnfp replay -`), whose lines should show at once.
    if let cli::Command::Replay(args) = &cli.command
        && args
            .files
            .iter()
            .all(|f| std::fs::metadata(f).is_ok_and(|m| m.is_file()))
    {
        logger.target(env_logger::Target::Pipe(Box::new(BlockLog::install())));
    }
    logger.init();
    let result = match cli.command {
        cli::Command::Run(args) => commands::run::run(args, cli.verbose),
        cli::Command::Replay(args) => commands::replay::run(args),
        cli::Command::Report(args) => commands::report::run(args),
    };
    BlockLog::flush_all();
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

/// Replay's log lines (of captures on disk), written to stderr in
/// blocks. env_logger writes and flushes every line on its own, a syscall
/// each: 12% of a replay that names 88,000 flows (perf, the bench's lab
/// captures). A live run keeps a write per line, so that each shows at
/// once. The block is written when full, when the command ends (before
/// its error line) and before a panic's message.
struct BlockLog;

static BLOCK_LOG: OnceLock<Mutex<BufWriter<Stderr>>> = OnceLock::new();

impl BlockLog {
    fn install() -> Self {
        BLOCK_LOG.get_or_init(|| Mutex::new(BufWriter::with_capacity(64 << 10, io::stderr())));
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            Self::flush_all();
            default_hook(info);
        }));
        Self
    }

    /// Writes what is held. `try_lock`: a panic inside a write holds the
    /// lock on this same thread.
    fn flush_all() {
        if let Some(Ok(mut block)) = BLOCK_LOG.get().map(Mutex::try_lock) {
            let _ = block.flush();
        }
    }
}

impl Write for BlockLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match BLOCK_LOG.get().map(Mutex::lock) {
            Some(Ok(mut block)) => block.write(buf),
            _ => io::stderr().write(buf),
        }
    }

    /// env_logger flushes after every line: the block waits.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
