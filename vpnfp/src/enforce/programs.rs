//! Per-program enforcement (`run --local` with `programs` in the policy):
//! a process a rule names gets its packets dropped in the kernel (TC
//! egress, by process id in `VPNFP_PROGRAM_BLOCKS`); a process `[allow]`
//! names is exempt from every block. Another process reaching the same
//! peer passes. A process is judged when vpnfp first sees it own a socket
//! (rules without protocols), or when one of its flows is named (rules
//! with protocols); its entry goes when the process does.

use std::{collections::BTreeMap, sync::Arc};

use hashlink::LruCache;
use serde::Serialize;
use vpnfp_common::{
    block::{ACTION_COUNT, ACTION_DROP},
    local::{ACTION_ALLOW, PROGRAM_BLOCK_PORTS, ProgramBlock},
};

use super::policy::{Policy, PolicyMode};
use crate::{clock::unix_secs, model::Process};

/// Where program blocks take effect (the kernel's map, by process id).
pub trait ProgramSink: Send {
    fn set(&mut self, pid: u32, block: ProgramBlock) -> anyhow::Result<()>;
    fn clear(&mut self, pid: u32);
    fn packets(&self, pid: u32) -> u64;
}

impl ProgramSink for aya::maps::HashMap<aya::maps::MapData, u32, ProgramBlock> {
    fn set(&mut self, pid: u32, mut block: ProgramBlock) -> anyhow::Result<()> {
        block.packets = self.get(&pid, 0).map_or(0, |b| b.packets);
        Ok(self.insert(pid, block, 0)?)
    }

    fn clear(&mut self, pid: u32) {
        let _ = self.remove(&pid);
    }

    fn packets(&self, pid: u32) -> u64 {
        self.get(&pid, 0).map_or(0, |b| b.packets)
    }
}

/// One program decision: the `program_blocked` event (and
/// `program_allowed` for `[allow] programs`).
#[derive(Clone, Debug, PartialEq)]
pub struct ProgramBlocked {
    pub process: Arc<Process>,
    /// `program`, or the protocol its flow was named.
    pub what: String,
    /// The rule's number in the file; 0 for `[allow]`.
    pub rule: usize,
    pub peer_ports: Vec<u16>,
    pub action: &'static str,
    pub at_ns: u64,
    /// Why the kernel did not take it (the map is full): it passes.
    pub failed: Option<String>,
}

impl Serialize for ProgramBlocked {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            event: &'static str,
            process: &'a Process,
            protocol: &'a str,
            rule: usize,
            peer_ports: &'a [u16],
            action: &'static str,
            at: f64,
            #[serde(skip_serializing_if = "Option::is_none")]
            failed: Option<&'a str>,
        }
        Json {
            event: if self.action == "allow" {
                "program_allowed"
            } else {
                "program_blocked"
            },
            process: &self.process,
            protocol: &self.what,
            rule: self.rule,
            peer_ports: &self.peer_ports,
            action: self.action,
            at: unix_secs(self.at_ns),
            failed: self.failed.as_deref(),
        }
        .serialize(s)
    }
}

impl ProgramBlocked {
    pub fn human(&self) -> String {
        let ports = if self.peer_ports.is_empty() {
            "every peer".to_string()
        } else {
            let p: Vec<String> = self.peer_ports.iter().map(u16::to_string).collect();
            format!("peer ports {}", p.join(", "))
        };
        match (&self.failed, self.action) {
            (Some(why), _) => format!(
                "enforcement: cannot block {} ({why}); it passes",
                self.process.human()
            ),
            (None, "allow") => format!(
                "enforcement: {} is allowed ([allow] programs): no block applies to it",
                self.process.human()
            ),
            (None, action) => format!(
                "enforcement: {action} the packets of {} to {ports} ({}, rule {})",
                self.process.human(),
                self.what,
                self.rule
            ),
        }
    }
}

