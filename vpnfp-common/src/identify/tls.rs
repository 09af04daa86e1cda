//! TLS (RFC 8446 sections 5.1 and 4.1.2; RFC 5246 for 1.2) and DTLS
//! (RFC 6347 section 4.1).
//!
//! A TLS stream opens with a handshake record (type 22, version 3.x)
//! holding a ClientHello (handshake type 1). The ClientHello's server name
//! (RFC 6066 section 3) names TLS-based VPNs from a provider list (matched
//! in userspace); it may span several TCP segments and records, so
//! [`client_hello`] reads a reassembled handshake message and says when it
//! needs more.
//!
//! A DTLS record: content type 20..=23, version 1.0 (0xfeff), 1.2 (0xfefd)
//! or the pre-standard 0x0100 that Cisco's AnyConnect and OpenConnect use,
//! a 2-byte epoch, a 6-byte sequence number and a length that fits the
//! datagram, record after record.

use super::{Found, Protocol, bytes};

pub const HANDSHAKE: u8 = 22;
pub const CLIENT_HELLO: u8 = 1;
const RECORD_HEADER: usize = 5;
const DTLS_RECORD_HEADER: usize = 13;

/// The first client payload of a TLS connection.
pub fn client_hello_start(b: &[u8]) -> Option<Found> {
    let len = bytes::u16be(b, 3)?;
    let ok = b[0] == HANDSHAKE
        && b[1] == 3
        && b[2] <= 4
        && len >= 4
        && *b.get(5)? == CLIENT_HELLO
        && *b.get(9)? == 3;
    ok.then_some(Found::sure(Protocol::Tls, "signature:tls-client-hello"))
}

/// The handshake bytes of the leading handshake records of a stream:
/// calls `each` with every record's fragment, in order, and returns the
/// bytes consumed. Stops at the first record that is not a complete
/// handshake record.
pub fn handshake_fragments<'a>(stream: &'a [u8], mut each: impl FnMut(&'a [u8])) -> usize {
    let mut at = 0;
    while let (Some(&kind), Some(len)) = (stream.get(at), bytes::u16be(stream, at + 3)) {
        let end = at + RECORD_HEADER + len as usize;
        if kind != HANDSHAKE || stream.get(at + 1) != Some(&3) || end > stream.len() {
            break;
        }
        each(&stream[at + RECORD_HEADER..end]);
        at = end;
    }
    at
}

/// What a ClientHello says, or why it cannot yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hello<'a> {
    /// Complete: the server name, if it sent one.
    Parsed { server_name: Option<&'a [u8]> },
    /// The handshake message is longer than the bytes so far.
    Incomplete,
    /// Not a well-formed ClientHello.
    Malformed,
}

/// Reads a ClientHello handshake message (type, 3-byte length, body).
pub fn client_hello(hs: &[u8]) -> Hello<'_> {
    if hs.first() != Some(&CLIENT_HELLO) || hs.len() < 4 {
        return if hs.len() < 4 {
            Hello::Incomplete
        } else {
            Hello::Malformed
        };
    }
    let len = u32::from_be_bytes([0, hs[1], hs[2], hs[3]]) as usize;
    if hs.len() < 4 + len {
        return Hello::Incomplete;
    }
    match server_name(&hs[4..4 + len]) {
        Some(name) => Hello::Parsed { server_name: name },
        None => Hello::Malformed,
    }
}

/// The server name extension of a ClientHello body; `Some(None)` when the
/// body is well formed without one.
fn server_name(body: &[u8]) -> Option<Option<&[u8]>> {
    // legacy_version, random
    let mut at = 2 + 32;
    let session = *body.get(at)? as usize;
    at += 1 + session;
    let suites = bytes::u16be(body, at)? as usize;
    at += 2 + suites;
    let compression = *body.get(at)? as usize;
    at += 1 + compression;
    if at == body.len() {
        return Some(None); // no extensions at all
    }
    let ext_len = bytes::u16be(body, at)? as usize;
    at += 2;
    let end = at + ext_len;
    if end > body.len() {
        return None;
    }
    while at + 4 <= end {
        let kind = bytes::u16be(body, at)?;
        let len = bytes::u16be(body, at + 2)? as usize;
        let data = body.get(at + 4..at + 4 + len)?;
        if kind == 0 {
            // server_name_list: (type 0 host_name, length, name)...
            let list = bytes::u16be(data, 0)? as usize;
            let list = data.get(2..2 + list)?;
            if list.first()? != &0 {
                return Some(None);
            }
            let name_len = bytes::u16be(list, 1)? as usize;
            return Some(Some(list.get(3..3 + name_len)?));
        }
        at += 4 + len;
    }
    Some(None)
}

