//! pcapng: sections of blocks; interface blocks give link type and time
//! resolution, enhanced (and obsolete) packet blocks the packets.

use std::io::Read;

use super::{
    Ahead, Endian, Frame, LOOKAHEAD, LinkType, Packet, ReadError, Source, source::Buffered, to_ns,
    unsupported_link,
};

const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const OBSOLETE_PACKET: u32 = 2;
const SIMPLE_PACKET: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
/// Larger blocks are corruption, not packets.
const MAX_BLOCK: u32 = 16 << 20;

pub fn is_pcapng(magic: [u8; 4]) -> bool {
    u32::from_le_bytes(magic) == SHB
}

struct Interface {
    /// `None`: a link type replay does not read; its packets are an error.
    link: Result<LinkType, u32>,
    per_second: u64,
    offset_secs: i64,
}

pub(super) struct Section {
    endian: Endian,
    interfaces: Vec<Interface>,
}

impl Section {
    #[inline]
    fn u32(&self, b: &[u8], at: usize) -> u32 {
        self.endian.u32(b, at)
    }

    #[inline]
    fn u16(&self, b: &[u8], at: usize) -> u16 {
        self.endian.u16(b, at)
    }
}

pub fn read<R: Read>(
    source: &mut Source<R>,
    each: &mut impl FnMut(Packet<'_>),
) -> Result<(), ReadError> {
    let mut section: Option<Section> = None;
    let mut number = 0;
    let mut walk = Walk {
        at: source.offset(),
        lead: 0,
    };
    loop {
        let at = source.offset();
        let io = |e: std::io::Error| (at, format!("read error: {e}"));
        let have = source.fill(12).map_err(io)?;
        if have == 0 {
            return Ok(());
        }
        if have < 12 {
            return Err((at, format!("truncated block header ({have} bytes)")));
        }
        let head = source.peek(12);
        let raw_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if raw_type == SHB {
            // The section header fixes the byte order of everything after it.
            let magic = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
            let big_endian = match magic {
                BYTE_ORDER_MAGIC => false,
                m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
                _ => return Err((at + 8, "corrupt section header (byte-order magic)".into())),
            };
            section = Some(Section {
                endian: Endian { big: big_endian },
                interfaces: Vec::new(),
            });
        }
        let Some(sec) = section.as_mut() else {
            return Err((
                at,
                "pcapng file does not start with a section header".into(),
            ));
        };
        let block_type = sec.u32(head, 0);
        let block_len = sec.u32(head, 4);
        if block_len < 12 || block_len % 4 != 0 || block_len > MAX_BLOCK {
            return Err((at, format!("corrupt block length {block_len}")));
        }
        let len = block_len as usize;
        let have = source.fill(len).map_err(io)?;
        if have < len {
            return Err((
                at,
                format!("truncated block: {block_len} bytes announced, {have} present"),
            ));
        }
        let block = source.peek(len);
        if sec.u32(block, len - 4) != block_len {
            return Err((at, "corrupt block (trailing length differs)".into()));
        }
        let body = &block[8..len - 4];
        match block_type {
            IDB => {
                if body.len() < 8 {
                    return Err((at, "corrupt interface description block".into()));
                }
                let code = sec.u16(body, 0) as u32;
                let mut iface = Interface {
                    link: LinkType::from_code(code).ok_or(code),
                    per_second: 1_000_000,
                    offset_secs: 0,
                };
                read_interface_options(sec, &body[8..], &mut iface);
                sec.interfaces.push(iface);
            }
            EPB | OBSOLETE_PACKET => {
                let (iface_id, ticks, data) =
                    packet_block(sec, block_type, body).map_err(|e| (at, e))?;
                let iface = sec
                    .interfaces
                    .get(iface_id)
                    .ok_or_else(|| (at, format!("packet of undeclared interface {iface_id}")))?;
                let link = iface.link.map_err(|code| (at, unsupported_link(code)))?;
                let ts_ns = (to_ns(ticks, iface.per_second) as i128
                    + iface.offset_secs as i128 * 1_000_000_000)
                    .clamp(0, u64::MAX as i128) as u64;
                each(Packet {
                    ts_ns,
                    link,
                    data,
                    number,
                    ahead: Ahead {
                        walk: Some(super::Walker::Pcapng(&mut walk, source.buffered(), sec)),
                    },
                });
                number += 1;
                source.consume(len);
                walk.passed(source.offset());
                continue;
            }
            SIMPLE_PACKET => {
                return Err((
                    at,
                    "simple packet blocks carry no timestamp; replay needs one".into(),
                ));
            }
            _ => {}
        }
        source.consume(len);
    }
}

/// A packet block's interface, time (in its interface's units) and
/// frame, from its body (the block less its type, lengths).
fn packet_block<'b>(
    sec: &Section,
    block_type: u32,
    body: &'b [u8],
) -> Result<(usize, u64, &'b [u8]), String> {
    if body.len() < 20 {
        return Err("corrupt packet block".into());
    }
    let (iface_id, caplen) = if block_type == EPB {
        (sec.u32(body, 0) as usize, sec.u32(body, 12) as usize)
    } else {
        (sec.u16(body, 0) as usize, sec.u32(body, 12) as usize)
    };
    let ticks = ((sec.u32(body, 4) as u64) << 32) | sec.u32(body, 8) as u64;
    let data = body
        .get(20..20usize.saturating_add(caplen))
        .ok_or_else(|| format!("corrupt packet block (captured length {caplen})"))?;
    Ok((iface_id, ticks, data))
}

