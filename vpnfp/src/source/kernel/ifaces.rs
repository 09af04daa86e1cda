//! What this network namespace says of its interfaces: their addresses,
//! which are Ethernet and up, which hold a default route. Read through
//! getifaddrs and /proc/net, both of the caller's namespace (/sys/class/net
//! shows the one sysfs was mounted in).

use std::net::IpAddr;

/// One getifaddrs entry, as far as vpnfp reads it.
enum Entry {
    Address(IpAddr),
    /// The link itself (AF_PACKET): its ARPHRD type.
    Link {
        hardware: u16,
    },
}

/// Every getifaddrs entry: (interface, flags, what it is).
fn entries() -> std::io::Result<Vec<(String, u32, Entry)>> {
    let mut out = Vec::new();
    let mut addrs: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list freed below; only the sockaddr
    // families we know are read, as what they are.
    unsafe {
        if libc::getifaddrs(&mut addrs) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut cur = addrs;
        while !cur.is_null() {
            let sa = (*cur).ifa_addr;
            let entry = if sa.is_null() {
                None
            } else {
                match (*sa).sa_family as i32 {
                    libc::AF_INET => {
                        let sin = &*(sa as *const libc::sockaddr_in);
                        Some(Entry::Address(IpAddr::from(
                            u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                        )))
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(sa as *const libc::sockaddr_in6);
                        Some(Entry::Address(IpAddr::from(sin6.sin6_addr.s6_addr)))
                    }
                    libc::AF_PACKET => Some(Entry::Link {
                        hardware: (*(sa as *const libc::sockaddr_ll)).sll_hatype,
                    }),
                    _ => None,
                }
            };
            if let Some(entry) = entry {
                let name = std::ffi::CStr::from_ptr((*cur).ifa_name)
                    .to_string_lossy()
                    .into_owned();
                out.push((name, (*cur).ifa_flags, entry));
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(addrs);
    }
    Ok(out)
}

/// Every address of this machine's interfaces.
pub fn addresses() -> Vec<IpAddr> {
    entries()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(_, _, e)| match e {
            Entry::Address(a) => Some(a),
            Entry::Link { .. } => None,
        })
        .collect()
}

/// The Ethernet interfaces that are up, but loopback; sorted.
pub fn ethernet_up() -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = entries()?
        .into_iter()
        .filter(|(_, flags, e)| {
            matches!(e, Entry::Link { hardware } if *hardware == libc::ARPHRD_ETHER)
                && flags & libc::IFF_LOOPBACK as u32 == 0
                && flags & libc::IFF_UP as u32 != 0
        })
        .map(|(name, _, _)| name)
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// The interfaces that hold a default route, IPv4 or IPv6.
pub fn with_default_route() -> Vec<String> {
    let mut out = with_default_route4();
    out.extend(with_default_route6());
    out
}

/// The interfaces that hold an IPv4 default route.
pub fn with_default_route4() -> Vec<String> {
    let mut out = Vec::new();
    // IFACE DESTINATION GATEWAY FLAGS REFCNT USE METRIC MASK ...
    if let Ok(routes) = std::fs::read_to_string("/proc/net/route") {
        for line in routes.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 7 && cols[1] == "00000000" && cols[7] == "00000000" {
                out.push(cols[0].to_string());
            }
        }
    }
    out
}

/// The interfaces that hold an IPv6 default route.
fn with_default_route6() -> Vec<String> {
    let mut out = Vec::new();
    // DESTINATION PREFIXLEN SOURCE PREFIXLEN NEXTHOP METRIC REFCNT USE FLAGS IFACE
    if let Ok(routes) = std::fs::read_to_string("/proc/net/ipv6_route") {
        for line in routes.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() == 10 && cols[1] == "00" && cols[0].bytes().all(|b| b == b'0') {
                out.push(cols[9].to_string());
            }
        }
    }
    out
}
