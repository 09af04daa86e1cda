//! The lab's network: one namespace per LAN host, a switch namespace (a
//! bridge), a router that forwards and masquerades like a home router
//! (vpnfp watches its LAN side), and a WAN namespace holding the VPN
//! servers and ordinary servers on documentation addresses.
//!
//! ```text
//!  [host] eth0 192.168.90.x ── p<i> [switch br0] uplink ── router0 192.168.90.254 [router]
//!  [router] up0 10.200.0.1 (MASQUERADE) ── wan0 10.200.0.2 + 198.51.100.0/24, 192.0.2.0/24, 203.0.113.0/24 addresses [wan]
//! ```
//!
//! Offloads are off on every veth so captures hold wire packets.

use std::{net::Ipv4Addr, process::Command};

use crate::netns::NetNs;

/// The router's LAN-facing interface, where vpnfp runs.
pub const ROUTER_IF: &str = "router0";
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 168, 90, 254);
pub const HOST_IF: &str = "eth0";
const WAN_IF: &str = "wan0";

pub struct Host {
    pub name: &'static str,
    pub addr: Ipv4Addr,
    pub ns: NetNs,
    /// Its port on the switch (captures are taken there).
    pub switch_port: String,
}

pub struct Topology {
    pub switch: NetNs,
    pub router: NetNs,
    pub wan: NetNs,
    pub hosts: Vec<Host>,
}

/// Switches segmentation and receive offloads off (best effort: a veth
/// without the feature says so, which is fine).
pub fn no_offloads(ns: &NetNs, iface: &str) {
    let _ = ns
        .command("ethtool")
        .args(["-K", iface, "tso", "off", "gso", "off", "gro", "off"])
        .output();
}

impl Topology {
    pub fn new(hosts: &[(&'static str, Ipv4Addr)], wan_addrs: &[Ipv4Addr]) -> Self {
        let switch = NetNs::new("sw");
        let router = NetNs::new("rtr");
        let wan = NetNs::new("wan");
        switch.ip(&["link", "add", "br0", "type", "bridge"]);
        switch.ip(&["link", "set", "br0", "up"]);
        switch.ip(&[
            "link",
            "add",
            "uplink",
            "type",
            "veth",
            "peer",
            "name",
            ROUTER_IF,
            "netns",
            router.name(),
        ]);
        switch.ip(&["link", "set", "uplink", "master", "br0", "up"]);
        no_offloads(&switch, "uplink");

        router.ip(&["addr", "add", "192.168.90.254/24", "dev", ROUTER_IF]);
        router.ip(&["link", "set", ROUTER_IF, "up"]);
        no_offloads(&router, ROUTER_IF);
        router.ip(&[
            "link",
            "add",
            "up0",
            "type",
            "veth",
            "peer",
            "name",
            WAN_IF,
            "netns",
            wan.name(),
        ]);
        router.ip(&["addr", "add", "10.200.0.1/30", "dev", "up0"]);
        router.ip(&["link", "set", "up0", "up"]);
        no_offloads(&router, "up0");
        router.ip(&["route", "add", "default", "via", "10.200.0.2"]);
        router.nat_out("up0");

        wan.ip(&["addr", "add", "10.200.0.2/30", "dev", WAN_IF]);
        wan.ip(&["link", "set", WAN_IF, "up"]);
        no_offloads(&wan, WAN_IF);
        for addr in wan_addrs {
            wan.ip(&["addr", "add", &format!("{addr}/32"), "dev", WAN_IF]);
        }
        // Replies to the router's masqueraded address.
        wan.ip(&["route", "add", "default", "via", "10.200.0.1"]);

        let hosts = hosts
            .iter()
            .enumerate()
            .map(|(i, &(name, addr))| {
                let ns = NetNs::new(&format!("h{name}"));
                let port = format!("p{i}");
                ns.ip(&[
                    "link",
                    "add",
                    HOST_IF,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &port,
                    "netns",
                    switch.name(),
                ]);
                ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", HOST_IF]);
                ns.ip(&["link", "set", HOST_IF, "up"]);
                ns.ip(&["route", "add", "default", "via", &GATEWAY.to_string()]);
                no_offloads(&ns, HOST_IF);
                switch.ip(&["link", "set", &port, "master", "br0", "up"]);
                no_offloads(&switch, &port);
                Host {
                    name,
                    addr,
                    ns,
                    switch_port: port,
                }
            })
            .collect();
        Self {
            switch,
            router,
            wan,
            hosts,
        }
    }

    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no lab host {name}"))
    }

    /// Every namespace, for the last-resort cleanup.
    pub fn namespaces(&self) -> Vec<&NetNs> {
        let mut all = vec![&self.switch, &self.router, &self.wan];
        all.extend(self.hosts.iter().map(|h| &h.ns));
        all
    }
}

impl Drop for Topology {
    /// Anything still running inside the lab's namespaces was started by the
    /// lab (directly or by its daemons): killed before the namespaces go.
    fn drop(&mut self) {
        for ns in self.namespaces() {
            if let Ok(out) = Command::new("ip")
                .args(["netns", "pids", ns.name()])
                .output()
            {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        // SAFETY: a process inside this lab's own namespace.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
        }
    }
}
