//! The lab's traffic: small servers of its own in the WAN namespace (HTTP,
//! a QUIC-like UDP responder, a paced TLS stream through `openssl
//! s_server`), and the loops its hosts run until a deadline (page fetches
//! with curl, DNS queries, QUIC-like flows). Every loop is bounded in time.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    process::{ChildStdin, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::netns::{NetNs, move_this_thread};

/// Stops every loop of the lab.
#[derive(Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Sleeps up to `d`, waking early on stop; false once stopped.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.is_set() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20).min(end - Instant::now()));
        }
        !self.is_set()
    }
}

/// A thread that runs inside `ns`.
pub fn spawn_in(ns: &NetNs, name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    let ns_name = ns.name().to_string();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            move_this_thread(&ns_name);
            f()
        })
        .expect("spawning a lab thread")
}

/// A tiny HTTP/1.1 server: `GET /N` answers N bytes (default 20 kB).
pub fn http_server(ns: &NetNs, port: u16, stop: Stop) -> JoinHandle<()> {
    spawn_in(ns, "lab-http", move || {
        let listener = TcpListener::bind(("0.0.0.0", port)).expect("binding the lab's HTTP server");
        listener.set_nonblocking(true).expect("nonblocking");
        while !stop.is_set() {
            match listener.accept() {
                Ok((conn, _)) => {
                    std::thread::spawn(move || serve(conn));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    })
}

fn serve(mut conn: TcpStream) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut buf = [0u8; 2048];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let path = String::from_utf8_lossy(&request)
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let size: usize = path
        .trim_start_matches('/')
        .parse()
        .unwrap_or(20_000)
        .min(10_000_000);
    let body = vec![b'x'; size];
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
    );
    let _ = conn.write_all(&body);
}

/// Fetches `urls` in turn with curl (extra arguments first) every `every`.
pub fn fetch_loop(
    ns: &NetNs,
    curl_args: Vec<String>,
    urls: Vec<String>,
    every: Duration,
    stop: Stop,
) -> JoinHandle<()> {
    let ns_name = ns.name().to_string();
    std::thread::spawn(move || {
        let mut i = 0;
        while !stop.is_set() {
            let url = &urls[i % urls.len()];
            let _ = std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns_name,
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "--max-time",
                    "3",
                ])
                .args(&curl_args)
                .arg(url)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            i += 1;
            if !stop.sleep(every) {
                break;
            }
        }
    })
}

/// A DNS query for `name`, type A (RFC 1035 section 4.1).
pub fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// DNS queries to `server` every `every` for www9 to www24.lab.example
/// (the lab's web servers 192.0.2.9 to .24, so vpnfp learns their names);
/// counts the answers.
pub fn dns_loop(
    ns: &NetNs,
    server: Ipv4Addr,
    every: Duration,
    stop: Stop,
    answers: Arc<AtomicU64>,
) -> JoinHandle<()> {
    spawn_in(ns, "lab-dns", move || {
        let mut id: u16 = 1;
        while !stop.is_set() {
            // A fresh socket (a fresh port) per query, as resolvers do.
            if let Ok(sock) = UdpSocket::bind("0.0.0.0:0") {
                let _ = sock.set_read_timeout(Some(Duration::from_millis(500)));
                let name = format!("www{}.lab.example", 9 + id % 16);
                if sock.send_to(&dns_query(id, &name), (server, 53)).is_ok() {
                    let mut buf = [0u8; 512];
                    if sock.recv(&mut buf).is_ok() {
                        answers.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            id = id.wrapping_add(1);
            if !stop.sleep(every) {
                break;
            }
        }
    })
}

/// The QUIC-like responder: answers each datagram with a short-header one.
pub fn quic_server(ns: &NetNs, addr: SocketAddr, stop: Stop) -> JoinHandle<()> {
    spawn_in(ns, "lab-quic", move || {
        let sock = UdpSocket::bind(addr).expect("binding the QUIC-like responder");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let mut buf = [0u8; 2048];
        let mut pn: u32 = 0;
        while !stop.is_set() {
            if let Ok((_, from)) = sock.recv_from(&mut buf) {
                pn = pn.wrapping_add(1);
                let _ = sock.send_to(&short_header(pn, 300), from);
            }
        }
    })
}

/// A QUIC short-header packet: form bit clear, fixed bit set, an 8-byte
/// connection id, then protected bytes.
fn short_header(pn: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0x40 | (pn as u8 & 0x1f)];
    p.extend_from_slice(&[0xc1; 8]);
    let mut x = pn as u64 * 0x9e37_79b9 + 1;
    while p.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p.push(x as u8);
    }
    p
}

/// A QUIC version 1 client Initial, padded to 1200 bytes.
fn initial(seed: u64) -> Vec<u8> {
    let mut p = vec![0xc3];
    p.extend_from_slice(&1u32.to_be_bytes());
    p.push(8);
    p.extend_from_slice(&seed.to_be_bytes());
    p.push(0); // no source connection id
    p.push(0); // no token
    let mut x = seed | 1;
    while p.len() < 1200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p.push(x as u8);
    }
    p
}

/// QUIC-like connections to `server`: an Initial, then short-header
/// packets every 25 ms; a new connection (new port) every 5 s.
pub fn quic_loop(ns: &NetNs, server: SocketAddr, stop: Stop) -> JoinHandle<()> {
    spawn_in(ns, "lab-quic-client", move || {
        let mut conn = 0u64;
        while !stop.is_set() {
            conn += 1;
            let Ok(sock) = UdpSocket::bind("0.0.0.0:0") else {
                return;
            };
            let _ = sock.set_read_timeout(Some(Duration::from_millis(5)));
            let _ = sock.send_to(&initial(conn), server);
            let start = Instant::now();
            let mut pn = 0;
            let mut buf = [0u8; 2048];
            while start.elapsed() < Duration::from_secs(5) {
                pn += 1;
                let _ = sock.send_to(&short_header(pn, 200), server);
                let _ = sock.recv(&mut buf);
                if !stop.sleep(Duration::from_millis(25)) {
                    return;
                }
            }
        }
    })
}

/// Feeds a paced byte stream into `openssl s_server`'s standard input:
/// `rate` bytes per second, until stopped.
pub fn pace(mut stdin: ChildStdin, rate: usize, stop: Stop) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let chunk = vec![b'v'; rate / 50];
        while stop.sleep(Duration::from_millis(20)) {
            if stdin.write_all(&chunk).is_err() {
                break;
            }
        }
    })
}
