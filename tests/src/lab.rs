//! A home network in three namespaces: `lan` holds the hosts, `router`
//! forwards their traffic (vpnfp watches its LAN-facing interface), `wan`
//! stands for the Internet and silently drops what it gets.
//!
//! ```text
//!  [lan] lan0 192.168.77.1/24 (+ hosts) == router0 192.168.77.254/24 [router] up0 10.200.0.1/30 == wan0 10.200.0.2/30 [wan]
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
    pub wan: NetNs,
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
        router.ip(&["link", "set", "up0", "up"]);
        wan.ip(&["link", "set", "wan0", "up"]);
        router.ip(&["route", "add", "default", "via", "10.200.0.2"]);
        // The namespace's own sysctl: forwarding here touches nothing else.
        router
            .enter(|| std::fs::write("/proc/sys/net/ipv4/ip_forward", "1"))
            .expect("enable forwarding in the router namespace");
        Self { lan, router, wan }
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
    pub fn socket(&self, host: Ipv4Addr) -> UdpSocket {
        self.lan.enter(|| {
            UdpSocket::bind(SocketAddrV4::new(host, 0))
                .unwrap_or_else(|e| panic!("bind {host}: {e}"))
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

/// One traffic source: a host sending to its peers in turn, `dwell`
/// packets to each before moving on.
pub struct Sender {
    pub socket: UdpSocket,
    pub peers: Vec<Ipv4Addr>,
    dwell: usize,
    next: usize,
}

impl Sender {
    /// A new peer for every packet (one peer: always that one).
    pub fn new(socket: UdpSocket, peers: Vec<Ipv4Addr>) -> Self {
        Self::with_dwell(socket, peers, 1)
    }

    pub fn with_dwell(socket: UdpSocket, peers: Vec<Ipv4Addr>, dwell: usize) -> Self {
        assert!(!peers.is_empty() && dwell > 0);
        Self {
            socket,
            peers,
            dwell,
            next: 0,
        }
    }

    fn send_one(&mut self) {
        let peer = self.peers[(self.next / self.dwell) % self.peers.len()];
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

impl Lab {
    /// Sends raw Ethernet frames out of the LAN interface (AF_PACKET), with
    /// the destination MAC set to the router's so the router's stack takes
    /// them; `gap` between frames.
    pub fn send_raw(&self, frames: &[Vec<u8>], gap: Duration) {
        let router_mac = self.router.mac(ROUTER_IF);
        let index = self.lan.if_index(LAN_IF);
        self.lan.enter(|| {
            // SAFETY: plain socket calls on a socket we own and close.
            unsafe {
                let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
                assert!(
                    fd >= 0,
                    "AF_PACKET socket: {}",
                    std::io::Error::last_os_error()
                );
                let mut addr: libc::sockaddr_ll = std::mem::zeroed();
                addr.sll_family = libc::AF_PACKET as u16;
                addr.sll_ifindex = index as i32;
                addr.sll_halen = 6;
                addr.sll_addr[..6].copy_from_slice(&router_mac);
                for frame in frames {
                    let mut frame = frame.clone();
                    frame[..6].copy_from_slice(&router_mac);
                    let sent = libc::sendto(
                        fd,
                        frame.as_ptr().cast(),
                        frame.len(),
                        0,
                        (&addr as *const libc::sockaddr_ll).cast(),
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    );
                    assert_eq!(
                        sent,
                        frame.len() as isize,
                        "send: {}",
                        std::io::Error::last_os_error()
                    );
                    std::thread::sleep(gap);
                }
                libc::close(fd);
            }
        });
    }
}
