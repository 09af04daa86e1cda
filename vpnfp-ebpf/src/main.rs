//! The fingerprint in the kernel: an XDP program on the LAN-facing interface
//! (packets arriving: what the LAN hosts send) and a TC egress classifier on
//! the same interface (packets leaving: the replies to them, after de-NAT).
//! Both run the same function into the same maps. They only parse
//! (bounds-checked) and count; the research's logic, the flows and the
//! concentration mode are `vpnfp_common`'s, as in every other mode.
//! Monitor mode: every frame passes (XDP_PASS, TC_ACT_OK), whatever happens.
//! Only with an enforced policy loaded (`FLAG_POLICY` and a pair in the
//! block map with ACTION_DROP) is a packet dropped.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![expect(
    internal_features,
    reason = "core_intrinsics, for the verifier-friendly atomics in atomic.rs"
)]

mod atomic;
mod bench;
mod frame;
mod local;
mod maps;

use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_NOEXIST, TC_ACT_OK, TC_ACT_SHOT, xdp_action},
    helpers::{bpf_get_socket_cookie, bpf_jiffies64, bpf_ktime_get_ns},
    macros::{classifier, xdp},
    maps::LruHashMap,
    programs::{TcContext, XdpContext},
};
use vpnfp_common::{
    Address, Counters, Direction, FlowKey, FlowValue, KernelConfig, Outcome, Parsed, V6,
    block::{ACTION_DROP, PairKey},
    cells::Plain,
    concentration::ConcentrationClose,
    config::{FLAG_LOCAL, FLAG_LOG_WINDOWS, FLAG_NO_FLOWS, FLAG_POLICY, FLAG_TEST_CLOCK},
    counters::OUTCOME_COUNT,
    flow::{Cut, FlowSettings, FlowUpdate, cache::FlowCache},
    local::{ACTION_ALLOW, NO_SOCKET},
    net::{
        classify::Ends,
        parse::{Ip, L4Kind},
    },
    record::{
        ConcentrationRecord, FlowKeyRecord, FlowRecord, RecordHeader, SAMPLE_MAX, SampleRecord,
        WindowCloseRecord, kind, sample_flags,
    },
    window::WindowClose,
};

use crate::{
    atomic::Atomic,
    frame::{Frame, TcFrame, XdpFrame},
    maps::{
        FamilyMaps, Scratch, VPNFP_CONFIG, VPNFP_COUNTERS, VPNFP_EVENTS, VPNFP_OWNERS,
        VPNFP_PROGRAM_BLOCKS, VPNFP_SAMPLES, VPNFP_SCRATCH,
    },
};

const _: () = assert!(OUTCOME_COUNT.is_power_of_two());

#[xdp]
pub fn vpnfp(ctx: XdpContext) -> u32 {
    if fingerprint(&ctx, &XdpFrame(&ctx)) {
        xdp_action::XDP_DROP
    } else {
        xdp_action::XDP_PASS
    }
}

#[classifier]
pub fn vpnfp_tc_egress(ctx: TcContext) -> i32 {
    if fingerprint(&ctx, &TcFrame(&ctx)) {
        TC_ACT_SHOT
    } else {
        TC_ACT_OK
    }
}

/// The one exit: count the frame's outcome on this CPU; true only when an
/// enforced policy drops the packet (every other path passes it).
#[inline(always)]
fn fingerprint<C: EbpfContext, F: Frame>(ctx: &C, frame: &F) -> bool {
    let (Some(counters), Some(scratch)) =
        (VPNFP_COUNTERS.get_ptr_mut(0), VPNFP_SCRATCH.get_ptr_mut(0))
    else {
        return false;
    };
    // SAFETY: per-CPU values, only this CPU touches them while we run.
    let counters = unsafe { &mut *counters };
    // SAFETY: as above; a packet passes unless a policy says otherwise.
    unsafe { (*scratch).drop = 0 };
    let outcome = match try_fingerprint(ctx, frame, scratch, counters) {
        Ok(outcome) | Err(outcome) => outcome,
    };
    counters.seen += 1;
    if F::EGRESS {
        counters.seen_egress += 1;
    }
    // The mask keeps the index provably in bounds for the verifier.
    counters.outcomes[(outcome as usize) & (OUTCOME_COUNT - 1)] += 1;
    // SAFETY: this CPU's scratch slot.
    unsafe { (*scratch).drop != 0 }
}

