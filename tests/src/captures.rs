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

/// The protocols nDPI's `ndpiReader` names in a capture, with their flow
/// counts ("WireGuard x1, TLS x2"), for comparisons.
pub fn ndpi_protocols(pcap: &Path) -> Result<String, String> {
    let out = std::process::Command::new("ndpiReader")
        .args(["-v", "2", "-i"])
        .arg(pcap)
        .output()
        .map_err(|e| format!("ndpiReader: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut counts: std::collections::BTreeMap<String, u32> = Default::default();
    for line in text.lines() {
        // Flow lines: "  1  UDP a:p <-> b:p [proto: 206/WireGuard][...".
        if let Some(rest) = line.split("[proto: ").nth(1)
            && let Some(proto) = rest.split(']').next()
        {
            let name = proto.split('/').nth(1).unwrap_or(proto).to_string();
            *counts.entry(name).or_default() += 1;
        }
    }
    Ok(counts
        .iter()
        .map(|(p, n)| format!("{p} x{n}"))
        .collect::<Vec<_>>()
        .join(", "))
}

/// The frames of a pcap file (Ethernet), as ingress frames in capture
/// order, timestamps in Unix nanoseconds.
pub fn read_pcap(path: &Path) -> Vec<Scripted> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = pcap_file::pcap::PcapReader::new(file)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        let packet = packet.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        frames.push(Scripted::ingress(
            packet.timestamp.as_nanos() as u64,
            packet.data.into_owned(),
        ));
    }
    frames
}

/// The lab captures checked into `tests/data/captures`.
pub fn lab_capture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/captures")
        .join(name)
}
