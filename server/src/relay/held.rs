//! Host messages the relay holds back while it has no backend to give them to (an election
//! is running) or its new backend has not yet answered the replayed `initialize`.
//!
//! It owns the queue, in arrival order, and its two bounds: at most [`MAX_HELD`] messages,
//! and a request is held at most [`HOLD_MS`] — so a request that waited here and then gets
//! the owner's whole call budget (45 s by default) still finishes before the host's 60 s
//! timeout. It must not answer anything itself; the core decides what a message it could not
//! hold, or held too long, is answered with.

use std::collections::VecDeque;

use serde_json::Value;

use super::in_flight::key;

/// Host messages held at once.
pub const MAX_HELD: usize = 64;
/// Longest a held request waits before it is answered with a retryable error.
pub const HOLD_MS: u64 = 10_000;

#[derive(Debug)]
struct Message {
    message: Value,
    held_at: u64,
}

impl Message {
    fn is_request(&self) -> bool {
        self.message.get("method").is_some() && self.message.get("id").is_some()
    }
}

#[derive(Debug)]
pub struct Held {
    queue: VecDeque<Message>,
    cap: usize,
    hold_ms: u64,
}

impl Default for Held {
    fn default() -> Self {
        Self::new(MAX_HELD, HOLD_MS)
    }
}

impl Held {
    pub fn new(cap: usize, hold_ms: u64) -> Self {
        Self {
            queue: VecDeque::new(),
            cap: cap.max(1),
            hold_ms,
        }
    }

    /// Hold `message` behind the others; handed back when the queue is full.
    pub fn push(&mut self, message: Value, now_ms: u64) -> Result<(), Value> {
        if self.queue.len() >= self.cap {
            return Err(message);
        }
        self.queue.push_back(Message {
            message,
            held_at: now_ms,
        });
        Ok(())
    }

    /// Hold `message` ahead of the others, full or not: the host's own `initialize`, taken
    /// back from a backend that went away before answering it, must reach the next one first.
    pub fn push_front(&mut self, message: Value, now_ms: u64) {
        self.queue.push_front(Message {
            message,
            held_at: now_ms,
        });
    }

    /// Drop the held request with this key (the host cancelled it); whether it was held.
    pub fn remove_request(&mut self, request_key: &str) -> bool {
        let before = self.queue.len();
        self.queue.retain(|m| {
            !(m.is_request() && m.message.get("id").map(key).as_deref() == Some(request_key))
        });
        self.queue.len() != before
    }

    /// Requests held for [`HOLD_MS`] or longer, taken out in order. Notifications stay: they
    /// wait for nobody's answer.
    pub fn take_expired(&mut self, now_ms: u64) -> Vec<Value> {
        let hold_ms = self.hold_ms;
        let expired = |m: &Message| m.is_request() && now_ms.saturating_sub(m.held_at) >= hold_ms;
        let mut out = Vec::new();
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for m in self.queue.drain(..) {
            if expired(&m) {
                out.push(m.message);
            } else {
                kept.push_back(m);
            }
        }
        self.queue = kept;
        out
    }

    /// When the oldest held request reaches [`HOLD_MS`].
    pub fn next_expiry(&self) -> Option<u64> {
        self.queue
            .iter()
            .filter(|m| m.is_request())
            .map(|m| m.held_at.saturating_add(self.hold_ms))
            .min()
    }

    /// Everything held, in order.
    pub fn take_all(&mut self) -> Vec<Value> {
        self.queue.drain(..).map(|m| m.message).collect()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(id: u64) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"})
    }

    #[test]
    fn the_queue_is_capped_but_the_hosts_initialize_always_goes_first() {
        let mut held = Held::new(2, 1_000);
        assert!(held.push(request(1), 0).is_ok());
        assert!(held.push(request(2), 0).is_ok());
        assert_eq!(held.push(request(3), 0), Err(request(3)));
        held.push_front(
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize"}),
            0,
        );
        let ids: Vec<Value> = held
            .take_all()
            .into_iter()
            .map(|m| m["id"].clone())
            .collect();
        assert_eq!(ids, [json!(0), json!(1), json!(2)]);
    }

    #[test]
    fn requests_expire_after_the_hold_notifications_do_not() {
        let mut held = Held::new(10, 1_000);
        held.push(request(1), 0).unwrap();
        held.push(json!({"jsonrpc": "2.0", "method": "notifications/x"}), 0)
            .unwrap();
        held.push(request(2), 500).unwrap();
        assert_eq!(held.next_expiry(), Some(1_000));
        assert!(held.take_expired(999).is_empty());
        assert_eq!(held.take_expired(1_000), [request(1)]);
        assert_eq!(held.next_expiry(), Some(1_500));
        assert_eq!(held.take_expired(10_000), [request(2)]);
        assert_eq!(held.len(), 1);
        assert_eq!(held.next_expiry(), None);
    }

    #[test]
    fn a_cancelled_request_leaves_the_queue() {
        let mut held = Held::new(10, 1_000);
        held.push(request(1), 0).unwrap();
        held.push(request(2), 0).unwrap();
        assert!(held.remove_request(&key(&json!(1))));
        assert!(!held.remove_request(&key(&json!(1))));
        assert_eq!(held.take_all(), [request(2)]);
    }
}
