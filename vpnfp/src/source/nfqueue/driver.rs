//! NFQUEUE mode as a running part: the queue and its rules on a thread of
//! their own, what the engine makes of the packets sent over a channel,
//! and the rules' counters read on another thread for the missed count.

use std::{
    future::pending,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::{
    engine::EngineSettings,
    model::{Fact, ModeMetrics},
};
use anyhow::Context;
use log::{info, warn};
use tokio::sync::mpsc;

use super::{
    NfqueueError, NfqueueFingerprinter, NfqueueOptions, NfqueueStats, SharedBlocks, rules,
};

/// The NFQUEUE side: its own thread, facts over a channel.
pub struct NfqueueDriver {
    pub stop: Arc<AtomicBool>,
    /// Taken by the orderly stop; if still here on drop (an error path),
    /// the drop stops the thread, which removes the rules.
    pub thread: Option<JoinHandle<Result<NfqueueStats, NfqueueError>>>,
    pub facts: mpsc::UnboundedReceiver<Fact<'static>>,
    /// What the thread has counted so far (for stats and metrics).
    pub live: Arc<Mutex<ModeMetrics>>,
    /// Reads the rules' counters (a subprocess: never on the packet or the
    /// main loop) for the missed count.
    counter_thread: Option<JoinHandle<()>>,
}

impl Drop for NfqueueDriver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.counter_thread.take() {
            let _ = t.join();
        }
        if let Some(thread) = self.thread.take() {
            self.stop.store(true, Ordering::Relaxed);
            match thread.join() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => warn!("stopping NFQUEUE: {e:#}"),
                Err(_) => warn!("the NFQUEUE thread panicked"),
            }
        }
    }
}

/// How often the NFQUEUE thread looks for idle flows when no packet comes.
const EXPIRE_EVERY: Duration = Duration::from_secs(1);
/// How often the missed count is read from the rules' counters.
const MISSED_EVERY: Duration = Duration::from_secs(1);

/// Binds the queue, installs the rules and starts the threads; `blocks`:
/// an enforcement policy's pairs to drop.
pub fn start(
    options: NfqueueOptions,
    engine: EngineSettings,
    blocks: Option<Arc<SharedBlocks>>,
) -> anyhow::Result<NfqueueDriver> {
    let mut fingerprinter = NfqueueFingerprinter::start(options.clone(), engine)?;
    if let Some(blocks) = blocks {
        fingerprinter.set_blocks(blocks);
    }
    info!(
        "nfqueue: queue {} (fail-open, {} packets, copy range {}), {} rule(s) in mangle {} with --queue-bypass{}",
        options.queue_num,
        options.queue_len,
        options.copy_range,
        fingerprinter.rules().len(),
        options.chain.name(),
        if options.ifaces.is_empty() {
            String::new()
        } else {
            format!(" for {}", options.ifaces.join(", "))
        }
    );
    let families = fingerprinter.families().to_vec();
    let stop = Arc::new(AtomicBool::new(false));
    let live = Arc::new(Mutex::new(ModeMetrics::default()));
    let (tx, facts) = mpsc::unbounded_channel();
    let thread = {
        let (stop, live) = (stop.clone(), live.clone());
        std::thread::Builder::new()
            .name("vpnfp-nfqueue".into())
            .spawn(move || {
                let mut send = |fact: Fact<'_>| {
                    let _ = tx.send(fact.into_owned());
                };
                let mut last_expiry = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    match fingerprinter.poll(&mut send) {
                        // Nothing queued: the packets wait in the kernel
                        // queue meanwhile (and fail open if it fills).
                        Ok(0) => std::thread::sleep(Duration::from_millis(1)),
                        Ok(_) => {
                            let engine = fingerprinter.engine();
                            let mut live = live.lock().expect("counters lock");
                            *live = ModeMetrics {
                                counters: *fingerprinter.counters(),
                                hosts_tracked: engine.hosts_tracked() as u64,
                                hosts_evicted: engine.hosts_evicted(),
                                flows_tracked: engine.flows_tracked() as u64,
                                missed: live.missed,
                            }
                        }
                        Err(e) => return Err(e),
                    }
                    if last_expiry.elapsed() >= EXPIRE_EVERY {
                        fingerprinter.expire(&mut send);
                        last_expiry = Instant::now();
                    }
                }
                fingerprinter.stop(&mut send)
            })
            .context("starting the NFQUEUE thread")?
    };
    let counter_thread = {
        let (stop, live) = (stop.clone(), live.clone());
        let (families, queue) = (families, options.queue_num);
        std::thread::Builder::new()
            .name("vpnfp-nfq-rules".into())
            .spawn(move || {
                let mut last = Instant::now() - MISSED_EVERY;
                while !stop.load(Ordering::Relaxed) {
                    if last.elapsed() >= MISSED_EVERY {
                        last = Instant::now();
                        if let Ok(matched) = rules::packets_matched(&families, queue) {
                            let mut live = live.lock().expect("counters lock");
                            live.missed = Some(matched.saturating_sub(live.counters.seen));
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
            .context("starting the NFQUEUE rule-counter thread")?
    };
    Ok(NfqueueDriver {
        stop,
        thread: Some(thread),
        facts,
        live,
        counter_thread: Some(counter_thread),
    })
}

/// The next fact from a driver, or never without one (for `select!`).
pub async fn next_fact(nfqueue: &mut Option<NfqueueDriver>) -> Option<Fact<'static>> {
    match nfqueue {
        Some(side) => side.facts.recv().await,
        None => pending().await,
    }
}
