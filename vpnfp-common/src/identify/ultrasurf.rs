//! UltraSurf, a circumvention proxy with no published protocol. Its
//! connections open with one fixed 8-byte value (`cc 1c 30 41 5b a4 38
//! 66`), as seen in real captures and as nDPI's dissector matches; 64 fixed
//! bits at a stream's start do not occur by chance.

use super::{Found, Packet, Protocol};

const MAGIC: [u8; 8] = [0xcc, 0x1c, 0x30, 0x41, 0x5b, 0xa4, 0x38, 0x66];

/// A side's first payload.
pub fn first_payload(p: &Packet<'_>) -> Option<Found> {
    p.payload.starts_with(&MAGIC).then_some(Found::sure(
        Protocol::UltraSurf,
        "signature:ultrasurf-magic",
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{noise, run, tcp};
    use super::*;

    #[test]
    fn the_magic_either_way() {
        let mut m = MAGIC.to_vec();
        m.extend(noise(1, 100));
        assert_eq!(
            run(&[tcp(false, 50053, &m)]).map(|f| f.protocol),
            Some(Protocol::UltraSurf)
        );
        m[7] ^= 1;
        assert_ne!(
            run(&[tcp(false, 50053, &m)]).map(|f| f.protocol),
            Some(Protocol::UltraSurf)
        );
    }
}
