//! Everything that yields packets or what the kernel made of them: the
//! kernel programs (`kernel`), netfilter's queue (`nfqueue`), capture files
//! (`capture`).

pub mod capture;
pub mod kernel;
pub mod nfqueue;
