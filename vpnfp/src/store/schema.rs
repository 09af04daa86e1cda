//! The store's schema, versioned with SQLite's `user_version`: each
//! migration runs once, in order, in its own transaction. A store written
//! by a newer vpnfp is refused rather than guessed at.

use std::path::Path;

use rusqlite::{Connection, params};

use super::RunInfo;

/// Migrations, in order; the store's version is how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: runs, the research's reports, identifications, verdicts, flows.
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started REAL NOT NULL,
        command TEXT NOT NULL,
        mode TEXT NOT NULL,
        settings TEXT NOT NULL,
        version TEXT NOT NULL
    );
    CREATE TABLE suspected (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        mode TEXT NOT NULL,
        host TEXT NOT NULL,
        peer TEXT NOT NULL,
        window_start REAL NOT NULL,
        window_end REAL NOT NULL,
        count_this INTEGER NOT NULL,
        count_prev INTEGER NOT NULL,
        reason TEXT
    );
    CREATE INDEX suspected_host ON suspected(host, window_end);
    CREATE INDEX suspected_time ON suspected(window_end);
    CREATE TABLE detections (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        mode TEXT NOT NULL,
        at REAL NOT NULL,
        host TEXT NOT NULL,
        peer TEXT NOT NULL,
        protocol TEXT NOT NULL,
        class TEXT NOT NULL,
        confidence TEXT NOT NULL,
        transport INTEGER NOT NULL,
        host_port INTEGER NOT NULL,
        peer_port INTEGER NOT NULL,
        scope TEXT NOT NULL,
        reasons TEXT NOT NULL,
        packets_seen INTEGER NOT NULL,
        server_name TEXT
    );
    CREATE INDEX detections_host ON detections(host, at);
    CREATE INDEX detections_time ON detections(at);
    CREATE TABLE verdicts (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        mode TEXT NOT NULL,
        at REAL NOT NULL,
        host TEXT NOT NULL,
        verdict TEXT NOT NULL,
        previous TEXT NOT NULL,
        protocols TEXT NOT NULL,
        peers TEXT NOT NULL,
        peer_names TEXT NOT NULL,
        reasons TEXT NOT NULL,
        since REAL NOT NULL,
        bytes INTEGER NOT NULL,
        host_bytes INTEGER NOT NULL
    );
    CREATE INDEX verdicts_host ON verdicts(host, at);
    CREATE INDEX verdicts_time ON verdicts(at);
    CREATE TABLE flows (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        mode TEXT NOT NULL,
        host TEXT NOT NULL,
        peer TEXT NOT NULL,
        transport INTEGER NOT NULL,
        host_port INTEGER NOT NULL,
        peer_port INTEGER NOT NULL,
        scope TEXT NOT NULL,
        packets_up INTEGER NOT NULL,
        packets_down INTEGER NOT NULL,
        bytes_up INTEGER NOT NULL,
        bytes_down INTEGER NOT NULL,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        end_reason TEXT NOT NULL,
        tcp_flags INTEGER NOT NULL,
        protocol TEXT,
        peer_name TEXT
    );
    CREATE INDEX flows_host ON flows(host, last_seen);
    CREATE INDEX flows_time ON flows(last_seen);",
    // 2: enforcement's decisions and, per block, the packets it matched.
    "CREATE TABLE blocks (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        at REAL NOT NULL,
        host TEXT NOT NULL,
        peer TEXT NOT NULL,
        what TEXT NOT NULL,
        policy_mode TEXT NOT NULL,
        action TEXT NOT NULL,
        rule INTEGER,
        packets INTEGER
    );
    CREATE INDEX blocks_host ON blocks(host, at);",
    // 3: scan-like flows (at most two packets, no payload, nothing named)
    // summed per host, transport and minute instead of a row each: a scan
    // of 40,000 ports a second is one row a minute, not 40,000.
    "CREATE TABLE scans (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        mode TEXT NOT NULL,
        host TEXT NOT NULL,
        transport INTEGER NOT NULL,
        minute INTEGER NOT NULL,
        flows INTEGER NOT NULL,
        packets_up INTEGER NOT NULL,
        packets_down INTEGER NOT NULL,
        bytes_up INTEGER NOT NULL,
        bytes_down INTEGER NOT NULL,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        UNIQUE (run, mode, host, transport, minute)
    );
    CREATE INDEX scans_host ON scans(host, last_seen);
    CREATE INDEX scans_time ON scans(last_seen);",
    // 4: `run --local`: the process behind each flow (NULL where none is
    // known, and in router mode); detections and verdicts keep it as JSON.
    "ALTER TABLE flows ADD COLUMN pid INTEGER;
    ALTER TABLE flows ADD COLUMN comm TEXT;
    ALTER TABLE flows ADD COLUMN exe TEXT;
    ALTER TABLE flows ADD COLUMN uid INTEGER;
    ALTER TABLE flows ADD COLUMN cgroup TEXT;
    ALTER TABLE detections ADD COLUMN process TEXT;
    ALTER TABLE verdicts ADD COLUMN process TEXT;",
];

