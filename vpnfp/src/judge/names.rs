//! Peer names, so a report says which server a host's VPN goes to.
//!
//! Passive first: the DNS answers vpnfp sees on the wire (A, AAAA and the
//! CNAME chains leading to them, RFC 1035 section 4.1.3 with name
//! compression, section 4.1.4) name the addresses hosts looked up, for the
//! answer's TTL; a TLS server name names its peer too. Optionally
//! (`--resolve`) a reverse lookup through the system's resolver, on a
//! thread of its own, rate-limited and cached, never on the packet path.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel},
    time::Duration,
};

use hashlink::LruCache;

/// Names kept at most.
pub const CAPACITY: usize = 65_536;
/// Names learnt without a TTL (TLS) or from reverse lookups live this long.
const DEFAULT_TTL_NS: u64 = 3_600_000_000_000;
/// TTLs are capped: a week-long answer should not outlive the cache's
/// usefulness.
const MAX_TTL_NS: u64 = 86_400_000_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Learnt {
    pub name: String,
    pub expires_ns: u64,
}

pub struct PeerNames {
    names: LruCache<IpAddr, Learnt>,
    resolver: Option<Resolver>,
    /// Names learnt (for the summary).
    pub learnt: u64,
}

impl PeerNames {
    pub fn new(resolve: bool) -> Self {
        Self {
            names: LruCache::new(CAPACITY),
            resolver: resolve.then(Resolver::start),
            learnt: 0,
        }
    }

    pub fn learn(&mut self, addr: IpAddr, name: &str, ttl_ns: Option<u64>, now_ns: u64) {
        let name = escape_controls(name.trim_end_matches('.')).to_ascii_lowercase();
        if name.is_empty() {
            return;
        }
        let ttl = ttl_ns.unwrap_or(DEFAULT_TTL_NS).min(MAX_TTL_NS);
        self.learnt += 1;
        self.names.insert(
            addr,
            Learnt {
                name,
                expires_ns: now_ns.saturating_add(ttl),
            },
        );
    }

    /// The name of `addr` at `now_ns`, if one is known and fresh; with
    /// `--resolve`, an unknown address is queued for a reverse lookup.
    pub fn name(&mut self, addr: IpAddr, now_ns: u64) -> Option<String> {
        self.collect(now_ns);
        match self.names.get(&addr) {
            Some(l) if l.expires_ns >= now_ns => Some(l.name.clone()),
            _ => {
                if let Some(r) = &mut self.resolver {
                    r.ask(addr);
                }
                None
            }
        }
    }

    /// What a known name is, without asking the resolver.
    pub fn peek(&self, addr: &IpAddr, now_ns: u64) -> Option<&str> {
        self.names
            .peek(addr)
            .filter(|l| l.expires_ns >= now_ns)
            .map(|l| l.name.as_str())
    }

    /// Answers of the reverse lookups that came back.
    fn collect(&mut self, now_ns: u64) {
        let answers: Vec<(IpAddr, String)> = match &self.resolver {
            Some(r) => r.answers.try_iter().collect(),
            None => return,
        };
        for (addr, name) in answers {
            self.learn(addr, &name, None, now_ns);
        }
    }

    /// Learns from a DNS response message (UDP payload, or TCP after its
    /// length); how many addresses it named.
    pub fn learn_dns(&mut self, msg: &[u8], now_ns: u64) -> usize {
        let mut found = Vec::new();
        if parse_answers(msg, &mut |addr, name, ttl| found.push((addr, name, ttl))).is_none() {
            return 0;
        }
        let n = found.len();
        for (addr, name, ttl) in found {
            self.learn(addr, &name, Some(ttl as u64 * 1_000_000_000), now_ns);
        }
        n
    }
}

