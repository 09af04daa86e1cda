//! Network namespaces owned by a test: unique names, deleted on drop (also
//! when the test panics), never touching the root namespace.

use std::{
    fs::File,
    os::fd::AsRawFd,
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct NetNs {
    name: String,
}

fn run_checked(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl NetNs {
    /// A new namespace `vpnfp-{purpose}-{pid}-{n}` with loopback up.
    pub fn new(purpose: &str) -> Self {
        let name = format!(
            "vpnfp-{purpose}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run_checked(Command::new("ip").args(["netns", "add", &name]));
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME args...`, panicking with ip's message on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        let out = run_checked(Command::new("ip").arg("-n").arg(&self.name).args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// IPv4 forwarding on, and what leaves through `out_if` masqueraded:
    /// a NAT router (the namespace's own sysctl and rules, gone with it).
    pub fn nat_out(&self, out_if: &str) {
        self.run("sysctl", &["-qw", "net.ipv4.ip_forward=1"]);
        self.run(
            "iptables",
            &[
                "-w",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                out_if,
                "-j",
                "MASQUERADE",
            ],
        );
    }

    /// Runs `program args...` inside the namespace; its stdout, panicking
    /// with its stderr on failure.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = run_checked(self.command(program).args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `f` on a thread that has entered the namespace. Sockets created
    /// there stay in the namespace after the thread ends.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                move_this_thread(&self.name);
                f()
            })
            .join()
            .expect("thread inside the namespace panicked")
        })
    }

    fn link(&self, iface: &str) -> serde_json::Value {
        let out = self.ip(&["-j", "link", "show", "dev", iface]);
        let links: serde_json::Value = serde_json::from_str(&out).expect("ip -j output");
        links[0].clone()
    }

    pub fn mac(&self, iface: &str) -> [u8; 6] {
        let text = self.link(iface)["address"]
            .as_str()
            .expect("address")
            .to_string();
        let bytes: Vec<u8> = text
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).expect("hex"))
            .collect();
        bytes.try_into().expect("6 bytes")
    }

    pub fn if_index(&self, iface: &str) -> u32 {
        self.link(iface)["ifindex"].as_u64().expect("ifindex") as u32
    }

    /// vpnfp's iptables and ip6tables rules (by their comment) in this
    /// namespace, each prefixed with its tool.
    pub fn vpnfp_rules(&self) -> Vec<String> {
        ["iptables", "ip6tables"]
            .iter()
            .flat_map(|tool| {
                self.run(tool, &["-w", "-t", "mangle", "-S"])
                    .lines()
                    .filter(|l| l.contains("vpnfp-queue-"))
                    .map(|l| format!("{tool} {l}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Whether `iface` in this namespace has a TC program attached on
    /// egress through TCX (the link-based attach a killed process takes
    /// with it).
    pub fn has_tc_egress(&self, iface: &str) -> bool {
        self.enter(|| {
            aya::programs::SchedClassifier::query_tcx(iface, aya::programs::TcAttachType::Egress)
                .map(|(_, programs)| !programs.is_empty())
                .unwrap_or_else(|e| panic!("querying TCX egress of {iface}: {e}"))
        })
    }

    /// Whether some process has bound a netfilter queue in this namespace.
    pub fn nfqueue_bound(&self) -> bool {
        self.enter(|| {
            std::fs::read_to_string("/proc/thread-self/net/netfilter/nfnetlink_queue")
                .is_ok_and(|s| !s.trim().is_empty())
        })
    }

    /// Whether `iface` in this namespace has an XDP program attached.
    pub fn has_xdp(&self, iface: &str) -> bool {
        self.link(iface).get("xdp").is_some()
    }
}

/// Moves the calling thread (only it) into the namespace called `name`, for
/// threads that outlive a call to [`NetNs::enter`].
pub fn move_this_thread(name: &str) {
    let path = format!("/var/run/netns/{name}");
    let ns = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: a valid namespace fd; only this thread switches.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace destroys its veths (and detaches XDP).
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

impl NetNs {
    /// Sends raw Ethernet frames out of `iface` (AF_PACKET) with their
    /// destination MAC set to `dst_mac`; `gap` between frames. A full
    /// transmit queue (ENOBUFS) is waited out, as any sender would, for at
    /// most a second per frame.
    pub fn send_frames(&self, iface: &str, dst_mac: [u8; 6], frames: &[Vec<u8>], gap: Duration) {
        let index = self.if_index(iface);
        self.enter(|| {
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
                addr.sll_addr[..6].copy_from_slice(&dst_mac);
                for frame in frames {
                    let mut frame = frame.clone();
                    frame[..6].copy_from_slice(&dst_mac);
                    let send = || {
                        libc::sendto(
                            fd,
                            frame.as_ptr().cast(),
                            frame.len(),
                            0,
                            (&addr as *const libc::sockaddr_ll).cast(),
                            std::mem::size_of::<libc::sockaddr_ll>() as u32,
                        )
                    };
                    let mut sent = send();
                    let mut tries = 0;
                    while sent < 0
                        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOBUFS)
                        && tries < 1000
                    {
                        std::thread::sleep(Duration::from_millis(1));
                        tries += 1;
                        sent = send();
                    }
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