fn dtls_version(v: u16) -> bool {
    matches!(v, 0xfeff | 0xfefd | 0x0100)
}

/// A datagram made of whole DTLS records.
pub fn dtls(b: &[u8], payload_len: u32) -> Option<Found> {
    let total = payload_len as usize;
    let mut at = 0;
    let mut records = 0;
    while at < total {
        let kind = *b.get(at)?;
        let version = bytes::u16be(b, at + 1)?;
        let len = bytes::u16be(b, at + 11)? as usize;
        if !(20..=23).contains(&kind) || !dtls_version(version) || len == 0 {
            return None;
        }
        at += DTLS_RECORD_HEADER + len;
        records += 1;
        if at > total {
            return None;
        }
        // Past the captured bytes: the records so far held together.
        if at >= b.len() {
            break;
        }
    }
    (records > 0 && at <= total).then_some(Found::sure(Protocol::Dtls, "signature:dtls-record"))
}

/// A minimal TLS 1.2-style ClientHello record naming `name` (SNI): for
/// tests and the lab, which forge one.
#[cfg(not(target_arch = "bpf"))]
pub fn client_hello_record(name: &str) -> std::vec::Vec<u8> {
    let mut body = std::vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]);
    body.extend_from_slice(&[1, 0]);
    let mut sni = std::vec::Vec::new();
    sni.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    sni.push(0);
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name.as_bytes());
    let mut ext = std::vec![0x00, 0x0b, 0, 2, 1, 0]; // ec_point_formats first
    ext.extend_from_slice(&[0, 0]);
    ext.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    ext.extend_from_slice(&sni);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = std::vec![CLIENT_HELLO, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut rec = std::vec![HANDSHAKE, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::testing::{run, tcp, udp};
    use super::*;
    use std::vec::Vec;

    #[test]
    fn client_hello_and_its_name() {
        let rec = client_hello_record("vpn.example.com");
        assert_eq!(
            run(&[tcp(true, 443, &rec)]).map(|f| f.protocol),
            Some(Protocol::Tls)
        );
        let mut hs = Vec::new();
        assert_eq!(
            handshake_fragments(&rec, |f| hs.extend_from_slice(f)),
            rec.len()
        );
        assert_eq!(
            client_hello(&hs),
            Hello::Parsed {
                server_name: Some(&b"vpn.example.com"[..])
            }
        );
        assert_eq!(client_hello(&hs[..40]), Hello::Incomplete);
        // Split over two records, as large post-quantum hellos are.
        let (a, b) = hs.split_at(30);
        let mut two = vec![HANDSHAKE, 3, 3, 0, a.len() as u8];
        two.extend_from_slice(a);
        two.extend_from_slice(&[HANDSHAKE, 3, 3]);
        two.extend_from_slice(&(b.len() as u16).to_be_bytes());
        two.extend_from_slice(b);
        let mut joined = Vec::new();
        handshake_fragments(&two, |f| joined.extend_from_slice(f));
        assert_eq!(joined, hs);
        // Not a ClientHello: a ServerHello, or a record from the server.
        let mut server_hello = rec.clone();
        server_hello[5] = 2;
        assert_eq!(run(&[tcp(true, 443, &server_hello)]), None);
        assert_eq!(run(&[tcp(false, 443, &rec)]), None);
    }

    #[test]
    fn dtls_records() {
        let mut hello = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 40];
        hello.extend_from_slice(&[1; 40]);
        let f = run(&[udp(true, 443, &hello)]).unwrap();
        assert_eq!(
            (f.protocol, f.reason),
            (Protocol::Dtls, "signature:dtls-record")
        );
        let mut cisco = hello.clone();
        cisco[1..3].copy_from_slice(&[1, 0]);
        assert!(run(&[udp(true, 443, &cisco)]).is_some());
        let mut long = hello.clone();
        long[12] = 41; // one byte more than the datagram holds
        assert_eq!(run(&[udp(true, 443, &long)]), None);
        let mut tls_version = hello;
        tls_version[1..3].copy_from_slice(&[3, 3]);
        assert_eq!(run(&[udp(true, 443, &tls_version)]), None);
    }
}
