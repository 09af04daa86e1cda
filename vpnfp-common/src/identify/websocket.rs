//! Proxies dressed as web traffic over plain HTTP.
//!
//! - `websocket_tunnel`: a WebSocket upgrade (RFC 6455 section 4), then
//!   binary frames (opcode 2) whose payloads look fully encrypted (the
//!   test of [`super::encrypted::exempt`], on the unmasked payload), both
//!   ways: v2ray's and shadowsocks' WebSocket transports. Chat and game
//!   sites use WebSockets too, with text frames or structured binary; an
//!   encrypted payload in every frame is the tunnel's mark, and it stays a
//!   hint until the host keeps talking to that one server.
//! - `http_camouflage`: an upgrade request or 101 answer followed at once
//!   by raw random bytes that are not WebSocket frames (simple-obfs' HTTP
//!   mode). RFC 6455 forbids data before the handshake completes and
//!   frames every message after it, so a request carrying an opaque body
//!   and a 101 followed by opaque bytes, both, is no browser's: confirmed
//!   both ways it is named with high confidence; one way, it is a hint.

use super::{Found, Packet, Protocol, encrypted};

/// Enough of a frame or trailing bytes to judge them random.
const OPAQUE_MIN: usize = 32;

#[derive(Clone, Debug, Default)]
pub struct State {
    /// The client asked for an upgrade.
    upgrade: bool,
    /// The server answered 101.
    switched: bool,
    /// Sides that sent opaque bytes right after their HTTP headers.
    raw_after_headers: u8,
    /// Sides that sent an opaque binary frame.
    opaque_frames: u8,
    done: bool,
}

/// Where the HTTP header block ends (after the blank line), if in `b`.
fn headers_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn has_header_value(head: &[u8], name: &[u8], value: &[u8]) -> bool {
    head.split(|&c| c == b'\n').any(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            return false;
        };
        line[..colon].eq_ignore_ascii_case(name)
            && line[colon + 1..]
                .windows(value.len())
                .any(|w| w.eq_ignore_ascii_case(value))
    })
}

/// The first frame in `b`, if it is a binary frame with a payload that
/// looks fully encrypted. Client frames are masked (RFC 6455 5.3).
fn opaque_binary_frame(b: &[u8]) -> bool {
    let (Some(&first), Some(&second)) = (b.first(), b.get(1)) else {
        return false;
    };
    if first & 0x70 != 0 || first & 0x0f != 2 {
        return false;
    }
    let masked = second & 0x80 != 0;
    let (len, mut at) = match second & 0x7f {
        126 => match b.get(2..4) {
            Some(l) => (u16::from_be_bytes([l[0], l[1]]) as usize, 4),
            None => return false,
        },
        // 64-bit lengths: far beyond a sample; the first bytes will do.
        127 => (usize::MAX, 10),
        n => (n as usize, 2),
    };
    let mut key = [0u8; 4];
    if masked {
        match b.get(at..at + 4) {
            Some(k) => key.copy_from_slice(k),
            None => return false,
        }
        at += 4;
    }
    let Some(rest) = b.get(at..) else {
        return false;
    };
    let shown = rest.len().min(len).min(256);
    if shown < OPAQUE_MIN {
        return false;
    }
    let mut payload = [0u8; 256];
    for (i, (out, c)) in payload.iter_mut().zip(&rest[..shown]).enumerate() {
        *out = c ^ key[i % 4];
    }
    !encrypted::exempt(&payload[..shown])
}

fn opaque(b: &[u8]) -> bool {
    b.len() >= OPAQUE_MIN && !encrypted::exempt(&b[..b.len().min(256)])
}

