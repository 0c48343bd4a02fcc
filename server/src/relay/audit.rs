//! The host's audit log, written by the relay itself while another process owns the port:
//! the owner never opens a file a remote party names, so the records of what this host's
//! agent asked for are made here, with this host's rails, before the call is sent on, and
//! its outcome once the owner answered.
//!
//! It owns the records of relayed `domshell_execute` calls and a bounded table of calls
//! waiting for their answer. It must not decide anything: the owner enforces the rails it
//! granted this host; a line this host's policy would refuse is recorded as `denied` here
//! and refused there.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use shared_protocol::grammar::split_lines;

use crate::policy::audit::{AuditEntry, AuditLog};
use crate::policy::{CallParams, Policy};

/// Relayed calls remembered while they wait for an answer; past it the oldest is recorded
/// as `unanswered` and forgotten.
pub const MAX_AWAITED_CALLS: usize = 256;

struct Awaited {
    lines: Vec<(String, &'static str)>,
    sent: Instant,
}

/// The records of one host's relayed calls.
pub struct HostAudit {
    log: Arc<AuditLog>,
    policy: Policy,
    session: String,
    awaited: HashMap<String, Awaited>,
    order: VecDeque<String>,
}

impl HostAudit {
    pub fn new(log: Arc<AuditLog>, policy: Policy, session: String) -> Self {
        Self {
            log,
            policy,
            session,
            awaited: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn record(
        &self,
        line: &str,
        tier: &str,
        outcome: &str,
        duration_ms: u64,
        detail: Option<String>,
    ) {
        self.log.record(AuditEntry {
            session: self.session.clone(),
            tier: tier.to_string(),
            command: line.to_string(),
            outcome: outcome.to_string(),
            duration_ms,
            detail,
            initial_url: None,
            group_id: None,
        });
    }

    /// A `tools/call` of the host is about to be relayed: record its lines.
    pub fn on_call(&mut self, message: &Value) {
        if message.pointer("/params/name").and_then(Value::as_str) != Some("domshell_execute") {
            return;
        }
        let (Some(id), Some(command)) = (
            message.get("id"),
            message
                .pointer("/params/arguments/command")
                .and_then(Value::as_str),
        ) else {
            return;
        };
        let mut lines = Vec::new();
        for line in split_lines(command) {
            let tier = match self.policy.check(&line, CallParams::default()) {
                Ok(classification) => {
                    self.record(&line, classification.tier_label(), "relayed", 0, None);
                    classification.tier_label()
                }
                Err(denial) => {
                    let tier = denial.tier_label();
                    self.record(&line, tier, "denied", 0, Some(denial.message));
                    tier
                }
            };
            lines.push((line, tier));
        }
        let key = id.to_string();
        if self.awaited.len() >= MAX_AWAITED_CALLS {
            if let Some(oldest) = self.order.pop_front() {
                self.finish(&oldest, "unanswered", &[]);
            }
        }
        self.order.push_back(key.clone());
        self.awaited.insert(
            key,
            Awaited {
                lines,
                sent: Instant::now(),
            },
        );
    }

    /// The answer to a relayed request arrived: record each line's outcome.
    pub fn on_answer(&mut self, message: &Value) {
        let Some(id) = message.get("id") else {
            return;
        };
        let key = id.to_string();
        if !self.awaited.contains_key(&key) {
            return;
        }
        let result = message.get("result");
        let failed: Vec<(String, String)> = result
            .and_then(|r| r.pointer("/structuredContent/failed_lines"))
            .and_then(Value::as_array)
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|l| {
                        Some((
                            l.get("line")?.as_str()?.to_string(),
                            l.get("reason")?.as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let whole = match result {
            None => Some("error"),
            Some(r) if r.get("isError") == Some(&Value::Bool(true)) && failed.is_empty() => r
                .pointer("/structuredContent/reason")
                .and_then(Value::as_str)
                .or(Some("error")),
            Some(_) => None,
        };
        let outcome = whole.unwrap_or("ok");
        self.order.retain(|k| k != &key);
        self.finish(&key, outcome, &failed);
    }

    fn finish(&mut self, key: &str, outcome: &str, failed: &[(String, String)]) {
        let Some(call) = self.awaited.remove(key) else {
            return;
        };
        let duration_ms = u64::try_from(call.sent.elapsed().as_millis()).unwrap_or(u64::MAX);
        for (line, tier) in &call.lines {
            let outcome = failed
                .iter()
                .find(|(l, _)| l == line)
                .map_or(outcome, |(_, reason)| match reason.as_str() {
                    // A command's own failure, named as the owner names it in its log.
                    "command_failed" => "error",
                    other => other,
                });
            self.record(line, tier, outcome, duration_ms, None);
        }
    }

    /// Calls still waiting.
    #[cfg(test)]
    fn awaited(&self) -> usize {
        self.awaited.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyConfig;
    use serde_json::json;

    fn records(path: &std::path::Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn call(id: u64, command: &str) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "domshell_execute", "arguments": {"command": command}}})
    }

    #[test]
    fn lines_are_recorded_before_they_are_sent_and_their_outcomes_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = Arc::new(AuditLog::open(&path, 1 << 20).unwrap());
        let mut audit = HostAudit::new(log, Policy::new(PolicyConfig::default()), "host:r".into());
        audit.on_call(&call(1, "ls\nclick x"));
        let before = records(&path);
        assert_eq!(before.len(), 2);
        assert_eq!(before[0]["outcome"], "relayed");
        assert_eq!(before[1]["outcome"], "denied", "a read-only host's click");
        audit.on_answer(&json!({"jsonrpc": "2.0", "id": 1, "result": {
            "isError": true, "structuredContent": {"reason": "tier_denied",
            "failed_lines": [{"line": "click x", "reason": "tier_denied"}]}}}));
        let after = records(&path);
        assert_eq!(after.len(), 4);
        assert_eq!(after[2]["command"], "ls");
        assert_eq!(after[2]["outcome"], "ok");
        assert_eq!(after[3]["outcome"], "tier_denied");
        assert_eq!(audit.awaited(), 0);
    }

    #[test]
    fn unanswered_calls_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(AuditLog::open(dir.path().join("a.log"), 1 << 24).unwrap());
        let mut audit = HostAudit::new(log, Policy::new(PolicyConfig::default()), "h".into());
        for id in 0..(MAX_AWAITED_CALLS as u64 + 20) {
            audit.on_call(&call(id, "pwd"));
        }
        assert_eq!(audit.awaited(), MAX_AWAITED_CALLS);
        // Other tools and other messages are not recorded.
        audit.on_call(
            &json!({"jsonrpc": "2.0", "id": 9999, "method": "tools/call",
                              "params": {"name": "domshell_status"}}),
        );
        assert_eq!(audit.awaited(), MAX_AWAITED_CALLS);
    }
}
