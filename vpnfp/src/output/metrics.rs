//! `--metrics ADDR`: vpnfp's own counters in the Prometheus text format
//! (prometheus-client's encoding), served over HTTP (hyper) at `/metrics`.
//!
//! The server has a thread and a runtime of its own, and a scrape only reads
//! numbers the running parts published (the kernel side's keeper thread,
//! the NFQUEUE threads, the pipeline): no map is walked and no command run
//! for a scrape, and nothing a scrape does can slow the loop that drains the
//! ring buffers or handles signals.

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Bytes, service::service_fn};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};
use vpnfp_common::Outcome;

use crate::model::Mode;
pub use crate::model::ModeMetrics;

/// What the pipeline counts, shared with the metrics thread.
#[derive(Debug, Default)]
pub struct PipelineCounts {
    pub reports: AtomicU64,
    pub windows: AtomicU64,
    pub flows: AtomicU64,
    pub json_lost: AtomicU64,
    pub detections: AtomicU64,
    pub verdicts: AtomicU64,
    pub store_written: AtomicU64,
    pub store_lost: AtomicU64,
    pub ipfix_records: AtomicU64,
    pub ipfix_send_errors: AtomicU64,
    /// Per policy block: host, peer, what, action, packets.
    pub policy: Mutex<Vec<crate::enforce::Drops>>,
}

/// Everything a scrape reads.
#[derive(Clone, Debug, Default)]
pub struct MetricsSource {
    pub modes: Vec<(Mode, Arc<Mutex<ModeMetrics>>)>,
    pub pipeline: Arc<PipelineCounts>,
}

