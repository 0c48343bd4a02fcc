//! One extension WebSocket from upgrade to close: the handshake (delegated to
//! [`super::handshake`]), the heartbeat driven by the shared liveness machine, the writer
//! task, and frame dispatch into the [`Bridge`].
//!
//! Invariant: when the liveness machine declares the peer dead, the socket is dropped on the
//! spot (no close handshake, which a half-open peer can never complete) and the bridge fails
//! every request that was waiting on it.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use shared_protocol::close::CloseCode;
use shared_protocol::frame::{Frame, FrameError};
use shared_protocol::liveness::{Action, Liveness, LivenessConfig};
use tokio::sync::mpsc;

use super::handshake::{admit, close_message};
use super::oversize::{self, Verdict};
use super::{Bridge, BridgeError, Outbound, Outcome};

/// Close code for "message too big" from RFC 6455.
const CLOSE_TOO_BIG: u16 = 1009;

/// Why the writer half stopped.
enum WriterEnd {
    ClosedWith(u16, String),
    SendFailed(String),
    ChannelClosed,
}

/// Serve one upgraded socket until it ends.
pub(super) async fn serve_socket(bridge: Bridge, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let config = bridge.config().clone();

    let Some(admitted) = admit(&bridge, &mut sink, &mut stream).await else {
        return;
    };
    let version = admitted.extension_version;

    let (outbound, mut outbound_rx) = mpsc::unbounded_channel::<Outbound>();
    // WELCOME goes first in the queue, before anything a waiting request may enqueue.
    let _ = outbound.send(Outbound::Frame(admitted.welcome));
    let Some(conn_id) = bridge.install(outbound.clone(), version.clone()) else {
        let code = CloseCode::ServerShutdown;
        let _ = sink.send(close_message(code.code(), code.reason())).await;
        return;
    };
    tracing::info!(conn = conn_id, extension_version = %version, "extension connected");

    // Writes happen on their own task so that a peer that stopped reading (full TCP buffers)
    // can never stall the heartbeat below.
    let mut writer = tokio::spawn(async move {
        while let Some(item) = outbound_rx.recv().await {
            let message = match item {
                Outbound::Frame(frame) => match frame.encode() {
                    Ok(text) => Message::Text(text.into()),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot encode frame; dropped");
                        continue;
                    }
                },
                Outbound::Close(code, reason) => {
                    let _ = sink.send(close_message(code, &reason)).await;
                    return WriterEnd::ClosedWith(code, reason);
                }
            };
            if let Err(e) = sink.send(message).await {
                return WriterEnd::SendFailed(e.to_string());
            }
        }
        WriterEnd::ChannelClosed
    });

    let mut liveness = Liveness::new(
        LivenessConfig {
            ping_interval_ms: Some(config.ping_interval.as_millis() as u64),
            silence_limit_ms: config.silence_limit.as_millis() as u64,
        },
        bridge.now_ms(),
    );
    let epoch = tokio::time::Instant::now() - Duration::from_millis(bridge.now_ms());

    let reason: String = loop {
        let deadline = epoch + Duration::from_millis(liveness.next_deadline());
        tokio::select! {
            inbound = stream.next() => {
                let now = bridge.now_ms();
                match inbound {
                    Some(Ok(Message::Text(text))) => {
                        liveness.on_inbound(now);
                        bridge.record_inbound(conn_id);
                        match Frame::decode(text.as_str(), config.max_frame_bytes) {
                            Ok(frame) => handle_frame(&bridge, conn_id, &mut liveness, frame, now),
                            Err(FrameError::UnknownType(kind)) => {
                                tracing::debug!(kind, "unknown frame type ignored");
                            }
                            Err(FrameError::TooLarge { max, .. }) => {
                                // Over the limit but within the ceiling the socket reads: fail
                                // the one request it answers, keep the link.
                                on_oversized(&bridge, conn_id, text.as_bytes(), max);
                            }
                            Err(e) => {
                                bridge.record_malformed();
                                tracing::warn!(error = %e, "malformed frame ignored");
                            }
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        liveness.on_inbound(now);
                        bridge.record_inbound(conn_id);
                        bridge.record_malformed();
                        tracing::warn!("binary frame ignored; the bridge speaks JSON text");
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        liveness.on_inbound(now);
                        bridge.record_inbound(conn_id);
                    }
                    Some(Ok(Message::Close(frame))) => {
                        break match frame {
                            Some(f) => format!("extension closed the connection ({} {})", f.code, f.reason),
                            None => "extension closed the connection".to_string(),
                        };
                    }
                    Some(Err(e)) => {
                        let text = e.to_string();
                        if text.contains("too long") || text.contains("Space limit") || text.contains("size") {
                            bridge.record_malformed();
                            let _ = outbound.send(Outbound::Close(CLOSE_TOO_BIG, "frame over the size limit".into()));
                            tracing::warn!(error = %text, code = CLOSE_TOO_BIG, "frame over the size limit");
                        }
                        break format!("read error: {text}");
                    }
                    None => break "connection closed".to_string(),
                }
            }
            end = &mut writer => {
                break match end {
                    Ok(WriterEnd::ClosedWith(code, reason)) => format!("closed by server ({code} {reason})"),
                    Ok(WriterEnd::SendFailed(e)) => format!("write error: {e}"),
                    Ok(WriterEnd::ChannelClosed) | Err(_) => "writer stopped".to_string(),
                };
            }
            _ = tokio::time::sleep_until(deadline) => {
                let now = bridge.now_ms();
                match liveness.poll(now) {
                    Action::SendPing { id, sent_at_ms } => {
                        let _ = outbound.send(Outbound::Frame(Frame::Ping {
                            id,
                            sent_at_ms,
                            last_rtt_ms: liveness.last_rtt_ms(),
                        }));
                    }
                    Action::Dead { silent_for_ms } => {
                        break format!("nothing received for {silent_for_ms} ms (silence limit)");
                    }
                    Action::Idle => {}
                }
                bridge.record_quiet(conn_id, liveness.is_quiet(now));
            }
        }
    };

    // Fail the requests first: they must not wait for socket teardown.
    bridge.remove(conn_id, &reason);
    tracing::info!(conn = conn_id, reason, "extension connection ended");
    // The bridge no longer holds a sender of this connection and no request does either:
    // with ours gone the writer ends as soon as its queue is drained.
    drop(outbound);
    if !writer.is_finished() {
        // Give an orderly close (replacement, oversize, shutdown) a moment to reach the wire;
        // a dead peer gets nothing: the socket is dropped.
        if liveness.is_dead() {
            writer.abort();
        } else {
            let _ = tokio::time::timeout(Duration::from_millis(200), &mut writer).await;
            writer.abort();
        }
    }
    drop(stream);
}