/// `Err` is an early exit (ignored or malformed), `Ok` the research's
/// outcome of a parsed IP packet (flows are kept whatever it is).
#[inline(always)]
fn try_fingerprint<C: EbpfContext, F: Frame>(
    ctx: &C,
    frame: &F,
    scratch: *mut Scratch,
    counters: &mut Counters,
) -> Result<Outcome, Outcome> {
    // SAFETY: this CPU's scratch slot, only this program run uses it.
    let v6 = parse_into(frame, unsafe { &mut *scratch })?;
    let config = match VPNFP_CONFIG.get(0) {
        Some(config) if config.is_valid() => config,
        _ => return Err(Outcome::IgnoredUnconfigured),
    };
    Ok(if v6 {
        counters.ipv6 += 1;
        packet::<V6, C, F>(ctx, frame, scratch, config, counters)
    } else {
        packet::<u32, C, F>(ctx, frame, scratch, config, counters)
    })
}

/// Parses the frame into `scratch`; `Ok(true)` for IPv6. A function of its
/// own: the parser's stack is free again when the rest runs.
#[inline(never)]
fn parse_into<F: Frame>(frame: &F, scratch: &mut Scratch) -> Result<bool, Outcome> {
    match vpnfp_common::parse::ethernet(frame)? {
        Parsed::V4(ip) => {
            scratch.v4 = ip;
            Ok(false)
        }
        Parsed::V6(ip) => {
            scratch.v6 = ip;
            Ok(true)
        }
    }
}

/// One parsed packet on its way through the programs, passed by reference
/// to the parts below (BPF functions take at most five arguments).
struct Packet<'a, A, C, F> {
    ctx: &'a C,
    frame: &'a F,
    ip: &'a Ip<A>,
    /// Which ends are internal, worked out once (in the scratch slot).
    ends: &'a Ends<A>,
    scratch: *mut Scratch,
    config: &'a KernelConfig,
    counters: &'a mut Counters,
    now_ns: u64,
}

/// The time to a tick, for everything but the research's exact moments:
/// the precise clock read at this CPU's first packet since `jiffies` last
/// moved, so at most a tick behind (as the kernel's coarse clock is, which
/// both come from). `bpf_jiffies64` is one load (the verifier inlines it);
/// a clock helper is a call, and a call costs 25-30 ns on machines whose
/// returns are mitigated (SRSO "safe RET" on the AMD EPYC measured).
#[inline(always)]
fn coarse_now_ns(scratch: *mut Scratch) -> u64 {
    // SAFETY: helper without arguments.
    let jiffies = unsafe { bpf_jiffies64() };
    // SAFETY: this CPU's scratch slot.
    let s = unsafe { &mut *scratch };
    if jiffies != s.clock_jiffies || s.clock_ns == 0 {
        s.clock_jiffies = jiffies;
        // SAFETY: helper without arguments.
        s.clock_ns = unsafe { bpf_ktime_get_ns() };
    }
    s.clock_ns
}

/// One parsed IP packet: the research's state machine and concentration
/// for its host, then its flow. Inlined, as are the parts a steady packet
/// takes (a BPF call costs as a helper call does); the rare paths
/// (recording a flow in the table, emitting, sampling) are functions of
/// their own, so their stack frames do not add up beyond BPF's 512 bytes.
#[inline(always)]
fn packet<A: FamilyMaps, C: EbpfContext, F: Frame>(
    ctx: &C,
    frame: &F,
    scratch: *mut Scratch,
    config: &KernelConfig,
    counters: &mut Counters,
) -> Outcome {
    // SAFETY: this CPU's scratch slot, holding the parsed packet.
    let ip: &Ip<A> = unsafe { &*A::ip_slot(scratch) };
    let now_ns = if config.has(FLAG_TEST_CLOCK) {
        config.test_clock_ns
    } else {
        coarse_now_ns(scratch)
    };
    // SAFETY: this CPU's scratch slot; the ends field is written once here.
    let ends = unsafe {
        let slot = &mut *A::ends_slot(scratch);
        *slot = A::ends(config, ip.src, ip.dst);
        &*slot
    };
    if config.spoofed(ends, || frame.arrival()) {
        return Outcome::IgnoredSpoofed;
    }
    let mut p = Packet {
        ctx,
        frame,
        ip,
        ends,
        scratch,
        config,
        counters,
        now_ns,
    };
    let outcome = host_part(&mut p);
    if ip.l4.kind == L4Kind::Fragment {
        p.counters.fragments += 1;
    }
    let flows = !config.has(FLAG_NO_FLOWS);
    if flows {
        flow_part(&mut p);
    }
    // Endpoint mode: a packet leaving carries its socket (TC only).
    let program_decided = F::EGRESS && config.has(FLAG_LOCAL) && socket_part(&mut p, flows);
    if config.has(FLAG_POLICY) && !program_decided {
        enforce_part(&mut p, flows);
    }
    outcome
}

