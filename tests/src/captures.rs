//! Writing capture files for replay tests, with pcap-file (an independent
//! implementation of the formats vpnfp reads).

use std::{borrow::Cow, fs::File, io::BufWriter, path::Path, time::Duration};

use pcap_file::{
    DataLink, Endianness, TsResolution,
    pcap::{PcapHeader, PcapPacket, PcapWriter},
    pcapng::{
        PcapNgWriter,
        blocks::{
            enhanced_packet::EnhancedPacketBlock,
            interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption},
        },
    },
};

use crate::script::Scripted;

pub fn write_pcap(path: &Path, link: DataLink, frames: &[Scripted], resolution: TsResolution) {
    let header = PcapHeader {
        datalink: link,
        ts_resolution: resolution,
        endianness: Endianness::Little,
        ..PcapHeader::default()
    };
    let file = BufWriter::new(File::create(path).expect("create pcap"));
    let mut writer = PcapWriter::with_header(file, header).expect("pcap header");
    for f in frames {
        writer
            .write_packet(&PcapPacket::new(
                Duration::from_nanos(f.ts_ns),
                f.frame.len() as u32,
                &f.frame,
            ))
            .expect("write packet");
    }
}

/// Nanosecond timestamps (pcap-file writes packet times in nanoseconds, so
/// the interface declares if_tsresol = 9).
pub fn write_pcapng(path: &Path, link: DataLink, frames: &[Scripted]) {
    let file = BufWriter::new(File::create(path).expect("create pcapng"));
    let mut writer = PcapNgWriter::new(file).expect("pcapng section");
    writer
        .write_pcapng_block(InterfaceDescriptionBlock {
            linktype: link,
            snaplen: 0,
            options: vec![InterfaceDescriptionOption::IfTsResol(9)],
        })
        .expect("interface block");
    for f in frames {
        writer
            .write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_nanos(f.ts_ns),
                original_len: f.frame.len() as u32,
                data: Cow::Borrowed(&f.frame),
                options: vec![],
            })
            .expect("packet block");
    }
}
