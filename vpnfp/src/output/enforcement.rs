//! How enforcement's decisions read: the `blocked` event's JSON, and the
//! log lines of blocks and lifted blocks.

use std::net::IpAddr;

use serde::Serialize;

use crate::{
    clock::unix_secs,
    enforce::{Blocked, Drops, Refusal, Reloaded, Unblocked, policy::PolicyMode},
};

#[derive(Serialize)]
struct BlockedJson<'a> {
    event: &'static str,
    host: IpAddr,
    peer: IpAddr,
    protocol: &'a str,
    policy_mode: &'static str,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    rule: usize,
    at: f64,
}

impl Serialize for Blocked {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        BlockedJson {
            event: "blocked",
            host: self.host,
            peer: self.peer,
            protocol: &self.what,
            policy_mode: self.policy_mode.as_str(),
            action: self.action(),
            reason: self.refused.map(Refusal::as_str),
            rule: self.rule,
            at: unix_secs(self.at_ns),
        }
        .serialize(s)
    }
}

impl Blocked {
    pub fn human(&self) -> String {
        if let Some(refusal) = self.refused {
            return format!(
                "could not block {} between host {} and {} (policy rule {}, {}): {}, so its packets pass",
                self.what,
                self.host,
                self.peer,
                self.rule,
                self.policy_mode.as_str(),
                match refusal {
                    Refusal::MapFull => "the block map is full or refused it",
                    Refusal::RateLimited => "the host had its new blocks for this minute",
                }
            );
        }
        format!(
            "{}: {} between host {} and {} (policy rule {}, {}){}",
            if self.policy_mode == PolicyMode::Enforce {
                "blocked"
            } else {
                "would block (dry run)"
            },
            self.what,
            self.host,
            self.peer,
            self.rule,
            self.policy_mode.as_str(),
            if self.policy_mode == PolicyMode::Enforce {
                ": its packets are dropped from now on"
            } else {
                ": packets pass and are counted"
            }
        )
    }
}

impl Unblocked {
    pub fn human(&self) -> String {
        format!(
            "unblocked: {} between host {} and {}: quiet for {} s ({} packets matched while blocked)",
            self.what, self.host, self.peer, self.quiet_secs, self.packets
        )
    }
}

/// The `policy_drops` event: a block's packets, at exit.
#[derive(Serialize)]
pub struct DropsEvent<'a> {
    event: &'static str,
    #[serde(flatten)]
    drops: &'a Drops,
}

impl Drops {
    pub fn human(&self) -> String {
        format!(
            "policy: {} between {} and {}: {} packets {}",
            self.what,
            self.host,
            self.peer,
            self.packets,
            if self.action == "drop" {
                "dropped"
            } else {
                "counted (dry run)"
            }
        )
    }

    pub fn event(&self) -> DropsEvent<'_> {
        DropsEvent {
            event: "policy_drops",
            drops: self,
        }
    }
}

impl Reloaded {
    pub fn human(&self) -> String {
        format!(
            "policy {} reloaded: mode {}, {} rules, {} blocks kept, {} lifted",
            self.path.display(),
            self.mode.as_str(),
            self.rules,
            self.kept,
            self.lifted
        )
    }
}