/// A frame over the limit that the socket still read (it is under the ceiling).
fn on_oversized(bridge: &Bridge, conn_id: u64, bytes: &[u8], max: usize) {
    match oversize::judge(bytes) {
        Verdict::FailRequest { id, len } => {
            tracing::warn!(
                id,
                len,
                max,
                "RESULT over the frame limit; that request fails, the link stays"
            );
            bridge.fail_request(conn_id, &id, BridgeError::ReplyTooLarge { len, limit: max });
        }
        Verdict::Ignore { len, why } => {
            bridge.record_malformed();
            tracing::warn!(len, max, why, "frame over the size limit ignored");
        }
    }
}

fn handle_frame(bridge: &Bridge, conn_id: u64, liveness: &mut Liveness, frame: Frame, now: u64) {
    match frame {
        Frame::Pong { id } => {
            if let Some(rtt) = liveness.on_pong(id, now) {
                bridge.record_rtt(rtt);
            }
        }
        Frame::Result {
            id,
            ok,
            output,
            lane,
        } => bridge.complete(conn_id, &id, Outcome { ok, output, lane }),
        Frame::Ack { id } => bridge.acknowledge(conn_id, &id),
        Frame::Lanes { lanes } => bridge.set_lanes(conn_id, lanes),
        Frame::Progress {
            id,
            done,
            total,
            message,
        } => bridge.progress(conn_id, &id, done, total, &message),
        other => tracing::warn!(
            kind = other.kind(),
            "unexpected frame from the extension ignored"
        ),
    }
}