/// The program blocks in force, by process id.
pub struct ProgramBlocks {
    sink: Option<Box<dyn ProgramSink>>,
    /// The decision in force per process id.
    held: BTreeMap<u32, ProgramBlocked>,
    /// Processes seen lately, judged again on a reload.
    seen: LruCache<u32, Arc<Process>>,
}

impl ProgramBlocks {
    pub fn new() -> Self {
        Self {
            sink: None,
            held: BTreeMap::new(),
            seen: LruCache::new(4096),
        }
    }

    pub fn set_sink(&mut self, sink: Box<dyn ProgramSink>) {
        self.sink = Some(sink);
    }

    /// A process got a socket.
    pub fn process(
        &mut self,
        policy: &Policy,
        process: &Arc<Process>,
        at_ns: u64,
    ) -> Option<ProgramBlocked> {
        self.seen.insert(process.pid, process.clone());
        if let Some(held) = self.held.get(&process.pid)
            && held.process.exe == process.exe
            && held.process.comm == process.comm
        {
            return None;
        }
        // Another process now has a held pid: its entry was the old one's.
        self.forget(process.pid);
        if policy.mode != PolicyMode::Monitor && policy.allows_program(process) {
            return Some(self.decide(policy, process, "program".into(), 0, at_ns));
        }
        let rule = policy.blocks_program(process, None)?;
        Some(self.decide(policy, process, "program".into(), rule + 1, at_ns))
    }

    /// One of the process's flows was named `protocol`.
    pub fn named(
        &mut self,
        policy: &Policy,
        process: &Arc<Process>,
        protocol: &str,
        at_ns: u64,
    ) -> Option<ProgramBlocked> {
        if self.held.contains_key(&process.pid) {
            return None;
        }
        let rule = policy.blocks_program(process, Some(protocol))?;
        Some(self.decide(policy, process, protocol.to_string(), rule + 1, at_ns))
    }

    fn decide(
        &mut self,
        policy: &Policy,
        process: &Arc<Process>,
        what: String,
        rule: usize,
        at_ns: u64,
    ) -> ProgramBlocked {
        let peer_ports = match rule {
            0 => Vec::new(),
            n => policy.rules[n - 1].peer_ports.clone(),
        };
        let (action, code) = match (rule, policy.mode) {
            (0, _) => ("allow", ACTION_ALLOW),
            (_, PolicyMode::Enforce) => ("drop", ACTION_DROP),
            _ => ("count", ACTION_COUNT),
        };
        let mut block = ProgramBlock {
            action: code,
            port_count: peer_ports.len().min(PROGRAM_BLOCK_PORTS) as u32,
            ..ProgramBlock::default()
        };
        for (slot, port) in block.ports.iter_mut().zip(&peer_ports) {
            *slot = *port;
        }
        let failed = match self.sink.as_mut() {
            Some(sink) => sink.set(process.pid, block).err().map(|e| format!("{e:#}")),
            None => Some("no kernel program holds program blocks".into()),
        };
        let decided = ProgramBlocked {
            process: process.clone(),
            what,
            rule,
            peer_ports,
            action,
            at_ns,
            failed,
        };
        if decided.failed.is_none() {
            self.held.insert(process.pid, decided.clone());
        }
        decided
    }

    fn forget(&mut self, pid: u32) {
        if self.held.remove(&pid).is_some()
            && let Some(sink) = self.sink.as_mut()
        {
            sink.clear(pid);
        }
    }

