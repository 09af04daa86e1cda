//! `cargo xtask`: setup, build, run, test, demo. It orchestrates cargo and the
//! system; it implements nothing of vpnfp itself.

mod build;
mod setup;

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "vpnfp's developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what a fresh machine lacks: Debian packages, the nightly's rust-src, bpf-linker.
    Setup,
    /// Build the XDP program and the controller that embeds it.
    Build {
        /// Build the controller in release mode.
        #[arg(long)]
        release: bool,
    },
    /// Build (release) and run `vpnfp run` on real interfaces, as root.
    ///
    /// Example: cargo xtask run --iface eth0 -- --json --count 5000
    Run {
        /// Interface(s) to watch.
        #[arg(long = "iface", short = 'i', required = true)]
        ifaces: Vec<String>,
        /// More arguments for `vpnfp run`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run XDP and NFQUEUE side by side on one interface and print how far
    /// they agree (`vpnfp run --mode both`), as root.
    ///
    /// Example: cargo xtask compare --iface eth1 -- --chain FORWARD --compare-interval 60
    Compare {
        /// The interface both modes watch.
        #[arg(long, short = 'i')]
        iface: String,
        /// More arguments for `vpnfp run`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Performance figures, each next to its baseline (under 10 minutes):
    /// prints a table and writes bench/results.json. As root.
    Bench {
        /// A run of seconds with tiny sizes (what the test suite runs).
        #[arg(long)]
        smoke: bool,
        /// Only these parts (comma-separated): cost, live, replay, memory.
        #[arg(long)]
        only: Option<String>,
    },
    /// Hostile input through the userspace parser, engine and capture
    /// readers (deterministic per seed).
    Fuzz {
        /// How many inputs.
        #[arg(long, default_value_t = 10_000_000)]
        inputs: u64,
        #[arg(long, default_value_t = 0x5eed)]
        seed: u64,
    },
    /// The precision scorecard: `vpnfp replay` over every capture of a
    /// corpus laid out like nDPI's test suite (`pcap/`, `expected/*.out`),
    /// flow by flow against nDPI's labels: tunnel recall, false VPN or
    /// tunnel names on ordinary flows, replay errors. Writes JSON too.
    ///
    /// Example: cargo xtask corpus ../shared/corpus/ndpi-dev --json card.json
    Corpus {
        /// The corpus (default: $VPNFP_CORPUS, else ../shared/corpus/ndpi-dev).
        dir: Option<PathBuf>,
        /// Where the JSON scorecard goes.
        #[arg(long, default_value = "target/corpus/scorecard.json")]
        json: PathBuf,
    },
    /// Run every test: host unit tests, BPF_PROG_TEST_RUN tests and end-to-end
    /// tests in network namespaces (those need root; in CI they never skip).
    Test {
        /// Extra arguments for the test binaries (e.g. a test name filter).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// cargo fmt --check and clippy -D warnings, the eBPF crate on its own.
    Lint,
    /// Real WireGuard and OpenVPN tunnels next to an ordinary host in
    /// throwaway network namespaces, caught by the real XDP program. Needs root.
    Demo,
    /// The lab of real VPNs (OpenVPN, WireGuard, AnyConnect, IPsec,
    /// shadowsocks, SSH) and ordinary hosts behind a NAT router, with its
    /// failure scenarios, watched by vpnfp. Needs root; installs what it needs.
    /// Its options are the lab's own: cargo xtask lab --help.
    ///
    /// Example: cargo xtask lab --only wireguard,ordinary --secs 20 --capture /tmp/lab
    #[command(disable_help_flag = true)]
    Lab {
        /// Handed to the lab as they are (--only, --secs, --capture, --keep,
        /// --mode, --policy; --help lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> anyhow::Result<()> {
    with_sbin_on_path();
    let root = workspace_root();
    match task {
        Task::Setup => setup::ensure(&root),
        Task::Build { release } => build::all(&root, release).map(|_| ()),
        Task::Run { ifaces, args } => {
            let built = build::all(&root, true)?;
            let mut cmd = as_root(&built.controller)?;
            cmd.arg("run");
            for iface in &ifaces {
                cmd.args(["--iface", iface]);
            }
            cmd.args(&args);
            exec(cmd)
        }
        Task::Compare { iface, args } => {
            let built = build::all(&root, true)?;
            let mut cmd = as_root(&built.controller)?;
            cmd.args(["run", "--mode", "both", "--iface", &iface]);
            cmd.args(&args);
            exec(cmd)
        }
        Task::Test { args } => test(&root, &args),
        Task::Corpus { dir, json } => {
            let built = build::all(&root, true)?;
            let mut card = Command::new(build::tool(&root, &built, "vpnfp-corpus")?);
            card.arg("--vpnfp").arg(&built.controller);
            card.arg("--json").arg(std::path::absolute(json)?);
            if let Some(dir) = dir {
                card.arg(std::path::absolute(dir)?);
            }
            exec(card)
        }
        Task::Fuzz { inputs, seed } => {
            let built = build::all(&root, true)?;
            let mut fuzz = Command::new(build::tool(&root, &built, "vpnfp-fuzz")?);
            fuzz.args(["--inputs", &inputs.to_string(), "--seed", &seed.to_string()]);
            exec(fuzz)
        }
        Task::Bench { smoke, only } => {
            let built = build::all(&root, true)?;
            let mut bench = as_root(&build::tool(&root, &built, "vpnfp-bench")?)?;
            bench
                .env("VPNFP_BIN", &built.controller)
                .env("VPNFP_ROOT", &root);
            if smoke {
                bench.arg("--smoke");
            }
            if let Some(only) = only {
                bench.args(["--only", &only]);
            }
            exec(bench)
        }
        Task::Lint => lint(&root),
        Task::Lab { args } => {
            let built = build::all(&root, true)?;
            let mut lab = as_root(&build::tool(&root, &built, "vpnfp-lab")?)?;
            lab.env("VPNFP_BIN", &built.controller).args(&args);
            exec(lab)
        }
        Task::Demo => {
            let built = build::all(&root, true)?;
            let mut demo = as_root(&build::tool(&root, &built, "vpnfp-demo")?)?;
            demo.env("VPNFP_BIN", &built.controller);
            exec(demo)
        }
    }
}

/// Everything, in one cargo invocation so the closing summary covers it all.
fn test(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let built = build::all(root, false)?;
    let privileged = is_root();
    if !privileged {
        if std::env::var_os("CI").is_some() {
            bail!("CI must run the privileged tests: run `cargo xtask test` as root");
        }
        eprintln!(
            "xtask: not root: the BPF and network-namespace tests will skip with a message (run as root to include them)"
        );
    }
    let mut cmd = build::cargo(root, &built);
    // Every test binary runs even when one fails, so one run shows all.
    cmd.args([
        "test",
        "--workspace",
        "--exclude",
        "vpnfp-ebpf",
        "--no-fail-fast",
    ]);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    cmd.env("VPNFP_BIN", &built.controller);
    // vpnfp run keeps a store by default (/var/lib/vpnfp); the tests' runs
    // keep none unless a test asks for one.
    cmd.env("VPNFP_NO_STORE", "1");
    run_tests(cmd)
}

/// Runs cargo test, echoing its output, and closes with one total line
/// (`N passed, N failed, N ignored`) over every test binary, since cargo's
/// own last line is that of whichever binary ran last.
fn run_tests(mut cmd: Command) -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let stdout = child.stdout.take().context("cargo test stdout")?;
    let mut totals = [0u64; 3];
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test output")?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            for (i, word) in ["passed", "failed", "ignored"].iter().enumerate() {
                totals[i] += rest
                    .split(';')
                    .find_map(|part| {
                        part.trim()
                            .trim_start_matches("ok. ")
                            .trim_start_matches("FAILED. ")
                            .strip_suffix(word)
                    })
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    println!(
        "all tests: {} passed, {} failed, {} skipped",
        totals[0], totals[1], totals[2]
    );
    if !status.success() {
        bail!("cargo test failed ({status})");
    }
    Ok(())
}

fn lint(root: &Path) -> anyhow::Result<()> {
    let built = build::all(root, false)?;
    let mut fmt = Command::new("cargo");
    fmt.current_dir(root).args(["fmt", "--all", "--check"]);
    check(fmt)?;
    let mut clippy = build::cargo(root, &built);
    clippy.args([
        "clippy",
        "--workspace",
        "--exclude",
        "vpnfp-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    check(clippy)?;
    check(build::ebpf_cargo(
        root,
        "clippy",
        &["--", "-D", "warnings"],
    )?)
}

/// The tests and tools run `ip`, `iptables` and `ethtool`, which live in
/// sbin directories that a non-login environment may leave off PATH.
fn with_sbin_on_path() {
    let mut paths: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for dir in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        if !paths.iter().any(|p| p == Path::new(dir)) {
            paths.push(PathBuf::from(dir));
        }
    }
    if let Ok(joined) = std::env::join_paths(paths) {
        // SAFETY: single-threaded at this point, before any command runs.
        unsafe { std::env::set_var("PATH", joined) };
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn is_root() -> bool {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `program` run as root: directly if we are, else through sudo.
fn as_root(program: &Path) -> anyhow::Result<Command> {
    if is_root() {
        return Ok(Command::new(program));
    }
    if which("sudo").is_none() {
        bail!("this needs root and sudo is not installed: run it as root");
    }
    let mut cmd = Command::new("sudo");
    cmd.arg("-E").arg(program);
    Ok(cmd)
}

pub(crate) fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

pub(crate) fn check(mut cmd: Command) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

/// Runs the command and exits with its status (Ctrl-C reaches it directly).
fn exec(cmd: Command) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let mut cmd = cmd;
    let err = cmd.exec();
    Err(err).with_context(|| format!("starting {:?}", cmd.get_program()))
}
