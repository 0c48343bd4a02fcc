//! Shell sessions of MCP clients and the one table of everything kept per MCP session.
//!
//! Keys: an MCP session's own random key; for a relay admitted by the
//! [`crate::relay_door`], `host:<identity>` (the same on every owner, so cwd, tab and
//! history survive a change of owner); for stateless (2026-07-28) clients, which have no
//! session, `client:<name/version>` ended after an idle time, or, without any client
//! identity, a key of the call's own that ends with it.
//!
//! [`SessionTable`] owns every per-session map (listing, log listeners, stateless clients)
//! and their bounds. Entries carry a generation: a session that ends removes only what it
//! registered itself, so an expired session never tears down the listener or the shell state
//! of a successor under the same key. It must not run commands.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use rmcp::service::RequestContext;
use rmcp::RoleServer;
use serde::Serialize;

use super::notifications::LogListener;
use super::{DomshellMcp, McpShared};
use crate::relay_door::RelayGrant;

/// MCP sessions listed in the status document at most. Past it, registering a session
/// forgets the oldest one that no relay holds (it keeps working; it is only no longer listed
/// or told about link changes), so clients that send nothing but `initialize` cannot grow it.
pub const MAX_LISTED_SESSIONS: usize = 256;
/// Stateless clients with a shell session at most; past it the least recently used one is
/// ended.
pub const MAX_STATELESS_SESSIONS: usize = 256;

/// One MCP session as the status document lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub client: String,
    /// `connecting` until the client confirmed initialization, then `active`.
    pub state: &'static str,
    pub since: String,
    /// The session's own rails when a relay brought them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<serde_json::Value>,
}

struct Listed {
    gen: u64,
    info: SessionInfo,
    relay: bool,
}

#[derive(Default)]
struct Inner {
    next_gen: u64,
    listed: HashMap<String, Listed>,
    /// Keys in the order they were registered (stale pairs are skipped), for eviction.
    order: VecDeque<(String, u64)>,
    /// Stateless clients' shell sessions with the time of their last call.
    stateless: HashMap<String, Instant>,
}

/// Every per-session map of this process, bounded (see the constants).
#[derive(Default)]
pub struct SessionTable {
    inner: Mutex<Inner>,
    listeners: Mutex<HashMap<String, (u64, LogListener)>>,
    /// MCP sessions that completed initialization and have not ended.
    active: std::sync::atomic::AtomicUsize,
}

impl SessionTable {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn listeners(&self) -> MutexGuard<'_, HashMap<String, (u64, LogListener)>> {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// List a session under `key`; returns its generation. A session already under the key
    /// (one that expired, now re-initialized by the same relay) is replaced.
    pub fn register(&self, key: &str, info: SessionInfo, relay: bool) -> u64 {
        let mut inner = self.inner();
        inner.next_gen += 1;
        let gen = inner.next_gen;
        inner
            .listed
            .insert(key.to_string(), Listed { gen, info, relay });
        inner.order.push_back((key.to_string(), gen));
        while inner.listed.len() > MAX_LISTED_SESSIONS {
            let Some(victim) = Self::eviction_victim(&inner) else {
                break;
            };
            inner.listed.remove(&victim.0);
            inner.order.retain(|entry| *entry != victim);
            drop(inner);
            self.listeners()
                .retain(|k, (g, _)| !(k == &victim.0 && *g == victim.1));
            inner = self.inner();
        }
        // Drop order entries whose session is gone or replaced.
        let Inner { listed, order, .. } = &mut *inner;
        if order.len() > 2 * MAX_LISTED_SESSIONS {
            order.retain(|(k, g)| listed.get(k).is_some_and(|l| l.gen == *g));
        }
        gen
    }

    /// The oldest listed session no relay holds, or the oldest of all.
    fn eviction_victim(inner: &Inner) -> Option<(String, u64)> {
        let live = |(k, g): &&(String, u64)| inner.listed.get(k).is_some_and(|l| l.gen == *g);
        inner
            .order
            .iter()
            .filter(live)
            .find(|(k, _)| inner.listed.get(k).is_some_and(|l| !l.relay))
            .or_else(|| inner.order.iter().find(live))
            .cloned()
    }

    /// The client confirmed initialization: mark it active and let it hear link changes.
    pub(super) fn activate(&self, key: &str, gen: u64, listener: LogListener) {
        let listed = {
            let mut inner = self.inner();
            match inner.listed.get_mut(key) {
                Some(l) if l.gen == gen => {
                    l.info.state = "active";
                    true
                }
                _ => false,
            }
        };
        if listed {
            self.listeners().insert(key.to_string(), (gen, listener));
        }
    }

    /// The session of generation `gen` under `key` ended. Returns whether its shell session
    /// is to be closed: not when a successor holds the key now.
    pub fn release(&self, key: &str, gen: u64) -> bool {
        let successor = {
            let mut inner = self.inner();
            match inner.listed.get(key) {
                Some(l) if l.gen == gen => {
                    inner.listed.remove(key);
                    false
                }
                Some(_) => true,
                None => false,
            }
        };
        self.listeners()
            .retain(|k, (g, _)| !(k == key && *g == gen));
        !successor
    }