/// A loaded policy: the packet's (host, peer) in the block map drops it
/// (or counts it, in a dry run). Any miss passes: fail-open. `key_set`:
/// the flow part already oriented this packet's key in the key slot.
#[inline(never)]
fn enforce_part<A: FamilyMaps, C: EbpfContext, F: Frame>(
    p: &mut Packet<'_, A, C, F>,
    key_set: bool,
) {
    let scratch = p.scratch;
    // SAFETY: this CPU's scratch slot; the key slot is free to (re)write.
    let key = unsafe { &mut *A::key_slot(scratch) };
    if !key_set {
        key.set_from(p.ip, p.ends);
    }
    let pair = PairKey {
        host: key.host,
        peer: key.peer,
    };
    let Some(block) = A::blocks().get_ptr_mut(pair) else {
        return;
    };
    // SAFETY: a live map value; its count is updated atomically.
    let block = unsafe { &mut *block };
    <Atomic as vpnfp_common::cells::Cells>::add(&mut block.packets, 1);
    if block.action == ACTION_DROP {
        p.counters.dropped += 1;
        // SAFETY: this CPU's scratch slot.
        unsafe { (*scratch).drop = 1 };
    } else {
        p.counters.would_drop += 1;
    }
}

/// How long a CPU trusts its last noted (flow, socket) before it looks the
/// socket map up again.
const SOCKET_NOTE_REFRESH_NS: u64 = 1_000_000_000;

/// Endpoint mode (`--local`), TC egress: notes which socket sent the
/// packet's flow, and with a policy applies its process's block. True when
/// a program block decided the packet (dropped, counted, or allowed: no
/// pair block applies to an allowed program).
#[inline(never)]
#[expect(
    clippy::needless_borrows_for_generic_args,
    reason = "the key is a reference into map memory, not a copy onto the 512-byte stack"
)]
fn socket_part<A: FamilyMaps, C: EbpfContext, F: Frame>(
    p: &mut Packet<'_, A, C, F>,
    key_set: bool,
) -> bool {
    // SAFETY: the TC program's context, an skb (this runs for F::EGRESS).
    let cookie = match unsafe { bpf_get_socket_cookie(p.ctx.as_ptr()) } {
        0 => {
            p.counters.unowned += 1;
            NO_SOCKET
        }
        cookie => cookie,
    };
    let scratch = p.scratch;
    // SAFETY: this CPU's scratch slot; the key slot is free to (re)write.
    let key = unsafe { &mut *A::key_slot(scratch) };
    if !key_set {
        key.set_from(p.ip, p.ends);
    }
    // SAFETY: this CPU's scratch slot: the flow and socket it last noted.
    let (s, noted_key) = unsafe { (&mut *scratch, &mut *A::noted_key_slot(scratch)) };
    // The same flow and socket as this CPU's last packet, noted within a
    // second: its entry is there (looked up once a second, so the LRU
    // keeps a long flow's entry warm).
    let fresh = s.noted_cookie == cookie
        && *noted_key == *key
        && p.now_ns.wrapping_sub(s.noted_ns) < SOCKET_NOTE_REFRESH_NS;
    if !fresh {
        let sockets = A::sockets();
        // SAFETY: a live map value, read only.
        match unsafe { sockets.get(&*key) } {
            Some(known) if *known == cookie => {}
            // A socket's flow stays its socket's when the kernel answers
            // for it (a RST after close).
            Some(_) if cookie == NO_SOCKET => {}
            _ => {
                let _ = sockets.insert(&*key, cookie, 0);
            }
        }
        s.noted_cookie = cookie;
        *noted_key = *key;
        s.noted_ns = p.now_ns;
    }
    if cookie == NO_SOCKET || !p.config.has(FLAG_POLICY) {
        return false;
    }
    // SAFETY: a live map value, read only.
    let Some(owner) = (unsafe { VPNFP_OWNERS.get(cookie) }) else {
        return false;
    };
    let Some(block) = VPNFP_PROGRAM_BLOCKS.get_ptr_mut(owner.pid()) else {
        return false;
    };
    // SAFETY: a live map value; its count is updated atomically.
    let block = unsafe { &mut *block };
    if block.action == ACTION_ALLOW {
        return true;
    }
    if !block.covers(key.peer_port) {
        return false;
    }
    <Atomic as vpnfp_common::cells::Cells>::add(&mut block.packets, 1);
    if block.action == ACTION_DROP {
        p.counters.dropped += 1;
        // SAFETY: this CPU's scratch slot.
        unsafe { (*scratch).drop = 1 };
    } else {
        p.counters.would_drop += 1;
    }
    true
}

