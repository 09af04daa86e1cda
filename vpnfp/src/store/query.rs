//! What `vpnfp report` reads from the store: per host its verdicts,
//! protocols, peers, traffic, flows by protocol, top peers and a timeline;
//! overall the hosts flagged and the protocols over time.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use vpnfp_common::identify::{Class, Protocol};

use super::services::{self, Catalog, FlowRow, ServicesReport};

/// Slots of a timeline.
pub const SLOTS: usize = 48;

#[derive(Clone, Debug)]
pub struct ReportQuery {
    /// Maps peer names to services (the built-in list, or with the
    /// user's).
    pub catalog: Catalog,
    /// Only the last this many seconds of what the store holds (None: all).
    pub since_secs: Option<f64>,
    pub host: Option<String>,
    /// Which source's rows (None: xdp, else nfqueue, else replay, the first
    /// that has any).
    pub mode: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub mode: String,
    /// Unix seconds the report covers.
    pub since: f64,
    pub until: f64,
    pub hosts_seen: usize,
    /// Rows dated more than a day after the wall clock: kept, outside the
    /// range.
    pub future_rows: u64,
    /// Hosts whose strongest verdict in the range is above none.
    pub flagged: Vec<Flagged>,
    pub hosts: Vec<HostReport>,
    /// VPN and tunnel identifications per protocol, per slot.
    pub protocols_over_time: Vec<Slot>,
    /// What each service cost, from the flows in the range.
    pub services: ServicesReport,
    /// `run --local`: per program, its traffic and the tunnels it used.
    pub programs: Vec<ProgramReport>,
}

/// One program's traffic (`run --local`): a process, by pid and
/// executable.
#[derive(Clone, Debug, Serialize)]
pub struct ProgramReport {
    pub pid: i64,
    pub comm: String,
    pub exe: Option<String>,
    pub uid: Option<i64>,
    pub cgroup: Option<String>,
    pub flows: i64,
    pub bytes_up: i64,
    pub bytes_down: i64,
    /// Its flows named a VPN or tunnel, per protocol and peer.
    pub tunnels: Vec<ProgramTunnel>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProgramTunnel {
    pub protocol: String,
    pub peer: String,
    pub flows: i64,
    pub bytes: i64,
}

impl ProgramReport {
    /// `openvpn (pid 812, /usr/sbin/openvpn)`.
    pub fn name(&self) -> String {
        match &self.exe {
            Some(exe) => format!("{} (pid {}, {exe})", self.comm, self.pid),
            None => format!("{} (pid {})", self.comm, self.pid),
        }
    }
}

/// The programs behind the range's flows, the largest first.
fn programs_of(
    conn: &Connection,
    mode: &str,
    host: Option<&str>,
    since: f64,
    until: f64,
) -> rusqlite::Result<Vec<ProgramReport>> {
    let range = "mode = ?1 AND pid IS NOT NULL AND last_seen >= ?2 AND first_seen <= ?3 AND (?4 IS NULL OR host = ?4)";
    let mut programs: Vec<ProgramReport> = Vec::new();
    {
        let mut st = conn.prepare(&format!(
            "SELECT pid, comm, exe, MAX(uid), MAX(cgroup), COUNT(*), SUM(bytes_up), SUM(bytes_down) FROM flows WHERE {range} GROUP BY pid, comm, exe ORDER BY SUM(bytes_up + bytes_down) DESC"
        ))?;
        let rows = st.query_map(params![mode, since, until, host], |r| {
            Ok(ProgramReport {
                pid: r.get(0)?,
                comm: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                exe: r.get(2)?,
                uid: r.get(3)?,
                cgroup: r.get(4)?,
                flows: r.get(5)?,
                bytes_up: r.get(6)?,
                bytes_down: r.get(7)?,
                tunnels: Vec::new(),
            })
        })?;
        for p in rows {
            programs.push(p?);
        }
    }
    let mut st = conn.prepare(&format!(
        "SELECT pid, comm, exe, protocol, peer, COUNT(*), SUM(bytes_up + bytes_down) FROM flows WHERE {range} AND protocol IS NOT NULL GROUP BY pid, comm, exe, protocol, peer ORDER BY SUM(bytes_up + bytes_down) DESC"
    ))?;
    let rows = st.query_map(params![mode, since, until, host], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            r.get::<_, Option<String>>(2)?,
            ProgramTunnel {
                protocol: r.get(3)?,
                peer: r.get(4)?,
                flows: r.get(5)?,
                bytes: r.get(6)?,
            },
        ))
    })?;
    for row in rows {
        let (pid, comm, exe, tunnel) = row?;
        if !tunnels_traffic(&tunnel.protocol) {
            continue;
        }
        if let Some(p) = programs
            .iter_mut()
            .find(|p| p.pid == pid && p.comm == comm && p.exe == exe)
        {
            p.tunnels.push(tunnel);
        }
    }
    Ok(programs)
}

