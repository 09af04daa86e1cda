//! A home network in three namespaces: `lan` holds the hosts, `router`
//! forwards their traffic (vpnfp watches its LAN-facing interface), `wan`
//! stands for the Internet and silently drops what it gets, unless it was
//! given servers. IPv4 and IPv6; optionally NAT on the router (as a home
//! router masquerades) and a second LAN.
//!
//! ```text
//!  [lan] lan0 192.168.77.1/24 fd00:77::1/64 (+ hosts) == router0 192.168.77.254/24 fd00:77::fe/64 [router]
//!        up0 10.200.0.1/30 fd00:200::1/64 == wan0 10.200.0.2/30 fd00:200::2/64 [wan]
//!  (second LAN) [lan2] lan1 192.168.78.1/24 == router1 192.168.78.254/24 [router]
//! ```

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, UdpSocket},
    process::Child,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::netns::NetNs;

pub const LAN_IF: &str = "lan0";
pub const ROUTER_IF: &str = "router0";
pub const ROUTER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 254);
pub const ROUTER_ADDR6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, 0xfe);
/// The router's own address towards the WAN (what NAT rewrites to).
pub const ROUTER_WAN_ADDR: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
pub const LAN2_IF: &str = "lan1";
pub const ROUTER2_IF: &str = "router1";

/// What the lab has besides the basic three namespaces.
#[derive(Clone, Copy, Debug, Default)]
pub struct LabOptions {
    /// The router masquerades what leaves towards the WAN.
    pub nat: bool,
    /// A second LAN namespace behind `router1` (192.168.78.0/24).
    pub second_lan: bool,
}

pub struct Lab {
    pub lan: NetNs,
    pub router: NetNs,
    pub wan: NetNs,
    pub lan2: Option<NetNs>,
}

impl Lab {
    /// `hosts` are the LAN addresses traffic may come from (IPv4 and IPv6).
    pub fn new(hosts: &[Ipv4Addr]) -> Self {
        Self::with(hosts, &[], LabOptions::default())
    }

