//! The contract between the kernel programs and userspace: map names, the
//! config the programs read, their counters, the records they send, and the
//! per-host map value.

pub mod block;
pub mod config;
pub mod counters;
pub mod host;
pub mod local;
pub mod maps;
pub mod record;
