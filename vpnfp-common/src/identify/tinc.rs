//! tinc's meta connection (TCP, port 655 by default; tinc's docs,
//! "The meta-protocol"): each side opens with its ID request in clear,
//! `0 <name> 17\n` in tinc 1.0 and `0 <name> 17.<minor>\n` in 1.1, where
//! the name is letters, digits and underscores. Both sides' ID lines name
//! the flow. The UDP data channel to the same peer
//! and port is named from the meta connection in userspace.

use super::{Found, Packet, Protocol};

/// `0 name 17` or `0 name 17.x`, up to the line's end.
pub fn id_line(b: &[u8]) -> bool {
    let Some(rest) = b.strip_prefix(b"0 ") else {
        return false;
    };
    let name_len = rest
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    if name_len == 0 || name_len > 64 {
        return false;
    }
    let Some(rest) = rest[name_len..].strip_prefix(b" 17") else {
        return false;
    };
    let end = rest.iter().position(|&c| c == b'\n');
    let Some(end) = end else {
        return false;
    };
    let version = &rest[..end];
    version.is_empty()
        || (version[0] == b'.' && version.len() <= 4 && version[1..].iter().all(u8::is_ascii_digit))
}

#[derive(Clone, Debug, Default)]
pub struct State {
    /// Sides that sent an ID line (bit per side).
    ids: u8,
}

impl State {
    /// `index`: payloads this side sent before this one.
    pub fn observe(&mut self, p: &Packet<'_>, index: u8) -> (Option<Found>, bool) {
        if index > 0 {
            return (None, self.ids != 0);
        }
        if !id_line(p.payload) {
            return (None, false);
        }
        self.ids |= 1 << p.side();
        let both = self.ids == 3;
        (
            both.then_some(Found::sure(Protocol::Tinc, "signature:tinc-id-both-ways")),
            true,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, tcp};
    use super::*;

    #[test]
    fn id_lines() {
        assert!(id_line(b"0 home 17\n"));
        assert!(id_line(b"0 office_2 17.7\n"));
        assert!(!id_line(b"0 home 18\n"));
        assert!(!id_line(b"0 ho-me 17\n"));
        assert!(!id_line(b"0 home 17"));
        let f = run(&[
            tcp(true, 655, b"0 alice 17.7\n"),
            tcp(false, 655, b"0 bob 17.7\n"),
        ])
        .unwrap();
        assert_eq!(
            (f.protocol, f.reason),
            (Protocol::Tinc, "signature:tinc-id-both-ways")
        );
        assert_eq!(run(&[tcp(true, 655, b"0 alice 17.7\n")]), None);
    }
}