pub const VERSION: u32 = MIGRATIONS.len() as u32;

/// Opens the store, in WAL mode, migrated to [`VERSION`].
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // WAL with NORMAL: a crash loses at most the last transactions, never
    // the file's integrity.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Opens an existing store for reading only.
pub fn open_read(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current = version(conn)?;
    if current > VERSION {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISUSE),
            Some(format!(
                "the store has schema version {current}, this vpnfp knows up to {VERSION}: use a newer vpnfp or another --store"
            )),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as u32)?;
        tx.commit()?;
    }
    Ok(())
}

/// Records a run; its id goes with every row it writes.
pub fn start_run(conn: &mut Connection, run: &RunInfo) -> rusqlite::Result<i64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    conn.execute(
        "INSERT INTO runs (started, command, mode, settings, version) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            now,
            run.command,
            run.mode,
            run.settings,
            env!("CARGO_PKG_VERSION")
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// The tables whose rows age, with the column that dates them; the bulk
/// (flows) first, which the size bound deletes from first.
const TIMED_TABLES: [(&str, &str); 6] = [
    ("flows", "last_seen"),
    ("scans", "last_seen"),
    ("suspected", "window_end"),
    ("detections", "at"),
    ("verdicts", "at"),
    ("blocks", "at"),
];

/// Bytes the rows take: the pages in use, not the file (SQLite reuses the
/// pages of deleted rows instead of giving them back).
pub fn used_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0));
    let used = pragma("page_count")? - pragma("freelist_count")?;
    Ok((used.max(0) as u64) * pragma("page_size")?.max(0) as u64)
}

/// While the rows take more than `max_bytes`, deletes the oldest flows (the
/// bulk of a store) in steps of a tenth, then the oldest of the rest; how
/// many rows went. Leaves the rows at about 90% of the bound.
pub fn shrink_to(conn: &mut Connection, max_bytes: u64) -> rusqlite::Result<u64> {
    let mut deleted = 0;
    if used_bytes(conn)? <= max_bytes {
        return Ok(0);
    }
    let target = max_bytes / 10 * 9;
    while used_bytes(conn)? > target {
        let tx = conn.transaction()?;
        let mut n = 0;
        for (table, column) in TIMED_TABLES {
            n = tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} ORDER BY {column} LIMIT MAX(1000, (SELECT COUNT(*) FROM {table}) / 10))"
                ),
                [],
            )? as u64;
            if n > 0 {
                break;
            }
        }
        tx.commit()?;
        if n == 0 {
            break;
        }
        deleted += n;
    }
    Ok(deleted)
}

/// Deletes rows older than `cutoff` (Unix seconds); how many.
pub fn prune(conn: &mut Connection, cutoff: f64) -> rusqlite::Result<u64> {
    let tx = conn.transaction()?;
    let mut n = 0;
    for (table, column) in TIMED_TABLES {
        n += tx.execute(
            &format!("DELETE FROM {table} WHERE {column} < ?1"),
            params![cutoff],
        )? as u64;
    }
    tx.commit()?;
    Ok(n)
}
