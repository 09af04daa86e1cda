//! The one iptables rule NFQUEUE mode owns: installed at start, removed on
//! every exit path, recognised after a crash by its comment. iptables is run
//! with an argv, never through a shell.

use std::process::Command;

/// Netfilter table for the rule: mangle has every chain vpnfp offers.
const TABLE: &str = "mangle";

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error(
        "iptables is not installed (NFQUEUE mode manages one iptables rule): apt-get install iptables"
    )]
    Missing,
    #[error("iptables {action} failed: {message}")]
    Failed {
        action: &'static str,
        message: String,
    },
}

/// Chains NFQUEUE mode can queue from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Chain {
    /// Packets to the machine itself.
    #[value(name = "INPUT", alias = "input")]
    Input,
    /// Packets the machine routes (a router's LAN traffic).
    #[value(name = "FORWARD", alias = "forward")]
    Forward,
    /// Every packet arriving, before routing.
    #[value(name = "PREROUTING", alias = "prerouting")]
    Prerouting,
}

impl Chain {
    pub const fn name(self) -> &'static str {
        match self {
            Chain::Input => "INPUT",
            Chain::Forward => "FORWARD",
            Chain::Prerouting => "PREROUTING",
        }
    }
}

/// `-j NFQUEUE --queue-num N --queue-bypass` in one chain, optionally for one
/// input interface.
#[derive(Clone, Debug)]
pub struct QueueRule {
    pub chain: Chain,
    pub iface: Option<String>,
    pub queue_num: u16,
}

/// iptables from PATH, or from the sbin directories a root shell has but a
/// service's environment may lack.
fn iptables_program() -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("iptables"))
            .find(|p| p.is_file())
    });
    on_path
        .or_else(|| {
            [
                "/usr/sbin/iptables",
                "/sbin/iptables",
                "/usr/local/sbin/iptables",
            ]
            .into_iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.is_file())
        })
        .unwrap_or_else(|| "iptables".into())
}

fn iptables(action: &'static str, args: &[String]) -> Result<String, RuleError> {
    let out = Command::new(iptables_program())
        .arg("-w")
        .args(["-t", TABLE])
        .args(args)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RuleError::Missing,
            _ => RuleError::Failed {
                action,
                message: e.to_string(),
            },
        })?;
    if !out.status.success() {
        return Err(RuleError::Failed {
            action,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl QueueRule {
    /// Marks the rule as vpnfp's, per queue number.
    pub fn comment(&self) -> String {
        format!("vpnfp-queue-{}", self.queue_num)
    }

    /// The rule after `-I CHAIN 1` / `-D CHAIN`.
    fn spec(&self) -> Vec<String> {
        let mut spec = Vec::new();
        if let Some(iface) = &self.iface {
            spec.extend(["-i".to_string(), iface.clone()]);
        }
        spec.extend(
            [
                "-m",
                "comment",
                "--comment",
                &self.comment(),
                "-j",
                "NFQUEUE",
                "--queue-num",
                &self.queue_num.to_string(),
                "--queue-bypass",
            ]
            .map(String::from),
        );
        spec
    }

    /// Removes rules of this queue number left by an earlier vpnfp that
    /// could not clean up (SIGKILL, power loss), in any chain. Returns how
    /// many.
    pub fn remove_stale(&self) -> Result<usize, RuleError> {
        let listing = iptables("listing rules", &["-S".to_string()])?;
        let comment = self.comment();
        let mut removed = 0;
        for line in listing.lines() {
            let Some(rule) = line.strip_prefix("-A ") else {
                continue;
            };
            let tokens: Vec<&str> = rule.split_whitespace().collect();
            if !tokens
                .windows(2)
                .any(|w| w == ["--comment", comment.as_str()])
            {
                continue;
            }
            let mut args = vec!["-D".to_string()];
            args.extend(rule.split_whitespace().map(String::from));
            iptables("removing a stale vpnfp rule", &args)?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Inserts the rule first in its chain.
    pub fn install(&self) -> Result<(), RuleError> {
        let mut args = vec![
            "-I".to_string(),
            self.chain.name().to_string(),
            "1".to_string(),
        ];
        args.extend(self.spec());
        iptables("installing the NFQUEUE rule", &args).map(|_| ())
    }

    pub fn remove(&self) -> Result<(), RuleError> {
        let mut args = vec!["-D".to_string(), self.chain.name().to_string()];
        args.extend(self.spec());
        iptables("removing the NFQUEUE rule", &args).map(|_| ())
    }

    /// Packets the rule has matched (so queued, or passed by fail-open).
    pub fn packets_matched(&self) -> Result<u64, RuleError> {
        let listing = iptables(
            "reading rule counters",
            &[
                "-L".to_string(),
                self.chain.name().to_string(),
                "-v".to_string(),
                "-x".to_string(),
                "-n".to_string(),
            ],
        )?;
        let marker = format!("/* {} */", self.comment());
        Ok(listing
            .lines()
            .filter(|l| l.contains(&marker))
            .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .sum())
    }
}
