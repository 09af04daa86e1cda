//! A TLS handshake carried inside another TLS session: what a proxy shows
//! when a browser's HTTPS goes through it (Trojan, VLESS, VMess or
//! Shadowsocks over WebSocket+TLS, simple-obfs' TLS mode). After Xue et
//! al., "Fingerprinting Obfuscated Proxy Traffic with Encapsulated TLS
//! Handshakes" (USENIX Security 2024): the inner handshake keeps its sizes
//! and directions inside the outer encryption.
//!
//! The outer session's record layer is in the clear (RFC 8446 section
//! 5.1): this follows it record by record, both ways, and sums the
//! application-data bytes into bursts that alternate direction, starting
//! with the client's first application data. The inner handshake is then:
//! 1. the client's ClientHello: 250 to 2,400 bytes with the proxy's header
//!    (the paper sees 200-550-byte inner ClientHellos; post-quantum key
//!    shares make them about 1.8 kB);
//! 2. the server's flight with its certificate: 600 to 16,000 bytes;
//! 3. the client's Finished, alone or with its first request: 60 to 700
//!    bytes (a TLS 1.3 Finished record is 53 to 80 bytes before the proxy's
//!    own overhead), at most 60% of step 1's largest record and of no
//!    length step 1 had (a kept-alive connection's next request is as
//!    large as its first ones; DNS over TLS pads every query alike);
//! 4. the server again (tickets, the response).
//!
//! An ordinary HTTPS client's first application data is its request
//! (curl's is about 100 bytes; HTTP/2's control frames are under 60), so
//! most ordinary sessions fail step 1 or step 3. Application data under
//! TLS 1.0 or 1.1 is not looked at: the proxies negotiate 1.2 or 1.3. A browser's large first
//! request followed by a second small one would pass, which is why this is
//! a hint: the host verdict wants persistence to the peer before it names
//! a tunnel (Wails et al., NDSS 2024).
//!
//! The outer TLS 1.3 client Finished is itself an application-data record
//! (53 bytes with SHA-256, 69 with SHA-384): the client's first such record
//! of those lengths is skipped.
//!
//! Two variants:
//! - WebSocket inside the outer TLS (v2ray's and shadowsocks' `ws+tls`):
//!   an upgrade request and a short answer (under 600 bytes) come before
//!   the inner handshake; one such exchange is let through.
//! - A fake TLS 1.2 resumption (simple-obfs' TLS mode): the proxy's first
//!   bytes ride in the ClientHello's session ticket, and the server's
//!   answer (ServerHello, ChangeCipherSpec, Finished) carries at once at
//!   least 600 bytes after the ChangeCipherSpec, before the client has
//!   finished its handshake: an inner server flight. A real resumed HTTPS
//!   server waits for the request. (TLS 1.3 servers also send their
//!   encrypted handshake as application data after a ChangeCipherSpec,
//!   so this needs a ServerHello without TLS 1.3's supported_versions.)

use super::{Found, Packet, Protocol};

const RECORD_HEADER: usize = 5;
const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const APPLICATION_DATA: u8 = 23;
/// TLS 1.3 Finished records (SHA-256, SHA-384): 32 or 48 bytes of verify
/// data, 4 of handshake header, 1 of content type, 16 of tag.
const OUTER_FINISHED: [u16; 2] = [53, 69];

const INNER_HELLO: (u32, u32) = (250, 2_400);
const INNER_SERVER_FLIGHT: (u32, u32) = (600, 16_000);
const INNER_FINISHED: (u32, u32) = (60, 700);
/// A WebSocket upgrade request and its answer before the inner handshake.
const PREAMBLE_REQUEST: (u32, u32) = (100, 1_000);
const PREAMBLE_ANSWER_MAX: u32 = 600;
const HANDSHAKE: u8 = 22;
const SERVER_HELLO: u8 = 2;
const SUPPORTED_VERSIONS: u16 = 43;

/// OpenVPN over TCP inside the TLS session (stunnel, or a TLS-wrapping
/// proxy before OpenVPN): its client reset, then the server's reset, which
/// is the client's plus exactly 12 bytes (the acknowledgement: packet id
/// 4, remote session id 8; the length prefix, the HMAC or tls-crypt
/// wrapping are the same both ways, and so is the record overhead), then
/// the client's first control packet carrying its ClientHello.
#[derive(Clone, Debug, Default)]
struct OpenVpnInside {
    client_reset: u16,
    server_records: u8,
    echoed: bool,
    failed: bool,
}

