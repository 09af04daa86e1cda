//! SSH's protocol version exchange (RFC 4253 section 4.2): each side's
//! first line is `SSH-protoversion-softwareversion [comments]` ending in
//! CR LF, at most 255 bytes, with protoversion "2.0" (or "1.99" for
//! servers that also speak SSH 1). SSH is a tunnel, not necessarily a VPN.

use super::{Found, Protocol};

pub fn banner(b: &[u8]) -> Option<Found> {
    let rest = b
        .strip_prefix(b"SSH-2.0-")
        .or_else(|| b.strip_prefix(b"SSH-1.99-"))?;
    // softwareversion: printable US-ASCII without spaces, at least one
    // byte, then a space, CR or LF. The RFC also forbids '-' in it, but
    // real servers use one ("SSH-1.99-Cisco-1.25").
    let name_len = rest
        .iter()
        .position(|&c| !(0x21..=0x7E).contains(&c))
        .unwrap_or(rest.len());
    let ended = match rest.get(name_len) {
        Some(b' ' | b'\r' | b'\n') => true,
        // Cut off by the capture: a long software name is still a banner.
        None => rest.len() >= 8,
        _ => false,
    };
    (name_len > 0 && ended).then_some(Found::sure(Protocol::Ssh, "signature:ssh-version-exchange"))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, tcp};
    use super::*;

    #[test]
    fn banners() {
        let f = run(&[tcp(
            false,
            22,
            b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
        )])
        .unwrap();
        assert_eq!(
            (f.protocol, f.reason),
            (Protocol::Ssh, "signature:ssh-version-exchange")
        );
        assert!(run(&[tcp(true, 2222, b"SSH-1.99-Cisco-1.25\r\n")]).is_some());
        assert_eq!(run(&[tcp(true, 22, b"SSH-2.0-\r\n")]), None);
        assert_eq!(run(&[tcp(true, 22, b"SSH-3.0-x\r\n")]), None);
        assert_eq!(
            run(&[tcp(true, 80, b"GET /SSH-2.0-x HTTP/1.1\r\n")]).map(|f| f.protocol),
            Some(Protocol::Http)
        );
    }
}
