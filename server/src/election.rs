//! Who owns the bridge port, when this process could not bind it.
//!
//! The bound listening socket is the ownership lock: the kernel frees it when its owner
//! dies, whatever the cause, so there is no lock file to go stale. A process that finds the
//! port taken asks `GET /health` what holds it and decides, with [`judge`], whether to attach
//! to a healthy compatible owner or to explain the conflict (degraded mode).
//!
//! [`judge`] is pure; [`probe`] does the I/O (a raw HTTP/1.1 GET on loopback with short
//! timeouts, the answer read by [`crate::http_reader`]). This module must not bind ports or
//! start services itself.

use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::http_reader::{self, HttpReadError, Response};

/// What holds the port, as far as `/health` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A domshell owner that speaks our protocol and is ready.
    Owner(OwnerInfo),
    /// A domshell owner that is still starting; ask again shortly.
    Starting(OwnerInfo),
    /// A domshell owner that answers, but speaks another bridge/MCP protocol.
    Incompatible(OwnerInfo),
    /// Something accepts connections but does not answer `/health` in time.
    Unresponsive,
    /// Something answers, but it is not domshell.
    Foreign { detail: String },
    /// It says it is a domshell owner but could not prove this user's relay key (an
    /// impostor holding the port, or a domshell of another user or container).
    Unproven { detail: String },
    /// Nothing listens any more: the port is free to take.
    Gone,
}

/// The identity an owner publishes on `/health`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnerInfo {
    pub pid: Option<u64>,
    pub version: Option<String>,
    pub protocol: Option<u64>,
    pub state: Option<String>,
}

/// Reads a `/health` document. `ours` is this build's bridge protocol version.
pub fn judge(health: &Value, ours: u32) -> Holder {
    if health.get("name").and_then(Value::as_str) != Some("domshell") {
        return Holder::Foreign {
            detail: "its /health answer is not domshell's".into(),
        };
    }
    let info = OwnerInfo {
        pid: health.get("pid").and_then(Value::as_u64),
        version: health
            .get("server_version")
            .and_then(Value::as_str)
            .map(str::to_string),
        protocol: health.get("protocol").and_then(Value::as_u64),
        state: health
            .get("state")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    // An owner that cannot run the relay handshake of this build is as incompatible as one
    // with another bridge protocol: attaching would fail at its door.
    let relay_protocol = health.get("relay_protocol").and_then(Value::as_u64);
    if info.protocol != Some(u64::from(ours))
        || relay_protocol != Some(u64::from(shared_protocol::RELAY_PROTOCOL_VERSION))
    {
        return Holder::Incompatible(info);
    }
    match info.state.as_deref() {
        Some("starting") => Holder::Starting(info),
        // An owner whose extension is merely disconnected is healthy: a new owner would be
        // in the same state (Chrome closed, extension off). Draining owners are about to
        // free the port; attaching would only be cut off again.
        Some("draining") => Holder::Unresponsive,
        _ => Holder::Owner(info),
    }
}

/// Asks `http://{host}:{port}/health` what holds the port: up to `attempts` tries,
/// `timeout` each, `pause` apart (an owner in the middle of starting may need a moment).
pub async fn probe(
    host: &str,
    port: u16,
    attempts: u32,
    timeout: Duration,
    pause: Duration,
    ours: u32,
) -> Holder {
    let mut last = Holder::Unresponsive;
    for attempt in 0..attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(pause).await;
        }
        last = match tokio::time::timeout(timeout, get_health(host, port)).await {
            Err(_) => Holder::Unresponsive,
            Ok(Err(ProbeError::Refused)) => return Holder::Gone,
            Ok(Err(ProbeError::Io(e))) => {
                tracing::debug!("health probe of port {port}: {e}");
                Holder::Unresponsive
            }
            Ok(Err(ProbeError::NotHealth(detail))) => Holder::Foreign { detail },
            Ok(Ok(health)) => judge(&health, ours),
        };
        match last {
            Holder::Owner(_) | Holder::Incompatible(_) | Holder::Foreign { .. } => return last,
            _ => {}
        }
    }
    last
}

#[derive(Debug)]
enum ProbeError {
    Refused,
    Io(std::io::Error),
    NotHealth(String),
}

impl From<HttpReadError> for ProbeError {
    fn from(e: HttpReadError) -> Self {
        let detail = match e {
            HttpReadError::Io(e) => return ProbeError::Io(e),
            HttpReadError::TooLarge { .. } => "its /health answer is too large".into(),
            HttpReadError::NotHttp(_) => "it does not speak HTTP".into(),
            HttpReadError::NoResponse => "it closed the connection without answering".into(),
            other => format!("its /health answer is not valid HTTP: {other}"),
        };
        ProbeError::NotHealth(detail)
    }
}

/// Largest `/health` answer read; the owner's document is kept well below it, so anything
/// larger is not an owner.
const MAX_HEALTH_BYTES: usize = 64 * 1024;

async fn get_health(host: &str, port: u16) -> Result<Value, ProbeError> {
    let mut stream = match tokio::net::TcpStream::connect((host, port)).await {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(ProbeError::Refused)
        }
        Err(e) => return Err(ProbeError::Io(e)),
    };
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(ProbeError::Io)?;
    let response = http_reader::read_response(&mut stream, MAX_HEALTH_BYTES).await?;
    health_document(&response)
}

