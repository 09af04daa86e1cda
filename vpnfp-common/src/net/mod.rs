//! From frame bytes to what the fingerprint keys on: the parser (link, IP,
//! transport), the two address families, and which end is internal.

pub mod addr;
pub mod classify;
pub mod parse;
