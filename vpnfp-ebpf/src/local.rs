//! Endpoint mode (`vpnfp run --local`): the process behind each socket,
//! and the socket behind each flow (`vpnfp_common::local`).
//!
//! The cgroup programs see the sockets of the processes in the cgroup they
//! are attached to: created, connecting, sending to an address. The
//! send tracepoint sees every socket send, so a socket handed to another
//! process (fork, descriptor passing) is credited to the one that uses it;
//! it notes only processes below the watched cgroup, and only sockets the
//! cgroup programs gave a cookie. Every program lets the call go on: they
//! only note.

use core::ffi::c_void;

use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_get_current_comm,
        bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_get_socket_cookie,
        bpf_probe_read_kernel,
    },
    macros::{cgroup_sock, cgroup_sock_addr, raw_tracepoint},
    programs::{RawTracePointContext, SockAddrContext, SockContext},
};
use vpnfp_common::local::{LocalConfig, Owner, OwnerRecord};

use crate::maps::{VPNFP_EVENTS, VPNFP_LOCAL, VPNFP_OWNERS};

/// The cgroup programs' verdict: let the call go on.
const PROCEED: i32 = 1;

/// The cookie of the socket behind a cgroup program's context (the
/// helper takes the context in these program types).
#[inline(always)]
fn cookie_of(ctx: *mut c_void) -> u64 {
    // SAFETY: a sock or sock_addr program's context.
    unsafe { bpf_get_socket_cookie(ctx) }
}

#[cgroup_sock(sock_create)]
pub fn vpnfp_sock_create(ctx: SockContext) -> i32 {
    note_owner(cookie_of(ctx.as_ptr()));
    PROCEED
}

#[cgroup_sock_addr(connect4)]
pub fn vpnfp_connect4(ctx: SockAddrContext) -> i32 {
    note_owner(cookie_of(ctx.as_ptr()));
    PROCEED
}

#[cgroup_sock_addr(connect6)]
pub fn vpnfp_connect6(ctx: SockAddrContext) -> i32 {
    note_owner(cookie_of(ctx.as_ptr()));
    PROCEED
}

#[cgroup_sock_addr(sendmsg4)]
pub fn vpnfp_sendmsg4(ctx: SockAddrContext) -> i32 {
    note_owner(cookie_of(ctx.as_ptr()));
    PROCEED
}

#[cgroup_sock_addr(sendmsg6)]
pub fn vpnfp_sendmsg6(ctx: SockAddrContext) -> i32 {
    note_owner(cookie_of(ctx.as_ptr()));
    PROCEED
}

/// A send on any socket, from any process (after it: the tracepoint
/// reports its length): noted only when the process is below the watched
/// cgroup, and the socket has a cookie (one the cgroup programs saw; a
/// cookie is made on first request).
#[raw_tracepoint(tracepoint = "sock_send_length")]
pub fn vpnfp_sock_send(ctx: RawTracePointContext) -> i32 {
    let Some(local) = VPNFP_LOCAL.get(0) else {
        return 0;
    };
    if local.cgroup_id == 0 || local.cookie_offset == 0 || !below(local) {
        return 0;
    }
    // TP_PROTO(struct sock *sk, int ret, int flags).
    let sock: *const u8 = ctx.arg(0);
    if sock.is_null() {
        return 0;
    }
    // SAFETY: a read of kernel memory the helper checks (0 on a fault).
    let cookie = unsafe {
        bpf_probe_read_kernel(sock.wrapping_add(local.cookie_offset as usize) as *const u64)
    }
    .unwrap_or(0);
    if cookie != 0 {
        note_owner(cookie);
    }
    0
}

#[inline(always)]
fn below(local: &LocalConfig) -> bool {
    // SAFETY: helper without pointer arguments.
    unsafe { bpf_get_current_ancestor_cgroup_id(local.cgroup_level as i32) == local.cgroup_id }
}

/// Notes the current process as the socket's owner; a new owner is also
/// sent to userspace (while the process still runs, so its executable can
/// be read). The same owner again costs one lookup.
#[inline(never)]
fn note_owner(cookie: u64) {
    let pid_tgid = bpf_get_current_pid_tgid();
    // SAFETY: a live map value, read only.
    if let Some(known) = unsafe { VPNFP_OWNERS.get(cookie) }
        && known.pid_tgid == pid_tgid
    {
        return;
    }
    let owner = Owner {
        pid_tgid,
        uid_gid: bpf_get_current_uid_gid(),
        // SAFETY: helper without arguments.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    let _ = VPNFP_OWNERS.insert(cookie, owner, 0);
    if let Some(mut entry) = VPNFP_EVENTS.reserve::<OwnerRecord>(0) {
        entry.write(OwnerRecord::of(cookie, owner));
        entry.submit(0);
    }
}