#[derive(Clone, Debug, Serialize)]
pub struct Flagged {
    pub host: String,
    pub verdict: String,
    pub protocols: Vec<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    pub addr: String,
    pub name: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HostReport {
    pub host: String,
    /// The strongest verdict in the range, and the latest one.
    pub verdict: String,
    pub current_verdict: String,
    pub protocols: Vec<String>,
    pub vpn_peers: Vec<Peer>,
    pub first_flagged: Option<f64>,
    pub last_flagged: Option<f64>,
    pub reasons: Vec<String>,
    pub packets_up: i64,
    pub packets_down: i64,
    pub bytes_up: i64,
    pub bytes_down: i64,
    /// Flows in the range, the scan-like ones included.
    pub flows: i64,
    /// Of them, scan-like flows kept summed (`scan_like` in `by_protocol`).
    pub scan_flows: i64,
    pub by_protocol: Vec<ProtocolStat>,
    pub top_peers: Vec<PeerStat>,
    pub detections: Vec<DetectionStat>,
    /// Bytes per slot, and whether a VPN or tunnel was in use in it.
    pub timeline: Vec<TimeSlot>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProtocolStat {
    pub protocol: String,
    pub flows: i64,
    pub bytes: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PeerStat {
    pub peer: Peer,
    pub flows: i64,
    pub bytes: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DetectionStat {
    pub protocol: String,
    pub class: String,
    pub peer: Peer,
    pub flows: i64,
    pub first: f64,
    pub last: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TimeSlot {
    pub start: f64,
    pub bytes: i64,
    pub vpn: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Slot {
    pub start: f64,
    pub end: f64,
    pub counts: BTreeMap<String, i64>,
}

const LEVELS: [&str; 4] = ["none", "suspected", "tunnel", "vpn"];

fn level_rank(l: &str) -> usize {
    LEVELS.iter().position(|x| *x == l).unwrap_or(0)
}

/// The mode whose rows the report reads.
fn pick_mode(conn: &Connection, wanted: &Option<String>) -> rusqlite::Result<Option<String>> {
    if let Some(m) = wanted {
        return Ok(Some(m.clone()));
    }
    for m in ["xdp", "nfqueue", "replay"] {
        let any: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM flows WHERE mode = ?1 UNION SELECT 1 FROM scans WHERE mode = ?1 UNION SELECT 1 FROM verdicts WHERE mode = ?1 UNION SELECT 1 FROM suspected WHERE mode = ?1 LIMIT 1",
                params![m],
                |r| r.get(0),
            )
            .optional()?;
        if any.is_some() {
            return Ok(Some(m.to_string()));
        }
    }
    Ok(None)
}

pub fn report(conn: &Connection, q: &ReportQuery) -> rusqlite::Result<Report> {
    let Some(mode) = pick_mode(conn, &q.mode)? else {
        return Ok(Report {
            mode: q.mode.clone().unwrap_or_default(),
            since: 0.0,
            until: 0.0,
            hosts_seen: 0,
            future_rows: 0,
            flagged: Vec::new(),
            hosts: Vec::new(),
            protocols_over_time: Vec::new(),
            services: services::statistics(Vec::new(), 0, &|_| 0),
            programs: Vec::new(),
        });
    };
    // The newest row is "now", unless it is dated in the future (a wrong
    // clock or capture): such rows are kept and counted, never "now".
    let future_from = crate::clock::unix_now_secs() + crate::store::FUTURE_SLACK_SECS;
    let until: f64 = conn.query_row(
        "SELECT MAX(t) FROM (SELECT MAX(last_seen) AS t FROM flows WHERE mode = ?1 AND last_seen <= ?2 UNION ALL SELECT MAX(last_seen) FROM scans WHERE mode = ?1 AND last_seen <= ?2 UNION ALL SELECT MAX(at) FROM verdicts WHERE mode = ?1 AND at <= ?2 UNION ALL SELECT MAX(at) FROM detections WHERE mode = ?1 AND at <= ?2 UNION ALL SELECT MAX(window_end) FROM suspected WHERE mode = ?1 AND window_end <= ?2)",
        params![mode, future_from],
        |r| r.get::<_, Option<f64>>(0),
    )?
    .unwrap_or(0.0);
    let future_rows: u64 = conn.query_row(
        "SELECT (SELECT COUNT(*) FROM flows WHERE mode = ?1 AND last_seen > ?2) + (SELECT COUNT(*) FROM scans WHERE mode = ?1 AND last_seen > ?2) + (SELECT COUNT(*) FROM verdicts WHERE mode = ?1 AND at > ?2) + (SELECT COUNT(*) FROM detections WHERE mode = ?1 AND at > ?2) + (SELECT COUNT(*) FROM suspected WHERE mode = ?1 AND window_end > ?2)",
        params![mode, future_from],
        |r| r.get::<_, i64>(0),
    )? as u64;
    let earliest: f64 = conn
        .query_row(
            "SELECT MIN(t) FROM (SELECT MIN(first_seen) AS t FROM flows WHERE mode = ?1 UNION ALL SELECT MIN(first_seen) FROM scans WHERE mode = ?1 UNION ALL SELECT MIN(at) FROM verdicts WHERE mode = ?1 UNION ALL SELECT MIN(at) FROM detections WHERE mode = ?1 UNION ALL SELECT MIN(window_start) FROM suspected WHERE mode = ?1)",
            params![mode],
            |r| r.get::<_, Option<f64>>(0),
        )?
        .unwrap_or(until)
        .min(until);
    let since = match q.since_secs {
        Some(s) => (until - s).max(earliest),
        None => earliest,
    };
    let slot_len = ((until - since) / SLOTS as f64).max(1e-3);
    let slot_of = |t: f64| (((t - since) / slot_len) as usize).min(SLOTS - 1);

    // Every host with rows in the range.
    let mut hosts: BTreeSet<String> = BTreeSet::new();
    for sql in [
        "SELECT DISTINCT host FROM flows WHERE mode = ?1 AND last_seen >= ?2 AND first_seen <= ?3",
        "SELECT DISTINCT host FROM scans WHERE mode = ?1 AND last_seen >= ?2 AND first_seen <= ?3",
        "SELECT DISTINCT host FROM verdicts WHERE mode = ?1 AND at >= ?2 AND at <= ?3",
        "SELECT DISTINCT host FROM detections WHERE mode = ?1 AND at >= ?2 AND at <= ?3",
        "SELECT DISTINCT host FROM suspected WHERE mode = ?1 AND window_end >= ?2 AND window_end <= ?3",
    ] {
        let mut st = conn.prepare(sql)?;
        let rows = st.query_map(params![mode, since, until], |r| r.get::<_, String>(0))?;
        for h in rows {
            hosts.insert(h?);
        }
    }
    let hosts_seen = hosts.len();
    if let Some(h) = &q.host {
        hosts.retain(|x| x == h);
    }
    let mut out = Vec::new();
    for host in hosts {
        out.push(host_report(
            conn, &mode, &host, since, until, slot_len, &slot_of,
        )?);
    }
    // Flagged first, strongest first; then by traffic.
    out.sort_by(|a, b| {
        level_rank(&b.verdict)
            .cmp(&level_rank(&a.verdict))
            .then((b.bytes_up + b.bytes_down).cmp(&(a.bytes_up + a.bytes_down)))
            .then(a.host.cmp(&b.host))
    });
    let flagged = out
        .iter()
        .filter(|h| h.verdict != "none")
        .map(|h| Flagged {
            host: h.host.clone(),
            verdict: h.verdict.clone(),
            protocols: h.protocols.clone(),
        })
        .collect();
    let mut slots: Vec<Slot> = (0..SLOTS)
        .map(|i| Slot {
            start: since + i as f64 * slot_len,
            end: since + (i + 1) as f64 * slot_len,
            counts: BTreeMap::new(),
        })
        .collect();
    {
        let mut st = conn.prepare(
            "SELECT at, protocol FROM detections WHERE mode = ?1 AND at >= ?2 AND at <= ?3",
        )?;
        let rows = st.query_map(params![mode, since, until], |r| {
            Ok((r.get::<_, f64>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (at, p) = row?;
            *slots[slot_of(at)].counts.entry(p).or_default() += 1;
        }
    }
    let services = services_of(conn, q, &mode, since, until, &slot_of)?;
    let programs = programs_of(conn, &mode, q.host.as_deref(), since, until)?;
    Ok(Report {
        mode,
        since,
        until,
        hosts_seen,
        future_rows,
        flagged,
        hosts: out,
        protocols_over_time: slots,
        services,
        programs,
    })
}

/// A protocol name that carries the host's traffic (a VPN or tunnel), as
/// opposed to an ordinary protocol.
pub fn tunnels_traffic(protocol: &str) -> bool {
    Protocol::ALL
        .iter()
        .find(|p| p.name() == protocol)
        // Names outside the list are VPN providers' (server names).
        .is_none_or(|p| p.class() != Class::Benign)
}

/// Every flow in the range (of `q.host`, if given), by service.
fn services_of(
    conn: &Connection,
    q: &ReportQuery,
    mode: &str,
    since: f64,
    until: f64,
    slot_of: &dyn Fn(f64) -> usize,
) -> rusqlite::Result<ServicesReport> {
    let mut st = conn.prepare(
        "SELECT host, peer, peer_name, bytes_up, bytes_down, packets_up + packets_down, first_seen, last_seen, protocol FROM flows WHERE mode = ?1 AND last_seen >= ?2 AND first_seen <= ?3 AND (?4 IS NULL OR host = ?4)",
    )?;
    let rows = st.query_map(params![mode, since, until, q.host], |r| {
        let peer: String = r.get(1)?;
        let name: Option<String> = r.get(2)?;
        let protocol: Option<String> = r.get(8)?;
        Ok((
            q.catalog.service(name.as_deref(), &peer),
            FlowRow {
                host: r.get(0)?,
                bytes_up: r.get(3)?,
                bytes_down: r.get(4)?,
                packets: r.get(5)?,
                first_seen: r.get(6)?,
                last_seen: r.get(7)?,
                tunnelled: protocol.as_deref().is_some_and(tunnels_traffic),
            },
        ))
    })?;
    let rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(services::statistics(rows, SLOTS, slot_of))
}

/// One host's slice of the store: its rows in `since..=until`.
#[derive(Clone, Copy)]
struct HostRange<'a> {
    mode: &'a str,
    host: &'a str,
    since: f64,
    until: f64,
}

impl HostRange<'_> {
    fn params(&self) -> [&dyn rusqlite::ToSql; 4] {
        [&self.mode, &self.host, &self.since, &self.until]
    }
}

/// What the verdicts say: the strongest, the latest, when flagged, why.
#[derive(Default)]
struct Verdicts {
    verdict: String,
    current: String,
    first_flagged: Option<f64>,
    last_flagged: Option<f64>,
    reasons: Vec<String>,
    protocols: BTreeSet<String>,
    names: BTreeMap<String, String>,
}

fn verdicts_of(conn: &Connection, r: HostRange<'_>) -> rusqlite::Result<Verdicts> {
    let mut v = Verdicts {
        verdict: "none".into(),
        current: "none".into(),
        ..Verdicts::default()
    };
    let mut st = conn.prepare(
        "SELECT at, verdict, protocols, reasons, peer_names FROM verdicts WHERE mode = ?1 AND host = ?2 AND at >= ?3 AND at <= ?4 ORDER BY at",
    )?;
    let rows = st.query_map(r.params(), |r| {
        Ok((
            r.get::<_, f64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    for row in rows {
        let (at, level, protos, why, peer_names) = row?;
        if level_rank(&level) > level_rank(&v.verdict) {
            v.verdict = level.clone();
            v.reasons = serde_json::from_str(&why).unwrap_or_default();
        }
        if level != "none" {
            v.first_flagged.get_or_insert(at);
            v.last_flagged = Some(at);
        }
        let p: Vec<String> = serde_json::from_str(&protos).unwrap_or_default();
        v.protocols.extend(p);
        let n: BTreeMap<String, String> = serde_json::from_str(&peer_names).unwrap_or_default();
        v.names.extend(n);
        v.current = level;
    }
    Ok(v)
}

/// Identifications per (protocol, class, peer), with the server names
/// they learnt and the protocols they add.
type DetectionRow = (String, String, String, i64, f64, f64);

fn detections_of(
    conn: &Connection,
    r: HostRange<'_>,
    v: &mut Verdicts,
) -> rusqlite::Result<Vec<DetectionRow>> {
    let mut out = Vec::new();
    let mut st = conn.prepare(
        "SELECT protocol, class, peer, COUNT(*), MIN(at), MAX(at), MAX(server_name) FROM detections WHERE mode = ?1 AND host = ?2 AND at >= ?3 AND at <= ?4 GROUP BY protocol, class, peer ORDER BY MIN(at)",
    )?;
    let rows = st.query_map(r.params(), |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, f64>(4)?,
            r.get::<_, f64>(5)?,
            r.get::<_, Option<String>>(6)?,
        ))
    })?;
    for row in rows {
        let (protocol, class, peer, flows, first, last, server) = row?;
        if let Some(s) = server {
            v.names.entry(peer.clone()).or_insert(s);
        }
        v.protocols.insert(protocol.clone());
        out.push((protocol, class, peer, flows, first, last));
    }
    // Names learnt on flows (TLS server names, DNS answers).
    let mut st = conn.prepare(
        "SELECT peer, MAX(peer_name) FROM flows WHERE mode = ?1 AND host = ?2 AND last_seen >= ?3 AND first_seen <= ?4 AND peer_name IS NOT NULL GROUP BY peer",
    )?;
    let rows = st.query_map(r.params(), |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (peer, name) = row?;
        v.names.entry(peer).or_insert(name);
    }
    Ok(out)
}

/// The host's traffic: totals (scan-like flows included) and by protocol.
struct Traffic {
    packets_up: i64,
    packets_down: i64,
    bytes_up: i64,
    bytes_down: i64,
    flows: i64,
    scan_flows: i64,
    by_protocol: Vec<ProtocolStat>,
}

fn traffic_of(conn: &Connection, r: HostRange<'_>) -> rusqlite::Result<Traffic> {
    let (packets_up, packets_down, bytes_up, bytes_down, flows) = conn.query_row(
        "SELECT COALESCE(SUM(pu),0), COALESCE(SUM(pd),0), COALESCE(SUM(bu),0), COALESCE(SUM(bd),0), COALESCE(SUM(n),0) FROM (
            SELECT packets_up AS pu, packets_down AS pd, bytes_up AS bu, bytes_down AS bd, 1 AS n FROM flows WHERE mode = ?1 AND host = ?2 AND last_seen >= ?3 AND first_seen <= ?4
            UNION ALL SELECT packets_up, packets_down, bytes_up, bytes_down, flows FROM scans WHERE mode = ?1 AND host = ?2 AND last_seen >= ?3 AND first_seen <= ?4)",
        r.params(),
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let (scan_flows, scan_bytes): (i64, i64) = conn.query_row(
        "SELECT COALESCE(SUM(flows),0), COALESCE(SUM(bytes_up + bytes_down),0) FROM scans WHERE mode = ?1 AND host = ?2 AND last_seen >= ?3 AND first_seen <= ?4",
        r.params(),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut by_protocol = Vec::new();
    let mut st = conn.prepare(
        "SELECT COALESCE(protocol, 'unnamed'), COUNT(*), SUM(bytes_up + bytes_down) AS b FROM flows WHERE mode = ?1 AND host = ?2 AND last_seen >= ?3 AND first_seen <= ?4 GROUP BY 1 ORDER BY b DESC",
    )?;
    let rows = st.query_map(r.params(), |r| {
        Ok(ProtocolStat {
            protocol: r.get(0)?,
            flows: r.get(1)?,
            bytes: r.get(2)?,
        })
    })?;
    for row in rows {
        by_protocol.push(row?);
    }
    if scan_flows > 0 {
        by_protocol.push(ProtocolStat {
            protocol: "scan_like".into(),
            flows: scan_flows,
            bytes: scan_bytes,
        });
        by_protocol.sort_by_key(|p| std::cmp::Reverse(p.bytes));
    }
    Ok(Traffic {
        packets_up,
        packets_down,
        bytes_up,
        bytes_down,
        flows,
        scan_flows,
        by_protocol,
    })
}

/// The five peers that took the most bytes.
fn top_peers_of(
    conn: &Connection,
    r: HostRange<'_>,
    peer: &dyn Fn(&str) -> Peer,
) -> rusqlite::Result<Vec<PeerStat>> {
    let mut st = conn.prepare(
        "SELECT peer, COUNT(*), SUM(bytes_up + bytes_down) AS b FROM flows WHERE mode = ?1 AND host = ?2 AND last_seen >= ?3 AND first_seen <= ?4 GROUP BY peer ORDER BY b DESC LIMIT 5",
    )?;
    let rows = st.query_map(r.params(), |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    rows.map(|row| {
        let (p, flows, bytes) = row?;
        Ok(PeerStat {
            peer: peer(&p),
            flows,
            bytes,
        })
    })
    .collect()
}

/// Bytes per slot (a flow's bytes spread over the slots it spans), and the
/// VPN protocols in use in each.
fn timeline_of(
    conn: &Connection,
    r: HostRange<'_>,
    slot_len: f64,
    slot_of: &dyn Fn(f64) -> usize,
    protocols: &BTreeSet<String>,
    detections: &[DetectionStat],
) -> rusqlite::Result<Vec<TimeSlot>> {
    let mut timeline: Vec<TimeSlot> = (0..SLOTS)
        .map(|i| TimeSlot {
            start: r.since + i as f64 * slot_len,
            bytes: 0,
            vpn: Vec::new(),
        })
        .collect();
    let mut st = conn.prepare(
        "SELECT first_seen, last_seen, bytes_up + bytes_down, protocol FROM flows WHERE mode = ?1 AND host = ?2 AND last_seen >= ?3 AND first_seen <= ?4",
    )?;
    let rows = st.query_map(r.params(), |r| {
        Ok((
            r.get::<_, f64>(0)?,
            r.get::<_, f64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    for row in rows {
        let (first, last, bytes, protocol) = row?;
        let (a, b) = (slot_of(first.max(r.since)), slot_of(last.min(r.until)));
        let share = bytes / (b - a + 1) as i64;
        for slot in &mut timeline[a..=b] {
            slot.bytes += share;
            if let Some(p) = &protocol
                && protocols.contains(p)
                && !slot.vpn.contains(p)
            {
                slot.vpn.push(p.clone());
            }
        }
    }
    for d in detections.iter().filter(|d| d.class != "benign") {
        let (a, b) = (slot_of(d.first), slot_of(d.last));
        for slot in &mut timeline[a..=b] {
            if !slot.vpn.contains(&d.protocol) {
                slot.vpn.push(d.protocol.clone());
            }
        }
    }
    Ok(timeline)
}

fn host_report(
    conn: &Connection,
    mode: &str,
    host: &str,
    since: f64,
    until: f64,
    slot_len: f64,
    slot_of: &dyn Fn(f64) -> usize,
) -> rusqlite::Result<HostReport> {
    let range = HostRange {
        mode,
        host,
        since,
        until,
    };
    let mut v = verdicts_of(conn, range)?;
    let found = detections_of(conn, range, &mut v)?;
    let names = std::mem::take(&mut v.names);
    let peer = |addr: &str| Peer {
        addr: addr.to_string(),
        name: names.get(addr).cloned(),
    };
    let mut vpn_peers = BTreeSet::new();
    let flagged = v.verdict != "none";
    let detections: Vec<DetectionStat> = found
        .into_iter()
        .map(|(protocol, class, p, flows, first, last)| {
            if class != "benign" {
                vpn_peers.insert(peer(&p));
            }
            if flagged && v.first_flagged.is_none_or(|f| first < f) {
                v.first_flagged = Some(first);
            }
            if flagged && v.last_flagged.is_none_or(|l| last > l) {
                v.last_flagged = Some(last);
            }
            DetectionStat {
                protocol,
                class,
                peer: peer(&p),
                flows,
                first,
                last,
            }
        })
        .collect();
    let t = traffic_of(conn, range)?;
    let top_peers = top_peers_of(conn, range, &peer)?;
    let timeline = timeline_of(conn, range, slot_len, slot_of, &v.protocols, &detections)?;
    // The store keeps VPN and tunnel identifications only, so these are
    // the host's VPN and tunnel protocols.
    Ok(HostReport {
        host: host.to_string(),
        verdict: v.verdict,
        current_verdict: v.current,
        protocols: v.protocols.into_iter().collect(),
        vpn_peers: vpn_peers.into_iter().collect(),
        first_flagged: v.first_flagged,
        last_flagged: v.last_flagged,
        reasons: v.reasons,
        packets_up: t.packets_up,
        packets_down: t.packets_down,
        bytes_up: t.bytes_up,
        bytes_down: t.bytes_down,
        flows: t.flows,
        scan_flows: t.scan_flows,
        by_protocol: t.by_protocol,
        top_peers,
        detections,
        timeline,
    })
}

/// One flow as `vpnfp report --csv` writes it.
#[derive(Clone, Debug, Serialize)]
pub struct FlowExport {
    pub first_seen: f64,
    pub last_seen: f64,
    pub host: String,
    pub peer: String,
    pub peer_name: Option<String>,
    pub service: String,
    pub organisation: Option<String>,
    pub transport: i64,
    pub host_port: i64,
    pub peer_port: i64,
    pub protocol: Option<String>,
    pub packets_up: i64,
    pub packets_down: i64,
    pub bytes_up: i64,
    pub bytes_down: i64,
    pub end_reason: String,
    /// `run --local`: the process behind the flow (empty otherwise).
    pub pid: Option<i64>,
    pub comm: Option<String>,
    pub exe: Option<String>,
}

/// One verdict change as `vpnfp report --csv` writes it.
#[derive(Clone, Debug, Serialize)]
pub struct VerdictExport {
    pub at: f64,
    pub host: String,
    pub verdict: String,
    pub previous: String,
    /// JSON arrays, as the store keeps them.
    pub protocols: String,
    pub peers: String,
    pub reasons: String,
}

/// The flows and verdicts of the report's range (and host), for export.
pub fn export(
    conn: &Connection,
    q: &ReportQuery,
    r: &Report,
) -> rusqlite::Result<(Vec<FlowExport>, Vec<VerdictExport>)> {
    let mut st = conn.prepare(
        "SELECT first_seen, last_seen, host, peer, peer_name, transport, host_port, peer_port, protocol, packets_up, packets_down, bytes_up, bytes_down, end_reason, pid, comm, exe FROM flows WHERE mode = ?1 AND last_seen >= ?2 AND first_seen <= ?3 AND (?4 IS NULL OR host = ?4) ORDER BY first_seen",
    )?;
    let flows = st
        .query_map(params![r.mode, r.since, r.until, q.host], |row| {
            let peer: String = row.get(3)?;
            let peer_name: Option<String> = row.get(4)?;
            let service = q.catalog.service(peer_name.as_deref(), &peer);
            Ok(FlowExport {
                first_seen: row.get(0)?,
                last_seen: row.get(1)?,
                host: row.get(2)?,
                peer,
                peer_name,
                service: service.name,
                organisation: service.organisation,
                transport: row.get(5)?,
                host_port: row.get(6)?,
                peer_port: row.get(7)?,
                protocol: row.get(8)?,
                packets_up: row.get(9)?,
                packets_down: row.get(10)?,
                bytes_up: row.get(11)?,
                bytes_down: row.get(12)?,
                end_reason: row.get(13)?,
                pid: row.get(14)?,
                comm: row.get(15)?,
                exe: row.get(16)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut st = conn.prepare(
        "SELECT at, host, verdict, previous, protocols, peers, reasons FROM verdicts WHERE mode = ?1 AND at >= ?2 AND at <= ?3 AND (?4 IS NULL OR host = ?4) ORDER BY at",
    )?;
    let verdicts = st
        .query_map(params![r.mode, r.since, r.until, q.host], |row| {
            Ok(VerdictExport {
                at: row.get(0)?,
                host: row.get(1)?,
                verdict: row.get(2)?,
                previous: row.get(3)?,
                protocols: row.get(4)?,
                peers: row.get(5)?,
                reasons: row.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((flows, verdicts))
}