/// Server records after the client's reset among which its echo must be
/// (TLS 1.3 session tickets may come first).
const OPENVPN_ECHO_WITHIN: u8 = 4;
const OPENVPN_ACK: u16 = 12;
/// The client's first control packet: a ClientHello, at most one
/// control-channel fragment (1,250 bytes by default), and the overhead.
const OPENVPN_HELLO: (u16, u16) = (250, 1_400);

impl OpenVpnInside {
    fn record(&mut self, side: usize, len: u16, first: bool) -> Option<Found> {
        if self.failed {
            return None;
        }
        match side {
            0 if first => self.client_reset = len,
            0 => {
                self.failed = true;
                if self.echoed && (OPENVPN_HELLO.0..=OPENVPN_HELLO.1).contains(&len) {
                    return Some(Found::hint(
                        Protocol::OpenVpn,
                        "heuristic:openvpn-resets-inside-tls",
                    ));
                }
            }
            _ if !self.echoed => {
                self.server_records += 1;
                self.echoed = len == self.client_reset + OPENVPN_ACK;
                self.failed = !self.echoed && self.server_records >= OPENVPN_ECHO_WITHIN;
            }
            _ => {}
        }
        None
    }
}

#[derive(Clone, Debug, Default)]
pub struct State {
    /// Bytes of the current record not yet seen, per side (client, server).
    left: [u16; 2],
    /// A record header split across packets: its bytes so far, per side.
    header: [[u8; RECORD_HEADER]; 2],
    header_len: [u8; 2],
    /// The client sent application data (past the outer Finished).
    client_started: bool,
    client_records: u8,
    /// Application-data bytes per burst, from the client's first.
    bursts: [u32; 3],
    /// Bursts begun (the fourth is the server answering step 3).
    burst_count: u8,
    last_side: u8,
    /// The lengths of the first records of the client's first burst: a
    /// Finished never repeats one, a request/response protocol's next
    /// request does (DNS over TLS pads every query alike).
    hello_records: [u16; 4],
    /// One upgrade exchange was let through.
    preamble_used: bool,
    /// The server's first handshake record was a TLS 1.2 (or older)
    /// ServerHello, and the server then changed cipher spec before the
    /// client sent anything after its ClientHello.
    tls12: bool,
    server_resumed: bool,
    /// Application data the server sent before the client finished.
    early_server_data: u32,
    server_records: u8,
    /// The proxy pattern failed (the OpenVPN one may still hold).
    proxy_failed: bool,
    openvpn: OpenVpnInside,
    /// The stream is not a TLS record stream we can follow, or both
    /// patterns are settled: nothing more to see.
    done: bool,
}

impl State {
    /// One payload of a flow named TLS, from its ClientHello on, in order.
    pub fn observe(&mut self, p: &Packet<'_>) -> Option<Found> {
        if self.done {
            return None;
        }
        // A payload captured in part hides the records after it.
        if !p.complete() {
            self.done = true;
            return None;
        }
        let side = p.side();
        let mut at = 0usize;
        let b = p.payload;
        while at < b.len() {
            let left = self.left[side] as usize;
            if left > 0 {
                let take = left.min(b.len() - at);
                self.left[side] -= take as u16;
                at += take;
                continue;
            }
            // A record header, perhaps in two pieces.
            let have = self.header_len[side] as usize;
            let take = (RECORD_HEADER - have).min(b.len() - at);
            self.header[side][have..have + take].copy_from_slice(&b[at..at + take]);
            self.header_len[side] += take as u8;
            at += take;
            if (self.header_len[side] as usize) < RECORD_HEADER {
                break;
            }
            self.header_len[side] = 0;
            let h = self.header[side];
            let len = u16::from_be_bytes([h[3], h[4]]);
            if !(CHANGE_CIPHER_SPEC..=24).contains(&h[0]) || h[1] != 3 || h[2] > 4 {
                self.done = true;
                return None;
            }
            self.left[side] = len;
            if side == 1 && self.server_records == 0 && h[0] == HANDSHAKE {
                self.tls12 = !is_tls13_server_hello(&b[at..]);
            }
            // Application data under TLS 1.0 or 1.1 (deprecated, RFC 8996)
            // is a legacy application's: the proxies' TLS libraries
            // negotiate 1.2 or 1.3.
            if h[0] == APPLICATION_DATA && h[2] < 3 {
                self.proxy_failed = true;
            }
            if let Some(found) = self.record(side, h[0], len) {
                return Some(found);
            }
            if self.done {
                return None;
            }
        }
        None
    }