    pub fn count_active(&self, delta: isize) {
        if delta >= 0 {
            self.active
                .fetch_add(delta.unsigned_abs(), Ordering::SeqCst);
        } else {
            self.active
                .fetch_sub(delta.unsigned_abs(), Ordering::SeqCst);
        }
    }

    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// The client label (`name/version`) of the session under `key`: the one it gave at
    /// initialization, or for a stateless client the identity its key is made of.
    pub fn client(&self, key: &str) -> Option<String> {
        if let Some(listed) = self.inner().listed.get(key) {
            return Some(listed.info.client.clone());
        }
        key.strip_prefix("client:").map(str::to_string)
    }

    /// The listing for the status document.
    pub fn listing(&self) -> serde_json::Map<String, serde_json::Value> {
        self.inner()
            .listed
            .iter()
            .filter_map(|(k, l)| Some((k.clone(), serde_json::to_value(&l.info).ok()?)))
            .collect()
    }

    /// Note a call in a stateless client's shell session; returns the session that had to
    /// make room, if any (its shell session is to be closed).
    pub fn touch_stateless(&self, key: &str, now: Instant) -> Option<String> {
        let mut inner = self.inner();
        inner.stateless.insert(key.to_string(), now);
        if inner.stateless.len() <= MAX_STATELESS_SESSIONS {
            return None;
        }
        let oldest = inner
            .stateless
            .iter()
            .filter(|(k, _)| k.as_str() != key)
            .min_by_key(|(_, t)| **t)
            .map(|(k, _)| k.clone())?;
        inner.stateless.remove(&oldest);
        Some(oldest)
    }

    /// Take the stateless sessions idle for `ttl` or more.
    pub fn take_idle_stateless(&self, ttl: Duration, now: Instant) -> Vec<String> {
        let mut inner = self.inner();
        let idle: Vec<String> = inner
            .stateless
            .iter()
            .filter(|(_, last)| now.saturating_duration_since(**last) >= ttl)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &idle {
            inner.stateless.remove(key);
        }
        idle
    }
}

/// End the shell sessions of stateless clients that stopped calling, so nothing accumulates
/// in the extension.
pub(super) async fn reap_idle_stateless_sessions(shared: std::sync::Weak<McpShared>) {
    let period = match shared.upgrade() {
        Some(s) => (s.config.session_idle_ttl / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(60)),
        None => return,
    };
    loop {
        tokio::time::sleep(period).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let idle = shared
            .sessions
            .take_idle_stateless(shared.config.session_idle_ttl, Instant::now());
        for key in idle {
            tracing::info!(session = %key, "ending idle shell session");
            shared
                .pipeline
                .bridge
                .close_session(&key, Duration::ZERO)
                .await;
        }
    }
}

/// Ends the shell session in the extension when the last handle of an MCP session goes.
pub(super) struct SessionGuard {
    /// The shell-session key; an admitted relay replaces it with its stable one at
    /// `initialize`.
    pub(super) key: Mutex<String>,
    /// The table generation of this session's entry (0: not registered yet).
    pub(super) gen: AtomicU64,
    pub(super) shared: Arc<McpShared>,
    pub(super) counted: AtomicBool,
    /// A command ran in this session's own shell session, so the extension has state to drop.
    /// Handlers of stateless requests (one per request) never do.
    pub(super) used: AtomicBool,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.counted.load(Ordering::SeqCst) {
            self.shared.sessions.count_active(-1);
        }
        let key = std::mem::take(&mut *self.key.lock().unwrap_or_else(|p| p.into_inner()));
        let close = self
            .shared
            .sessions
            .release(&key, self.gen.load(Ordering::SeqCst));
        if !close || !self.used.load(Ordering::SeqCst) {
            return;
        }
        let bridge = self.shared.pipeline.bridge.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { bridge.close_session(&key, Duration::ZERO).await });
        }
    }
}

