//! `vpnfp run`'s kernel options, from its flags.

use vpnfp::source::kernel::{
    AttachMode, Capacities,
    driver::{self, KernelDriver, KernelOptions},
    local::{WatchedCgroup, cgroup2_root},
};
use vpnfp_common::KernelConfig;

use super::Timers;
use crate::cli::RunArgs;

pub fn start(
    args: &RunArgs,
    flow_idle_ns: u64,
    config: &KernelConfig,
    timers: &Timers,
) -> anyhow::Result<KernelDriver> {
    let options = KernelOptions {
        capacities: Capacities {
            max_hosts: args.max_hosts,
            max_flows: args.max_flows,
            ring_bytes: args.ring_bytes,
            sample_ring_bytes: args.sample_ring_bytes,
            pin_dir: args.pin.clone(),
            bench_floor_entries: None,
        },
        ifaces: args.ifaces.clone(),
        attach_mode: args.xdp_mode.map(Into::into).unwrap_or(AttachMode::Auto),
        egress: !args.ingress_only,
        flow_idle_ns,
        sweep_every: timers.flow_sweep,
        local: match (args.local, &args.cgroup) {
            (false, _) => None,
            (true, Some(dir)) => Some(WatchedCgroup::open(dir)?),
            (true, None) => Some(WatchedCgroup::open(&cgroup2_root().ok_or_else(|| {
                anyhow::anyhow!("--local: no cgroup v2 hierarchy is mounted (mount -t cgroup2)")
            })?)?),
        },
    };
    driver::start(options, config)
}
