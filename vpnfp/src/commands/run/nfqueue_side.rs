//! `vpnfp run`'s NFQUEUE options, from its flags.

use vpnfp::{
    engine::EngineSettings,
    settings::Settings,
    source::nfqueue::{
        Chain, DEFAULT_COPY_RANGE, DEFAULT_QUEUE_LEN, DEFAULT_QUEUE_NUM, NfqueueOptions,
        SharedBlocks,
        driver::{self, NfqueueDriver},
    },
};

use crate::cli::RunArgs;

pub fn start(
    args: &RunArgs,
    settings: &Settings,
    blocks: Option<std::sync::Arc<SharedBlocks>>,
) -> anyhow::Result<NfqueueDriver> {
    let options = NfqueueOptions {
        queue_num: args.nfqueue.queue_num.unwrap_or(DEFAULT_QUEUE_NUM),
        chain: args.nfqueue.chain.map(Into::into).unwrap_or(Chain::Forward),
        ifaces: args.ifaces.clone(),
        queue_len: args.nfqueue.queue_len.unwrap_or(DEFAULT_QUEUE_LEN),
        copy_range: args.nfqueue.copy_range.unwrap_or(DEFAULT_COPY_RANGE),
    };
    let mut config = settings.kernel_config();
    config.flags |= super::lan_port_flag(args);
    let engine = EngineSettings {
        config,
        max_hosts: args.max_hosts as usize,
        max_flows: args.max_flows as usize,
        close_linger_ns: vpnfp::engine::flows::CLOSE_LINGER_NS,
    };
    driver::start(options, engine, blocks)
}
