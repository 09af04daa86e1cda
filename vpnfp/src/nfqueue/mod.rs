//! NFQUEUE mode, the research's own way of seeing packets: netfilter queues
//! the first `copy_range` bytes of each IPv4 packet to us, we count it and
//! accept it. The queue is fail-open and the rule carries `--queue-bypass`,
//! so a slow, stopped or killed vpnfp never holds traffic back.
//!
//! Library: `nfq`, pure Rust netlink (no C library to install, MIT/Apache).

pub mod rules;

use std::{
    io,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use nfq::{Queue, Verdict};
use vpnfp_common::{Counters, KernelConfig, WindowClose, parse};

use crate::engine::Engine;
pub use rules::{Chain, QueueRule, RuleError};

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

#[derive(Clone, Debug)]
pub struct NfqueueOptions {
    pub queue_num: u16,
    pub chain: Chain,
    pub iface: Option<String>,
    pub queue_len: u32,
    pub copy_range: u16,
    /// Hosts kept at most (least recently seen evicted beyond).
    pub max_hosts: usize,
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

/// A bound queue and its installed rule. [`NfqueueFingerprinter::stop`]
/// removes the rule; dropping it without `stop` removes it too.
pub struct NfqueueFingerprinter {
    queue: Queue,
    rule: Option<QueueRule>,
    options: NfqueueOptions,
    engine: Engine,
}

fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl NfqueueFingerprinter {
    /// Binds the queue first (so a queue in use fails before any rule is
    /// touched), then removes stale rules of ours and installs the rule.
    pub fn start(options: NfqueueOptions, config: KernelConfig) -> Result<Self, NfqueueError> {
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

        let rule = QueueRule {
            chain: options.chain,
            iface: options.iface.clone(),
            queue_num,
        };
        let stale = rule.remove_stale()?;
        if stale > 0 {
            log::warn!(
                "removed {stale} stale iptables rule(s) of an earlier vpnfp on queue {queue_num}"
            );
        }
        rule.install()?;
        Ok(Self {
            queue,
            rule: Some(rule),
            engine: Engine::with_capacity(config, options.max_hosts),
            options,
        })
    }

    pub fn rule(&self) -> Option<&QueueRule> {
        self.rule.as_ref()
    }

    /// Handles every packet waiting in the queue (accepting each); returns
    /// how many.
    pub fn poll(&mut self, mut on_close: impl FnMut(&WindowClose)) -> Result<usize, NfqueueError> {
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
            if let Some(closed) = self.engine.frame(parse::raw_ip(msg.get_payload()), now_ns) {
                on_close(&closed);
            }
            msg.set_verdict(Verdict::Accept);
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

    pub fn hosts_tracked(&self) -> usize {
        self.engine.hosts().len()
    }

    pub fn hosts_evicted(&self) -> u64 {
        self.engine.hosts().evicted()
    }

    /// Removes the rule, then accepts what is still queued (unbinding with
    /// packets queued would drop them), and reports.
    pub fn stop(
        mut self,
        mut on_close: impl FnMut(&WindowClose),
    ) -> Result<NfqueueStats, NfqueueError> {
        let rule = self.rule.take().expect("stop runs once");
        let matched = rule.packets_matched();
        let removed = rule.remove();
        let quiet_since = Instant::now();
        let mut last_packet = quiet_since;
        while last_packet.elapsed() < Duration::from_millis(50) {
            if self.poll(&mut on_close)? > 0 {
                last_packet = Instant::now();
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let _ = self.queue.unbind(self.options.queue_num);
        removed?;
        let matched = matched?;
        let counters = *self.engine.counters();
        Ok(NfqueueStats {
            counters,
            matched,
            missed: matched.saturating_sub(counters.seen),
        })
    }
}

impl Drop for NfqueueFingerprinter {
    fn drop(&mut self) {
        if let Some(rule) = self.rule.take()
            && let Err(e) = rule.remove()
        {
            log::error!(
                "{e}; remove it by hand: iptables -t mangle -S | grep {}",
                rule.comment()
            );
        }
    }
}
