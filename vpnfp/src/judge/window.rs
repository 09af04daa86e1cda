//! The research's decision on a closed window (step 4 of algorithm.md,
//! `vpnfp_common::decide`), as the report of it.

use std::net::IpAddr;

use vpnfp_common::{Thresholds, WindowClose, decide};

use crate::model::{Mode, WindowReport};

impl WindowReport {
    /// Applies the research's decision to a closed window (times already
    /// in Unix nanoseconds).
    pub fn judge(mode: Mode, closed: &WindowClose<IpAddr>, thresholds: &Thresholds) -> Self {
        Self {
            mode,
            host: closed.host,
            peer: closed.peer,
            window_start_ns: closed.window_start_ns,
            window_end_ns: closed.window_end_ns,
            count_this: closed.count_this,
            count_prev: closed.count_prev,
            reason: decide(closed, thresholds),
        }
    }
}