/// The JSON document of a `200` answer.
fn health_document(response: &Response) -> Result<Value, ProbeError> {
    if response.status != 200 {
        let reason: String = response.reason.chars().take(60).collect();
        return Err(ProbeError::NotHealth(format!(
            "GET /health answered `{} {reason}`",
            response.status
        )));
    }
    serde_json::from_str(response.body.trim()).map_err(|_| {
        let detail = match response.header("content-type") {
            Some(kind) => {
                let kind: String = kind.chars().take(60).collect();
                format!("its /health answer is not JSON; its content type is {kind}")
            }
            None => "its /health answer is not JSON".into(),
        };
        ProbeError::NotHealth(detail)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_ready_compatible_owner_is_attached_to_even_without_an_extension() {
        let health = json!({"name": "domshell", "pid": 42, "server_version": "0.1.0",
                            "protocol": 2, "relay_protocol": 1, "state": "ready", "link": {"state": "waiting"}});
        assert_eq!(
            judge(&health, 2),
            Holder::Owner(OwnerInfo {
                pid: Some(42),
                version: Some("0.1.0".into()),
                protocol: Some(2),
                state: Some("ready".into())
            })
        );
    }

    #[test]
    fn other_protocols_states_and_programs_are_told_apart() {
        let base = json!({"name": "domshell", "pid": 1, "server_version": "9.0.0", "protocol": 7});
        assert!(
            matches!(judge(&base, 2), Holder::Incompatible(i) if i.version.as_deref() == Some("9.0.0"))
        );
        let starting =
            json!({"name": "domshell", "protocol": 2, "relay_protocol": 1, "state": "starting"});
        assert!(matches!(judge(&starting, 2), Holder::Starting(_)));
        let draining =
            json!({"name": "domshell", "protocol": 2, "relay_protocol": 1, "state": "draining"});
        let before_relay_door = json!({"name": "domshell", "protocol": 2, "state": "ready"});
        assert!(matches!(
            judge(&before_relay_door, 2),
            Holder::Incompatible(_)
        ));
        assert_eq!(judge(&draining, 2), Holder::Unresponsive);
        assert!(matches!(
            judge(&json!({"status": "ok"}), 2),
            Holder::Foreign { .. }
        ));
        assert!(matches!(judge(&json!([1, 2]), 2), Holder::Foreign { .. }));
    }

    fn health_of(raw: &[u8]) -> Result<Value, ProbeError> {
        health_document(&http_reader::parse(raw)?)
    }

    #[test]
    fn http_answers_are_parsed_plain_and_chunked() {
        let plain =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"name\":\"domshell\"}";
        assert_eq!(health_of(plain).unwrap()["name"], "domshell");
        let chunked =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n0\r\n\r\n";
        assert_eq!(health_of(chunked).unwrap()["a"], 1);
        assert!(matches!(
            health_of(b"HTTP/1.1 404 Not Found\r\n\r\nnope"),
            Err(ProbeError::NotHealth(d)) if d.contains("404")
        ));
        assert!(matches!(
            health_of(b"SSH-2.0-OpenSSH_9.2\r\n"),
            Err(ProbeError::NotHealth(d)) if d == "it does not speak HTTP"
        ));
        assert!(matches!(
            health_of(b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n\r\n<html>"),
            Err(ProbeError::NotHealth(d)) if d.contains("not JSON") && d.contains("text/html")
        ));
    }

    /// Serves one connection with `answer` on an ephemeral port, then closes it.
    async fn answer_once(answer: Vec<u8>) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut request).await;
            let _ = socket.write_all(&answer).await;
        });
        port
    }

    async fn probe_once(port: u16) -> Holder {
        probe(
            "127.0.0.1",
            port,
            1,
            Duration::from_secs(5),
            Duration::ZERO,
            2,
        )
        .await
    }

    #[tokio::test]
    async fn a_chunked_answer_with_characters_split_across_chunks_is_judged() {
        let document =
            r#"{"name":"domshell","protocol":2,"relay_protocol":1,"state":"ready","note":"é漢🎉"}"#;
        let mut answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        // One byte per chunk puts a boundary inside every multi-byte character.
        for byte in document.bytes() {
            answer.extend_from_slice(b"1\r\n");
            answer.push(byte);
            answer.extend_from_slice(b"\r\n");
        }
        answer.extend_from_slice(b"0\r\n\r\n");
        let port = answer_once(answer).await;
        assert!(matches!(probe_once(port).await, Holder::Owner(_)));
    }

    #[tokio::test]
    async fn a_health_answer_over_the_cap_is_foreign() {
        let body = format!(
            r#"{{"name":"domshell","pad":"{}"}}"#,
            "x".repeat(MAX_HEALTH_BYTES)
        );
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let port = answer_once(answer.into_bytes()).await;
        assert_eq!(
            probe_once(port).await,
            Holder::Foreign {
                detail: "its /health answer is too large".into()
            }
        );
    }

    #[tokio::test]
    async fn probing_a_closed_port_says_gone_and_a_silent_one_unresponsive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts (kernel backlog) but never answers.
        let holder = probe(
            "127.0.0.1",
            port,
            2,
            Duration::from_millis(100),
            Duration::from_millis(10),
            2,
        )
        .await;
        assert_eq!(holder, Holder::Unresponsive);
        drop(listener);
        let holder = probe(
            "127.0.0.1",
            port,
            1,
            Duration::from_millis(200),
            Duration::ZERO,
            2,
        )
        .await;
        assert_eq!(holder, Holder::Gone);
    }
}