/// A name at `at` (with compression pointers), as text; the offset after
/// the name in place.
fn read_name(msg: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(at)? as usize;
        match len {
            0 => {
                return Some((name, end.unwrap_or(at + 1)));
            }
            l if l & 0xC0 == 0xC0 => {
                let target = ((l & 0x3F) << 8) | *msg.get(at + 1)? as usize;
                end.get_or_insert(at + 2);
                jumps += 1;
                if jumps > 16 || target >= msg.len() {
                    return None;
                }
                at = target;
            }
            l if l <= 63 => {
                let label = msg.get(at + 1..at + 1 + l)?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(&String::from_utf8_lossy(label));
                if name.len() > 255 {
                    return None;
                }
                at += 1 + l;
            }
            _ => return None,
        }
    }
}

/// A name that came off the wire, safe for a terminal, a log line and a
/// text table: control characters (an escape sequence, a newline that
/// would start a forged line) are written as `\xNN`, or `\u{NN}` beyond
/// ASCII. Real host names hold none, so nothing real changes.
pub fn escape_controls(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Calls `found(address, name asked for, ttl)` for each A/AAAA answer of
/// a DNS response, naming it by the question (the name the host looked
/// up, through any CNAME chain).
pub fn parse_answers(msg: &[u8], found: &mut dyn FnMut(IpAddr, String, u32)) -> Option<()> {
    let u16at = |at: usize| Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]));
    let flags = u16at(2)?;
    // A response, a standard query, no error.
    if flags & 0x8000 == 0 || (flags >> 11) & 0xF != 0 || flags & 0xF != 0 {
        return None;
    }
    let (qd, an) = (u16at(4)?, u16at(6)?);
    if qd != 1 {
        return None;
    }
    let (question, mut at) = read_name(msg, 12)?;
    at += 4;
    let mut aliases: HashMap<String, String> = HashMap::new();
    for _ in 0..an {
        let (owner, next) = read_name(msg, at)?;
        let kind = u16at(next)?;
        let ttl = u32::from_be_bytes(msg.get(next + 4..next + 8)?.try_into().ok()?);
        let len = u16at(next + 8)? as usize;
        let data = next + 10;
        let rdata = msg.get(data..data + len)?;
        // The name the host asked for, through the CNAMEs seen so far.
        let asked = aliases
            .get(&owner)
            .cloned()
            .unwrap_or_else(|| question.clone());
        match (kind, len) {
            (1, 4) => found(
                IpAddr::V4(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
                asked,
                ttl,
            ),
            (28, 16) => {
                let octets: [u8; 16] = rdata.try_into().ok()?;
                found(IpAddr::V6(Ipv6Addr::from(octets)), asked, ttl)
            }
            (5, _) => {
                let (target, _) = read_name(msg, data)?;
                aliases.insert(target, asked);
            }
            _ => {}
        }
        at = data + len;
    }
    Some(())
}

/// Reverse lookups through the system resolver (getnameinfo, so
/// /etc/resolv.conf and nsswitch apply), at most `RATE` a second, each
/// address asked once.
struct Resolver {
    ask: SyncSender<IpAddr>,
    answers: Receiver<(IpAddr, String)>,
    asked: LruCache<IpAddr, ()>,
}

const RATE: u32 = 20;

impl Resolver {
    fn start() -> Self {
        let (ask, questions) = sync_channel::<IpAddr>(1024);
        let (tell, answers) = sync_channel(1024);
        std::thread::Builder::new()
            .name("vpnfp-resolve".into())
            .spawn(move || {
                for addr in questions {
                    if let Some(name) = reverse(addr) {
                        let _ = tell.try_send((addr, name));
                    }
                    std::thread::sleep(Duration::from_secs(1) / RATE);
                }
            })
            .expect("starting the resolver thread");
        Self {
            ask,
            answers,
            asked: LruCache::new(CAPACITY),
        }
    }

    fn ask(&mut self, addr: IpAddr) {
        if self.asked.get(&addr).is_some() {
            return;
        }
        self.asked.insert(addr, ());
        if let Err(TrySendError::Full(_)) = self.ask.try_send(addr) {
            // Asked again when it next comes up.
            self.asked.remove(&addr);
        }
    }
}