#[derive(Debug)]
struct VpnfpCollector(MetricsSource);

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Vec<(&str, &str)>, u64)],
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(0u64);
    let mut family = encoder.encode_descriptor(name, help, None, c.metric_type())?;
    for (labels, value) in rows {
        if labels.is_empty() {
            ConstCounter::new(*value).encode(family)?;
            return Ok(());
        }
        ConstCounter::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Vec<(&str, &str)>, u64)],
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(0i64);
    let mut family = encoder.encode_descriptor(name, help, None, g.metric_type())?;
    for (labels, value) in rows {
        ConstGauge::new(*value as i64).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

impl Collector for VpnfpCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let modes: Vec<(Mode, ModeMetrics)> = self
            .0
            .modes
            .iter()
            .map(|(mode, m)| (*mode, *m.lock().expect("metrics lock")))
            .collect();
        let per_mode = |f: &dyn Fn(&ModeMetrics) -> Option<u64>| -> Vec<(Vec<(&str, &str)>, u64)> {
            modes
                .iter()
                .filter_map(|(mode, m)| f(m).map(|v| (vec![("mode", mode.as_str())], v)))
                .collect()
        };
        let outcomes: Vec<(Vec<(&str, &str)>, u64)> = modes
            .iter()
            .flat_map(|(mode, m)| {
                Outcome::ALL.into_iter().map(move |o| {
                    (
                        vec![("mode", mode.as_str()), ("outcome", o.name())],
                        m.counters.outcome(o),
                    )
                })
            })
            .collect();
        counter(
            &mut e,
            "vpnfp_frames",
            "Frames seen, by outcome (every frame has exactly one).",
            &outcomes,
        )?;
        let verdicts: Vec<(Vec<(&str, &str)>, u64)> = modes
            .iter()
            .map(|(mode, m)| {
                (
                    vec![("mode", mode.as_str()), ("verdict", "pass")],
                    m.counters.seen,
                )
            })
            .collect();
        counter(
            &mut e,
            "vpnfp_frames_verdict",
            "Frames by verdict: monitor mode passes (XDP_PASS, TC_ACT_OK, NF_ACCEPT) every one.",
            &verdicts,
        )?;
        counter(
            &mut e,
            "vpnfp_frames_seen",
            "Frames seen.",
            &per_mode(&|m| Some(m.counters.seen)),
        )?;
        counter(
            &mut e,
            "vpnfp_frames_egress",
            "Frames seen by the TC egress program (the replies to the LAN hosts).",
            &per_mode(&|m| Some(m.counters.seen_egress)),
        )?;
        counter(
            &mut e,
            "vpnfp_ipv6_packets",
            "IPv6 packets parsed.",
            &per_mode(&|m| Some(m.counters.ipv6)),
        )?;
        counter(
            &mut e,
            "vpnfp_windows_closed",
            "Windows closed (each judged by the research's rule).",
            &per_mode(&|m| Some(m.counters.windows_closed)),
        )?;
        counter(
            &mut e,
            "vpnfp_ringbuf_records_lost",
            "Event records lost to a full ring buffer (XDP).",
            &per_mode(&|m| Some(m.counters.records_lost)),
        )?;
        gauge(
            &mut e,
            "vpnfp_hosts_tracked",
            "Hosts whose state is held.",
            &per_mode(&|m| Some(m.hosts_tracked)),
        )?;
        counter(
            &mut e,
            "vpnfp_host_evictions",
            "Hosts evicted to stay within --max-hosts (least recently seen first).",
            &per_mode(&|m| Some(m.hosts_evicted)),
        )?;
        gauge(
            &mut e,
            "vpnfp_flows_tracked",
            "Flows held.",
            &per_mode(&|m| Some(m.flows_tracked)),
        )?;
        counter(
            &mut e,
            "vpnfp_flows_created",
            "Flows created.",
            &per_mode(&|m| Some(m.counters.flows_created)),
        )?;
        counter(
            &mut e,
            "vpnfp_flow_table_full_packets",
            "Packets of new flows that found the flow table full (in no flow record).",
            &per_mode(&|m| Some(m.counters.flow_table_full)),
        )?;
        counter(
            &mut e,
            "vpnfp_samples",
            "Payload samples handed to identification.",
            &per_mode(&|m| Some(m.counters.samples)),
        )?;
        counter(
            &mut e,
            "vpnfp_samples_lost",
            "Payload samples the sample ring had no room for.",
            &per_mode(&|m| Some(m.counters.samples_lost)),
        )?;
        counter(
            &mut e,
            "vpnfp_nfqueue_packets_missed",
            "Packets the NFQUEUE rules matched that vpnfp never saw (fail-open).",
            &per_mode(&|m| m.missed),
        )?;
        let p = &self.0.pipeline;
        counter(
            &mut e,
            "vpnfp_reports",
            "Suspected-VPN reports.",
            &[(vec![], p.reports.load(Ordering::Relaxed))],
        )?;
        counter(
            &mut e,
            "vpnfp_windows_reported",
            "Windows closed and reported, all modes.",
            &[(vec![], p.windows.load(Ordering::Relaxed))],
        )?;
        counter(
            &mut e,
            "vpnfp_flow_records",
            "Flow records emitted.",
            &[(vec![], p.flows.load(Ordering::Relaxed))],
        )?;
        counter(
            &mut e,
            "vpnfp_json_records_lost",
            "JSON records that could not be written to standard output.",
            &[(vec![], p.json_lost.load(Ordering::Relaxed))],
        )?;
        for (name, help, value) in [
            (
                "vpnfp_vpn_detections",
                "Flows named a VPN or tunnel.",
                &p.detections,
            ),
            (
                "vpnfp_verdict_changes",
                "Host verdict changes.",
                &p.verdicts,
            ),
            (
                "vpnfp_store_records_written",
                "Records written to the store.",
                &p.store_written,
            ),
            (
                "vpnfp_store_records_lost",
                "Records the store lost (writer behind, writes failing).",
                &p.store_lost,
            ),
            (
                "vpnfp_ipfix_records",
                "IPFIX data records sent.",
                &p.ipfix_records,
            ),
            (
                "vpnfp_ipfix_send_errors",
                "IPFIX messages that failed to send.",
                &p.ipfix_send_errors,
            ),
        ] {
            counter(
                &mut e,
                name,
                help,
                &[(vec![], value.load(Ordering::Relaxed))],
            )?;
        }
        let blocks = policy_series(&p.policy.lock().expect("policy lock"));
        let series: Vec<(Vec<(&str, &str)>, u64)> = blocks
            .iter()
            .map(|(labels, packets)| {
                (
                    vec![
                        ("host", labels[0].as_str()),
                        ("peer", labels[1].as_str()),
                        ("protocol", labels[2].as_str()),
                        ("action", labels[3].as_str()),
                    ],
                    *packets,
                )
            })
            .collect();
        counter(
            &mut e,
            "vpnfp_policy_packets",
            "Packets each policy block matched (dropped or counted), by host, peer, what the policy named and action; beyond the busiest 255 blocks, one series labelled other.",
            &series,
        )?;
        Ok(())
    }
}

/// Label sets a scrape may carry for the policy's blocks: the busiest ones,
/// then the rest summed, so a flood of blocks cannot flood the scraper.
const MAX_POLICY_SERIES: usize = 256;

fn policy_series(drops: &[crate::enforce::Drops]) -> Vec<([String; 4], u64)> {
    let mut sorted: Vec<&crate::enforce::Drops> = drops.iter().collect();
    sorted.sort_by_key(|d| std::cmp::Reverse(d.packets));
    let mut out: Vec<([String; 4], u64)> = sorted
        .iter()
        .take(MAX_POLICY_SERIES - 1)
        .map(|d| {
            (
                [
                    d.host.to_string(),
                    d.peer.to_string(),
                    d.what.clone(),
                    d.action.to_string(),
                ],
                d.packets,
            )
        })
        .collect();
    if sorted.len() >= MAX_POLICY_SERIES {
        let rest = sorted[MAX_POLICY_SERIES - 1..]
            .iter()
            .map(|d| d.packets)
            .sum();
        out.push((
            [
                "other".to_string(),
                "other".into(),
                "other".into(),
                "other".into(),
            ],
            rest,
        ));
    }
    out
}

/// The exposition text now.
pub fn render(source: &MetricsSource) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(VpnfpCollector(source.clone())));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String");
    out
}