/// Walks blocks ahead of the reader, in what the buffer holds, counting
/// packet blocks to find the packet [`LOOKAHEAD`] on and its interface's
/// link type. It stops at a section or interface block (what they declare
/// is the reader's to learn first) and at anything it cannot read: the
/// reader reports what is wrong when it gets there.
pub(super) struct Walk {
    /// File offset of a block after the current packet, with `lead`
    /// packet blocks between (the current one included).
    at: u64,
    lead: u64,
}

impl Walk {
    #[inline]
    pub(super) fn frame<'a>(&mut self, buffered: Buffered<'a>, sec: &Section) -> Option<Frame<'a>> {
        loop {
            let head = buffered.at(self.at, 8)?;
            let (block_type, block_len) = (sec.u32(head, 0), sec.u32(head, 4));
            if block_type == SHB
                || block_type == IDB
                || block_len < 12
                || block_len % 4 != 0
                || block_len > MAX_BLOCK
            {
                return None;
            }
            let block = buffered.at(self.at, block_len as usize)?;
            if matches!(block_type, EPB | OBSOLETE_PACKET) {
                if self.lead == LOOKAHEAD {
                    let body = &block[8..block.len() - 4];
                    let (iface_id, _, data) = packet_block(sec, block_type, body).ok()?;
                    let link = sec.interfaces.get(iface_id)?.link.ok()?;
                    return Some(Frame { link, data });
                }
                self.lead += 1;
            }
            self.at += block_len as u64;
        }
    }

    /// The current packet's block was consumed; `next` is the next
    /// block's offset.
    #[inline]
    pub(super) fn passed(&mut self, next: u64) {
        if self.lead > 0 {
            self.lead -= 1;
        } else {
            self.at = next;
        }
    }
}

/// if_tsresol (9) and if_tsoffset (14); other options are skipped.
fn read_interface_options(sec: &Section, mut options: &[u8], iface: &mut Interface) {
    while options.len() >= 4 {
        let code = sec.u16(options, 0);
        let len = sec.u16(options, 2) as usize;
        let padded = (len + 3) & !3;
        let Some(value) = options.get(4..4 + len) else {
            return;
        };
        match (code, len) {
            (0, _) => return,
            (9, 1) => {
                let v = value[0];
                let exp = (v & 0x7f) as u32;
                iface.per_second = if v & 0x80 == 0 {
                    10u64.checked_pow(exp).unwrap_or(u64::MAX)
                } else {
                    2u64.checked_pow(exp).unwrap_or(u64::MAX)
                };
            }
            (14, 8) => {
                let b: [u8; 8] = value.try_into().unwrap_or([0; 8]);
                iface.offset_secs = if sec.endian.big {
                    i64::from_be_bytes(b)
                } else {
                    i64::from_le_bytes(b)
                };
            }
            _ => {}
        }
        options = options.get(4 + padded..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{
        LOOKAHEAD, LinkType,
        test_files::{Item, pcapng, read_all},
    };

    #[test]
    fn the_frame_read_ahead_is_the_packet_lookahead_on_with_its_link() {
        // Ethernet and raw IP interfaces, a statistics block now and then,
        // and a third interface (Linux cooked) declared half-way.
        let frames: Vec<Vec<u8>> = (0..3_000u32)
            .map(|i| vec![i as u8; [60, 1514, 9000, 14][i as usize % 4] + i as usize % 3])
            .collect();
        let mut items = vec![Item::Interface(1), Item::Interface(101)];
        let mut packets = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            if i == 1_500 {
                items.push(Item::Interface(113));
            }
            if i % 7 == 0 {
                items.push(Item::Statistics);
            }
            let iface = if i < 1_500 { i % 2 } else { i % 3 } as u32;
            items.push(Item::Packet(iface, frame));
            packets.push((iface, frame));
        }
        let link =
            |iface: u32| [LinkType::Ethernet, LinkType::RawIp, LinkType::LinuxSll][iface as usize];
        for (step, ask_every) in [(usize::MAX, 1), (4_096, 1), (usize::MAX, 5)] {
            let (seen, error) = read_all(pcapng(&items), step, ask_every);
            assert_eq!(error, None);
            assert_eq!(seen.len(), frames.len());
            let mut ahead_given = 0;
            for (i, (number, data, ahead)) in seen.iter().enumerate() {
                assert_eq!((*number, data), (i as u64, &frames[i]));
                if let Some((ahead_link, ahead)) = ahead {
                    ahead_given += 1;
                    let (iface, later) = packets[i + LOOKAHEAD as usize];
                    assert_eq!((*ahead_link, ahead), (link(iface), later), "packet {i}");
                }
            }
            if step == usize::MAX {
                let asked = frames.len() / ask_every as usize;
                assert!(ahead_given > asked * 8 / 10, "{ahead_given} of {asked}");
            }
        }
    }
}