/// The research's state machine and concentration, for an analysed packet.
#[inline(always)]
fn host_part<A: FamilyMaps, C: EbpfContext, F: Frame>(p: &mut Packet<'_, A, C, F>) -> Outcome {
    let (host, peer) = match p.config.analysed(p.ends) {
        Ok(pair) => pair,
        Err(outcome) => return outcome,
    };
    let Some(entry) = lookup_or_insert(
        A::hosts(),
        &host,
        A::host_slot(p.scratch),
        &mut p.counters.hosts_created,
    ) else {
        return Outcome::Analysed;
    };
    // SAFETY: a live map value; shared counts are updated atomically.
    let entry = unsafe { &mut *entry };
    // The precise clock is read only when the packet's exact time can
    // matter (a peer change, or a window near its end); see
    // `HostState::needs_precise_time`, and `coarse_now_ns` for the rest.
    // The test clock stands for both.
    if !p.config.has(FLAG_TEST_CLOCK)
        && entry
            .research
            .needs_precise_time(peer, p.now_ns, p.config.window_ns)
    {
        // SAFETY: helper without arguments.
        p.now_ns = unsafe { bpf_ktime_get_ns() };
    }
    // SAFETY: this CPU's scratch slot.
    let update = unsafe { &mut *A::update_slot(p.scratch) };
    entry.observe::<Atomic>(host, peer, p.now_ns, &p.config.host_settings(), update);
    if update.window_closed {
        p.counters.windows_closed += 1;
        if p.config.has(FLAG_LOG_WINDOWS) {
            A::log_window(p.ctx, &update.window);
        }
        if !emit_window(&update.window) {
            p.counters.records_lost += 1;
        }
    }
    if update.concentration_closed {
        p.counters.concentration_closes += 1;
        if !emit_concentration(&update.concentration) {
            p.counters.records_lost += 1;
        }
    }
    Outcome::Analysed
}

/// The packet's flow. Most packets of a busy flow only add to its counts:
/// those are counted in this CPU's flow cache, without a map lookup
/// (`vpnfp_common::flow::cache`); the rest take the table.
#[inline(always)]
fn flow_part<A: FamilyMaps, C: EbpfContext, F: Frame>(p: &mut Packet<'_, A, C, F>) {
    let scratch = p.scratch;
    // SAFETY: this CPU's scratch slot; the parsed packet and its ends live
    // in other fields of it, not written here.
    let (key, cache) = unsafe { (&mut *A::key_slot(scratch), &mut *A::cache_slot(scratch)) };
    let direction = key.set_from(p.ip, p.ends);
    if cache.count(key, p.ip, direction, p.now_ns, &p.config.flow_settings()) {
        return;
    }
    flow_in_table(p, direction);
}