    /// Drops the entries of processes that are gone (their pid may come
    /// back as another program).
    pub fn sweep(&mut self) {
        let gone: Vec<u32> = self
            .held
            .keys()
            .copied()
            .filter(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
            .collect();
        for pid in gone {
            self.forget(pid);
        }
    }

    /// Judges every process seen lately again under a new policy.
    pub fn reload(&mut self, policy: &Policy, at_ns: u64) -> Vec<ProgramBlocked> {
        let pids: Vec<u32> = self.held.keys().copied().collect();
        for pid in pids {
            self.forget(pid);
        }
        let seen: Vec<Arc<Process>> = self.seen.iter().map(|(_, p)| p.clone()).collect();
        seen.iter()
            .filter_map(|p| self.process(policy, p, at_ns))
            .collect()
    }

    /// Packets each program block matched: (decision, packets).
    pub fn drops(&self) -> Vec<(ProgramBlocked, u64)> {
        self.held
            .iter()
            .filter(|(_, d)| d.action != "allow")
            .map(|(pid, d)| {
                let packets = self.sink.as_ref().map_or(0, |s| s.packets(*pid));
                (d.clone(), packets)
            })
            .collect()
    }
}

impl Default for ProgramBlocks {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Clone, Default)]
    struct Map(Arc<Mutex<BTreeMap<u32, ProgramBlock>>>);

    impl ProgramSink for Map {
        fn set(&mut self, pid: u32, block: ProgramBlock) -> anyhow::Result<()> {
            self.0.lock().unwrap().insert(pid, block);
            Ok(())
        }
        fn clear(&mut self, pid: u32) {
            self.0.lock().unwrap().remove(&pid);
        }
        fn packets(&self, _: u32) -> u64 {
            0
        }
    }

    fn process(pid: u32, exe: &str) -> Arc<Process> {
        Arc::new(Process {
            pid,
            comm: exe.rsplit('/').next().unwrap().into(),
            exe: Some(exe.into()),
            uid: 0,
            cgroup: None,
        })
    }

    #[test]
    fn a_named_program_is_blocked_and_another_is_not() {
        let policy = Policy::parse(
            "mode = \"enforce\"\n[[block]]\nprograms = [\"/usr/bin/curl\"]\npeer_ports = [80]\n\
             [[block]]\nprograms = [\"openvpn\"]\nprotocols = [\"openvpn\"]\n\
             [allow]\nprograms = [\"/usr/bin/ssh\"]\n",
        )
        .unwrap();
        let map = Map::default();
        let mut blocks = ProgramBlocks::new();
        blocks.set_sink(Box::new(map.clone()));
        let curl = process(10, "/usr/bin/curl");
        let b = blocks.process(&policy, &curl, 1).unwrap();
        assert_eq!(
            (b.action, b.rule, b.peer_ports.as_slice()),
            ("drop", 1, &[80][..])
        );
        assert!(map.0.lock().unwrap()[&10].covers(80));
        assert!(!map.0.lock().unwrap()[&10].covers(443));
        // Seen again: nothing new.
        assert!(blocks.process(&policy, &curl, 2).is_none());
        // Python is named by no rule.
        assert!(
            blocks
                .process(&policy, &process(11, "/usr/bin/python3"), 3)
                .is_none()
        );
        // openvpn only once its flow is named openvpn.
        let ovpn = process(12, "/usr/sbin/openvpn");
        assert!(blocks.process(&policy, &ovpn, 4).is_none());
        assert!(blocks.named(&policy, &ovpn, "wireguard", 5).is_none());
        assert_eq!(blocks.named(&policy, &ovpn, "openvpn", 6).unwrap().rule, 2);
        // ssh is allowed: exempt from pair blocks too.
        let ssh = blocks
            .process(&policy, &process(13, "/usr/bin/ssh"), 7)
            .unwrap();
        assert_eq!(ssh.action, "allow");
        assert_eq!(map.0.lock().unwrap()[&13].action, ACTION_ALLOW);
        // The pid now belongs to another program: the block goes.
        assert!(
            blocks
                .process(&policy, &process(10, "/usr/bin/wget"), 8)
                .is_none()
        );
        assert!(!map.0.lock().unwrap().contains_key(&10));
        // A reload to monitor lifts every block.
        let monitor = Policy::parse("").unwrap();
        assert!(blocks.reload(&monitor, 9).is_empty());
        assert!(map.0.lock().unwrap().is_empty());
    }
}
