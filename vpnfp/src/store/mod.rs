//! The embedded store: what vpnfp learns, kept in SQLite (rusqlite with the
//! bundled library) so `vpnfp report` can answer "what happened here".
//!
//! Rows reach a writer thread over a bounded channel and are written in
//! batches, one transaction each, in WAL mode: the loop that drains the
//! ring buffers only ever does a `try_send`. A full channel or a failing
//! write (full disk, read-only file) is counted and logged, never waited
//! on; vpnfp keeps fingerprinting. A background prune keeps `--retain`.

pub mod query;
pub mod schema;

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use rusqlite::{Connection, params};

use crate::{
    judge::{identify::Detection, verdict::Verdict},
    model::Mode,
    output::report::{FlowReport, WindowReport, unix_secs},
};

/// Where `vpnfp run` keeps its store unless told otherwise.
pub const DEFAULT_STORE: &str = "/var/lib/vpnfp/vpnfp.db";
/// Records waiting for the writer at most; beyond, they are counted lost.
const QUEUE: usize = 65_536;
/// A transaction holds at most this many rows, and waits at most this long.
const BATCH: usize = 4_096;
const BATCH_WAIT: Duration = Duration::from_millis(250);
/// The retention prune runs this often.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// One thing to keep.
#[derive(Clone, Debug)]
pub enum Row {
    Suspected(WindowReport),
    Detection(Detection),
    Verdict(Verdict),
    Flow(FlowReport),
    /// A policy's block decision, and (at exit) the packets it matched.
    Blocked(crate::enforce::Blocked),
    Drops(crate::enforce::Drops),
}

/// Counts the writer publishes (also for the metrics).
#[derive(Debug, Default)]
pub struct StoreCounts {
    pub written: AtomicU64,
    /// Dropped because the writer's queue was full.
    pub queue_full: AtomicU64,
    /// Lost to failing writes.
    pub failed: AtomicU64,
    pub pruned: AtomicU64,
}

impl StoreCounts {
    pub fn lost(&self) -> u64 {
        self.queue_full.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

/// What a run was, kept with its rows.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub command: &'static str,
    pub mode: String,
    /// The settings, as JSON.
    pub settings: String,
}

enum Msg {
    Row(Box<Row>),
    Stop,
}

/// What a full queue does to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Live modes: never wait (the loop drains ring buffers); count the loss.
    Drop,
    /// Replay: nothing is lost to waiting, so wait for the writer.
    Wait,
}

pub struct Store {
    path: PathBuf,
    when_full: WhenFull,
    tx: SyncSender<Msg>,
    thread: Option<JoinHandle<()>>,
    pub counts: Arc<StoreCounts>,
}