    fn record(&mut self, side: usize, kind: u8, len: u16) -> Option<Found> {
        if side == 1 {
            self.server_records = self.server_records.saturating_add(1);
        }
        // The fake resumption: the server's data before the client's
        // second flight.
        if self.client_records == 0 && self.tls12 {
            if side == 1 && kind == CHANGE_CIPHER_SPEC {
                self.server_resumed = true;
            } else if side == 1
                && matches!(kind, APPLICATION_DATA | HANDSHAKE)
                && self.server_resumed
            {
                // Its encrypted Finished is a handshake record of under 100
                // bytes; simple-obfs puts its data in that record too.
                self.early_server_data = self.early_server_data.saturating_add(len as u32);
            } else if side == 0 && kind != HANDSHAKE {
                // The client's second flight begins.
                if self.early_server_data >= INNER_SERVER_FLIGHT.0 {
                    self.done = true;
                    return Some(Found::hint(
                        Protocol::TlsInTls,
                        "heuristic:server-data-before-client-finished",
                    ));
                }
                self.client_records = 1;
            }
        }
        if kind == ALERT && self.client_started {
            // The session is closing: whatever the pattern, it is over.
            self.done = true;
            return None;
        }
        if kind != APPLICATION_DATA {
            return None;
        }
        let first = side == 0 && !self.client_started;
        if first {
            self.client_records = self.client_records.saturating_add(1);
            if self.client_records <= 2 && OUTER_FINISHED.contains(&len) {
                return None;
            }
            self.client_started = true;
            self.last_side = 0;
            self.burst_count = 1;
            self.openvpn.record(side, len, true);
        } else if !self.client_started {
            // The server's encrypted handshake and tickets come before.
            return None;
        } else if let Some(found) = self.openvpn.record(side, len, false) {
            self.done = true;
            return Some(found);
        }
        if self.proxy_failed {
            self.done = self.openvpn.failed;
            return None;
        }
        if !first && side as u8 != self.last_side {
            self.last_side = side as u8;
            self.burst_count += 1;
            let fits = match self.burst_count {
                // The first client burst may be an upgrade request instead.
                2 => self.burst_fits(0) || (!self.preamble_used && self.maybe_preamble()),
                3 if !self.preamble_used && self.preamble() => {
                    // The inner handshake starts now, with this record.
                    self.preamble_used = true;
                    self.bursts = [0; 3];
                    self.hello_records = [0; 4];
                    self.burst_count = 1;
                    true
                }
                3 => self.burst_fits(0) && self.burst_fits(1),
                // A Finished is far smaller than the ClientHello before it,
                // even with a request beside it; a browser's next request
                // on a kept-alive connection is as large as its first ones.
                _ => {
                    let hello = *self.hello_records.iter().max().unwrap_or(&0) as u32;
                    self.burst_fits(2) && self.bursts[2] * 5 <= hello * 3
                }
            };
            if !fits {
                self.proxy_failed = true;
                self.done = self.openvpn.failed;
                return None;
            }
            if self.burst_count == 4 {
                self.done = true;
                return Some(Found::hint(
                    Protocol::TlsInTls,
                    "heuristic:inner-tls-handshake-sizes",
                ));
            }
        }
        match self.burst_count {
            1 => {
                if let Some(free) = self.hello_records.iter_mut().find(|l| **l == 0) {
                    *free = len;
                }
            }
            3 if self.hello_records.contains(&len) => {
                self.proxy_failed = true;
                self.done = self.openvpn.failed;
                return None;
            }
            _ => {}
        }
        if let Some(burst) = self.bursts.get_mut(self.burst_count as usize - 1) {
            *burst = burst.saturating_add(len as u32);
        }
        None
    }