impl SessionGuard {
    pub(super) fn key(&self) -> String {
        self.key.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The shell session one call runs in.
pub(super) struct CallSession {
    pub(super) key: String,
    /// The session is this call's alone and ends with it (a stateless client that gave no
    /// identity: sharing one session between all such clients would show one agent
    /// another's history).
    pub(super) ephemeral: bool,
}

impl DomshellMcp {
    /// The shell session a call runs in: this MCP session's, or for stateless (2026-07-28)
    /// requests, which have no session, one per client identity.
    pub(super) fn call_session(&self, context: &RequestContext<RoleServer>) -> CallSession {
        // From 2026-07-28 on there is no initialize and no session: each request says its own
        // protocol version in `_meta`.
        let stateless = context
            .meta
            .protocol_version()
            .is_some_and(|version| !version.has_initialize());
        if !stateless {
            self.session.used.store(true, Ordering::SeqCst);
            return CallSession {
                key: self.session.key(),
                ephemeral: false,
            };
        }
        // The request's own `_meta` only: rmcp fills in a made-up identity of its own for a
        // stateless request that names none, which would put every such client in one session.
        let Some(info) = context
            .meta
            .client_info()
            .filter(|info| !info.name.trim().is_empty())
        else {
            let suffix = crate::auth::random_hex(8).unwrap_or_else(|_| "0".into());
            return CallSession {
                key: format!("anon:{suffix}"),
                ephemeral: true,
            };
        };
        let key = format!(
            "client:{}",
            crate::labels::client_label(&info.name, &info.version)
        );
        if let Some(evicted) = self.shared.sessions.touch_stateless(&key, Instant::now()) {
            let bridge = self.shared.pipeline.bridge.clone();
            tokio::spawn(async move { bridge.close_session(&evicted, Duration::ZERO).await });
        }
        CallSession {
            key,
            ephemeral: false,
        }
    }

    /// At `initialize`: take what an admitted relay was granted (its stable shell session,
    /// its host's rails) and list the session. Nothing in the request itself is authority:
    /// a grant comes only from the admission layer (HTTP) or from this process (in-process).
    pub(super) fn adopt_host(&self, context: &RequestContext<RoleServer>, client: String) {
        let grant = self.preset_grant.clone().or_else(|| {
            context
                .extensions
                .get::<axum::http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<RelayGrant>())
                .cloned()
        });
        let mut policy = None;
        let mut client = client;
        let relay = grant.is_some();
        if let Some(grant) = grant {
            *self.session.key.lock().unwrap_or_else(|p| p.into_inner()) = grant.shell_session();
            client = grant.client_id.clone();
            let rails = Arc::new(crate::pipeline::Rails {
                policy: crate::policy::Policy::new(grant.policy.clone()),
            });
            policy = Some(rails.policy.describe());
            *self.rails.lock().unwrap_or_else(|p| p.into_inner()) = Some(rails);
        }
        let key = self.session.key();
        let gen = self.shared.sessions.register(
            &key,
            SessionInfo {
                client,
                state: "connecting",
                since: crate::policy::audit::rfc3339_utc(SystemTime::now()),
                policy,
            },
            relay,
        );
        self.session.gen.store(gen, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(client: &str) -> SessionInfo {
        SessionInfo {
            client: client.into(),
            state: "connecting",
            since: String::new(),
            policy: None,
        }
    }

    #[test]
    fn a_session_is_labelled_by_its_client() {
        let table = SessionTable::default();
        table.register("mcp:1", info("claude-ai/0.1"), false);
        assert_eq!(table.client("mcp:1").as_deref(), Some("claude-ai/0.1"));
        // A stateless client is known by the identity its key is made of.
        assert_eq!(table.client("client:curl/8").as_deref(), Some("curl/8"));
        assert_eq!(table.client("anon:00ff"), None);
    }

    #[test]
    fn an_ended_session_leaves_its_successor_alone() {
        let table = SessionTable::default();
        let first = table.register("host:r1", info("a"), true);
        // The relay's session expired and it initialized again under the same key.
        let second = table.register("host:r1", info("a"), true);
        assert!(
            !table.release("host:r1", first),
            "the successor keeps the shell session"
        );
        assert!(table.listing().contains_key("host:r1"));
        assert!(table.release("host:r1", second));
        assert!(table.listing().is_empty());
    }

    #[test]
    fn the_listing_is_bounded_and_relays_are_kept() {
        let table = SessionTable::default();
        table.register("host:relay", info("relay"), true);
        for i in 0..(MAX_LISTED_SESSIONS + 50) {
            table.register(&format!("s{i}"), info(&format!("c{i}")), false);
        }
        let listing = table.listing();
        assert_eq!(listing.len(), MAX_LISTED_SESSIONS);
        assert!(
            listing.contains_key("host:relay"),
            "relay sessions outlive the flood"
        );
        assert!(listing.contains_key(&format!("s{}", MAX_LISTED_SESSIONS + 49)));
        assert!(
            !listing.contains_key("s0"),
            "the oldest anonymous entries went first"
        );
        // A forgotten session still closes its own shell session when it ends.
        assert!(table.release("s0", 2));
    }

    #[test]
    fn stateless_sessions_are_bounded_and_reaped_when_idle() {
        let table = SessionTable::default();
        let start = Instant::now();
        let mut evicted = Vec::new();
        for i in 0..(MAX_STATELESS_SESSIONS + 3) {
            let at = start + Duration::from_millis(i as u64);
            if let Some(key) = table.touch_stateless(&format!("client:{i}"), at) {
                evicted.push(key);
            }
        }
        assert_eq!(evicted, ["client:0", "client:1", "client:2"]);
        let later = start + Duration::from_secs(10);
        let idle = table.take_idle_stateless(Duration::from_secs(5), later);
        assert_eq!(idle.len(), MAX_STATELESS_SESSIONS);
        assert!(table.take_idle_stateless(Duration::ZERO, later).is_empty());
    }
}
