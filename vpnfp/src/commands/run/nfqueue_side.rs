//! `vpnfp run`'s NFQUEUE side: the queue and its rule on a thread of their
//! own, window closes sent over a channel.

use std::{
    future::pending,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::Context;
use log::{info, warn};
use tokio::sync::mpsc;
use vpnfp::{
    metrics::ModeMetrics,
    nfqueue::{NfqueueError, NfqueueFingerprinter, NfqueueOptions, NfqueueStats, QueueRule},
    settings::Settings,
};
use vpnfp_common::WindowClose;

use crate::cli::RunArgs;

/// The NFQUEUE side: its own thread, window closes over a channel.
pub(super) struct NfqueueSide {
    pub(super) stop: Arc<AtomicBool>,
    /// Taken by the orderly stop; if still here on drop (an error path),
    /// the drop stops the thread, which removes the rule.
    pub(super) thread: Option<JoinHandle<Result<NfqueueStats, NfqueueError>>>,
    pub(super) closes: mpsc::UnboundedReceiver<WindowClose>,
    /// What the thread has counted so far (for stats and metrics).
    pub(super) live: Arc<Mutex<ModeMetrics>>,
    pub(super) rule: Option<QueueRule>,
}

impl Drop for NfqueueSide {
    fn drop(&mut self) {
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

pub(super) fn start_nfqueue(args: &RunArgs, settings: &Settings) -> anyhow::Result<NfqueueSide> {
    let options = NfqueueOptions {
        queue_num: args.nfqueue.queue_num,
        chain: args.nfqueue.chain,
        iface: args.ifaces.first().cloned(),
        queue_len: args.nfqueue.queue_len,
        copy_range: args.nfqueue.copy_range,
        max_hosts: args.max_hosts as usize,
    };
    let mut fingerprinter = NfqueueFingerprinter::start(options.clone(), settings.kernel_config())?;
    info!(
        "nfqueue: queue {} (fail-open, {} packets, copy range {}), rule in mangle {}{} with --queue-bypass",
        options.queue_num,
        options.queue_len,
        options.copy_range,
        options.chain.name(),
        options
            .iface
            .as_ref()
            .map_or(String::new(), |i| format!(" -i {i}"))
    );
    let stop = Arc::new(AtomicBool::new(false));
    let live = Arc::new(Mutex::new(ModeMetrics::default()));
    let rule = fingerprinter.rule().cloned();
    let (tx, closes) = mpsc::unbounded_channel();
    let thread = {
        let (stop, live) = (stop.clone(), live.clone());
        std::thread::Builder::new()
            .name("vpnfp-nfqueue".into())
            .spawn(move || {
                let send = |closed: &WindowClose| {
                    let _ = tx.send(*closed);
                };
                while !stop.load(Ordering::Relaxed) {
                    match fingerprinter.poll(send) {
                        // Nothing queued: the packets wait in the kernel
                        // queue meanwhile (and fail open if it fills).
                        Ok(0) => std::thread::sleep(Duration::from_millis(1)),
                        Ok(_) => {
                            *live.lock().expect("counters lock") = ModeMetrics {
                                counters: *fingerprinter.counters(),
                                hosts_tracked: fingerprinter.hosts_tracked() as u64,
                                hosts_evicted: fingerprinter.hosts_evicted(),
                                missed: None,
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                fingerprinter.stop(send)
            })
            .context("starting the NFQUEUE thread")?
    };
    Ok(NfqueueSide {
        stop,
        thread: Some(thread),
        closes,
        live,
        rule,
    })
}

pub(super) async fn next_close(nfqueue: &mut Option<NfqueueSide>) -> Option<WindowClose> {
    match nfqueue {
        Some(side) => side.closes.recv().await,
        None => pending().await,
    }
}
