//! Flows that saw a FIN or RST wait here until they have been quiet for
//! the linger (their last ACKs arrive within a round trip): one queue for
//! the engine's table and the kernel's maps alike.

use std::collections::VecDeque;

/// How long a flow that saw a FIN or RST must stay quiet before it is ended.
pub const CLOSE_LINGER_NS: u64 = 2_000_000_000;

pub struct CloseLinger<K> {
    linger_ns: u64,
    /// Keys with when to look at them again, in that order.
    queue: VecDeque<(u64, K)>,
}

impl<K: Copy> CloseLinger<K> {
    pub fn new(linger_ns: u64) -> Self {
        Self {
            linger_ns,
            queue: VecDeque::new(),
        }
    }

    /// `key` closed at `now_ns`: look again once it could be quiet.
    pub fn push(&mut self, key: K, now_ns: u64) {
        self.queue
            .push_back((now_ns.saturating_add(self.linger_ns), key));
    }

    /// The next key due by `now_ns` whose flow has been quiet for the
    /// linger; `last_seen` says when a flow last saw a packet (`None`: it
    /// already ended). One that saw packets since is looked at again later.
    pub fn next_quiet(&mut self, now_ns: u64, last_seen: impl Fn(&K) -> Option<u64>) -> Option<K> {
        while let Some(&(at, key)) = self.queue.front() {
            if at > now_ns {
                return None;
            }
            self.queue.pop_front();
            let Some(seen) = last_seen(&key) else {
                continue; // already ended (idle, evicted)
            };
            let quiet_at = seen.saturating_add(self.linger_ns);
            if quiet_at <= now_ns {
                return Some(key);
            }
            self.queue.push_back((quiet_at, key));
        }
        None
    }

    /// Whether a key is due by `now_ns` (to look at, not yet judged quiet).
    pub fn due(&self, now_ns: u64) -> bool {
        self.queue.front().is_some_and(|&(at, _)| at <= now_ns)
    }

    pub fn clear(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_flow_ends_once_quiet_for_the_linger() {
        let mut q = CloseLinger::new(10);
        q.push(1u32, 0);
        q.push(2, 5);
        // Flow 1 saw a packet at 8: not quiet at 10, looked at again at 18.
        let seen = |k: &u32| match k {
            1 => Some(8),
            2 => None,
            _ => unreachable!(),
        };
        assert_eq!(q.next_quiet(9, seen), None);
        assert_eq!(q.next_quiet(15, seen), None);
        assert_eq!(q.next_quiet(17, seen), None);
        assert_eq!(q.next_quiet(18, seen), Some(1));
        assert_eq!(q.next_quiet(100, seen), None);
    }
}
