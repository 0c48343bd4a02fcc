//! The attach backend: the relay's messages go to the owner's streamable HTTP `/mcp` on
//! loopback, and everything the owner sends back (responses, progress, log messages, list
//! changes) comes out of it.
//!
//! It owns the HTTP side of one MCP session with the owner: the `Mcp-Session-Id` and
//! protocol-version headers, the relay's claim in the host's `initialize` (the owner proved
//! the relay key before this backend was made; no bearer token is ever sent), JSON and SSE
//! response bodies, and the GET stream for server-initiated messages. It reports the owner as lost when a request cannot
//! reach it or the GET stream ends, and the session as expired when the owner no longer
//! knows it (404): it must not retry or re-initialize by itself — the relay decides that.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc::error::TrySendError;

use super::core::{Event, Gen};
use super::sse::SseParser;
use super::Inbox;
use crate::relay_door::{HostClaim, HOST_META_KEY};

/// How the relay reaches an owner.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    /// Sent as `X-Domshell-Client` so the owner can tell its proxies apart.
    pub client_id: String,
}

struct Session {
    id: Option<String>,
    protocol: Option<String>,
    stream_open: bool,
}

pub struct Remote {
    gen: Gen,
    target: Target,
    /// The proof for this owner's challenge, presented with the host's `initialize` (once).
    claim: Mutex<Option<HostClaim>>,
    http: reqwest::Client,
    session: Arc<Mutex<Session>>,
    inbox: Inbox,
}

impl Remote {
    pub fn new(gen: Gen, target: Target, claim: HostClaim, inbox: Inbox) -> Self {
        // No proxies (loopback only) and no overall timeout: an SSE reply lasts as long as
        // the command; the owner's own call budget bounds it.
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            gen,
            target,
            claim: Mutex::new(Some(claim)),
            http,
            session: Arc::new(Mutex::new(Session {
                id: None,
                protocol: None,
                stream_open: false,
            })),
            inbox,
        }
    }

    pub fn gen(&self) -> Gen {
        self.gen
    }

    /// Send one message from the host; what comes back is delivered as [`Event::FromBackend`].
    pub fn send(&self, mut message: Value) -> Result<(), TrySendError<Value>> {
        if message.get("method").and_then(Value::as_str) == Some("initialize") {
            let claim = self.claim.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(claim) = claim {
                present(&mut message, &claim);
            }
        }
        let ctx = self.context();
        tokio::spawn(async move { ctx.post(message).await });
        Ok(())
    }

    fn context(&self) -> Ctx {
        Ctx {
            gen: self.gen,
            target: self.target.clone(),
            http: self.http.clone(),
            session: self.session.clone(),
            inbox: self.inbox.clone(),
        }
    }
}

/// Put `claim` in the `_meta` of an `initialize` (what the host sent there stays).
fn present(initialize: &mut Value, claim: &HostClaim) {
    let Some(params) = initialize.get_mut("params").and_then(Value::as_object_mut) else {
        return;
    };
    let meta = params
        .entry("_meta")
        .or_insert_with(|| serde_json::json!({}));
    if let (Some(meta), Ok(claim)) = (meta.as_object_mut(), serde_json::to_value(claim)) {
        meta.insert(HOST_META_KEY.to_string(), claim);
    }
}

#[derive(Clone)]
struct Ctx {
    gen: Gen,
    target: Target,
    http: reqwest::Client,
    session: Arc<Mutex<Session>>,
    inbox: Inbox,
}

impl Ctx {
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn lost(&self, why: String) {
        let _ = self.inbox.send(Event::BackendLost(self.gen, why)).await;
    }

    async fn deliver(&self, message: Value) {
        let _ = self.inbox.send(Event::FromBackend(self.gen, message)).await;
    }

    fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        let (id, protocol) = {
            let s = self.session();
            (s.id.clone(), s.protocol.clone())
        };
        let mut request = self
            .http
            .request(method, &self.target.url)
            .header("Accept", "application/json, text/event-stream")
            .header("X-Domshell-Client", &self.target.client_id);
        if let Some(id) = id {
            request = request.header("Mcp-Session-Id", id);
        }
        if let Some(protocol) = protocol {
            request = request.header("MCP-Protocol-Version", protocol);
        }
        request
    }

    async fn post(self, message: Value) {
        let is_initialize = message.get("method").and_then(Value::as_str) == Some("initialize");
        let is_initialized =
            message.get("method").and_then(Value::as_str) == Some("notifications/initialized");
        let had_session = self.session().id.is_some();
        let response = match self
            .request(reqwest::Method::POST)
            .header("Content-Type", "application/json")
            .body(message.to_string())
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return self
                    .lost(format!("the owner's /mcp cannot be reached: {e}"))
                    .await
            }
        };
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND && had_session && !is_initialize {
            // The owner does not know our session: it is not the owner we initialized with.
            let _ = self.inbox.send(Event::SessionExpired(self.gen)).await;
            return;
        }
        if is_initialize {
            if let Some(id) = response
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
            {
                self.session().id = Some(id.to_string());
            }
        }
        if !status.is_success() {
            let id = message.get("id").cloned();
            let text = response.text().await.unwrap_or_default();
            // A JSON-RPC error body is forwarded as it is; anything else becomes one.
            match serde_json::from_str::<Value>(&text) {
                Ok(body) if body.get("jsonrpc").is_some() => self.deliver(body).await,
                _ => {
                    if let Some(id) = id {
                        self.deliver(serde_json::json!({
                            "jsonrpc": "2.0", "id": id,
                            "error": {"code": -32603, "message": format!("the owner answered HTTP {status}: {}", text.chars().take(200).collect::<String>())}
                        }))
                        .await;
                    }
                }
            }
            return;
        }
        let is_sse = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if is_sse {
            self.read_sse(response, is_initialize).await;
        } else if status != reqwest::StatusCode::ACCEPTED {
            match response.bytes().await {
                Ok(bytes) if !bytes.is_empty() => match serde_json::from_slice::<Value>(&bytes) {
                    Ok(body) => self.on_message(body, is_initialize).await,
                    Err(e) => tracing::warn!("owner sent a body that is not JSON: {e}"),
                },
                Ok(_) => {}
                Err(e) => {
                    return self
                        .lost(format!("reading the owner's answer failed: {e}"))
                        .await
                }
            }
        }
        if is_initialized {
            self.open_stream();
        }
    }

    async fn on_message(&self, message: Value, is_initialize: bool) {
        if is_initialize {
            if let Some(version) = message
                .pointer("/result/protocolVersion")
                .and_then(Value::as_str)
            {
                self.session().protocol = Some(version.to_string());
            }
        }
        self.deliver(message).await;
    }

    async fn read_sse(&self, response: reqwest::Response, is_initialize: bool) -> bool {
        let mut parser = SseParser::default();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    self.lost(format!("the owner's event stream broke: {e}"))
                        .await;
                    return false;
                }
            };
            for data in parser.feed(&chunk) {
                match serde_json::from_str::<Value>(&data) {
                    Ok(message) => self.on_message(message, is_initialize).await,
                    // Priming events carry no data worth relaying.
                    Err(_) => tracing::trace!("non-JSON SSE data ignored"),
                }
            }
        }
        true
    }

    /// The GET stream carries what the owner sends unasked (log messages, list changes).
    fn open_stream(&self) {
        {
            let mut s = self.session();
            if s.stream_open || s.id.is_none() {
                return;
            }
            s.stream_open = true;
        }
        let ctx = self.clone();
        tokio::spawn(async move {
            let response = match ctx
                .request(reqwest::Method::GET)
                .header("Accept", "text/event-stream")
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    return ctx
                        .lost(format!("the owner's event stream cannot be opened: {e}"))
                        .await
                }
            };
            if response.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED {
                return;
            }
            if !response.status().is_success() {
                tracing::debug!(status = %response.status(), "owner refused the GET stream");
                return;
            }
            if ctx.read_sse(response, false).await {
                ctx.stream_ended().await;
            }
        });
    }

    /// The owner ended the GET stream: it either went away or ended our session (an idle
    /// session expired, the owner restarted it). A ping on the session tells which.
    async fn stream_ended(&self) {
        let ping = serde_json::json!({"jsonrpc": "2.0", "id": "domshell-relay-session-check", "method": "ping"});
        match self
            .request(reqwest::Method::POST)
            .header("Content-Type", "application/json")
            .body(ping.to_string())
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                let _ = self.inbox.send(Event::SessionExpired(self.gen)).await;
            }
            _ => self.lost("the owner closed its event stream".into()).await,
        }
    }
}
