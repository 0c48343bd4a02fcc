//! The extension's settings and status as stored in `chrome.storage.local`.
//!
//! It owns the storage key names (the options page and tests use the same strings) and the
//! parsing of stored values with defaults. It must not touch Chrome APIs itself.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared_protocol::frame::Secret;
use shared_protocol::link::LinkState;

/// Bridge on/off. Default: on.
pub const KEY_ENABLED: &str = "bridge_enabled";
/// Token the server printed (`domshell token`).
pub const KEY_TOKEN: &str = "bridge_token";
/// Port of the server's bridge listener. Default: 9876.
pub const KEY_PORT: &str = "bridge_port";
/// Period of the heartbeat alarm in ms. Default 30 000 (Chrome's floor for packed builds);
/// unpacked builds accept shorter periods, which tests use.
pub const KEY_ALARM_PERIOD_MS: &str = "bridge_alarm_period_ms";
/// Status written by the worker for the options page: a [`Status`] object.
pub const KEY_STATUS: &str = "bridge_status";
/// Resume ticket from the server's last `WELCOME`, written by the worker. Not a setting: a
/// change does not redial.
pub const KEY_RESUME_TICKET: &str = "bridge_resume_ticket";
/// When the options page last saved (ms). Written on every save, so saving the same token
/// again still counts as a change and retries a refused one.
pub const KEY_SAVED_AT: &str = "bridge_saved_at";
/// Which token the server refused (close 4001) and under which [`KEY_SAVED_AT`]:
/// `{"saved_at": N, "token_tag": "…"}` ([`shared_protocol::handshake::token_tag`]), written by
/// the worker. Until that token changes or the options are saved again, a restarted worker
/// does not dial with it.
pub const KEY_REFUSED_FOR: &str = "bridge_refused_for";

pub const SETTING_KEYS: [&str; 5] = [
    KEY_ENABLED,
    KEY_TOKEN,
    KEY_PORT,
    KEY_ALARM_PERIOD_MS,
    KEY_SAVED_AT,
];

/// Shortest alarm period honoured; anything lower is raised to it.
pub const MIN_ALARM_PERIOD_MS: u64 = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub enabled: bool,
    /// Never sent anywhere: the link proves knowledge of it instead.
    pub token: Secret,
    pub port: u16,
    pub alarm_period_ms: u64,
    /// The stored resume ticket, if any ([`KEY_RESUME_TICKET`]).
    pub resume_ticket: Option<String>,
    /// [`KEY_SAVED_AT`]: 0 when the options page never saved.
    pub saved_at: u64,
    /// [`KEY_REFUSED_FOR`].
    pub refused_for: Option<Refusal>,
}

/// A token the server refused, and the save it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub saved_at: u64,
    pub token_tag: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled: true,
            token: Secret::default(),
            port: shared_protocol::DEFAULT_BRIDGE_PORT,
            alarm_period_ms: shared_protocol::DEFAULT_ALARM_PERIOD_MS,
            resume_ticket: None,
            saved_at: 0,
            refused_for: None,
        }
    }
}

impl Settings {
    /// Read settings from a `chrome.storage.local.get` result, falling back to defaults for
    /// missing or mistyped values (a bad value in storage must not brick the worker).
    pub fn from_storage(items: &Value) -> Self {
        let defaults = Self::default();
        let port = items
            .get(KEY_PORT)
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            })
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
            .unwrap_or(defaults.port);
        Self {
            enabled: items
                .get(KEY_ENABLED)
                .and_then(Value::as_bool)
                .unwrap_or(defaults.enabled),
            token: Secret(
                items
                    .get(KEY_TOKEN)
                    .and_then(Value::as_str)
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default(),
            ),
            port,
            alarm_period_ms: items
                .get(KEY_ALARM_PERIOD_MS)
                .and_then(Value::as_u64)
                .unwrap_or(defaults.alarm_period_ms)
                .max(MIN_ALARM_PERIOD_MS),
            resume_ticket: items
                .get(KEY_RESUME_TICKET)
                .and_then(Value::as_str)
                .map(str::to_string),
            saved_at: items.get(KEY_SAVED_AT).and_then(as_millis).unwrap_or(0),
            refused_for: items.get(KEY_REFUSED_FOR).and_then(|v| {
                Some(Refusal {
                    saved_at: as_millis(v.get("saved_at")?)?,
                    token_tag: v.get("token_tag")?.as_str()?.to_string(),
                })
            }),
        }
    }

    /// What to remember when the server refuses the current token.
    pub fn refusal(&self) -> Refusal {
        Refusal {
            saved_at: self.saved_at,
            token_tag: shared_protocol::handshake::token_tag(self.token.expose()),
        }
    }

    /// The server refused this very token, and nobody saved the settings since.
    pub fn token_known_refused(&self) -> bool {
        self.refused_for.as_ref() == Some(&self.refusal())
    }

    pub fn bridge_url(&self) -> String {
        format!(
            "ws://127.0.0.1:{}{}",
            self.port,
            shared_protocol::BRIDGE_PATH
        )
    }

    /// Whether a change from `self` to `other` requires a new connection.
    pub fn needs_redial(&self, other: &Settings) -> bool {
        self.enabled != other.enabled
            || self.token != other.token
            || self.port != other.port
            || self.saved_at != other.saved_at
    }
}

/// A stored time: JavaScript numbers may arrive as floats.
fn as_millis(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

/// What the options page shows. Times are wall-clock ms (`Date.now()`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub state: LinkState,
    /// One sentence for a person: what is happening or what to do.
    pub detail: String,
    pub port: u16,
    pub last_inbound_at: Option<u64>,
    pub connected_since: Option<u64>,
    pub last_rtt_ms: Option<u64>,
    pub reconnects: u64,
    pub updated_at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_apply_to_missing_and_mistyped_values() {
        assert_eq!(Settings::from_storage(&json!({})), Settings::default());
        let s = Settings::from_storage(&json!({
            KEY_ENABLED: "yes", KEY_TOKEN: 42, KEY_PORT: 70000, KEY_ALARM_PERIOD_MS: 5
        }));
        assert!(s.enabled);
        assert_eq!(s.token.expose(), "");
        assert_eq!(s.port, 9876);
        assert_eq!(s.alarm_period_ms, MIN_ALARM_PERIOD_MS);
    }

    #[test]
    fn values_are_read_and_trimmed() {
        let s = Settings::from_storage(&json!({
            KEY_ENABLED: false, KEY_TOKEN: "  abc \n", KEY_PORT: "9999", KEY_ALARM_PERIOD_MS: 3000
        }));
        assert_eq!(
            s,
            Settings {
                enabled: false,
                token: Secret("abc".into()),
                port: 9999,
                alarm_period_ms: 3000,
                resume_ticket: None,
                saved_at: 0,
                refused_for: None,
            }
        );
        assert_eq!(s.bridge_url(), "ws://127.0.0.1:9999/bridge");
    }

    #[test]
    fn only_connection_settings_force_a_redial() {
        let a = Settings::default();
        let mut b = a.clone();
        b.alarm_period_ms = 1_000;
        assert!(!a.needs_redial(&b));
        b.resume_ticket = Some("t".into());
        assert!(!a.needs_redial(&b), "a new ticket is no reason to redial");
        b.token = Secret("x".into());
        assert!(a.needs_redial(&b));
    }

    #[test]
    fn the_token_is_redacted_in_debug_output() {
        let s = Settings::from_storage(&json!({ KEY_TOKEN: "hunter2-hunter2" }));
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