    /// `hosts` and `hosts6` are the LAN addresses traffic may come from.
    pub fn with(hosts: &[Ipv4Addr], hosts6: &[Ipv6Addr], options: LabOptions) -> Self {
        let lan = NetNs::new("lan");
        let router = NetNs::new("rtr");
        // Created directly inside the namespaces: the root namespace never
        // sees these interfaces.
        lan.ip(&[
            "link",
            "add",
            LAN_IF,
            "type",
            "veth",
            "peer",
            "name",
            ROUTER_IF,
            "netns",
            router.name(),
        ]);
        lan.ip(&["addr", "add", "192.168.77.1/24", "dev", LAN_IF]);
        lan.ip(&["-6", "addr", "add", "fd00:77::1/64", "dev", LAN_IF, "nodad"]);
        for host in hosts {
            lan.ip(&["addr", "add", &format!("{host}/32"), "dev", LAN_IF]);
        }
        for host in hosts6 {
            lan.ip(&[
                "-6",
                "addr",
                "add",
                &format!("{host}/128"),
                "dev",
                LAN_IF,
                "nodad",
            ]);
        }
        router.ip(&[
            "addr",
            "add",
            &format!("{ROUTER_ADDR}/24"),
            "dev",
            ROUTER_IF,
        ]);
        router.ip(&[
            "-6",
            "addr",
            "add",
            &format!("{ROUTER_ADDR6}/64"),
            "dev",
            ROUTER_IF,
            "nodad",
        ]);
        lan.ip(&["link", "set", LAN_IF, "up"]);
        router.ip(&["link", "set", ROUTER_IF, "up"]);
        lan.ip(&["route", "add", "default", "via", &ROUTER_ADDR.to_string()]);
        lan.ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            &ROUTER_ADDR6.to_string(),
        ]);

        let wan = NetNs::new("wan");
        router.ip(&[
            "link",
            "add",
            "up0",
            "type",
            "veth",
            "peer",
            "name",
            "wan0",
            "netns",
            wan.name(),
        ]);
        router.ip(&["addr", "add", "10.200.0.1/30", "dev", "up0"]);
        wan.ip(&["addr", "add", "10.200.0.2/30", "dev", "wan0"]);
        router.ip(&["-6", "addr", "add", "fd00:200::1/64", "dev", "up0", "nodad"]);
        wan.ip(&[
            "-6",
            "addr",
            "add",
            "fd00:200::2/64",
            "dev",
            "wan0",
            "nodad",
        ]);
        router.ip(&["link", "set", "up0", "up"]);
        wan.ip(&["link", "set", "wan0", "up"]);
        router.ip(&["route", "add", "default", "via", "10.200.0.2"]);
        router.ip(&["-6", "route", "add", "default", "via", "fd00:200::2"]);
        // The WAN reaches the LANs through the router (without NAT the
        // replies go to the LAN addresses themselves).
        wan.ip(&["route", "add", "192.168.0.0/16", "via", "10.200.0.1"]);
        wan.ip(&["-6", "route", "add", "fd00:77::/64", "via", "fd00:200::1"]);
        // The namespace's own sysctls: forwarding here touches nothing else.
        router
            .enter(|| {
                std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")?;
                std::fs::write("/proc/sys/net/ipv6/conf/all/forwarding", "1")
            })
            .expect("enable forwarding in the router namespace");
        if options.nat {
            router.nat_out("up0");
        }
        let lan2 = options.second_lan.then(|| {
            let lan2 = NetNs::new("lan2");
            lan2.ip(&[
                "link",
                "add",
                LAN2_IF,
                "type",
                "veth",
                "peer",
                "name",
                ROUTER2_IF,
                "netns",
                router.name(),
            ]);
            lan2.ip(&["addr", "add", "192.168.78.1/24", "dev", LAN2_IF]);
            router.ip(&["addr", "add", "192.168.78.254/24", "dev", ROUTER2_IF]);
            lan2.ip(&["link", "set", LAN2_IF, "up"]);
            router.ip(&["link", "set", ROUTER2_IF, "up"]);
            lan2.ip(&["route", "add", "default", "via", "192.168.78.254"]);
            lan2
        });
        Self {
            lan,
            router,
            wan,
            lan2,
        }
    }

    /// Gives the WAN namespace `addr` (a server's public address).
    pub fn add_server(&self, addr: IpAddr) {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        let mut args = vec!["addr", "add"];
        let a = format!("{addr}/{len}");
        args.push(&a);
        args.extend(["dev", "wan0"]);
        if addr.is_ipv6() {
            args.push("nodad");
        }
        self.wan.ip(&args);
    }

    /// Pings `to` from the LAN host `from` until it answers (at most 10 s):
    /// neighbour discovery on every hop is done before a test counts
    /// packets. Without it, the first second of IPv6 replies could be lost
    /// on the way (CI saw 108 of 675 missing, in XDP and NFQUEUE alike).
    pub fn wait_reachable(&self, from: IpAddr, to: IpAddr) {
        let start = Instant::now();
        loop {
            let answered = self
                .lan
                .command("ping")
                .args([
                    "-c",
                    "1",
                    "-W",
                    "1",
                    "-I",
                    &from.to_string(),
                    &to.to_string(),
                ])
                .output()
                .is_ok_and(|o| o.status.success());
            if answered {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{to} does not answer {from} after 10 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A UDP echo server in the WAN namespace at `addr:port`: answers every
    /// datagram, until the returned guard is dropped. Returns how many it
    /// answered.
    pub fn echo_server(&self, addr: SocketAddr) -> EchoServer {
        let socket = self
            .wan
            .enter(|| UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}")));
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, answered) = (stop.clone(), answered.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = socket.recv_from(&mut buf)
                        && socket.send_to(&buf[..n], from).is_ok()
                    {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        EchoServer {
            stop,
            answered,
            thread: Some(thread),
        }
    }

    /// Sends UDP from `host` to the router's own address for `duration` at
    /// `rate_pps` while a socket in the router counts what arrives; returns
    /// (sent, received). Reading while sending keeps the socket buffer from
    /// overflowing, so any difference is packets lost on the way.
    pub fn traffic_to_router(
        &self,
        host: Ipv4Addr,
        rate_pps: u32,
        duration: Duration,
    ) -> (u64, u64) {
        let receiver = self
            .router
            .enter(|| UdpSocket::bind(SocketAddrV4::new(ROUTER_ADDR, 9)).expect("bind receiver"));
        receiver
            .set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        let counting = std::thread::spawn(move || {
            let mut received = 0u64;
            let mut buf = [0u8; 64];
            while receiver.recv(&mut buf).is_ok() {
                received += 1;
            }
            received
        });
        let mut senders = [Sender::new(self.socket(host), vec![ROUTER_ADDR])];
        let sent = send_paced(&mut senders, rate_pps, duration)[0];
        (sent, counting.join().expect("receiver"))
    }

    /// A UDP socket in the LAN namespace sending from `host`.
    pub fn socket(&self, host: impl Into<IpAddr>) -> UdpSocket {
        let host = host.into();
        self.lan.enter(|| {
            UdpSocket::bind(SocketAddr::new(host, 0)).unwrap_or_else(|e| panic!("bind {host}: {e}"))
        })
    }

    /// Waits until `child` (a vpnfp attached to the router side) has attached.
    pub fn wait_for_xdp(&self, child: &mut Child, timeout: Duration) {
        self.wait_until(child, timeout, "attach XDP", || {
            self.router.has_xdp(ROUTER_IF)
        });
    }

    /// Waits until vpnfp has bound its queue and its NFQUEUE rule is in the
    /// router's mangle table.
    pub fn wait_for_rule(&self, child: &mut Child, timeout: Duration) {
        self.wait_until(
            child,
            timeout,
            "bind its queue and install its rule",
            || self.router.nfqueue_bound() && !self.router.vpnfp_rules().is_empty(),
        );
    }

    fn wait_until(
        &self,
        child: &mut Child,
        timeout: Duration,
        what: &str,
        ready: impl Fn() -> bool,
    ) {
        let start = Instant::now();
        while !ready() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("vpnfp exited before it could {what}: {status}");
            }
            assert!(
                start.elapsed() < timeout,
                "vpnfp did not {what} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A UDP echo server in a namespace; stops on drop.
pub struct EchoServer {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoServer {
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One traffic source: a host sending to its peers in turn, `dwell`
/// packets to each before moving on.
pub struct Sender {
    pub socket: UdpSocket,
    pub peers: Vec<IpAddr>,
    dwell: usize,
    next: usize,
    /// Read (and count) whatever comes back, so replies never pile up.
    pub replies: u64,
}

impl Sender {
    /// A new peer for every packet (one peer: always that one).
    pub fn new<A: Into<IpAddr>>(socket: UdpSocket, peers: Vec<A>) -> Self {
        Self::with_dwell(socket, peers, 1)
    }

    pub fn with_dwell<A: Into<IpAddr>>(socket: UdpSocket, peers: Vec<A>, dwell: usize) -> Self {
        let peers: Vec<IpAddr> = peers.into_iter().map(Into::into).collect();
        assert!(!peers.is_empty() && dwell > 0);
        socket.set_nonblocking(true).expect("nonblocking");
        Self {
            socket,
            peers,
            dwell,
            next: 0,
            replies: 0,
        }
    }

    fn send_one(&mut self) {
        let peer = self.peers[(self.next / self.dwell) % self.peers.len()];
        self.next += 1;
        // Errors (an ICMP error reported back) do not matter: the frame left.
        let _ = self.socket.send_to(b"vpnfp test", SocketAddr::new(peer, 9));
        let mut buf = [0u8; 64];
        while self.socket.recv(&mut buf).is_ok() {
            self.replies += 1;
        }
    }
}

/// Sends from all `senders` in turn, `rate_pps` each, for `duration`, paced
/// against the clock so a slow moment does not burst. Bounded in time and
/// packets; returns the packets each sender sent.
pub fn send_paced(senders: &mut [Sender], rate_pps: u32, duration: Duration) -> Vec<u64> {
    let interval = Duration::from_secs_f64(1.0 / rate_pps as f64);
    let total = (duration.as_secs_f64() * rate_pps as f64) as u64;
    let start = Instant::now();
    let mut sent = vec![0; senders.len()];
    for i in 0..total {
        let due = start + interval * i as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        for (sender, count) in senders.iter_mut().zip(sent.iter_mut()) {
            sender.send_one();
            *count += 1;
        }
    }
    sent
}

/// Kills the child on drop, so a failing test leaves no vpnfp behind.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child already taken")
    }

    /// SIGTERM, then wait (up to `timeout`, then SIGKILL).
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = self.child();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                panic!("vpnfp did not stop within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Lab {
    /// Sends raw Ethernet frames out of the LAN interface, to the
    /// router's MAC so the router's stack takes them; `gap` between frames.
    pub fn send_raw(&self, frames: &[Vec<u8>], gap: Duration) {
        let router_mac = self.router.mac(ROUTER_IF);
        self.lan.send_frames(LAN_IF, router_mac, frames, gap);
    }
}
