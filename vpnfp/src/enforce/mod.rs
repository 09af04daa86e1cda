//! Enforcement, opt-in (`vpnfp run --policy FILE`): what a policy names is
//! blocked, in the kernel (XDP_DROP / TC_ACT_SHOT through the block maps)
//! and in NFQUEUE (NF_DROP), and nothing else.
//!
//! A block is a pair (host, peer): the flows a policy blocks by protocol
//! name or by host verdict are a host's traffic with one server, so a
//! tunnel's reconnects (new source ports, new flows) stay blocked. The
//! first packets of a tunnel pass (identification needs them; see the
//! docs/enforcement.md for how many, per protocol). Fail-open everywhere: a pair the
//! maps cannot take is logged and passes; a stopped or killed vpnfp takes
//! its programs (and so every block) with it; NFQUEUE rules bypass.

pub mod policy;
pub mod programs;

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Serialize;
use vpnfp_common::block::{ACTION_COUNT, ACTION_DROP, BlockValue, PairKey};

use crate::{
    clock::{MINUTE_NS, unix_secs},
    judge::{identify::Detection, verdict::Verdict},
    source::{kernel::BlockMaps, nfqueue::SharedBlocks},
};

use policy::{Policy, PolicyMode};

/// Where blocks take effect.
pub trait BlockSink: Send {
    fn set(&mut self, host: IpAddr, peer: IpAddr, action: u32) -> anyhow::Result<()>;
    fn clear(&mut self, host: IpAddr, peer: IpAddr) -> anyhow::Result<()>;
    /// Packets matched so far.
    fn packets(&self, host: IpAddr, peer: IpAddr) -> u64;
}

impl BlockSink for BlockMaps {
    fn set(&mut self, host: IpAddr, peer: IpAddr, action: u32) -> anyhow::Result<()> {
        let value = |packets| BlockValue {
            action,
            _pad: 0,
            packets,
        };
        match (host, peer) {
            (IpAddr::V4(h), IpAddr::V4(p)) => {
                let key = PairKey {
                    host: u32::from(h),
                    peer: u32::from(p),
                };
                let packets = self.v4.get(&key, 0).map_or(0, |v| v.packets);
                self.v4.insert(key, value(packets), 0)?;
            }
            (IpAddr::V6(h), IpAddr::V6(p)) => {
                let key = PairKey {
                    host: vpnfp_common::V6(h.octets()),
                    peer: vpnfp_common::V6(p.octets()),
                };
                let packets = self.v6.get(&key, 0).map_or(0, |v| v.packets);
                self.v6.insert(key, value(packets), 0)?;
            }
            _ => anyhow::bail!("{host} and {peer} are not one family"),
        }
        Ok(())
    }