impl State {
    /// One payload of a flow named HTTP, from its request on.
    pub fn observe(&mut self, p: &Packet<'_>) -> Option<Found> {
        if self.done {
            return None;
        }
        let side = p.side();
        let b = p.payload;
        let mut body: &[u8] = &[];
        if !self.upgrade {
            // The request: an upgrade to WebSocket, or nothing to see.
            let Some(end) = headers_end(b) else {
                self.done = true;
                return None;
            };
            if !p.from_client || !has_header_value(&b[..end], b"upgrade", b"websocket") {
                self.done = true;
                return None;
            }
            self.upgrade = true;
            body = &b[end..];
        } else if !self.switched && !p.from_client {
            if !b.starts_with(b"HTTP/1.1 101") && !b.starts_with(b"HTTP/1.0 101") {
                self.done = true;
                return None;
            }
            self.switched = true;
            body = headers_end(b).map_or(&[][..], |end| &b[end..]);
        } else if opaque_binary_frame(b) {
            self.opaque_frames |= 1 << side;
        } else if opaque(b) && self.raw_after_headers & (1 << side) != 0 {
            // More raw bytes from a side that already began with them.
        } else if self.opaque_frames == 0 && self.raw_after_headers == 0 {
            // Frames that are not opaque: an ordinary WebSocket.
            self.done = true;
            return None;
        }
        if !body.is_empty() {
            if opaque_binary_frame(body) {
                self.opaque_frames |= 1 << side;
            } else if opaque(body) {
                self.raw_after_headers |= 1 << side;
            }
        }
        if self.raw_after_headers == 3 {
            self.done = true;
            return Some(Found::sure(
                Protocol::HttpCamouflage,
                "signature:random-bytes-around-a-websocket-upgrade",
            ));
        }
        if self.switched && self.raw_after_headers != 0 && self.opaque_frames == 0 {
            self.done = true;
            return Some(Found::hint(
                Protocol::HttpCamouflage,
                "heuristic:random-bytes-after-http-headers",
            ));
        }
        if self.opaque_frames == 3 {
            self.done = true;
            return Some(Found::hint(
                Protocol::WebSocketTunnel,
                "heuristic:opaque-websocket-frames-both-ways",
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{noise, tcp};
    use super::*;

    const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: cdn.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n";
    const SWITCHED: &[u8] =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

    fn frame(masked: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        let mask_bit = if masked { 0x80 } else { 0 };
        if payload.len() < 126 {
            f.push(mask_bit | payload.len() as u8);
        } else {
            f.push(mask_bit | 126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        let key = [1, 2, 3, 4];
        if masked {
            f.extend_from_slice(&key);
        }
        f.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, c)| if masked { c ^ key[i % 4] } else { *c }),
        );
        f
    }

    fn run(packets: &[(bool, Vec<u8>)]) -> Option<Found> {
        let mut s = State::default();
        packets.iter().find_map(|(c, b)| s.observe(&tcp(*c, 80, b)))
    }

    #[test]
    fn opaque_frames_both_ways_are_a_tunnel() {
        let found = run(&[
            (true, UPGRADE.to_vec()),
            (false, SWITCHED.to_vec()),
            (true, frame(true, 2, &noise(1, 600))),
            (false, frame(false, 2, &noise(2, 1200))),
        ])
        .expect("named");
        assert_eq!(
            (found.protocol, found.confidence),
            (Protocol::WebSocketTunnel, super::super::Confidence::Low)
        );
    }

    #[test]
    fn a_chat_websocket_is_not() {
        let text = b"{\"type\":\"message\",\"body\":\"hello there, how are you today?\"}";
        assert_eq!(
            run(&[
                (true, UPGRADE.to_vec()),
                (false, SWITCHED.to_vec()),
                (true, frame(true, 1, text)),
                (false, frame(false, 2, &noise(2, 400))),
                (true, frame(true, 1, text)),
            ]),
            None
        );
        // A plain request is never a tunnel.
        assert_eq!(
            run(&[
                (true, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
                (false, noise(3, 900)),
            ]),
            None
        );
    }

    #[test]
    fn random_bytes_around_an_upgrade_are_camouflage() {
        let request = [UPGRADE, &noise(4, 600)].concat();
        let answer = [SWITCHED, &noise(5, 900)].concat();
        let found = run(&[(true, request.clone()), (false, answer)]).expect("named");
        assert_eq!(
            (found.protocol, found.confidence),
            (Protocol::HttpCamouflage, super::super::Confidence::High)
        );
        // One way only: a hint.
        let found = run(&[
            (true, UPGRADE.to_vec()),
            (false, [SWITCHED, &noise(6, 900)].concat()),
        ])
        .expect("named");
        assert_eq!(found.confidence, super::super::Confidence::Low);
    }
}
