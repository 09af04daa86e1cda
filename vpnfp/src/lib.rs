//! vpnfp's userspace side. A packet's way through it, by folder:
//! `source/` (the kernel programs, NFQUEUE, capture files) -> `engine/`
//! (the userspace twin of the kernel programs) -> `pipeline` (decisions)
//! -> `output/` (log, JSON, metrics). The decision logic itself is
//! `vpnfp_common`'s, shared with the kernel.

pub mod clock;
pub mod enforce;
pub mod engine;
pub mod hash;
pub mod judge;
pub mod lru;
pub mod model;
pub mod output;
pub mod pipeline;
pub mod prefetch;
pub mod privileges;
pub mod replay;
pub mod settings;
pub mod source;
pub mod store;