/// The store holds every host's traffic history: its directory is made
/// 0700 and its file 0600 (SQLite gives its journal files the file's
/// mode), and a wider mode on an existing one is said out loud.
fn private_file(path: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let wide = |what: &str, p: &Path, allowed: u32| {
        if let Ok(meta) = std::fs::metadata(p) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & !allowed != 0 {
                log::warn!(
                    "the store's {what} {} is readable by others (mode {mode:o}): chmod {allowed:o} it",
                    p.display()
                );
            }
        }
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        if dir.exists() {
            wide("directory", dir, 0o700);
        } else {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating the store's directory {}", dir.display()))?;
        }
    }
    if path.exists() {
        wide("file", path, 0o600);
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating the store {}", path.display()))?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating or migrating) the store at `path` and starts its
    /// writer. `retain`: rows older than this (by their own time) are
    /// pruned.
    pub fn open(
        path: &Path,
        retain: Duration,
        run: &RunInfo,
        when_full: WhenFull,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        private_file(path)?;
        let mut conn =
            schema::open(path).with_context(|| format!("opening the store {}", path.display()))?;
        let run_id = schema::start_run(&mut conn, run)
            .with_context(|| format!("writing to the store {}", path.display()))?;
        let (tx, rx) = sync_channel(QUEUE);
        let counts = Arc::new(StoreCounts::default());
        let thread = {
            let counts = counts.clone();
            let path = path.to_path_buf();
            std::thread::Builder::new()
                .name("vpnfp-store".into())
                .spawn(move || writer(conn, run_id, rx, counts, retain, &path))
                .context("starting the store's writer")?
        };
        Ok(Self {
            path: path.to_path_buf(),
            when_full,
            tx,
            thread: Some(thread),
            counts,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stopping (nothing to drain any more): the final flows wait for the
    /// writer instead of being dropped.
    pub fn set_when_full(&mut self, when_full: WhenFull) {
        self.when_full = when_full;
    }

    /// Hands a row to the writer; never blocks in [`WhenFull::Drop`] mode.
    pub fn keep(&self, row: Row) {
        if self.when_full == WhenFull::Wait {
            if self.tx.send(Msg::Row(Box::new(row))).is_err() {
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        match self.tx.try_send(Msg::Row(Box::new(row))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if self.counts.queue_full.fetch_add(1, Ordering::Relaxed) == 0 {
                    log::warn!(
                        "store: the writer fell behind; records are being dropped (counted)"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Writes what is queued and stops the writer.
    pub fn close(mut self) -> Arc<StoreCounts> {
        self.stop();
        self.counts.clone()
    }

    fn stop(&mut self) {
        // A blocking send: at exit the queue drains into the last batch.
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop();
    }
}

fn writer(
    mut conn: Connection,
    run: i64,
    rx: Receiver<Msg>,
    counts: Arc<StoreCounts>,
    retain: Duration,
    path: &Path,
) {
    let mut batch: Vec<Row> = Vec::with_capacity(BATCH);
    let mut last_prune = Instant::now() - PRUNE_EVERY;
    let mut newest = 0.0f64;
    let mut errors = 0u64;
    let mut stopping = false;
    while !stopping {
        let deadline = Instant::now() + BATCH_WAIT;
        while batch.len() < BATCH {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Msg::Row(row)) => batch.push(*row),
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    stopping = true;
                    break;
                }
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        if !batch.is_empty() {
            newest = batch.iter().map(row_time).fold(newest, f64::max);
            match write_batch(&mut conn, run, &batch) {
                Ok(()) => {
                    counts
                        .written
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    counts
                        .failed
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    errors += 1;
                    // The first failure and then every hundredth: a full disk
                    // must not flood the log.
                    if errors == 1 || errors.is_multiple_of(100) {
                        log::error!(
                            "store {}: {} records could not be written ({e}); vpnfp keeps fingerprinting",
                            path.display(),
                            counts.failed.load(Ordering::Relaxed)
                        );
                    }
                }
            }
            batch.clear();
        }
        if last_prune.elapsed() >= PRUNE_EVERY && newest > 0.0 {
            last_prune = Instant::now();
            // Retention counts back from the newest record (replayed captures
            // keep their own times).
            let cutoff = newest - retain.as_secs_f64();
            match schema::prune(&mut conn, cutoff) {
                Ok(n) => {
                    counts.pruned.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => log::warn!("store {}: pruning failed: {e}", path.display()),
            }
        }
    }
    let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
}

fn row_time(row: &Row) -> f64 {
    match row {
        Row::Suspected(w) => unix_secs(w.window_end_ns),
        Row::Detection(d) => unix_secs(d.at_ns),
        Row::Verdict(v) => unix_secs(v.at_ns),
        Row::Flow(f) => unix_secs(f.flow.value.last_seen_ns),
        Row::Blocked(b) => unix_secs(b.at_ns),
        Row::Drops(_) => 0.0,
    }
}

fn ip(a: IpAddr) -> String {
    a.to_string()
}

fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn mode(m: Mode) -> &'static str {
    m.as_str()
}

/// One transaction for the whole batch.
fn write_batch(conn: &mut Connection, run: i64, batch: &[Row]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut suspected = tx.prepare_cached(
            "INSERT INTO suspected (run, mode, host, peer, window_start, window_end, count_this, count_prev, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut detection = tx.prepare_cached(
            "INSERT INTO detections (run, mode, at, host, peer, protocol, class, confidence, transport, host_port, peer_port, scope, reasons, packets_seen, server_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?;
        let mut verdict = tx.prepare_cached(
            "INSERT INTO verdicts (run, mode, at, host, verdict, previous, protocols, peers, peer_names, reasons, since, bytes, host_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        let mut flow = tx.prepare_cached(
            "INSERT INTO flows (run, mode, host, peer, transport, host_port, peer_port, scope, packets_up, packets_down, bytes_up, bytes_down, first_seen, last_seen, end_reason, tcp_flags, protocol, peer_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
        )?;
        let mut blocks = tx.prepare_cached(
            "INSERT INTO blocks (run, at, host, peer, what, policy_mode, action, rule, packets) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        for row in batch {
            match row {
                Row::Blocked(b) => {
                    blocks.execute(params![
                        run,
                        unix_secs(b.at_ns),
                        ip(b.host),
                        ip(b.peer),
                        b.what,
                        b.policy_mode.as_str(),
                        b.action(),
                        b.rule as i64,
                        Option::<i64>::None,
                    ])?;
                }
                Row::Drops(d) => {
                    blocks.execute(params![
                        run,
                        now,
                        ip(d.host),
                        ip(d.peer),
                        d.what,
                        "summary",
                        d.action,
                        Option::<i64>::None,
                        d.packets as i64,
                    ])?;
                }
                Row::Suspected(w) => {
                    suspected.execute(params![
                        run,
                        mode(w.mode),
                        ip(w.host),
                        ip(w.peer),
                        unix_secs(w.window_start_ns),
                        unix_secs(w.window_end_ns),
                        w.count_this as i64,
                        w.count_prev as i64,
                        w.reason.map(|r| r.as_str()),
                    ])?;
                }
                Row::Detection(d) => {
                    let n = &d.naming;
                    detection.execute(params![
                        run,
                        mode(d.mode),
                        unix_secs(d.at_ns),
                        ip(d.id.host),
                        ip(d.id.peer),
                        n.protocol,
                        n.class.as_str(),
                        n.confidence.as_str(),
                        d.id.proto,
                        d.id.host_port,
                        d.id.peer_port,
                        d.scope.as_str(),
                        json(&n.reasons),
                        d.packets_seen,
                        n.server_name,
                    ])?;
                }
                Row::Verdict(v) => {
                    verdict.execute(params![
                        run,
                        mode(v.mode),
                        unix_secs(v.at_ns),
                        ip(v.host),
                        v.level.as_str(),
                        v.previous.as_str(),
                        json(&v.protocols),
                        json(&v.peers),
                        json(&v.peer_names),
                        json(&v.reasons),
                        unix_secs(v.since_ns),
                        v.bytes as i64,
                        v.host_bytes as i64,
                    ])?;
                }
                Row::Flow(f) => {
                    let (id, val) = (&f.flow.id, &f.flow.value);
                    flow.execute(params![
                        run,
                        mode(f.mode),
                        ip(id.host),
                        ip(id.peer),
                        id.proto,
                        id.host_port,
                        id.peer_port,
                        f.flow.scope().as_str(),
                        val.packets_up as i64,
                        val.packets_down as i64,
                        val.bytes_up as i64,
                        val.bytes_down as i64,
                        unix_secs(val.first_seen_ns),
                        unix_secs(val.last_seen_ns),
                        f.flow.end.as_str(),
                        val.tcp_flags,
                        f.protocol,
                        f.peer_name,
                    ])?;
                }
            }
        }
    }
    tx.commit()
}
