//! The server's half of the bridge handshake: `CHALLENGE`, then the extension's `HELLO`
//! checked against the token (and the throttle), then `WELCOME` with the server's own proof.
//!
//! The token never travels: both sides prove knowledge of it over nonces from both sides
//! (see `shared_protocol::handshake`). A guess is accounted at the moment its proof is
//! evaluated, under the throttle's lock; a `HELLO` with a valid resume-ticket claim is evaluated
//! even while the guess budget is spent, so a flood of wrong guesses cannot lock the real
//! extension out. This module must not touch the link table: it only decides whether a socket
//! may become a link and with which first frame.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use shared_protocol::close::CloseCode;
use shared_protocol::frame::{Frame, Preamble};
use shared_protocol::handshake::{
    prove, verify, Nonce, ResumeTicket, Role, NONCE_BYTES, TICKET_ID_BYTES,
};
use shared_protocol::PROTOCOL_VERSION;

use super::Bridge;
use crate::auth::Attempt;

/// An extension that proved it knows the token.
pub(super) struct Admitted {
    pub(super) extension_version: String,
    /// The `WELCOME` to send first.
    pub(super) welcome: Frame,
}

pub(super) fn close_message(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

fn random<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

/// Why a peer was not admitted: the close code and reason it is sent.
struct Refusal {
    code: u16,
    reason: String,
}

impl Refusal {
    fn of(code: CloseCode) -> Self {
        Self {
            code: code.code(),
            reason: code.reason().to_string(),
        }
    }
}

/// Run the handshake on a fresh socket. On refusal the close frame has been sent and `None`
/// is returned.
pub(super) async fn admit(
    bridge: &Bridge,
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
) -> Option<Admitted> {
    match run(bridge, sink, stream).await {
        Ok(admitted) => Some(admitted),
        Err(refusal) => {
            let _ = sink
                .send(close_message(refusal.code, &refusal.reason))
                .await;
            None
        }
    }
}

async fn run(
    bridge: &Bridge,
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
) -> Result<Admitted, Refusal> {
    let config = bridge.config();
    if bridge.is_shutting_down() {
        return Err(Refusal::of(CloseCode::ServerShutdown));
    }
    let server_nonce = Nonce(random::<NONCE_BYTES>().map_err(|e| {
        tracing::error!("cannot draw a handshake nonce: {e}");
        Refusal {
            code: CloseCode::HandshakeFailed.code(),
            reason: "the server cannot draw random numbers; see its log".into(),
        }
    })?);
    let challenge = Frame::Challenge {
        protocol: PROTOCOL_VERSION,
        nonce: server_nonce,
    };
    let text = challenge
        .encode()
        .map_err(|_| Refusal::of(CloseCode::HandshakeFailed))?;
    sink.send(Message::Text(text.into()))
        .await
        .map_err(|_| Refusal::of(CloseCode::HandshakeFailed))?;

    let first = tokio::time::timeout(config.hello_timeout, stream.next()).await;
    let Ok(Some(Ok(Message::Text(text)))) = first else {
        tracing::warn!("extension connection refused: no HELLO in time (close 4005)");
        return Err(Refusal::of(CloseCode::HandshakeFailed));
    };
    let text = text.as_str();
    if text.len() > config.max_frame_bytes {
        return Err(Refusal::of(CloseCode::HandshakeFailed));
    }
    // Read the version before anything else, so an older extension (whose HELLO has another
    // shape) is told to update rather than that its frame is malformed.
    match Preamble::peek(text) {
        Some(Preamble { kind, protocol }) if kind == "HELLO" => match protocol {
            Some(PROTOCOL_VERSION) => {}
            Some(theirs) => {
                tracing::warn!(
                    theirs,
                    ours = PROTOCOL_VERSION,
                    "extension speaks another protocol version (close 4002)"
                );
                return Err(Refusal {
                    code: CloseCode::ProtocolMismatch.code(),
                    reason: mismatch_reason(theirs),
                });
            }
            None => return Err(Refusal::of(CloseCode::HandshakeFailed)),
        },
        _ => {
            tracing::warn!("extension connection refused: first frame was not HELLO (close 4005)");
            return Err(Refusal::of(CloseCode::HandshakeFailed));
        }
    }
    let Ok(Frame::Hello {
        version,
        nonce: extension_nonce,
        proof,
        resume,
        ..
    }) = Frame::decode(text, config.max_frame_bytes)
    else {
        tracing::warn!("extension connection refused: malformed HELLO (close 4005)");
        return Err(Refusal::of(CloseCode::HandshakeFailed));
    };

    let token = config.token.expose();
    let returning = resume
        .as_ref()
        .is_some_and(|claim| claim.is_valid(token, &server_nonce));
    let attempt = bridge.throttle().attempt(bridge.now_ms(), returning, || {
        verify(
            token,
            Role::Extension,
            &server_nonce,
            &extension_nonce,
            &proof,
        )
    });
    match attempt {
        Attempt::Accepted => {}
        Attempt::Rejected => {
            bridge.record_rejected_token();
            tracing::warn!(
                "extension connection refused: its proof does not match the token (close 4001)"
            );
            return Err(Refusal::of(CloseCode::BadToken));
        }
        Attempt::Throttled { retry_after_ms } => {
            bridge.record_throttled();
            tracing::warn!(
                retry_after_ms,
                "extension connection refused unchecked: too many failed attempts (close 4007)"
            );
            return Err(Refusal {
                code: CloseCode::Throttled.code(),
                reason: format!(
                    "too many failed authentication attempts; retry in {} s",
                    retry_after_ms.div_ceil(1000)
                ),
            });
        }
    }

    let ticket_id = random::<TICKET_ID_BYTES>().map_err(|e| {
        tracing::error!("cannot draw a resume ticket id: {e}");
        Refusal::of(CloseCode::HandshakeFailed)
    })?;
    let welcome = Frame::Welcome {
        protocol: PROTOCOL_VERSION,
        server_version: env!("CARGO_PKG_VERSION").to_string(),
        ping_interval_ms: config.ping_interval.as_millis() as u64,
        silence_limit_ms: config.silence_limit.as_millis() as u64,
        proof: prove(token, Role::Server, &server_nonce, &extension_nonce),
        resume: ResumeTicket::issue(token, &ticket_id),
    };
    Ok(Admitted {
        extension_version: version,
        welcome,
    })
}

/// The close reason for an extension of protocol `theirs` (at most 123 bytes).
fn mismatch_reason(theirs: u32) -> String {
    if theirs < PROTOCOL_VERSION {
        format!(
            "extension protocol {theirs} is older than the server's {PROTOCOL_VERSION}: update the domshell extension"
        )
    } else {
        format!(
            "extension protocol {theirs} is newer than the server's {PROTOCOL_VERSION}: update the domshell server"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_reasons_name_the_side_to_update_and_fit_a_close_frame() {
        let old = mismatch_reason(1);
        assert!(old.contains("update the domshell extension"), "{old}");
        let new = mismatch_reason(999);
        assert!(
            new.contains("999") && new.contains("update the domshell server"),
            "{new}"
        );
        assert!(old.len() <= 123 && new.len() <= 123);
    }
}
