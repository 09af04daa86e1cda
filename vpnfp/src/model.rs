//! What the sources hand on, whatever they are (the kernel programs through
//! their ring buffers and maps, or the userspace engine on NFQUEUE packets
//! and capture files): family-erased, in Unix time.

use std::{borrow::Cow, net::IpAddr};

use vpnfp_common::{
    Address, Direction, FlowKey, FlowValue, Reason, Scope, V6,
    concentration::ConcentrationClose,
    net::addr::ip_from_record,
    record::{ConcentrationRecord, FlowKeyRecord, WindowCloseRecord},
    window::WindowClose,
};

/// Which path saw the packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Xdp,
    Nfqueue,
    Replay,
}

impl Mode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Xdp => "xdp",
            Mode::Nfqueue => "nfqueue",
            Mode::Replay => "replay",
        }
    }
}

/// A flow's 5-tuple, host side first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId {
    pub host: IpAddr,
    pub peer: IpAddr,
    pub proto: u8,
    pub host_port: u16,
    pub peer_port: u16,
}

impl FlowId {
    pub fn of<A: Address>(key: &FlowKey<A>) -> Self {
        Self::from_record(&FlowKeyRecord::of(key))
    }

    pub fn from_record(key: &FlowKeyRecord) -> Self {
        Self {
            host: ip_from_record(key.family, key.host),
            peer: ip_from_record(key.family, key.peer),
            proto: key.proto,
            host_port: key.host_port,
            peer_port: key.peer_port,
        }
    }

    /// The kernel's key for this flow, by family.
    pub fn record(&self) -> FlowKeyRecord {
        match (self.host, self.peer) {
            (IpAddr::V4(h), IpAddr::V4(p)) => FlowKeyRecord::of(&FlowKey {
                host: u32::from(h),
                peer: u32::from(p),
                host_port: self.host_port,
                peer_port: self.peer_port,
                proto: self.proto,
                _pad: [0; 3],
            }),
            (h, p) => FlowKeyRecord::of(&FlowKey {
                host: V6(to_v6(h)),
                peer: V6(to_v6(p)),
                host_port: self.host_port,
                peer_port: self.peer_port,
                proto: self.proto,
                _pad: [0; 3],
            }),
        }
    }
}

fn to_v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

/// Why a flow record was emitted (IPFIX's flowEndReason, and exit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// A FIN was seen and the flow then went quiet.
    Fin,
    /// An RST was seen.
    Rst,
    /// No packet for `--flow-idle` seconds.
    Idle,
    /// A long flow's periodic delta (`--flow-active`): it goes on.
    ActiveTimeout,
    /// Dropped to stay within `--max-flows` (least recently seen first).
    Evicted,
    /// vpnfp stopped, or the capture ended.
    Exit,
}

impl EndReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::Idle => "idle",
            EndReason::ActiveTimeout => "active_timeout",
            EndReason::Evicted => "evicted",
            EndReason::Exit => "exit",
        }
    }

    /// A flow that ended by FIN or RST, or went idle after one.
    pub fn closed(value: &FlowValue) -> Self {
        if value.state & vpnfp_common::flow::state::RESET != 0 {
            EndReason::Rst
        } else {
            EndReason::Fin
        }
    }
}

/// One flow record: the counts of a whole flow, or of one period of a long
/// one (active timeout), with first and last seen in Unix nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowEnded {
    pub id: FlowId,
    pub value: FlowValue,
    pub end: EndReason,
}

impl FlowEnded {
    pub fn scope(&self) -> Scope {
        Scope::from_u8(self.value.scope)
    }
}

/// One payload-carrying packet of a flow, for identification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample<'a> {
    pub id: FlowId,
    pub direction: Direction,
    pub ts_ns: u64,
    /// The payload's length as the IP header says (`payload` may hold less).
    pub payload_len: u32,
    pub payload: Cow<'a, [u8]>,
    /// [`vpnfp_common::record::sample_flags`]: AH, from the initiator,
    /// TCP start seen.
    pub flags: u8,
    pub scope: Scope,
    /// The Ethernet address of the LAN device that sent it, where the
    /// source knows it (XDP).
    pub sender: Option<[u8; 6]>,
}

impl Sample<'_> {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// The process behind a flow (`run --local`): the one that last created,
/// connected or sent on the flow's socket.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Process {
    /// The process id (the kernel's tgid).
    pub pid: u32,
    /// Its command name (`comm`, at most 15 bytes).
    pub comm: String,
    /// Its executable, read from /proc while it ran (`None` if it had
    /// already gone, or is a kernel thread).
    pub exe: Option<String>,
    pub uid: u32,
    /// Its cgroup (v2) path, e.g. a container's or a systemd unit's.
    pub cgroup: Option<String>,
}

impl Process {
    /// `openvpn (pid 812, /usr/sbin/openvpn)`.
    pub fn human(&self) -> String {
        match &self.exe {
            Some(exe) => format!("{} (pid {}, {exe})", self.comm, self.pid),
            None => format!("{} (pid {})", self.comm, self.pid),
        }
    }

    /// A policy's program names it: its executable path, or its command
    /// name.
    pub fn is(&self, program: &str) -> bool {
        self.exe.as_deref() == Some(program) || self.comm == program
    }
}

/// A report's process: not asked for (no `--local`: no field), not known
/// (`null`: no socket of a watched process sent it), no socket at all
/// (`null`, and `no_socket`: forwarded), or known. The kernel's own
/// replies (RSTs, ICMP errors) leave through its control sockets, which no
/// process owns: `Unknown`.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ProcessField {
    #[default]
    Off,
    Unknown,
    NoSocket,
    Known(std::sync::Arc<Process>),
}

impl ProcessField {
    pub fn is_off(&self) -> bool {
        matches!(self, ProcessField::Off)
    }

