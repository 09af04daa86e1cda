//! The iptables and ip6tables rules NFQUEUE mode owns: installed at start,
//! removed on every exit path, recognised after a crash by their comment
//! (`vpnfp-queue-N`). On FORWARD each interface gets two rules, `-i IF` and
//! `-o IF`, so both directions of the traffic through it are queued, as the
//! research's rule does. The tools are run with an argument vector, never
//! through a shell.

use std::process::Command;

/// Netfilter table for the rules: mangle has every chain vpnfp offers.
const TABLE: &str = "mangle";

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error(
        "{0} is not installed (NFQUEUE mode manages its rules with it): apt-get install iptables"
    )]
    Missing(&'static str),
    #[error("{tool} {action} failed: {message}")]
    Failed {
        tool: &'static str,
        action: &'static str,
        message: String,
    },
}

/// Chains NFQUEUE mode can queue from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    /// Packets to the machine itself.
    Input,
    /// Packets the machine routes (a router's LAN traffic).
    Forward,
    /// Every packet arriving, before routing.
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

/// The address family of a rule: which tool manages it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const fn tool(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }
}

/// One `-j NFQUEUE --queue-num N --queue-bypass` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub family: Family,
    pub chain: Chain,
    /// `-i IF` or `-o IF` (none: every packet of the chain).
    pub iface: Option<(&'static str, String)>,
    pub queue_num: u16,
}

/// The tool from PATH, or from the sbin directories a root shell has but a
/// service's environment may lack.
fn program(tool: &'static str) -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
    });
    on_path
        .or_else(|| {
            ["/usr/sbin", "/sbin", "/usr/local/sbin"]
                .into_iter()
                .map(|dir| std::path::Path::new(dir).join(tool))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| tool.into())
}

/// Whether `tool` can be run at all.
pub fn available(family: Family) -> bool {
    Command::new(program(family.tool()))
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(family: Family, action: &'static str, args: &[String]) -> Result<String, RuleError> {
    let tool = family.tool();
    let out = Command::new(program(tool))
        .arg("-w")
        .args(["-t", TABLE])
        .args(args)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RuleError::Missing(tool),
            _ => RuleError::Failed {
                tool,
                action,
                message: e.to_string(),
            },
        })?;
    if !out.status.success() {
        return Err(RuleError::Failed {
            tool,
            action,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The comment that marks vpnfp's rules of one queue.
pub fn comment(queue_num: u16) -> String {
    format!("vpnfp-queue-{queue_num}")
}

impl Rule {
    /// The rules for `ifaces` (none: all traffic of the chain) in both
    /// families: `-i` and, on FORWARD, `-o` per interface.
    pub fn set(chain: Chain, ifaces: &[String], queue_num: u16, families: &[Family]) -> Vec<Rule> {
        let mut sides: Vec<Option<(&'static str, String)>> = Vec::new();
        if ifaces.is_empty() {
            sides.push(None);
        }
        for iface in ifaces {
            sides.push(Some(("-i", iface.clone())));
            if chain == Chain::Forward {
                sides.push(Some(("-o", iface.clone())));
            }
        }
        families
            .iter()
            .flat_map(|&family| {
                sides.iter().map(move |side| Rule {
                    family,
                    chain,
                    iface: side.clone(),
                    queue_num,
                })
            })
            .collect()
    }

    /// The rule after `-I CHAIN 1` / `-D CHAIN`.
    fn spec(&self) -> Vec<String> {
        let mut spec = Vec::new();
        if let Some((flag, iface)) = &self.iface {
            spec.extend([flag.to_string(), iface.clone()]);
        }
        spec.extend(
            [
                "-m",
                "comment",
                "--comment",
                &comment(self.queue_num),
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

    /// Inserts the rule first in its chain.
    pub fn install(&self) -> Result<(), RuleError> {
        let mut args = vec![
            "-I".to_string(),
            self.chain.name().to_string(),
            "1".to_string(),
        ];
        args.extend(self.spec());
        run(self.family, "installing an NFQUEUE rule", &args).map(|_| ())
    }

    pub fn remove(&self) -> Result<(), RuleError> {
        let mut args = vec!["-D".to_string(), self.chain.name().to_string()];
        args.extend(self.spec());
        run(self.family, "removing an NFQUEUE rule", &args).map(|_| ())
    }

    /// How the rule reads in `iptables -S` output.
    pub fn describe(&self) -> String {
        format!(
            "{} -A {} {}",
            self.family.tool(),
            self.chain.name(),
            self.spec().join(" ")
        )
    }
}

/// Queue numbers some process has bound in this network namespace.
pub fn bound_queues() -> Vec<u16> {
    std::fs::read_to_string("/proc/net/netfilter/nfnetlink_queue")
        .map(|s| {
            s.lines()
                .filter_map(|l| l.split_whitespace().next()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes vpnfp rules left by an earlier vpnfp that could not clean up
/// (SIGKILL, power loss), in any chain: those of `queue_num` (about to be
/// ours), and those of any queue nobody listens on. Returns how many.
pub fn remove_stale(family: Family, queue_num: u16) -> Result<usize, RuleError> {
    let listing = run(family, "listing rules", &["-S".to_string()])?;
    let live = bound_queues();
    let mut removed = 0;
    for line in listing.lines() {
        let Some(rule) = line.strip_prefix("-A ") else {
            continue;
        };
        let tokens: Vec<&str> = rule.split_whitespace().collect();
        let Some(queue) = tokens.windows(2).find_map(|w| {
            (w[0] == "--comment")
                .then(|| w[1].trim_matches('"').strip_prefix("vpnfp-queue-"))
                .flatten()
                .and_then(|n| n.parse::<u16>().ok())
        }) else {
            continue;
        };
        if queue != queue_num && live.contains(&queue) {
            continue; // another vpnfp's, alive
        }
        let mut args = vec!["-D".to_string()];
        args.extend(tokens.iter().map(|t| t.to_string()));
        run(family, "removing a stale vpnfp rule", &args)?;
        removed += 1;
    }
    Ok(removed)
}

/// Packets the rules of `queue_num` have matched (so queued, or passed by
/// fail-open or bypass), over every chain of `families`.
pub fn packets_matched(families: &[Family], queue_num: u16) -> Result<u64, RuleError> {
    let marker = format!("/* {} */", comment(queue_num));
    let mut total = 0;
    for &family in families {
        let listing = run(
            family,
            "reading rule counters",
            &[
                "-L".to_string(),
                "-v".to_string(),
                "-x".to_string(),
                "-n".to_string(),
            ],
        )?;
        total += listing
            .lines()
            .filter(|l| l.contains(&marker))
            .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_queues_both_directions_per_interface_and_family() {
        let ifaces = ["lan0".to_string(), "lan1".to_string()];
        let rules = Rule::set(Chain::Forward, &ifaces, 3, &[Family::V4, Family::V6]);
        let described: Vec<String> = rules.iter().map(Rule::describe).collect();
        assert_eq!(described.len(), 8);
        assert!(described.contains(
            &"ip6tables -A FORWARD -o lan1 -m comment --comment vpnfp-queue-3 -j NFQUEUE --queue-num 3 --queue-bypass".to_string()
        ));
        assert_eq!(Rule::set(Chain::Input, &ifaces, 3, &[Family::V4]).len(), 2);
        let all = Rule::set(Chain::Forward, &[], 1, &[Family::V4]);
        assert_eq!(all.len(), 1);
        assert!(all[0].iface.is_none());
    }
}
