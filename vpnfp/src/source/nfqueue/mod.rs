//! NFQUEUE mode, the research's own way of seeing packets: netfilter queues
//! the first `copy_range` bytes of each packet to us, we count it and accept
//! it. The queue is fail-open and the rules carry `--queue-bypass`, so a
//! slow or killed vpnfp never holds traffic back; a *stopped* one (SIGSTOP)
//! holds the packets already queued until it runs again, as NFQUEUE works.
//!
//! Library: `nfq`, pure Rust netlink (no C library to install, MIT/Apache).

pub mod blocks;
pub mod driver;
pub mod rules;

use std::{
    io,
    time::{Duration, Instant},
};

use nfq::{Queue, Verdict};
use vpnfp_common::{Counters, config::Arrival, parse};

use crate::{
    clock::unix_now_ns,
    engine::{Engine, EngineSettings},
    model::Fact,
};
pub use blocks::SharedBlocks;
pub use rules::{Chain, Family, Rule, RuleError};

#[derive(Debug, thiserror::Error)]
pub enum NfqueueError {
    #[error("opening a netfilter queue socket failed (needs root or CAP_NET_ADMIN)")]
    Open(#[source] io::Error),
    #[error("NFQUEUE queue {0} is in use by another process: pick another with --queue-num")]
    QueueInUse(u16),
    #[error("configuring NFQUEUE queue {queue}")]
    Configure {
        queue: u16,
        #[source]
        source: io::Error,
    },
    #[error("receiving from NFQUEUE queue {queue}")]
    Receive {
        queue: u16,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Rule(#[from] RuleError),
}

/// The research's settings: queue 1, 2048 packets; whole packets copied.
pub const DEFAULT_QUEUE_NUM: u16 = 1;
pub const DEFAULT_QUEUE_LEN: u32 = 2048;
pub const DEFAULT_COPY_RANGE: u16 = 0xffff;

#[derive(Clone, Debug)]
pub struct NfqueueOptions {
    pub queue_num: u16,
    pub chain: Chain,
    /// Interfaces whose traffic is queued (none: all of the chain's).
    pub ifaces: Vec<String>,
    pub queue_len: u32,
    pub copy_range: u16,
}

/// What NFQUEUE mode saw, at exit.
#[derive(Clone, Copy, Debug, Default)]
pub struct NfqueueStats {
    pub counters: Counters,
    /// Packets the rule matched.
    pub matched: u64,
    /// Matched but never reached us (passed by fail-open or bypass).
    pub missed: u64,
}

/// A bound queue and its installed rules. [`NfqueueFingerprinter::stop`]
/// removes the rules; dropping it without `stop` removes them too.
pub struct NfqueueFingerprinter {
    queue: Queue,
    rules: Vec<Rule>,
    families: Vec<Family>,
    options: NfqueueOptions,
    engine: Engine,
    /// An enforcement policy's blocks (None: accept everything).
    blocks: Option<std::sync::Arc<SharedBlocks>>,
    /// The watched interfaces' indexes: a packet that came in on one of
    /// them came from the LAN port.
    lan_ports: Vec<u32>,
}

impl NfqueueFingerprinter {
    /// Binds the queue first (so a queue in use fails before any rule is
    /// touched), then removes stale rules of ours and installs the rule.
    pub fn start(options: NfqueueOptions, settings: EngineSettings) -> Result<Self, NfqueueError> {
        let queue_num = options.queue_num;
        let mut queue = Queue::open().map_err(NfqueueError::Open)?;
        queue.bind(queue_num).map_err(|e| match e.raw_os_error() {
            // The kernel answers EPERM when another socket owns the queue;
            // with CAP_NET_ADMIN that is the only reason.
            Some(libc::EBUSY) | Some(libc::EEXIST) => NfqueueError::QueueInUse(queue_num),
            Some(libc::EPERM) if crate::privileges::has_net_admin() => {
                NfqueueError::QueueInUse(queue_num)
            }
            Some(libc::EPERM) => NfqueueError::Open(e),
            _ => NfqueueError::Configure {
                queue: queue_num,
                source: e,
            },
        })?;
        let configure = |e| NfqueueError::Configure {
            queue: queue_num,
            source: e,
        };
        // Fail-open: when the queue is full the kernel accepts the packet
        // instead of dropping it; we count what we missed from the rule.
        queue.set_fail_open(queue_num, true).map_err(configure)?;
        queue
            .set_copy_range(queue_num, options.copy_range)
            .map_err(configure)?;
        queue
            .set_queue_max_len(queue_num, options.queue_len)
            .map_err(configure)?;
        queue.set_nonblocking(true);

        // IPv6 needs ip6tables; without it IPv6 goes unseen, and we say so.
        let mut families = vec![Family::V4];
        if rules::available(Family::V6) {
            families.push(Family::V6);
        } else {
            log::warn!("ip6tables is not available: NFQUEUE mode sees IPv4 only");
        }
        for &family in &families {
            let stale = rules::remove_stale(family, queue_num)?;
            if stale > 0 {
                log::warn!(
                    "removed {stale} stale {} rule(s) of an earlier vpnfp",
                    family.tool()
                );
            }
        }
        let mut fingerprinter = Self {
            queue,
            rules: Vec::new(),
            families: families.clone(),
            engine: Engine::new(settings),
            options: options.clone(),
            blocks: None,
            // An interface that does not exist yet has no packets to judge.
            lan_ports: options
                .ifaces
                .iter()
                .filter_map(|i| crate::source::kernel::if_index_now(i).ok().flatten())
                .collect(),
        };
        // Installed one by one; if one fails, drop removes those before it.
        for rule in Rule::set(options.chain, &options.ifaces, queue_num, &families) {
            rule.install()?;
            fingerprinter.rules.push(rule);
        }
        Ok(fingerprinter)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// An enforcement policy's blocks: their packets get NF_DROP.
    pub fn set_blocks(&mut self, blocks: std::sync::Arc<SharedBlocks>) {
        self.blocks = Some(blocks);
    }

    /// Handles every packet waiting in the queue (accepting each, unless a
    /// policy blocks it); returns how many.
    pub fn poll(&mut self, on_fact: &mut impl FnMut(Fact<'_>)) -> Result<usize, NfqueueError> {
        let mut handled = 0;
        loop {
            let mut msg = match self.queue.recv() {
                Ok(msg) => msg,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(handled),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(NfqueueError::Receive {
                        queue: self.options.queue_num,
                        source: e,
                    });
                }
            };
            // The time we read the packet, not the kernel's receive stamp:
            // nfq 0.2.5's get_timestamp reads the netlink attribute through a
            // misaligned pointer (a panic in debug builds, undefined
            // behaviour in release), so it is not called. The kernel only
            // includes the stamp when timestamping is on anyway.
            let now_ns = unix_now_ns();
            let packet = msg.get_payload();
            let parsed = parse::raw_ip(packet);
            // An enforced policy drops what it blocks; everything else (and
            // every packet when no policy is loaded) is accepted.
            let drop = match (&self.blocks, &parsed) {
                (Some(blocks), Ok(p)) => {
                    let (host, peer) = self.engine.pair(p);
                    blocks.drops(host, peer)
                }
                _ => false,
            };
            let arrival = if self.lan_ports.contains(&msg.get_indev()) {
                Arrival::FromLanPort
            } else {
                Arrival::Elsewhere
            };
            self.engine.frame(packet, parsed, arrival, now_ns, on_fact);
            msg.set_verdict(if drop { Verdict::Drop } else { Verdict::Accept });
            self.queue.verdict(msg).map_err(|e| NfqueueError::Receive {
                queue: self.options.queue_num,
                source: e,
            })?;
            handled += 1;
        }
    }

    pub fn counters(&self) -> &Counters {
        self.engine.counters()
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Ends flows that went idle while no packet came.
    pub fn expire(&mut self, on_fact: &mut impl FnMut(Fact<'_>)) {
        self.engine.expire(unix_now_ns(), on_fact);
    }

    /// Removes the rules, then accepts what is still queued (unbinding with
    /// packets queued would drop them), ends every flow, and reports.
    pub fn stop(
        mut self,
        on_fact: &mut impl FnMut(Fact<'_>),
    ) -> Result<NfqueueStats, NfqueueError> {
        let matched = rules::packets_matched(&self.families, self.options.queue_num);
        let removed = self.remove_rules();
        let quiet_since = Instant::now();
        let mut last_packet = quiet_since;
        while last_packet.elapsed() < Duration::from_millis(50) {
            if self.poll(on_fact)? > 0 {
                last_packet = Instant::now();
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let _ = self.queue.unbind(self.options.queue_num);
        self.engine.finish(on_fact);
        removed?;
        let matched = matched?;
        let counters = *self.engine.counters();
        Ok(NfqueueStats {
            counters,
            matched,
            missed: matched.saturating_sub(counters.seen),
        })
    }

    /// Removes every installed rule (all are tried; the first error is
    /// returned).
    fn remove_rules(&mut self) -> Result<(), RuleError> {
        let mut result = Ok(());
        for rule in self.rules.drain(..) {
            if let Err(e) = rule.remove() {
                log::error!(
                    "{e}; remove it by hand: {} -t mangle -S | grep {}",
                    rule.family.tool(),
                    rules::comment(rule.queue_num)
                );
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        result
    }
}

impl Drop for NfqueueFingerprinter {
    fn drop(&mut self) {
        let _ = self.remove_rules();
    }
}