    pub fn is_no_socket(&self) -> bool {
        matches!(self, ProcessField::NoSocket)
    }

    pub fn known(&self) -> Option<&Process> {
        self.arc().map(|p| &**p)
    }

    pub fn arc(&self) -> Option<&std::sync::Arc<Process>> {
        match self {
            ProcessField::Known(p) => Some(p),
            _ => None,
        }
    }

    /// For a log line: `, process curl (pid 5, /usr/bin/curl)`, or
    /// `, no process` where `--local` knows none.
    pub fn human(&self) -> String {
        match self {
            ProcessField::Off => String::new(),
            ProcessField::Unknown => ", no process".to_string(),
            ProcessField::NoSocket => ", no socket (forwarded)".to_string(),
            ProcessField::Known(p) => format!(", process {}", p.human()),
        }
    }
}

impl serde::Serialize for ProcessField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ProcessField::Known(p) => p.serialize(s),
            _ => s.serialize_none(),
        }
    }
}

/// What a source reports.
#[derive(Clone, Debug)]
pub enum Fact<'a> {
    Window(WindowClose<IpAddr>),
    Concentration(ConcentrationClose<IpAddr>),
    Flow(FlowEnded),
    Sample(Sample<'a>),
    /// `--local`: a process got a socket (for per-program policy).
    Process(std::sync::Arc<Process>),
    /// `--local`: the process behind a flow (or that no socket sent it),
    /// handed on before the flow's record and before its samples are
    /// identified.
    Attributed(FlowId, ProcessField),
}

impl Fact<'_> {
    /// The fact with its own copy of any borrowed payload (to cross a
    /// channel).
    pub fn into_owned(self) -> Fact<'static> {
        match self {
            Fact::Window(w) => Fact::Window(w),
            Fact::Concentration(c) => Fact::Concentration(c),
            Fact::Flow(f) => Fact::Flow(f),
            Fact::Sample(s) => Fact::Sample(Sample {
                payload: Cow::Owned(s.payload.into_owned()),
                ..s
            }),
            Fact::Process(p) => Fact::Process(p),
            Fact::Attributed(id, p) => Fact::Attributed(id, p),
        }
    }
}

pub fn window_from_record(
    r: &WindowCloseRecord,
    to_unix: impl Fn(u64) -> u64,
) -> WindowClose<IpAddr> {
    WindowClose {
        host: ip_from_record(r.family, r.host),
        peer: ip_from_record(r.family, r.peer),
        window_start_ns: to_unix(r.window_start_ns),
        window_end_ns: to_unix(r.window_end_ns),
        count_this: r.count_this,
        count_prev: r.count_prev,
    }
}

pub fn concentration_from_record(
    r: &ConcentrationRecord,
    to_unix: impl Fn(u64) -> u64,
) -> ConcentrationClose<IpAddr> {
    ConcentrationClose {
        host: ip_from_record(r.family, r.host),
        peer: ip_from_record(r.family, r.peer),
        window_start_ns: to_unix(r.window_start_ns),
        window_end_ns: to_unix(r.window_end_ns),
        packets: r.packets,
        peer_packets: r.peer_packets,
    }
}

/// A family's window close as the family-erased one (times unchanged).
pub fn window_erased<A: IntoIp>(c: &WindowClose<A>) -> WindowClose<IpAddr> {
    WindowClose {
        host: c.host.ip(),
        peer: c.peer.ip(),
        window_start_ns: c.window_start_ns,
        window_end_ns: c.window_end_ns,
        count_this: c.count_this,
        count_prev: c.count_prev,
    }
}

pub fn concentration_erased<A: IntoIp>(c: &ConcentrationClose<A>) -> ConcentrationClose<IpAddr> {
    ConcentrationClose {
        host: c.host.ip(),
        peer: c.peer.ip(),
        window_start_ns: c.window_start_ns,
        window_end_ns: c.window_end_ns,
        packets: c.packets,
        peer_packets: c.peer_packets,
    }
}

/// A family's address as `IpAddr`.
pub trait IntoIp: Address {
    fn ip(self) -> IpAddr {
        ip_from_record(Self::FAMILY, self.to_bytes16())
    }
}

impl IntoIp for u32 {}
impl IntoIp for V6 {}

/// A closed window with the research's decision on it (`judge::window`
/// decides).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowReport {
    pub mode: Mode,
    pub host: IpAddr,
    pub peer: IpAddr,
    /// Unix time, nanoseconds.
    pub window_start_ns: u64,
    pub window_end_ns: u64,
    pub count_this: u64,
    pub count_prev: u64,
    /// `Some` when the window makes the host a suspected VPN user.
    pub reason: Option<Reason>,
}

impl WindowReport {
    pub fn window_ns(&self) -> u64 {
        self.window_end_ns.saturating_sub(self.window_start_ns)
    }
}

/// One flow record as reported.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowReport {
    pub mode: Mode,
    pub flow: FlowEnded,
    /// The VPN or other protocol identified on the flow, if any.
    pub protocol: Option<&'static str>,
    /// A weak pattern seen on the flow that names nothing by itself (see
    /// `Naming::is_hint`).
    pub hint: Option<&'static str>,
    /// The peer's name, when one was learnt.
    pub peer_name: Option<String>,
    /// `--local`: the process behind it.
    pub process: ProcessField,
}

/// One mode's numbers, as last published.
#[derive(Clone, Copy, Debug, Default)]
pub struct ModeMetrics {
    pub counters: vpnfp_common::Counters,
    pub hosts_tracked: u64,
    pub hosts_evicted: u64,
    pub flows_tracked: u64,
    /// NFQUEUE: packets the rules matched that never reached vpnfp.
    pub missed: Option<u64>,
}
