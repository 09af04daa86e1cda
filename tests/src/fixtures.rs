//! The research's parse vectors (copied from shared/fixtures into tests/data).

use std::{net::Ipv4Addr, path::Path};

use pcap_file::pcap::PcapReader;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Both ends internal.
    Internal,
    /// (host, peer) after orientation.
    Analysed { host: Ipv4Addr, peer: Ipv4Addr },
    /// Not IPv4.
    NotIpv4,
}

pub struct Vector {
    pub frame_no: u32,
    pub frame: Vec<u8>,
    pub expected: Expected,
}

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

/// Frames of parse-vectors.pcap with the expectation of parse-vectors.tsv.
pub fn parse_vectors() -> Vec<Vector> {
    let tsv = std::fs::read_to_string(data("parse-vectors.tsv")).expect("parse-vectors.tsv");
    let file = std::fs::File::open(data("parse-vectors.pcap")).expect("parse-vectors.pcap");
    let mut reader = PcapReader::new(file).expect("pcap header");
    let mut frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        frames.push(packet.expect("pcap record").data.into_owned());
    }
    let vectors: Vec<Vector> = tsv
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let frame_no: u32 = cols[0].parse().expect("frame number");
            let ip = |s: &str| s.parse::<Ipv4Addr>().expect("address");
            let expected = match cols[3] {
                "INTERNAL" => Expected::Internal,
                "OUTGOING" => Expected::Analysed {
                    host: ip(cols[1]),
                    peer: ip(cols[2]),
                },
                "INCOMING" => Expected::Analysed {
                    host: ip(cols[2]),
                    peer: ip(cols[1]),
                },
                "-" => Expected::NotIpv4,
                other => panic!("unknown direction {other}"),
            };
            Vector {
                frame_no,
                frame: frames[frame_no as usize - 1].clone(),
                expected,
            }
        })
        .collect();
    assert_eq!(vectors.len(), frames.len(), "one row per frame");
    vectors
}