/// The packet's flow in the table: counters, its end, its first payloads.
/// The key and the values it builds live in the scratch slot (see
/// `Scratch`), and are passed to the map helpers by reference to it, not
/// copied to the stack. The flow is cached for its next packets.
#[inline(never)]
#[expect(
    clippy::needless_borrows_for_generic_args,
    reason = "a reference into map memory, not a copy onto the 512-byte stack"
)]
fn flow_in_table<A: FamilyMaps, C: EbpfContext, F: Frame>(
    p: &mut Packet<'_, A, C, F>,
    direction: Direction,
) {
    let scratch = p.scratch;
    // SAFETY (for the derefs below): this CPU's scratch slot; the parsed
    // packet and its ends live in other fields of it, not written here.
    let (key, slot, cache) = unsafe {
        (
            &mut *A::key_slot(scratch),
            &mut (*scratch).flow,
            &mut *A::cache_slot(scratch),
        )
    };
    // The cached flow's counts first: it may be this one, about to be cut.
    flush_cache(cache, slot, p.counters, p.now_ns);
    let settings = p.config.flow_settings();
    let flows = A::flows();
    let (flow, update) = match flows.get_ptr_mut(&*key) {
        Some(flow) => count_in_table(flow, p.ip, direction, p.now_ns, &settings, slot),
        None => {
            // A new flow: the value inserted already counts this packet,
            // so the table is not looked up again (a helper call and a
            // lookup less on the new-flow path). A new value never cuts:
            // its first and last packet are now.
            // SAFETY: this CPU's scratch slot, a field of its own.
            let fresh = unsafe { &mut (*scratch).fresh_flow };
            *fresh = FlowValue::new(p.ends.scope(), p.now_ns);
            let update = fresh.record::<A, Plain>(p.ip, direction, p.now_ns, &settings, slot);
            // NOEXIST: another CPU may have inserted it meanwhile; count
            // in theirs. A full table refuses (a plain hash never evicts).
            if flows.insert(&*key, &*fresh, BPF_NOEXIST as u64).is_ok() {
                p.counters.flows_created += 1;
                (fresh, update)
            } else if let Some(flow) = flows.get_ptr_mut(&*key) {
                count_in_table(flow, p.ip, direction, p.now_ns, &settings, slot)
            } else {
                p.counters.flow_table_full += 1;
                cache.valid = 0;
                return;
            }
        }
    };
    let cut = match update.delta {
        Cut::None => 0,
        Cut::Active => kind::FLOW_DELTA,
        Cut::Idle => kind::FLOW_IDLE,
    };
    if cut != 0 && !emit_flow(cut, key, slot) {
        p.counters.records_lost += 1;
        p.counters.flow_records_lost += slot.packets_up + slot.packets_down;
    }
    if update.closing && !emit_flow(kind::FLOW_CLOSING, key, flow) {
        p.counters.records_lost += 1;
    }
    cache.fill(key, flow, p.now_ns, &settings);
    if update.inspect {
        let flags = sample_flags::of(flow, direction, p.ip.l4.ah);
        sample(p, key, flags, flow.scope);
    }
}

/// The packet counted in its flow's value in the table.
#[inline(always)]
fn count_in_table<'a, A: FamilyMaps>(
    flow: *mut FlowValue,
    ip: &Ip<A>,
    direction: Direction,
    now_ns: u64,
    settings: &FlowSettings,
    delta: &mut FlowValue,
) -> (&'a mut FlowValue, FlowUpdate) {
    // SAFETY: a live map value; counts are updated atomically.
    let flow = unsafe { &mut *flow };
    let update = flow.record::<A, Atomic>(ip, direction, now_ns, settings, delta);
    (flow, update)
}

/// Adds a CPU's cached counts to their flow in the table. A flow userspace
/// ended meanwhile gets an entry again, holding them: nothing is lost.
#[inline(always)]
#[expect(
    clippy::needless_borrows_for_generic_args,
    reason = "references into map memory, not copies onto the 512-byte stack"
)]
fn flush_cache<A: FamilyMaps>(
    cache: &mut FlowCache<A>,
    slot: &mut FlowValue,
    counters: &mut Counters,
    now_ns: u64,
) {
    let Some(pending) = cache.take_pending(now_ns) else {
        return;
    };
    let flows = A::flows();
    if let Some(flow) = flows.get_ptr_mut(&cache.key) {
        // SAFETY: a live map value; counts are added atomically.
        unsafe { (*flow).absorb::<Atomic>(&pending) };
        return;
    }
    *slot = cache.orphan(&pending);
    if flows.insert(&cache.key, &*slot, BPF_NOEXIST as u64).is_ok() {
        counters.flows_created += 1;
    } else if let Some(flow) = flows.get_ptr_mut(&cache.key) {
        // SAFETY: as above (another CPU inserted it meanwhile).
        unsafe { (*flow).absorb::<Atomic>(&pending) };
    } else {
        counters.flow_table_full += 1;
        counters.flow_records_lost += pending.packets();
    }
}

/// Run by userspace on every CPU (BPF_PROG_TEST_RUN) before it reads or
/// ends flows: this CPU's cached counts go to the table, and the cache is
/// emptied (its flow's next packet takes the table and caches it again).
#[xdp]
pub fn vpnfp_flush_flows(_ctx: XdpContext) -> u32 {
    if let (Some(scratch), Some(counters)) =
        (VPNFP_SCRATCH.get_ptr_mut(0), VPNFP_COUNTERS.get_ptr_mut(0))
    {
        flush_family::<u32>(scratch, counters);
        flush_family::<V6>(scratch, counters);
    }
    xdp_action::XDP_PASS
}

