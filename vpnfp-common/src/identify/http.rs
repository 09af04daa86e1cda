//! HTTP/1.x requests (RFC 9112 section 3): `method SP request-target SP
//! HTTP/1.x` on the first line of the client's first payload.

use super::{Found, Protocol};

const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"CONNECT ",
    b"PATCH ",
    b"TRACE ",
];

/// Whether the payload starts with an HTTP method and a space.
pub fn starts_with_method(b: &[u8]) -> bool {
    METHODS.iter().any(|m| b.starts_with(m))
}

pub fn request(b: &[u8]) -> Option<Found> {
    if !starts_with_method(b) {
        return None;
    }
    let line_end = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
    let line = &b[..line_end];
    let version = line.windows(8).any(|w| w == b" HTTP/1.");
    version.then_some(Found::sure(Protocol::Http, "signature:http-request"))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, tcp};
    use super::*;

    #[test]
    fn requests() {
        let f = run(&[tcp(
            true,
            8080,
            b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n",
        )])
        .unwrap();
        assert_eq!(f.protocol, Protocol::Http);
        assert_eq!(run(&[tcp(true, 8080, b"GET away\r\n")]), None);
        // The server's first payload is not a request.
        assert_eq!(run(&[tcp(false, 8080, b"GET / HTTP/1.1\r\n\r\n")]), None);
    }
}