    fn clear(&mut self, host: IpAddr, peer: IpAddr) -> anyhow::Result<()> {
        match (host, peer) {
            (IpAddr::V4(h), IpAddr::V4(p)) => {
                let _ = self.v4.remove(&PairKey {
                    host: u32::from(h),
                    peer: u32::from(p),
                });
            }
            (IpAddr::V6(h), IpAddr::V6(p)) => {
                let _ = self.v6.remove(&PairKey {
                    host: vpnfp_common::V6(h.octets()),
                    peer: vpnfp_common::V6(p.octets()),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn packets(&self, host: IpAddr, peer: IpAddr) -> u64 {
        match (host, peer) {
            (IpAddr::V4(h), IpAddr::V4(p)) => self
                .v4
                .get(
                    &PairKey {
                        host: u32::from(h),
                        peer: u32::from(p),
                    },
                    0,
                )
                .map_or(0, |v| v.packets),
            (IpAddr::V6(h), IpAddr::V6(p)) => self
                .v6
                .get(
                    &PairKey {
                        host: vpnfp_common::V6(h.octets()),
                        peer: vpnfp_common::V6(p.octets()),
                    },
                    0,
                )
                .map_or(0, |v| v.packets),
            _ => 0,
        }
    }
}

impl BlockSink for Arc<SharedBlocks> {
    fn set(&mut self, host: IpAddr, peer: IpAddr, action: u32) -> anyhow::Result<()> {
        SharedBlocks::set(self, host, peer, action)
    }

    fn clear(&mut self, host: IpAddr, peer: IpAddr) -> anyhow::Result<()> {
        SharedBlocks::clear(self, host, peer);
        Ok(())
    }

    fn packets(&self, host: IpAddr, peer: IpAddr) -> u64 {
        SharedBlocks::packets(self, host, peer)
    }
}

/// One block decision: the `blocked` event.
#[derive(Clone, Debug, PartialEq)]
pub struct Blocked {
    pub host: IpAddr,
    pub peer: IpAddr,
    /// What the policy named: a protocol, or `verdict:LEVEL`.
    pub what: String,
    pub policy_mode: PolicyMode,
    /// The rule's number in the file (1 = first `[[block]]`).
    pub rule: usize,
    pub at_ns: u64,
    /// Why the block was not made, if it was not: the pair passes, and the
    /// event says so.
    pub refused: Option<Refusal>,
}

/// Why a block the policy asked for was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A sink refused it (the block map is full).
    MapFull,
    /// The host had its new blocks for this minute.
    RateLimited,
}

impl Refusal {
    pub const fn as_str(self) -> &'static str {
        match self {
            Refusal::MapFull => "map_full",
            Refusal::RateLimited => "rate_limited",
        }
    }
}

/// A block lifted because its pair went quiet: the `unblocked` event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Unblocked {
    pub event: &'static str,
    pub host: IpAddr,
    pub peer: IpAddr,
    /// Named as in the `blocked` event.
    #[serde(rename = "protocol")]
    pub what: String,
    pub reason: &'static str,
    /// How long the pair had been quiet.
    pub quiet_secs: u64,
    /// Packets the block matched over its life.
    pub packets: u64,
    pub at: f64,
}

impl Blocked {
    pub fn action(&self) -> &'static str {
        if self.refused.is_some() {
            "failed"
        } else if self.policy_mode == PolicyMode::Enforce {
            "drop"
        } else {
            "count"
        }
    }
}

/// Packets a block matched, for the log and metrics: the `policy_drops`
/// event at exit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Drops {
    pub host: IpAddr,
    pub peer: IpAddr,
    /// Named as in the `blocked` event.
    #[serde(rename = "protocol")]
    pub what: String,
    pub action: &'static str,
    pub packets: u64,
}

/// What a reload changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Reloaded {
    pub path: PathBuf,
    pub mode: PolicyMode,
    pub rules: usize,
    /// Blocks the new policy still names, and those it lifted.
    pub kept: usize,
    pub lifted: usize,
    /// `--local`: the programs judged again.
    pub programs: Vec<programs::ProgramBlocked>,
}

/// A block in force, and when its pair last sent anything.
struct Held {
    blocked: Blocked,
    /// Packets the sinks had matched at the last look.
    packets: u64,
    /// When that count last moved (or the block was made).
    active_ns: u64,
}

pub struct Enforcer {
    path: PathBuf,
    policy: Policy,
    blocks: BTreeMap<(IpAddr, IpAddr), Held>,
    sinks: Vec<Box<dyn BlockSink>>,
    /// Per host: the start of its current minute, and the blocks it got in
    /// it. Only hosts blocked within the last minute are kept.
    budget: HashMap<IpAddr, (u64, u32)>,
    /// Blocks refused (they pass: fail-open), a full map or a budget.
    pub failures: u64,
    /// When [`Enforcer::tick`] next looks for quiet blocks.
    next_sweep_ns: u64,
    /// `--local`: blocks by program.
    pub programs: programs::ProgramBlocks,
}

