//! `--local`: which process is behind each flow, and behind each host's
//! traffic with a peer, for the flow, detection and verdict reports.

use std::{net::IpAddr, sync::Arc};

use hashlink::LruCache;

use crate::model::{FlowId, Process, ProcessField};

pub struct Processes {
    flows: LruCache<FlowId, ProcessField>,
    /// The last process seen with each (host, peer): a verdict is per host
    /// and names peers, not flows.
    pairs: LruCache<(IpAddr, IpAddr), Arc<Process>>,
}

impl Processes {
    pub fn new(max_flows: usize) -> Self {
        Self {
            flows: LruCache::new(max_flows.max(1)),
            pairs: LruCache::new(max_flows.max(1)),
        }
    }

    pub fn note(&mut self, id: FlowId, process: ProcessField) {
        if let ProcessField::Known(p) = &process {
            self.pairs.insert((id.host, id.peer), p.clone());
        }
        self.flows.insert(id, process);
    }

    pub fn flow(&mut self, id: &FlowId) -> ProcessField {
        self.flows.get(id).cloned().unwrap_or(ProcessField::Unknown)
    }

    /// The process of the first of `peers` one is known for.
    pub fn pair(&mut self, host: IpAddr, peers: &[IpAddr]) -> ProcessField {
        peers
            .iter()
            .find_map(|peer| self.pairs.get(&(host, *peer)).cloned())
            .map_or(ProcessField::Unknown, ProcessField::Known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(peer: &str, port: u16) -> FlowId {
        FlowId {
            host: "192.168.1.2".parse().unwrap(),
            peer: peer.parse().unwrap(),
            proto: 6,
            host_port: port,
            peer_port: 443,
        }
    }

    fn process(pid: u32) -> Arc<Process> {
        Arc::new(Process {
            pid,
            comm: "curl".into(),
            exe: Some("/usr/bin/curl".into()),
            uid: 0,
            cgroup: None,
        })
    }

    #[test]
    fn flows_and_pairs_name_their_last_process() {
        let mut p = Processes::new(16);
        p.note(id("198.51.100.1", 1000), ProcessField::Known(process(10)));
        p.note(id("198.51.100.1", 1001), ProcessField::Known(process(11)));
        p.note(id("198.51.100.3", 1002), ProcessField::NoSocket);
        assert_eq!(p.flow(&id("198.51.100.3", 1002)), ProcessField::NoSocket);
        assert_eq!(p.flow(&id("198.51.100.1", 1000)).known().unwrap().pid, 10);
        assert_eq!(p.flow(&id("198.51.100.2", 1000)), ProcessField::Unknown);
        let host = "192.168.1.2".parse().unwrap();
        let peers = [
            "198.51.100.9".parse().unwrap(),
            "198.51.100.1".parse().unwrap(),
        ];
        assert_eq!(p.pair(host, &peers).known().unwrap().pid, 11);
        assert_eq!(p.pair(host, &peers[..1]), ProcessField::Unknown);
    }
}