    /// The two bursts so far are a WebSocket upgrade and its answer, not
    /// an inner handshake.
    fn preamble(&self) -> bool {
        self.maybe_preamble()
            && self.bursts[1] < PREAMBLE_ANSWER_MAX
            && !(self.burst_fits(0) && self.burst_fits(1))
    }

    fn maybe_preamble(&self) -> bool {
        (PREAMBLE_REQUEST.0..=PREAMBLE_REQUEST.1).contains(&self.bursts[0])
    }

    /// Whether the finished burst `step` (0: the inner ClientHello) has the
    /// size the inner handshake gives it.
    fn burst_fits(&self, step: usize) -> bool {
        let (lo, hi) = [INNER_HELLO, INNER_SERVER_FLIGHT, INNER_FINISHED][step];
        (lo..=hi).contains(&self.bursts[step])
    }
}

/// Whether `body` (a handshake record's, as far as this packet holds it)
/// is a ServerHello that chose TLS 1.3 (RFC 8446 section 4.1.3: the supported_versions extension). Unsure
/// (cut short, malformed) counts as TLS 1.3: the fake-resumption test then
/// stays off.
fn is_tls13_server_hello(body: &[u8]) -> bool {
    let hello = || -> Option<bool> {
        if *body.first()? != SERVER_HELLO {
            return Some(true);
        }
        // type (1), length (3), version (2), random (32), session id.
        let sid_len = *body.get(38)? as usize;
        let mut at = 39 + sid_len + 3; // cipher suite (2), compression (1)
        let ext_len = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]) as usize;
        at += 2;
        let end = at + ext_len;
        while at + 4 <= end {
            let kind = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]);
            let len = u16::from_be_bytes([*body.get(at + 2)?, *body.get(at + 3)?]) as usize;
            if kind == SUPPORTED_VERSIONS {
                return Some(body.get(at + 4..at + 6)? == [3, 4]);
            }
            at += 4 + len;
        }
        Some(false)
    };
    hello().unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{noise, tcp};
    use super::*;

    /// Records of `kind` with these payload lengths, back to back.
    fn records(kind: u8, lens: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &len) in lens.iter().enumerate() {
            out.extend_from_slice(&[kind, 3, 3]);
            out.extend_from_slice(&(len as u16).to_be_bytes());
            out.extend(noise(i as u64 + 7, len));
        }
        out
    }

    fn hello() -> Vec<u8> {
        let mut b = vec![22, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3];
        b.resize(205, 0);
        b
    }

    /// The outer handshake, then `bursts` of application data, alternating
    /// from the client.
    fn session(bursts: &[usize]) -> Option<Found> {
        let sided: Vec<(bool, usize)> = bursts
            .iter()
            .enumerate()
            .map(|(i, &n)| (i % 2 == 0, n))
            .collect();
        session_sided(&sided)
    }

    /// The outer handshake, then application-data records (from the
    /// client?, length).
    fn session_sided(records_after: &[(bool, usize)]) -> Option<Found> {
        let mut s = State::default();
        let server_hello = records(22, &[90]);
        let mut packets: Vec<(bool, Vec<u8>)> = vec![
            (true, hello()),
            (false, [server_hello, records(23, &[1100])].concat()),
            (true, [records(20, &[1]), records(23, &[53])].concat()),
        ];
        for &(from_client, n) in records_after {
            packets.push((from_client, records(23, &[n])));
        }
        packets
            .iter()
            .find_map(|(from_client, b)| s.observe(&tcp(*from_client, 443, b)))
    }

    #[test]
    fn an_inner_handshake_is_seen_through_the_outer_records() {
        let found = session(&[540, 1300, 110, 300]).expect("named");
        assert_eq!(found.protocol, Protocol::TlsInTls);
        assert_eq!(found.confidence, super::super::Confidence::Low);
    }

    #[test]
    fn ordinary_https_is_not() {
        // curl: a small request, the response, then close.
        assert_eq!(session(&[110, 20_000, 24, 24]), None);
        // HTTP/2: the client's preface and request, the server's answer,
        // then a SETTINGS acknowledgement.
        assert_eq!(session(&[300, 5_000, 31, 200]), None);
        // Kept alive: a request, its answer, the next request.
        assert_eq!(session(&[364, 1_795, 364, 1_784]), None);
        // DNS over TLS: padded queries and answers, all alike.
        assert_eq!(
            session_sided(&[
                (true, 149),
                (true, 149),
                (false, 489),
                (false, 489),
                (true, 149),
                (false, 489),
            ]),
            None
        );
        // A stream from the server alone.
        assert_eq!(session(&[]), None);
    }

    #[test]
    fn tls_1_0_application_data_is_a_legacy_app_not_a_proxy() {
        let mut s = State::default();
        let legacy = |len: usize| {
            let mut r = vec![APPLICATION_DATA, 3, 1];
            r.extend((len as u16).to_be_bytes());
            r.extend(noise(len as u64, len));
            r
        };
        s.observe(&tcp(true, 443, &hello()));
        s.observe(&tcp(false, 443, &records(22, &[90, 1100])));
        let mut found = None;
        for (from_client, len) in [(true, 736), (false, 1_200), (true, 160), (false, 256)] {
            found = found.or(s.observe(&tcp(from_client, 443, &legacy(len))));
        }
        assert_eq!(found, None);
    }

    #[test]
    fn a_websocket_upgrade_may_come_first() {
        let found = session(&[210, 150, 700, 1300, 150, 300]).expect("named");
        assert_eq!(found.protocol, Protocol::TlsInTls);
    }

    #[test]
    fn server_data_before_the_client_finished_is_a_fake_resumption() {
        let mut s = State::default();
        // A TLS 1.2 ServerHello: no extensions.
        let mut sh = vec![SERVER_HELLO, 0, 0, 70, 3, 3];
        sh.extend([0u8; 32]);
        sh.push(32);
        sh.extend([7u8; 32]);
        sh.extend([0xc0, 0x2f, 0, 0, 0]);
        let mut flight = vec![22, 3, 3];
        flight.extend((sh.len() as u16).to_be_bytes());
        flight.extend(&sh);
        flight.extend(records(20, &[1]));
        flight.extend(records(22, &[40]));
        flight.extend(records(23, &[1200]));
        assert_eq!(s.observe(&tcp(true, 443, &hello())), None);
        assert_eq!(s.observe(&tcp(false, 443, &flight)), None);
        let next = [records(20, &[1]), records(22, &[40]), records(23, &[200])].concat();
        let found = s.observe(&tcp(true, 443, &next)).expect("named");
        assert_eq!(found.reason, "heuristic:server-data-before-client-finished");
        // A real TLS 1.2 resumption: the server waits for the request.
        let mut s = State::default();
        let quiet = flight[..flight.len() - 1205].to_vec();
        s.observe(&tcp(true, 443, &hello()));
        s.observe(&tcp(false, 443, &quiet));
        assert_eq!(s.observe(&tcp(true, 443, &next)), None);
    }

    #[test]
    fn openvpn_inside_tls_is_its_resets() {
        // stunnel's capture: the client's reset (16 bytes + 17), two
        // session tickets, the server's reset (28 + 17), the client's
        // control packet with its ClientHello.
        let found = session_sided(&[
            (true, 33),
            (false, 282),
            (false, 282),
            (false, 45),
            (true, 322),
            (false, 1241),
        ])
        .expect("named");
        assert_eq!(found.protocol, Protocol::OpenVpn);
        assert_eq!(found.reason, "heuristic:openvpn-resets-inside-tls");
        // A request and an answer that happens to be 12 bytes longer, then
        // a small request: not OpenVPN.
        assert_eq!(session(&[100, 112, 90, 5_000]), None);
    }

    #[test]
    fn records_split_across_packets_are_followed() {
        let mut s = State::default();
        let mut stream = records(23, &[53]);
        stream.extend(records(23, &[540]));
        // The client's records in 100-byte pieces, header split too.
        let mut found = s.observe(&tcp(true, 443, &hello()));
        for piece in stream.chunks(100) {
            found = found.or(s.observe(&tcp(true, 443, piece)));
        }
        for b in [records(23, &[1300]), records(23, &[100])] {
            found = found.or(s.observe(&tcp(b.len() < 200, 443, &b)));
        }
        found = found.or(s.observe(&tcp(false, 443, &records(23, &[500]))));
        assert_eq!(found.map(|f| f.protocol), Some(Protocol::TlsInTls));
    }
}