impl Enforcer {
    /// The validated policy at `path`; nothing is enforced before this.
    pub fn new(path: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            policy: Policy::load(path)?,
            blocks: BTreeMap::new(),
            sinks: Vec::new(),
            budget: HashMap::new(),
            failures: 0,
            next_sweep_ns: 0,
            programs: programs::ProgramBlocks::new(),
        })
    }

    pub fn add_sink(&mut self, sink: Box<dyn BlockSink>) {
        self.sinks.push(sink);
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn action(&self) -> u32 {
        if self.policy.mode == PolicyMode::Enforce {
            ACTION_DROP
        } else {
            ACTION_COUNT
        }
    }

    fn block(
        &mut self,
        host: IpAddr,
        peer: IpAddr,
        what: String,
        rule: usize,
        at_ns: u64,
    ) -> Option<Blocked> {
        if self.blocks.contains_key(&(host, peer)) {
            return None;
        }
        let refused = if self.spend(host, at_ns) {
            self.set_everywhere(host, peer)
                .err()
                .map(|e| (Refusal::MapFull, format!("{e:#}")))
        } else {
            Some((Refusal::RateLimited, "the host's budget".to_string()))
        };
        if let Some((_, why)) = &refused {
            self.failures += 1;
            // A flood of refusals is one line per hundred.
            if self.failures % 100 == 1 {
                log::error!(
                    "enforcement: cannot block {host} -> {peer} ({why}); it passes ({} refused so far)",
                    self.failures
                );
            }
        }
        let b = Blocked {
            host,
            peer,
            what,
            policy_mode: self.policy.mode,
            rule: rule + 1,
            at_ns,
            refused: refused.map(|(r, _)| r),
        };
        // Only what the sinks hold is remembered, so the set never grows
        // past their room; a refused pair is tried again when named again.
        if b.refused.is_none() {
            self.blocks.insert(
                (host, peer),
                Held {
                    blocked: b.clone(),
                    packets: 0,
                    active_ns: at_ns,
                },
            );
        }
        Some(b)
    }

    /// Takes one of `host`'s new blocks for the minute, if it has one left.
    fn spend(&mut self, host: IpAddr, at_ns: u64) -> bool {
        let limit = self.policy.new_blocks_per_host_per_minute;
        let (start, used) = self.budget.entry(host).or_insert((at_ns, 0));
        if at_ns.saturating_sub(*start) >= MINUTE_NS {
            (*start, *used) = (at_ns, 0);
        }
        if *used >= limit {
            return false;
        }
        *used += 1;
        true
    }

    /// Sets the block in every sink, or in none: what one sink took is
    /// taken back when another refuses.
    fn set_everywhere(&mut self, host: IpAddr, peer: IpAddr) -> anyhow::Result<()> {
        let action = self.action();
        let mut result = Ok(());
        for sink in &mut self.sinks {
            if let Err(e) = sink.set(host, peer, action) {
                result = Err(e);
                break;
            }
        }
        if result.is_err() {
            for sink in &mut self.sinks {
                let _ = sink.clear(host, peer);
            }
        }
        result
    }

    /// [`Enforcer::expire`] every tenth of the policy's quiet time (at
    /// least every second, the run loop's tick): each sweep reads every
    /// block's count from the maps, and a block is lifted at most 10% late.
    pub fn tick(&mut self, now_ns: u64) -> Vec<Unblocked> {
        if now_ns < self.next_sweep_ns {
            return Vec::new();
        }
        let every_ns = self.policy.unblock_after_secs.saturating_mul(100_000_000);
        self.next_sweep_ns = now_ns.saturating_add(every_ns);
        self.programs.sweep();
        self.expire(now_ns)
    }

    /// Lifts the blocks whose pair sent nothing (no packet matched) for the
    /// policy's `unblock_after_secs`, as of `now_ns` (Unix nanoseconds),
    /// and forgets spent budgets. Called about once a second; it reads
    /// each block's count once.
    pub fn expire(&mut self, now_ns: u64) -> Vec<Unblocked> {
        self.budget
            .retain(|_, (start, _)| now_ns.saturating_sub(*start) < MINUTE_NS);
        let quiet_ns = self.policy.unblock_after_secs.saturating_mul(1_000_000_000);
        let mut lifted = Vec::new();
        for (&(host, peer), held) in &mut self.blocks {
            let packets: u64 = self.sinks.iter().map(|s| s.packets(host, peer)).sum();
            if packets != held.packets {
                held.packets = packets;
                held.active_ns = now_ns;
            } else if now_ns.saturating_sub(held.active_ns) >= quiet_ns {
                lifted.push(Unblocked {
                    event: "unblocked",
                    host,
                    peer,
                    what: held.blocked.what.clone(),
                    reason: "quiet",
                    quiet_secs: now_ns.saturating_sub(held.active_ns) / 1_000_000_000,
                    packets,
                    at: unix_secs(now_ns),
                });
            }
        }
        for u in &lifted {
            for sink in &mut self.sinks {
                let _ = sink.clear(u.host, u.peer);
            }
            self.blocks.remove(&(u.host, u.peer));
        }
        lifted
    }

    /// A flow named a VPN or tunnel.
    pub fn detection(&mut self, d: &Detection) -> Option<Blocked> {
        let (host, peer) = (d.id.host, d.id.peer);
        let rule = self.policy.blocks_protocol(host, peer, d.naming.protocol)?;
        self.block(host, peer, d.naming.protocol.to_string(), rule, d.at_ns)
    }

    /// `--local`: a process got a socket.
    pub fn process(
        &mut self,
        process: &Arc<crate::model::Process>,
        at_ns: u64,
    ) -> Option<programs::ProgramBlocked> {
        self.programs.process(&self.policy, process, at_ns)
    }

    /// `--local`: a flow of this process was named.
    pub fn program_named(
        &mut self,
        process: &Arc<crate::model::Process>,
        d: &Detection,
    ) -> Option<programs::ProgramBlocked> {
        self.programs
            .named(&self.policy, process, d.naming.protocol, d.at_ns)
    }

    /// A host's verdict changed.
    pub fn verdict(&mut self, v: &Verdict) -> Vec<Blocked> {
        let level = v.level.as_str();
        let mut out = Vec::new();
        for &peer in &v.peers {
            if let Some(rule) = self.policy.blocks_verdict(v.host, peer, level)
                && let Some(b) = self.block(v.host, peer, format!("verdict:{level}"), rule, v.at_ns)
            {
                out.push(b);
            }
        }
        out
    }

    /// Reads the policy again (SIGHUP). A policy that does not validate
    /// changes nothing. Blocks the new policy no longer names are lifted;
    /// the others follow its mode.
    pub fn reload(&mut self) -> anyhow::Result<Reloaded> {
        let new = Policy::load(&self.path)?;
        self.policy = new;
        let action = self.action();
        let mut lifted = 0;
        let keys: Vec<(IpAddr, IpAddr)> = self.blocks.keys().copied().collect();
        for (host, peer) in keys {
            let b = &self.blocks[&(host, peer)].blocked;
            let still = if let Some(level) = b.what.strip_prefix("verdict:") {
                self.policy.blocks_verdict(host, peer, level)
            } else {
                self.policy.blocks_protocol(host, peer, &b.what)
            };
            for sink in &mut self.sinks {
                let result = match still {
                    Some(_) => sink.set(host, peer, action),
                    None => sink.clear(host, peer),
                };
                if let Err(e) = result {
                    self.failures += 1;
                    log::error!("enforcement: reload could not update {host} -> {peer}: {e:#}");
                }
            }
            if still.is_none() {
                self.blocks.remove(&(host, peer));
                lifted += 1;
            } else if let Some(held) = self.blocks.get_mut(&(host, peer)) {
                held.blocked.policy_mode = self.policy.mode;
            }
        }
        let now_ns = crate::clock::unix_now_ns();
        Ok(Reloaded {
            path: self.path.clone(),
            mode: self.policy.mode,
            rules: self.policy.rules.len(),
            kept: self.blocks.len(),
            lifted,
            programs: self.programs.reload(&self.policy, now_ns),
        })
    }

    /// Packets each block matched so far (summed over the sinks).
    pub fn drops(&self) -> Vec<Drops> {
        self.blocks
            .values()
            .map(|held| &held.blocked)
            .map(|b| Drops {
                host: b.host,
                peer: b.peer,
                what: b.what.clone(),
                action: b.action(),
                packets: self.sinks.iter().map(|s| s.packets(b.host, b.peer)).sum(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use vpnfp_common::maps::MAX_BLOCKS;

    /// A sink with room for `room` pairs, as a kernel map has.
    struct Small {
        room: usize,
        pairs: Vec<(IpAddr, IpAddr)>,
    }

    impl BlockSink for Small {
        fn set(&mut self, host: IpAddr, peer: IpAddr, _action: u32) -> anyhow::Result<()> {
            if self.pairs.len() >= self.room {
                anyhow::bail!("no room");
            }
            self.pairs.push((host, peer));
            Ok(())
        }
        fn clear(&mut self, host: IpAddr, peer: IpAddr) -> anyhow::Result<()> {
            self.pairs.retain(|p| *p != (host, peer));
            Ok(())
        }
        fn packets(&self, _: IpAddr, _: IpAddr) -> u64 {
            0
        }
    }

    #[test]
    fn a_full_map_refuses_truthfully_and_the_set_stays_within_it() {
        let dir = std::env::temp_dir().join(format!("vpnfp-enforce-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("policy.toml");
        std::fs::write(
            &path,
            "mode = \"enforce\"\n[[block]]\nprotocols = [\"wireguard\"]\n",
        )
        .unwrap();
        let mut e = Enforcer::new(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        e.policy.new_blocks_per_host_per_minute = 100;
        e.add_sink(Box::new(Small {
            room: 2,
            pairs: Vec::new(),
        }));
        let host: IpAddr = "192.168.90.11".parse().unwrap();
        let peers: Vec<IpAddr> = (1..=5)
            .map(|i| format!("198.51.100.{i}").parse().unwrap())
            .collect();
        let actions: Vec<&str> = peers
            .iter()
            .map(|&p| e.block(host, p, "wireguard".into(), 0, 0).unwrap().action())
            .collect();
        assert_eq!(actions, ["drop", "drop", "failed", "failed", "failed"]);
        assert_eq!(
            e.block(host, peers[3], "wireguard".into(), 0, 0)
                .unwrap()
                .refused,
            Some(Refusal::MapFull)
        );
        assert_eq!(e.blocks.len(), 2);
        assert_eq!(e.failures, 4);
        let refused = e.block(host, peers[4], "wireguard".into(), 0, 0).unwrap();
        assert!(
            refused.human().contains("its packets pass"),
            "{}",
            refused.human()
        );
        // NFQUEUE's set has the kernel map's room.
        let mut shared = Arc::new(SharedBlocks::default());
        for i in 0..MAX_BLOCKS {
            let peer = IpAddr::from(std::net::Ipv4Addr::from(0xc633_6400 + i));
            shared.set(host, peer, ACTION_DROP).unwrap();
        }
        let one_more = "203.0.113.1".parse().unwrap();
        assert!(shared.set(host, one_more, ACTION_DROP).is_err());
    }

    /// A sink that matches a packet whenever the test says so.
    struct Counting {
        pairs: Vec<(IpAddr, IpAddr)>,
        packets: Arc<AtomicU64>,
    }

    impl BlockSink for Counting {
        fn set(&mut self, host: IpAddr, peer: IpAddr, _action: u32) -> anyhow::Result<()> {
            self.pairs.push((host, peer));
            Ok(())
        }
        fn clear(&mut self, host: IpAddr, peer: IpAddr) -> anyhow::Result<()> {
            self.pairs.retain(|p| *p != (host, peer));
            Ok(())
        }
        fn packets(&self, host: IpAddr, peer: IpAddr) -> u64 {
            if self.pairs.contains(&(host, peer)) {
                self.packets.load(Ordering::Relaxed)
            } else {
                0
            }
        }
    }

    fn enforcer(policy: &str) -> Enforcer {
        let dir = std::env::temp_dir().join(format!(
            "vpnfp-enforce-{}-{}",
            std::process::id(),
            policy.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("policy.toml");
        std::fs::write(&path, policy).unwrap();
        let e = Enforcer::new(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        e
    }

    const S: u64 = 1_000_000_000;

    /// One host gets at most its budget of new blocks a minute (so forged
    /// detections cannot fill the map), and its budget comes back.
    #[test]
    fn new_blocks_are_budgeted_per_host() {
        let mut e = enforcer(
            "mode = \"enforce\"\nnew_blocks_per_host_per_minute = 3\n[[block]]\nprotocols = [\"wireguard\"]\n",
        );
        e.add_sink(Box::new(Counting {
            pairs: Vec::new(),
            packets: Arc::default(),
        }));
        let (host, other): (IpAddr, IpAddr) = (
            "192.168.90.11".parse().unwrap(),
            "192.168.90.12".parse().unwrap(),
        );
        let peer = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0xc633_6400 + i));
        let actions: Vec<&str> = (1..=5)
            .map(|i| {
                e.block(host, peer(i), "wireguard".into(), 0, i as u64 * S)
                    .unwrap()
            })
            .map(|b| b.action())
            .collect();
        assert_eq!(actions, ["drop", "drop", "drop", "failed", "failed"]);
        let refused = e
            .block(host, peer(6), "wireguard".into(), 0, 10 * S)
            .unwrap();
        assert_eq!(refused.refused, Some(Refusal::RateLimited));
        assert!(refused.human().contains("its packets pass"));
        let json = serde_json::to_string(&refused).unwrap();
        assert!(
            json.contains(r#""action":"failed","reason":"rate_limited""#),
            "{json}"
        );
        // Another host has its own budget; a minute later this one too.
        assert_eq!(
            e.block(other, peer(1), "wireguard".into(), 0, 11 * S)
                .unwrap()
                .action(),
            "drop"
        );
        assert_eq!(
            e.block(host, peer(7), "wireguard".into(), 0, 62 * S)
                .unwrap()
                .action(),
            "drop"
        );
        assert_eq!(e.blocks.len(), 5);
    }

    /// A block lasts while its pair keeps sending and is lifted, with an
    /// event, once the pair was quiet for the policy's time.
    #[test]
    fn blocks_end_when_the_pair_goes_quiet() {
        let mut e = enforcer(
            "mode = \"enforce\"\nunblock_after_secs = 60\n[[block]]\nprotocols = [\"wireguard\"]\n",
        );
        let packets = Arc::new(AtomicU64::new(0));
        e.add_sink(Box::new(Counting {
            pairs: Vec::new(),
            packets: packets.clone(),
        }));
        let host: IpAddr = "192.168.90.11".parse().unwrap();
        let peer: IpAddr = "198.51.100.2".parse().unwrap();
        e.block(host, peer, "wireguard".into(), 0, 0).unwrap();
        // A tunnel retrying every 5 s for ten minutes stays blocked.
        for t in (5..600).step_by(5) {
            packets.fetch_add(1, Ordering::Relaxed);
            assert!(e.expire(t * S).is_empty(), "lifted at {t} s");
        }
        // The last packet came at 595 s.
        assert!(e.expire(595 * S + 59 * S).is_empty());
        let lifted = e.expire(595 * S + 60 * S);
        assert_eq!(lifted.len(), 1);
        let u = &lifted[0];
        assert_eq!(
            (u.host, u.peer, u.quiet_secs, u.packets),
            (host, peer, 60, 119)
        );
        let json = serde_json::to_string(u).unwrap();
        assert!(json.contains(r#""event":"unblocked""#) && json.contains(r#""reason":"quiet""#));
        assert!(e.blocks.is_empty() && e.drops().is_empty());
        // Named again, it is blocked again.
        assert_eq!(
            e.block(host, peer, "wireguard".into(), 0, 700 * S)
                .unwrap()
                .action(),
            "drop"
        );
    }

    #[test]
    fn the_budgets_are_validated() {
        for bad in [
            "unblock_after_secs = 5",
            "unblock_after_secs = 99999999",
            "new_blocks_per_host_per_minute = 0",
        ] {
            let text =
                format!("mode = \"enforce\"\n{bad}\n[[block]]\nprotocols = [\"wireguard\"]\n");
            assert!(Policy::parse(&text).is_err(), "{bad}");
        }
        let p = Policy::parse("[[block]]\nprotocols = [\"wireguard\"]\n").unwrap();
        assert_eq!(p.unblock_after_secs, policy::DEFAULT_UNBLOCK_AFTER_SECS);
        assert_eq!(
            p.new_blocks_per_host_per_minute,
            policy::DEFAULT_NEW_BLOCKS_PER_HOST_PER_MINUTE
        );
    }
}
