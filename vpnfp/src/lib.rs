//! vpnfp's userspace side: the XDP loader ([`xdp`]), time conversion
//! ([`clock`]) and report output ([`report`]). The decision logic itself is
//! `vpnfp_common`'s.

pub mod capture;
pub mod clock;
pub mod compare;
pub mod engine;
pub mod metrics;
pub mod nfqueue;
pub mod privileges;
pub mod replay;
pub mod report;
pub mod settings;
pub mod xdp;
