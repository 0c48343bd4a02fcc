//! The host's requests that wait for an answer, as the relay core sees them: which backend
//! each was sent to (none while the relay holds it), whether the host cancelled it, and the
//! order they came in.
//!
//! It owns the table and its two bounds: at most [`MAX_IN_FLIGHT`] entries (past it the
//! oldest is handed back for the core to answer), and a cancelled entry is kept only until
//! its answer arrives or [`CANCELLED_TTL_MS`] passed (a cancelled call may never be
//! answered: rmcp drops the handler of a cancelled request without a reply). It must not
//! write anything to anyone; the core decides what an evicted or lost entry is answered
//! with.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::Value;

use super::core::Gen;

/// Requests of the host remembered at once.
pub const MAX_IN_FLIGHT: usize = 1024;
/// How long a request the host cancelled is remembered without an answer.
pub const CANCELLED_TTL_MS: u64 = 30_000;

/// One request of the host.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: Value,
    pub method: String,
    /// The tool a `tools/call` names.
    pub tool: Option<String>,
    /// The backend generation it was sent to; `None` while the relay holds it.
    pub sent_to: Option<Gen>,
    /// When the host cancelled it.
    pub cancelled_at: Option<u64>,
    seq: u64,
}

/// The key of a JSON-RPC id: its JSON text, so `1` and `"1"` stay apart.
pub fn key(id: &Value) -> String {
    id.to_string()
}

#[derive(Debug)]
pub struct InFlight {
    entries: HashMap<String, Entry>,
    /// Arrival order: sequence number → key.
    order: BTreeMap<u64, String>,
    /// Cancelled entries by when they are forgotten; each names the sequence number it was
    /// made for, so an entry replaced meanwhile is not forgotten by mistake.
    cancelled: VecDeque<(u64, String, u64)>,
    next_seq: u64,
    cap: usize,
    cancelled_ttl_ms: u64,
}

impl Default for InFlight {
    fn default() -> Self {
        Self::new(MAX_IN_FLIGHT, CANCELLED_TTL_MS)
    }
}

impl InFlight {
    pub fn new(cap: usize, cancelled_ttl_ms: u64) -> Self {
        Self {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            cancelled: VecDeque::new(),
            next_seq: 0,
            cap: cap.max(1),
            cancelled_ttl_ms,
        }
    }

    /// Remember a request the host sent; the oldest entry when the table was full.
    pub fn insert(&mut self, id: Value, method: String, tool: Option<String>) -> Option<Entry> {
        let key = key(&id);
        // A reused id replaces the entry it names (JSON-RPC forbids reuse; a host that does
        // it gets the newer request tracked).
        self.remove(&key);
        let evicted = if self.entries.len() >= self.cap {
            self.pop_oldest()
        } else {
            None
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, key.clone());
        self.entries.insert(
            key,
            Entry {
                id,
                method,
                tool,
                sent_to: None,
                cancelled_at: None,
                seq,
            },
        );
        evicted
    }

    fn pop_oldest(&mut self) -> Option<Entry> {
        let (_, key) = self.order.pop_first()?;
        self.entries.remove(&key)
    }

    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.order.remove(&entry.seq);
        Some(entry)
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// The request is now with backend `gen`.
    pub fn mark_sent(&mut self, key: &str, gen: Gen) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.sent_to = Some(gen);
        }
    }

    /// The request is back with the relay (its backend went away before answering).
    pub fn mark_held(&mut self, key: &str) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.sent_to = None;
        }
    }

    /// The host cancelled the request: it is forgotten once answered or after the TTL.
    pub fn cancel(&mut self, key: &str, now_ms: u64) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        if entry.cancelled_at.is_none() {
            entry.cancelled_at = Some(now_ms);
            self.cancelled.push_back((
                now_ms.saturating_add(self.cancelled_ttl_ms),
                key.to_string(),
                entry.seq,
            ));
        }
    }

    /// Forget cancelled requests that went unanswered for the TTL; how many.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let mut forgotten = 0;
        while let Some((due, _, _)) = self.cancelled.front() {
            if *due > now_ms {
                break;
            }
            let Some((_, key, seq)) = self.cancelled.pop_front() else {
                break;
            };
            if self.entries.get(&key).is_some_and(|e| e.seq == seq) {
                self.remove(&key);
                forgotten += 1;
            }
        }
        forgotten
    }

    /// When [`InFlight::expire`] next has something to do.
    pub fn next_expiry(&self) -> Option<u64> {
        self.cancelled
            .iter()
            .find(|(_, key, seq)| self.entries.get(key).is_some_and(|e| e.seq == *seq))
            .map(|(due, _, _)| *due)
    }

    /// Take every entry sent to backend `gen`, oldest first.
    pub fn take_sent_to(&mut self, gen: Gen) -> Vec<Entry> {
        let keys: Vec<String> = self
            .order
            .values()
            .filter(|k| self.entries.get(*k).is_some_and(|e| e.sent_to == Some(gen)))
            .cloned()
            .collect();
        keys.iter().filter_map(|k| self.remove(k)).collect()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The most requests remembered at once.
    pub fn cap(&self) -> usize {
        self.cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn insert(table: &mut InFlight, id: u64) -> Option<Entry> {
        table.insert(json!(id), "tools/call".into(), None)
    }

    #[test]
    fn past_the_cap_the_oldest_is_handed_back() {
        let mut table = InFlight::new(3, 1_000);
        for id in 0..3 {
            assert!(insert(&mut table, id).is_none());
        }
        let evicted = insert(&mut table, 3).expect("the table was full");
        assert_eq!(evicted.id, json!(0));
        assert_eq!(table.len(), 3);
        table.remove(&key(&json!(1)));
        assert!(insert(&mut table, 4).is_none(), "room was made");
        assert_eq!(insert(&mut table, 5).map(|e| e.id), Some(json!(2)));
    }

    #[test]
    fn cancelled_entries_are_forgotten_after_the_ttl_unless_answered_first() {
        let mut table = InFlight::new(10, 1_000);
        insert(&mut table, 1);
        insert(&mut table, 2);
        insert(&mut table, 3);
        table.cancel(&key(&json!(1)), 100);
        table.cancel(&key(&json!(2)), 200);
        assert_eq!(table.next_expiry(), Some(1_100));
        // Answered before its time: nothing left to forget for it.
        table.remove(&key(&json!(1)));
        assert_eq!(table.next_expiry(), Some(1_200));
        assert_eq!(table.expire(1_199), 0);
        assert_eq!(table.expire(1_200), 1);
        assert!(!table.contains(&key(&json!(2))));
        assert!(table.contains(&key(&json!(3))), "not cancelled, kept");
        assert_eq!(table.next_expiry(), None);
    }

    #[test]
    fn a_reused_id_is_not_forgotten_for_its_predecessor() {
        let mut table = InFlight::new(10, 1_000);
        insert(&mut table, 7);
        table.cancel(&key(&json!(7)), 0);
        insert(&mut table, 7);
        assert_eq!(table.expire(5_000), 0);
        assert!(table.contains(&key(&json!(7))));
    }

    #[test]
    fn entries_of_one_backend_are_taken_in_arrival_order() {
        let mut table = InFlight::new(10, 1_000);
        for id in [5, 1, 9, 3] {
            insert(&mut table, id);
        }
        for id in [5, 9, 3] {
            table.mark_sent(&key(&json!(id)), 2);
        }
        let taken: Vec<Value> = table.take_sent_to(2).into_iter().map(|e| e.id).collect();
        assert_eq!(taken, [json!(5), json!(9), json!(3)]);
        assert_eq!(table.len(), 1, "the held one stays");
    }
}