fn respond(
    request: &Request<hyper::body::Incoming>,
    source: &MetricsSource,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(Full::from(body))
            .expect("a valid response")
    };
    match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics" | "/") => Response::builder()
            .header(
                "Content-Type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .body(Full::from(render(source)))
            .expect("a valid response"),
        (&Method::GET | &Method::HEAD, _) => {
            reply(StatusCode::NOT_FOUND, "not found: try /metrics\n".into())
        }
        _ => {
            let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, "only GET /metrics\n".into());
            r.headers_mut().insert(
                "Allow",
                hyper::header::HeaderValue::from_static("GET, HEAD"),
            );
            r
        }
    }
}

/// Serves `/metrics` on `listener` from a thread of its own until the
/// process ends.
/// Scrapers served at once; more are closed at once, so idle clients
/// cannot use up vpnfp's file descriptors.
const MAX_CONNECTIONS: usize = 64;
/// A request's headers must arrive within this.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// A connection lives at most this long (keep-alive included).
const CONNECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub fn serve(listener: std::net::TcpListener, source: MetricsSource) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("vpnfp-metrics".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    log::error!("metrics: cannot start its runtime: {e}");
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        log::error!("metrics: {e}");
                        return;
                    }
                };
                let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        // Out of descriptors, say: wait instead of spinning.
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    };
                    // Over the cap the connection is closed at once.
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        drop(stream);
                        continue;
                    };
                    let source = source.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request| {
                            let response = respond(&request, &source);
                            async move { Ok::<_, Infallible>(response) }
                        });
                        let connection = hyper::server::conn::http1::Builder::new()
                            .timer(hyper_util::rt::TokioTimer::new())
                            .header_read_timeout(HEADER_TIMEOUT)
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                        let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
                        drop(slot);
                    });
                }
            });
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Idle clients that never finish their headers: the ones over the cap
    /// are closed at once, the others at the header timeout, and a real
    /// scrape is still answered meanwhile.
    #[test]
    fn idle_clients_cannot_hold_the_server() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        serve(listener, MetricsSource::default()).unwrap();
        let idle: Vec<std::net::TcpStream> = (0..MAX_CONNECTIONS + 20)
            .map(|_| {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                c.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
                c
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let closed = idle
            .iter()
            .filter(|c| {
                c.set_read_timeout(Some(std::time::Duration::from_millis(50)))
                    .unwrap();
                // Closed unread: an end of stream, or a reset.
                match (&mut &**c).read(&mut [0u8; 64]) {
                    Ok(0) => true,
                    Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
                    Ok(_) => false,
                }
            })
            .count();
        assert!(closed >= 20, "{closed} of the idle clients closed");
        drop(idle);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[test]
    fn renders_every_family_per_mode() {
        let mut m = ModeMetrics::default();
        m.counters.seen = 10;
        m.counters.outcomes[Outcome::Analysed as usize] = 7;
        m.counters.outcomes[Outcome::MalformedTruncated as usize] = 3;
        m.hosts_tracked = 2;
        let source = MetricsSource {
            modes: vec![
                (Mode::Xdp, Arc::new(Mutex::new(m))),
                (
                    Mode::Nfqueue,
                    Arc::new(Mutex::new(ModeMetrics {
                        missed: Some(4),
                        ..m
                    })),
                ),
            ],
            pipeline: Arc::default(),
        };
        source.pipeline.reports.store(1, Ordering::Relaxed);
        let text = render(&source);
        for line in [
            "vpnfp_frames_total{mode=\"xdp\",outcome=\"analysed\"} 7",
            "vpnfp_frames_total{mode=\"nfqueue\",outcome=\"malformed_truncated\"} 3",
            "vpnfp_frames_verdict_total{mode=\"xdp\",verdict=\"pass\"} 10",
            "vpnfp_hosts_tracked{mode=\"xdp\"} 2",
            "vpnfp_nfqueue_packets_missed_total{mode=\"nfqueue\"} 4",
            "vpnfp_reports_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(!text.contains("vpnfp_nfqueue_packets_missed_total{mode=\"xdp\"}"));
        // The policy's blocks, the busiest first, 256 label sets at most.
        *source.pipeline.policy.lock().unwrap() = (0..300u32)
            .map(|i| crate::enforce::Drops {
                host: "192.168.90.11".parse().unwrap(),
                peer: std::net::IpAddr::from(std::net::Ipv4Addr::from(0xc633_6400 + i)),
                what: "wireguard".into(),
                action: "drop",
                packets: u64::from(i),
            })
            .collect();
        let text = render(&source);
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("vpnfp_policy_packets_total{"))
            .collect();
        assert_eq!(series.len(), 256);
        assert!(series.contains(&"vpnfp_policy_packets_total{host=\"192.168.90.11\",peer=\"198.51.101.43\",protocol=\"wireguard\",action=\"drop\"} 299"), "{series:?}");
        // 0 + 1 + ... + 44: the 45 quietest, summed.
        assert!(series.contains(&"vpnfp_policy_packets_total{host=\"other\",peer=\"other\",protocol=\"other\",action=\"other\"} 990"), "{series:?}");
        assert!(text.contains("# TYPE vpnfp_frames counter"));
    }
}
