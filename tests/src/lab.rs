//! A home network in two namespaces: `lan` holds the hosts, `router` the
//! router's LAN-facing interface where vpnfp watches. Every LAN packet is
//! routed to the router; the router forwards nothing (XDP sees it first).
//!
//! ```text
//!  [lan ns] lan0 192.168.77.1/24 (+ host addrs) ==veth== router0 192.168.77.254/24 [router ns]
//! ```

use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    process::Child,
    time::{Duration, Instant},
};

use crate::netns::NetNs;

pub const LAN_IF: &str = "lan0";
pub const ROUTER_IF: &str = "router0";
pub const ROUTER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 254);

pub struct Lab {
    pub lan: NetNs,
    pub router: NetNs,
}

impl Lab {
    /// `hosts` are the LAN addresses traffic may come from.
    pub fn new(hosts: &[Ipv4Addr]) -> Self {
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
        for host in hosts {
            lan.ip(&["addr", "add", &format!("{host}/32"), "dev", LAN_IF]);
        }
        router.ip(&[
            "addr",
            "add",
            &format!("{ROUTER_ADDR}/24"),
            "dev",
            ROUTER_IF,
        ]);
        lan.ip(&["link", "set", LAN_IF, "up"]);
        router.ip(&["link", "set", ROUTER_IF, "up"]);
        lan.ip(&["route", "add", "default", "via", &ROUTER_ADDR.to_string()]);
        Self { lan, router }
    }

    /// A UDP socket in the LAN namespace sending from `host`.
    pub fn socket(&self, host: Ipv4Addr) -> UdpSocket {
        self.lan.enter(|| {
            UdpSocket::bind(SocketAddrV4::new(host, 0))
                .unwrap_or_else(|e| panic!("bind {host}: {e}"))
        })
    }

    /// Waits until `child` (a vpnfp attached to the router side) has attached.
    pub fn wait_for_xdp(&self, child: &mut Child, timeout: Duration) {
        let start = Instant::now();
        while !self.router.has_xdp(ROUTER_IF) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("vpnfp exited before attaching: {status}");
            }
            assert!(
                start.elapsed() < timeout,
                "vpnfp did not attach XDP to {ROUTER_IF} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One traffic source: a host sending to peers in turn at a fixed rate.
pub struct Sender {
    pub socket: UdpSocket,
    pub peers: Vec<Ipv4Addr>,
    next: usize,
}

impl Sender {
    pub fn new(socket: UdpSocket, peers: Vec<Ipv4Addr>) -> Self {
        assert!(!peers.is_empty());
        Self {
            socket,
            peers,
            next: 0,
        }
    }

    fn send_one(&mut self) {
        let peer = self.peers[self.next % self.peers.len()];
        self.next += 1;
        // Errors (an ICMP error reported back) do not matter: the frame left.
        let _ = self
            .socket
            .send_to(b"vpnfp test", SocketAddrV4::new(peer, 9));
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
