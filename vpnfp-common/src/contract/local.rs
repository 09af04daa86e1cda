//! Endpoint mode's contract (`vpnfp run --local`): which process owns each
//! socket, and which socket sent each flow's packets.
//!
//! The socket programs (cgroup `sock_create`, `connect4/6`, `sendmsg4/6`,
//! and the `sock_send_length` tracepoint for a socket used by a process
//! that did not create it, e.g. after fork) note the
//! current process under the socket's cookie in [`OWNERS`], and send an
//! [`OwnerRecord`] when a socket gets a new owner, so userspace reads the
//! process's executable while it still runs. The TC egress program notes
//! under each flow key the cookie of the socket that sent it
//! ([`SOCKETS4`]/[`SOCKETS6`]); a packet no socket sent (forwarded) has
//! cookie 0 and notes [`NO_SOCKET`]. The kernel's own replies (RSTs, ICMP
//! errors) leave through its control sockets: a cookie no process owns.

use crate::record::{RecordHeader, kind};

pub const PROGRAM_SOCK_CREATE: &str = "vpnfp_sock_create";
pub const PROGRAM_CONNECT4: &str = "vpnfp_connect4";
pub const PROGRAM_CONNECT6: &str = "vpnfp_connect6";
pub const PROGRAM_SENDMSG4: &str = "vpnfp_sendmsg4";
pub const PROGRAM_SENDMSG6: &str = "vpnfp_sendmsg6";
/// The raw tracepoint program on every socket send (`sock_send_length`,
/// since Linux 6.4), and its tracepoint. fentry on tcp_sendmsg would take
/// the cookie by helper, but kernels that refuse tracing programs (EPERM
/// from a security hook, seen here) or lack kprobes (no kprobe events,
/// seen here too) still run raw tracepoints.
pub const PROGRAM_SOCK_SEND: &str = "vpnfp_sock_send";
pub const SOCK_SEND_TRACEPOINT: &str = "sock_send_length";

/// `LruHashMap<u64 socket cookie, Owner>`.
pub const OWNERS: &str = "VPNFP_OWNERS";
/// `LruHashMap<FlowKey<u32>, u64 socket cookie>` and its IPv6 twin.
pub const SOCKETS4: &str = "VPNFP_SOCKETS4";
pub const SOCKETS6: &str = "VPNFP_SOCKETS6";
/// `HashMap<u32 tgid, ProgramBlock>`: what a policy does to a process's
/// packets (read by TC egress when a policy is loaded in endpoint mode).
pub const PROGRAM_BLOCKS: &str = "VPNFP_PROGRAM_BLOCKS";
/// `Array<LocalConfig>`, one entry.
pub const LOCAL: &str = "VPNFP_LOCAL";

/// The value a flow's entry in [`SOCKETS4`]/[`SOCKETS6`] has when its
/// packets left without a socket (forwarded); a socket's own packets
/// replace it.
pub const NO_SOCKET: u64 = u64::MAX;

pub const MAX_OWNERS: u32 = 65_536;
pub const MAX_SOCKET_FLOWS: u32 = 65_536;
pub const MAX_PROGRAM_BLOCKS: u32 = 4_096;

/// The process that last created, connected or sent on a socket.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Owner {
    /// `bpf_get_current_pid_tgid`: tgid (the process id) high, thread id low.
    pub pid_tgid: u64,
    /// `bpf_get_current_uid_gid`: gid high, uid low.
    pub uid_gid: u64,
    /// The process's cgroup (v2) id: the inode of its cgroup directory.
    pub cgroup_id: u64,
    /// The thread's command name (`comm`), NUL-padded.
    pub comm: [u8; 16],
}

impl Owner {
    pub const fn pid(&self) -> u32 {
        (self.pid_tgid >> 32) as u32
    }

    pub const fn uid(&self) -> u32 {
        self.uid_gid as u32
    }
}

/// A socket got a new owner.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnerRecord {
    pub header: RecordHeader,
    pub cookie: u64,
    pub owner: Owner,
}

impl OwnerRecord {
    pub const fn of(cookie: u64, owner: Owner) -> Self {
        Self {
            header: RecordHeader::of::<Self>(kind::OWNER),
            cookie,
            owner,
        }
    }
}

/// Where the socket programs watch: the cgroup `--local` attached them to,
/// for the send tracepoint, which sees every process (it notes only
/// processes below it).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LocalConfig {
    pub cgroup_id: u64,
    /// Its depth below the cgroup v2 root (the root is 0).
    pub cgroup_level: u32,
    /// Where `struct sock` keeps its cookie (`skc_cookie`), from the
    /// kernel's BTF: the send tracepoint reads it there (0: unknown, the
    /// tracepoint is off).
    pub cookie_offset: u32,
}

/// Drop this process's packets ([`crate::block::ACTION_DROP`]), count them
/// ([`crate::block::ACTION_COUNT`]), or [`ACTION_ALLOW`]: the process is
/// allowed, and no pair block applies to its packets.
pub const ACTION_ALLOW: u32 = 3;

/// At most this many peer ports per program block.
pub const PROGRAM_BLOCK_PORTS: usize = 8;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ProgramBlock {
    pub action: u32,
    /// 0: every peer port; else the first `port_count` of `ports`.
    pub port_count: u32,
    pub ports: [u16; PROGRAM_BLOCK_PORTS],
    /// Packets matched (dropped, or counted in a dry run).
    pub packets: u64,
}

impl ProgramBlock {
    #[inline(always)]
    pub fn covers(&self, peer_port: u16) -> bool {
        if self.port_count == 0 {
            return true;
        }
        let mut i = 0;
        while i < PROGRAM_BLOCK_PORTS {
            if (i as u32) < self.port_count && self.ports[i] == peer_port {
                return true;
            }
            i += 1;
        }
        false
    }
}

const _: () = assert!(core::mem::size_of::<Owner>() == 40);
const _: () = assert!(core::mem::size_of::<OwnerRecord>() == 56);
const _: () = assert!(core::mem::size_of::<ProgramBlock>() == 32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_covers_its_ports_or_every_port() {
        let any = ProgramBlock::default();
        assert!(any.covers(443) && any.covers(0));
        let mut some = ProgramBlock {
            port_count: 2,
            ..ProgramBlock::default()
        };
        some.ports[..2].copy_from_slice(&[443, 8443]);
        assert!(some.covers(443) && some.covers(8443));
        assert!(!some.covers(80) && !some.covers(0));
    }
}