/// The PTR name of `addr`, if the resolver has one.
fn reverse(addr: IpAddr) -> Option<String> {
    let sock: std::net::SocketAddr = (addr, 0).into();
    let (storage, len) = socket_addr(&sock);
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes; `host` is a
    // writable buffer of the length given.
    let rc = unsafe {
        libc::getnameinfo(
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: getnameinfo wrote a NUL-terminated string.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

fn socket_addr(addr: &std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid; the matching family's
    // fields are filled in below.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        std::net::SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and aligned for sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            (
                storage,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        std::net::SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = a.ip().octets();
            (
                storage,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response for www.example.org: a CNAME to edge.cdn.example, then
    /// an A and an AAAA record for it, with compression pointers.
    fn response() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
        for l in ["www", "example", "org"] {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        // CNAME: owner -> question (pointer 12), target edge.cdn.example.
        m.extend_from_slice(&[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60]);
        let target_at = m.len() + 2;
        let mut target = vec![];
        for l in ["edge", "cdn", "example"] {
            target.push(l.len() as u8);
            target.extend_from_slice(l.as_bytes());
        }
        target.push(0);
        m.extend_from_slice(&(target.len() as u16).to_be_bytes());
        m.extend_from_slice(&target);
        // A for the target (pointer to it).
        m.extend_from_slice(&[
            0xC0,
            target_at as u8,
            0,
            1,
            0,
            1,
            0,
            0,
            1,
            44,
            0,
            4,
            203,
            0,
            113,
            9,
        ]);
        // AAAA.
        m.extend_from_slice(&[0xC0, target_at as u8, 0, 28, 0, 1, 0, 0, 0, 30, 0, 16]);
        m.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
        m
    }

    #[test]
    fn answers_are_named_by_what_the_host_asked() {
        let mut got = Vec::new();
        parse_answers(&response(), &mut |a, n, t| got.push((a, n, t))).unwrap();
        assert_eq!(
            got,
            vec![
                (
                    "203.0.113.9".parse().unwrap(),
                    "www.example.org".to_string(),
                    300
                ),
                (
                    "2001:db8::9".parse().unwrap(),
                    "www.example.org".to_string(),
                    30
                ),
            ]
        );
        let mut names = PeerNames::new(false);
        assert_eq!(names.learn_dns(&response(), 0), 2);
        let v4: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(names.name(v4, 1).as_deref(), Some("www.example.org"));
        // Past the TTL it is forgotten.
        assert_eq!(names.name(v4, 301_000_000_000), None);
    }

    #[test]
    fn queries_errors_and_loops_teach_nothing() {
        let mut query = response();
        query[2] = 0x01; // QR clear: a query
        assert!(parse_answers(&query, &mut |_, _, _| panic!()).is_none());
        let mut nxdomain = response();
        nxdomain[3] = 0x83;
        assert!(parse_answers(&nxdomain, &mut |_, _, _| panic!()).is_none());
        // A compression pointer to itself.
        let mut looped = response();
        let at = looped.len() - 28 - 16;
        looped[at] = 0xC0;
        looped[at + 1] = at as u8;
        let _ = parse_answers(&looped, &mut |_, _, _| {});
        assert!(parse_answers(&response()[..40], &mut |_, _, _| {}).is_none());
    }

    #[test]
    fn names_off_the_wire_cannot_steer_a_terminal() {
        let mut names = PeerNames::new(false);
        let addr: IpAddr = "198.51.100.9".parse().unwrap();
        let evil = "evil\u{1b}]0;owned\u{7}\nforged line\u{9b}.example.";
        names.learn(addr, evil, None, 0);
        let name = names.name(addr, 1).unwrap();
        assert_eq!(
            name,
            "evil\\x1b]0;owned\\x07\\x0aforged line\\u{9b}.example"
        );
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert_eq!(escape_controls("vpn.example.org"), "vpn.example.org");
    }
}
