//! Identification on captures of real software from the lab
//! (`tests/data/captures`, see its README): each gets its expected name
//! in replay, no ordinary capture gets a VPN or tunnel name, and the XDP
//! program hands identification the same samples as replay.

use std::collections::{BTreeMap, BTreeSet};

use vpnfp::{
    model::FlowId,
    settings::{Settings, SettingsInput},
};
use vpnfp_common::{
    KernelConfig,
    identify::{Class, Protocol},
};
use vpnfp_tests::{
    captures::{lab_capture, read_pcap},
    harness::TestProgram,
    parity::{named, through_engine, through_kernel},
    privileged,
    script::Scripted,
};

/// Each capture and the VPN or tunnel protocols it must be named (none for
/// the ordinary ones), and the ordinary protocols named on its flows.
const CAPTURES: &[(&str, &[&str], &[&str])] = &[
    ("wg.pcap", &["wireguard"], &["dns"]),
    ("ovpnu.pcap", &["openvpn"], &[]),
    ("ovpnt.pcap", &["openvpn"], &[]),
    ("anyc.pcap", &["anyconnect"], &[]),
    ("ipsec.pcap", &["ipsec"], &[]),
    ("ss.pcap", &["fully_encrypted"], &[]),
    ("ssh.pcap", &["ssh"], &[]),
    ("web.pcap", &[], &["dns", "http", "tls"]),
    ("video.pcap", &[], &["tls"]),
    ("dnsq.pcap", &[], &["dns", "quic"]),
    ("tinc.pcap", &["tinc"], &[]),
    ("iodine.pcap", &["dns_tunnel"], &[]),
    ("ptunnel.pcap", &["icmp_tunnel"], &[]),
];

fn config() -> KernelConfig {
    Settings::new(&SettingsInput::defaults())
        .expect("default settings")
        .kernel_config()
}

fn is_tunnel(protocol: &str) -> bool {
    Protocol::ALL
        .iter()
        .find(|p| p.name() == protocol)
        .is_none_or(|p| p.class() != Class::Benign)
}

fn split(names: &BTreeMap<FlowId, String>) -> (BTreeSet<String>, BTreeSet<String>) {
    let all: BTreeSet<String> = names.values().cloned().collect();
    all.into_iter().partition(|p| is_tunnel(p))
}

#[test]
fn every_lab_capture_gets_its_name_in_replay() {
    for (file, tunnels, ordinary) in CAPTURES {
        let script = read_pcap(&lab_capture(file));
        let (run, _) = through_engine(config(), &script);
        let (got_tunnels, got_ordinary) = split(&named(&run.samples));
        let want: BTreeSet<String> = tunnels.iter().map(|s| s.to_string()).collect();
        assert_eq!(got_tunnels, want, "{file}: VPN and tunnel names");
        for p in *ordinary {
            assert!(
                got_ordinary.contains(*p),
                "{file}: {p} not named ({got_ordinary:?})"
            );
        }
    }
}

/// The real OpenVPN handshake with every UDP payload XORed by one key, as
/// the obfuscation patches do: the signatures cannot see it, the opcode
/// pattern can.
#[test]
fn obfuscated_openvpn_from_a_real_handshake() {
    let script: Vec<Scripted> = read_pcap(&lab_capture("ovpnu.pcap"))
        .into_iter()
        .map(|mut s| {
            // Ethernet 14 + IPv4 20 (no options in the lab) + UDP 8.
            if s.frame.len() > 42 && s.frame[23] == 17 {
                for b in &mut s.frame[42..] {
                    *b ^= 0xa7;
                }
            }
            s
        })
        .collect();
    let (run, _) = through_engine(config(), &script);
    let names = named(&run.samples);
    let (tunnels, _) = split(&names);
    assert_eq!(
        tunnels,
        BTreeSet::from(["openvpn".to_string()]),
        "{names:?}"
    );
}

#[test]
fn xdp_hands_identification_what_replay_does() {
    if !privileged("xdp_hands_identification_what_replay_does") {
        return;
    }
    for (file, _, _) in CAPTURES {
        let script = read_pcap(&lab_capture(file));
        let mut program = TestProgram::load(config());
        let kernel = through_kernel(&mut program, &script);
        let (engine, _) = through_engine(config(), &script);
        assert_eq!(
            kernel.samples.len(),
            engine.samples.len(),
            "{file}: samples"
        );
        for (k, e) in kernel.samples.iter().zip(&engine.samples) {
            let fields = |s: &vpnfp_tests::parity::SampleSeen| {
                (s.id, s.up, s.ts_ns, s.payload_len, s.flags, s.scope)
            };
            assert_eq!(fields(k), fields(e), "{file}: a sample differs");
            let first_diff = k.payload.iter().zip(&e.payload).position(|(a, b)| a != b);
            assert!(
                k.payload == e.payload,
                "{file}: a sample's payload differs: kernel {} bytes, replay {}, first difference at {first_diff:?}",
                k.payload.len(),
                e.payload.len()
            );
        }
        assert_eq!(
            named(&kernel.samples),
            named(&engine.samples),
            "{file}: names"
        );
    }
}
