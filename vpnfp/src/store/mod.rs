//! The embedded store: what vpnfp learns, kept in SQLite (rusqlite with the
//! bundled library) so `vpnfp report` can answer "what happened here".
//!
//! Rows reach a writer thread over a bounded channel and are written in
//! batches, one transaction each, in WAL mode: the loop that drains the
//! ring buffers only ever does a `try_send`. A full channel or a failing
//! write (full disk, read-only file) is counted and logged, never waited
//! on; vpnfp keeps fingerprinting. In live modes a background prune keeps
//! `--retain` (by the wall clock) and `--store-max-size` (oldest first); a
//! replay deletes nothing.

pub mod query;
pub mod schema;
pub mod services;

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
    clock::{unix_now_secs, unix_secs},
    judge::{identify::Detection, verdict::Verdict},
    model::{FlowReport, Mode, WindowReport},
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
/// The size bound is checked this often: a flood of new flows writes about
/// 2.7 MB/s, so a check every 10 s overshoots the bound by that much.
const SIZE_EVERY: Duration = Duration::from_secs(10);
/// Rows this far ahead of the wall clock are dated in the future.
pub const FUTURE_SLACK_SECS: f64 = 86_400.0;
/// The size bound's default.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;

/// What a store deletes on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keeping {
    /// Live modes: rows older than `retain` before the wall clock go, and
    /// the oldest flows go first when the rows take more than `max_bytes`.
    Bounded { retain: Duration, max_bytes: u64 },
    /// Replay: nothing is deleted; the capture's times say nothing about
    /// what other runs kept.
    Everything,
}

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
    /// Rows deleted for age, and for the size bound.
    pub pruned: AtomicU64,
    pub pruned_for_size: AtomicU64,
    /// Rows written with a time more than a day after the wall clock.
    pub future: AtomicU64,
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
    /// writer, which deletes what `keeping` says.
    pub fn open(
        path: &Path,
        keeping: Keeping,
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
                .spawn(move || writer(conn, run_id, rx, counts, keeping, &path))
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
    keeping: Keeping,
    path: &Path,
) {
    let mut batch: Vec<Row> = Vec::with_capacity(BATCH);
    let mut last_prune = Instant::now() - PRUNE_EVERY;
    let mut last_size = Instant::now();
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
            let future_from = unix_now_secs() + FUTURE_SLACK_SECS;
            let future = batch.iter().filter(|r| row_time(r) > future_from).count() as u64;
            if future > 0 && counts.future.fetch_add(future, Ordering::Relaxed) == 0 {
                log::warn!(
                    "store {}: rows dated more than a day after this machine's clock (a capture's or a clock's error?): kept, never taken as \"now\" by reports, and counted",
                    path.display()
                );
            }
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
        let Keeping::Bounded { retain, max_bytes } = keeping else {
            continue;
        };
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = Instant::now();
            // By the wall clock: one row's wrong time cannot age the rest.
            let cutoff = unix_now_secs() - retain.as_secs_f64();
            match schema::prune(&mut conn, cutoff) {
                Ok(n) => {
                    counts.pruned.fetch_add(n, Ordering::Relaxed);
                    if n > 0 {
                        log::info!(
                            "store {}: pruned {n} rows older than --retain {}",
                            path.display(),
                            humantime::format_duration(retain)
                        );
                    }
                }
                Err(e) => log::warn!("store {}: pruning failed: {e}", path.display()),
            }
        }
        if last_size.elapsed() >= SIZE_EVERY || stopping {
            last_size = Instant::now();
            match schema::shrink_to(&mut conn, max_bytes) {
                Ok(0) => {}
                Ok(n) => {
                    let total = counts.pruned_for_size.fetch_add(n, Ordering::Relaxed) + n;
                    log::warn!(
                        "store {}: its rows passed --store-max-size {}: the oldest {n} rows were deleted ({total} so far)",
                        path.display(),
                        bytesize::ByteSize::b(max_bytes)
                    );
                }
                Err(e) => log::warn!("store {}: keeping its size failed: {e}", path.display()),
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

/// What a scan leaves: at most two packets, no payload (none was handed
/// to identification, and at most 80 bytes of headers a packet), nothing
/// named. Such flows are summed per host and minute (table `scans`).
fn scan_like(f: &FlowReport) -> bool {
    let v = &f.flow.value;
    let packets = v.packets_up + v.packets_down;
    packets <= 2
        && v.inspected == 0
        && v.bytes_up + v.bytes_down <= 80 * packets
        && f.protocol.is_none()
        && f.hint.is_none()
}

/// One transaction for the whole batch.
fn write_batch(conn: &mut Connection, run: i64, batch: &[Row]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut suspected = tx.prepare_cached(
            "INSERT INTO suspected (run, mode, host, peer, window_start, window_end, count_this, count_prev, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut detection = tx.prepare_cached(
            "INSERT INTO detections (run, mode, at, host, peer, protocol, class, confidence, transport, host_port, peer_port, scope, reasons, packets_seen, server_name, process) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?;
        let mut verdict = tx.prepare_cached(
            "INSERT INTO verdicts (run, mode, at, host, verdict, previous, protocols, peers, peer_names, reasons, since, bytes, host_bytes, process) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        let mut flow = tx.prepare_cached(
            "INSERT INTO flows (run, mode, host, peer, transport, host_port, peer_port, scope, packets_up, packets_down, bytes_up, bytes_down, first_seen, last_seen, end_reason, tcp_flags, protocol, peer_name, pid, comm, exe, uid, cgroup) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
        )?;
        let mut blocks = tx.prepare_cached(
            "INSERT INTO blocks (run, at, host, peer, what, policy_mode, action, rule, packets) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut scan = tx.prepare_cached(
            "INSERT INTO scans (run, mode, host, transport, minute, flows, packets_up, packets_down, bytes_up, bytes_down, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (run, mode, host, transport, minute) DO UPDATE SET flows = flows + 1, packets_up = packets_up + excluded.packets_up, packets_down = packets_down + excluded.packets_down, bytes_up = bytes_up + excluded.bytes_up, bytes_down = bytes_down + excluded.bytes_down, first_seen = MIN(first_seen, excluded.first_seen), last_seen = MAX(last_seen, excluded.last_seen)",
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
                        d.process.known().map(json),
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
                        v.process.known().map(json),
                    ])?;
                }
                // A flow with its process keeps its row: the report groups
                // by program.
                Row::Flow(f) if scan_like(f) && f.process.known().is_none() => {
                    let (id, val) = (&f.flow.id, &f.flow.value);
                    scan.execute(params![
                        run,
                        mode(f.mode),
                        ip(id.host),
                        id.proto,
                        (val.last_seen_ns / 60_000_000_000) as i64,
                        val.packets_up as i64,
                        val.packets_down as i64,
                        val.bytes_up as i64,
                        val.bytes_down as i64,
                        unix_secs(val.first_seen_ns),
                        unix_secs(val.last_seen_ns),
                    ])?;
                }
                Row::Flow(f) => {
                    let (id, val) = (&f.flow.id, &f.flow.value);
                    let process = f.process.known();
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
                        process.map(|p| p.pid),
                        process.map(|p| &p.comm),
                        process.and_then(|p| p.exe.as_ref()),
                        process.map(|p| p.uid),
                        process.and_then(|p| p.cgroup.as_ref()),
                    ])?;
                }
            }
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EndReason, FlowEnded, FlowId};

    fn flow(host: u32, last_seen_secs: f64) -> Row {
        flow_of(host, last_seen_secs, 3, 3_000)
    }

    fn flow_of(host: u32, last_seen_secs: f64, packets: u64, bytes: u64) -> Row {
        let ns = (last_seen_secs * 1e9) as u64;
        Row::Flow(FlowReport {
            mode: Mode::Xdp,
            flow: FlowEnded {
                id: FlowId {
                    host: IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + host)),
                    peer: "198.51.100.7".parse().unwrap(),
                    proto: 17,
                    host_port: 40_000,
                    peer_port: 53,
                },
                value: vpnfp_common::FlowValue {
                    first_seen_ns: ns,
                    last_seen_ns: ns,
                    packets_up: packets,
                    bytes_up: bytes,
                    scope: 1,
                    ..Default::default()
                },
                end: EndReason::Idle,
            },
            protocol: None,
            hint: None,
            peer_name: None,
            process: Default::default(),
        })
    }

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn store(name: &str, keeping: Keeping) -> (Dir, Store) {
        let dir =
            Dir(std::env::temp_dir().join(format!("vpnfp-store-{name}-{}", std::process::id())));
        let run = RunInfo {
            command: "run",
            mode: "xdp".into(),
            settings: String::new(),
        };
        let s = Store::open(&dir.0.join("s.db"), keeping, &run, WhenFull::Wait).unwrap();
        (dir, s)
    }

    fn last_seen(path: &Path) -> Vec<f64> {
        let conn = Connection::open(path).unwrap();
        let mut st = conn
            .prepare("SELECT last_seen FROM flows ORDER BY last_seen")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Retention counts back from the wall clock: a row from 2100 neither
    /// ages the others nor is pruned; a row older than --retain is.
    #[test]
    fn live_retention_follows_the_wall_clock() {
        let now = unix_now_secs();
        let (dir, s) = store(
            "retain",
            Keeping::Bounded {
                retain: Duration::from_secs(86_400),
                max_bytes: DEFAULT_MAX_BYTES,
            },
        );
        for row in [
            flow(1, now - 3.0 * 86_400.0),
            flow(2, now - 60.0),
            flow(3, 4.1e9),
        ] {
            s.keep(row);
        }
        let counts = s.close();
        assert_eq!(counts.pruned.load(Ordering::Relaxed), 1);
        assert_eq!(counts.future.load(Ordering::Relaxed), 1);
        let kept = last_seen(&dir.0.join("s.db"));
        assert_eq!(kept.len(), 2, "{kept:?}");
        // Stored to the microsecond.
        assert!(
            (kept[0] - (now - 60.0)).abs() < 1e-5 && kept[1] == 4.1e9,
            "{kept:?}"
        );
    }

    /// A flood of flows stays within --store-max-size: the oldest go, the
    /// newest stay, and the loss is counted.
    #[test]
    fn the_rows_stay_within_the_size_bound_oldest_first() {
        let max_bytes = 2 << 20;
        let (dir, s) = store(
            "size",
            Keeping::Bounded {
                retain: Duration::from_secs(30 * 86_400),
                max_bytes,
            },
        );
        let now = unix_now_secs();
        let n = 40_000;
        for i in 0..n {
            s.keep(flow(i, now - 1000.0 + i as f64 * 0.01));
        }
        let counts = s.close();
        let path = dir.0.join("s.db");
        let conn = Connection::open(&path).unwrap();
        let used = schema::used_bytes(&conn).unwrap();
        assert!(used <= max_bytes, "{used} bytes used");
        let deleted = counts.pruned_for_size.load(Ordering::Relaxed);
        let kept = last_seen(&path);
        assert!(deleted > 0 && kept.len() as u64 + deleted == n as u64);
        let newest = now - 1000.0 + (n - 1) as f64 * 0.01;
        assert!(
            (kept.last().unwrap() - newest).abs() < 1e-5,
            "the newest flow stays"
        );
        assert!(kept[0] > now - 1000.0, "the oldest went first");
    }

    /// Issue 19, item 6: a host's flood of new flows wrote a row each
    /// (53.5 MB in 20 s). Scan-like flows now sum into one row per host,
    /// transport and minute; the report still counts every one.
    #[test]
    fn scan_like_flows_roll_up_into_one_row_a_minute() {
        let (dir, s) = store(
            "scans",
            Keeping::Bounded {
                retain: Duration::from_secs(86_400),
                max_bytes: DEFAULT_MAX_BYTES,
            },
        );
        let minute = (unix_now_secs() / 60.0).floor() * 60.0;
        for i in 0..5_000 {
            // A SYN and its RST: two packets, headers only.
            s.keep(flow_of(1, minute + 1.0 + i as f64 * 0.001, 2, 100));
        }
        s.keep(flow(1, minute + 10.0));
        s.close();
        let path = dir.0.join("s.db");
        let conn = Connection::open(&path).unwrap();
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM flows"), 1);
        assert_eq!(count("SELECT COUNT(*) FROM scans"), 1);
        assert_eq!(count("SELECT SUM(flows) FROM scans"), 5_000);
        assert_eq!(count("SELECT SUM(bytes_up) FROM scans"), 500_000);
        let report = query::report(
            &conn,
            &query::ReportQuery {
                catalog: services::Catalog::built_in(),
                since_secs: None,
                host: None,
                mode: Some("xdp".into()),
            },
        )
        .unwrap();
        let h = &report.hosts[0];
        assert_eq!((h.flows, h.scan_flows), (5_001, 5_000));
        assert!(
            h.by_protocol
                .iter()
                .any(|p| p.protocol == "scan_like" && p.flows == 5_000)
        );
    }
}
