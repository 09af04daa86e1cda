//! What the facts mean: each flow's protocol (`identify`, on the shared
//! engine in `vpnfp_common::identify`), the VPN name list (`providers`),
//! and one verdict per host (`verdict`).

pub mod identify;
pub mod names;
pub mod processes;
pub mod providers;
pub mod senders;
pub mod verdict;
pub mod window;