#[inline(never)]
fn flush_family<A: FamilyMaps>(scratch: *mut Scratch, counters: *mut Counters) {
    // SAFETY: this CPU's scratch slot and counters; no packet runs on this
    // CPU while a test run does (bottom halves are off).
    let (cache, slot, counters) = unsafe {
        (
            &mut *A::cache_slot(scratch),
            &mut (*scratch).flow,
            &mut *counters,
        )
    };
    flush_cache(cache, slot, counters, 0);
    cache.valid = 0;
}

#[inline(never)]
fn emit_window<A: Address>(closed: &WindowClose<A>) -> bool {
    emit(WindowCloseRecord::of(closed))
}

#[inline(never)]
fn emit_concentration<A: Address>(closed: &ConcentrationClose<A>) -> bool {
    emit(ConcentrationRecord::of(closed))
}

#[inline(never)]
fn emit_flow<A: Address>(kind: u16, key: &FlowKey<A>, value: &FlowValue) -> bool {
    emit(FlowRecord::of(kind, key, value))
}

/// Writes one record into the events ring; false if it is full.
#[inline(always)]
fn emit<T: 'static>(record: T) -> bool {
    match VPNFP_EVENTS.reserve::<T>(0) {
        Some(mut entry) => {
            entry.write(record);
            entry.submit(0);
            true
        }
        None => false,
    }
}

/// Hands one payload-carrying packet to identification.
#[inline(never)]
fn sample<A: FamilyMaps, C: EbpfContext, F: Frame>(
    p: &mut Packet<'_, A, C, F>,
    key: &FlowKey<A>,
    flags: u8,
    scope: u8,
) {
    let (frame, ip, config, now_ns) = (p.frame, p.ip, p.config, p.now_ns);
    let counters = &mut *p.counters;
    let offset = ip.l4.payload_offset;
    let available = (frame.len() as u32).saturating_sub(offset);
    let mut captured = ip.l4.payload_len;
    if captured > available {
        captured = available;
    }
    if captured > config.sample_bytes {
        captured = config.sample_bytes;
    }
    if captured > SAMPLE_MAX as u32 {
        captured = SAMPLE_MAX as u32;
    }
    let Some(mut entry) = VPNFP_SAMPLES.reserve::<SampleRecord>(0) else {
        counters.samples_lost += 1;
        return;
    };
    let record = entry.as_mut_ptr();
    // SAFETY: `record` points at a reserved, writable SampleRecord; every
    // field read later is written here first.
    let loaded = unsafe {
        (*record).header = RecordHeader::of::<SampleRecord>(kind::SAMPLE);
        (*record).key = FlowKeyRecord::of(key);
        (*record).ts_ns = now_ns;
        (*record).payload_len = ip.l4.payload_len;
        (*record).flags = flags;
        (*record).scope = scope;
        // The LAN device that sent it (its source MAC), noted by userspace
        // when a host's address moves to another device.
        (*record).src_mac = if F::EGRESS {
            [0; 6]
        } else {
            frame.array::<6>(6).unwrap_or([0; 6])
        };
        // The verifier needs the length's bounds as a mask it can see: all
        // ones up to SAMPLE_MAX's bit, so no length that fits is changed.
        const LEN_MASK: u32 = (SAMPLE_MAX as u32).next_power_of_two() - 1;
        let len = captured & LEN_MASK;
        if len == 0 || len > SAMPLE_MAX as u32 {
            (*record).captured = 0;
            true
        } else {
            (*record).captured = len;
            frame.load(offset, &mut (*record).data, len)
        }
    };
    if loaded {
        counters.samples += 1;
        entry.submit(0);
    } else {
        counters.samples_lost += 1;
        entry.discard(0);
    }
}

/// The value for `key`, inserting a fresh (zeroed) value first if absent,
/// built in `slot` (map memory: off the stack, and only on insert).
/// `None` only if the entry vanished between insert and lookup (LRU
/// pressure from other CPUs).
#[inline(always)]
fn lookup_or_insert<K, V: Default>(
    map: &LruHashMap<K, V>,
    key: &K,
    slot: *mut V,
    created: &mut u64,
) -> Option<*mut V> {
    if let Some(value) = map.get_ptr_mut(key) {
        return Some(value);
    }
    // SAFETY: a field of this CPU's scratch slot.
    let fresh = unsafe {
        *slot = V::default();
        &*slot
    };
    // NOEXIST: another CPU may have inserted it meanwhile; keep theirs.
    if map.insert(key, fresh, BPF_NOEXIST as u64).is_ok() {
        *created += 1;
    }
    map.get_ptr_mut(key)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
