//! Wire frames of the bridge: UTF-8 JSON text objects tagged by `type`.
//!
//! This module owns the frame shapes and their encoding/decoding limits. It must not know
//! about sockets: callers hand it text and get typed frames (or a typed error) back.

use serde::{Deserialize, Serialize};

use crate::handshake::{Nonce, Proof, ResumeClaim, ResumeTicket};

/// A token that must never reach a log: its `Debug` form is redacted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Parses from command-line flags and environment variables, so a token is a `Secret` from
/// the moment it enters the program.
impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Secret(text.to_string()))
    }
}

/// Lets a `Secret` be handed to a comparison such as the server's `tokens_match` without
/// copying it into a plain `String` first.
impl AsRef<str> for Secret {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Every frame either side may send. The extension dials; the server listens. The token
/// itself never travels: see [`crate::handshake`] for the proofs that replace it.
///
/// On the wire a frame is one object, its type under `type` beside its fields. It is read
/// through [`WireFrame`] rather than derived.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Frame {
    /// srv → ext, first frame on a new socket, right after the upgrade.
    Challenge { protocol: u32, nonce: Nonce },
    /// ext → srv answer to `CHALLENGE`: the extension's nonce and its proof over both nonces,
    /// plus a claim on the resume ticket of an earlier `WELCOME` when it has one.
    Hello {
        protocol: u32,
        version: String,
        #[serde(default)]
        capabilities: Vec<String>,
        nonce: Nonce,
        proof: Proof,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<ResumeClaim>,
    },
    /// srv → ext: accepted. Carries the server's own proof (the extension trusts nothing
    /// before checking it), the heartbeat timings and a resume ticket to keep.
    Welcome {
        protocol: u32,
        server_version: String,
        ping_interval_ms: u64,
        silence_limit_ms: u64,
        proof: Proof,
        resume: ResumeTicket,
    },
    /// srv → ext heartbeat. `last_rtt_ms` reports the previous round trip so the extension
    /// can show it without a clock of the server's.
    Ping {
        id: u64,
        sent_at_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_rtt_ms: Option<u64>,
    },
    /// ext → srv answer to `PING` with the same id.
    Pong { id: u64 },
    /// srv → ext: run one command line in a session's shell.
    Execute {
        id: String,
        session: String,
        command: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        initial_url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group_name: Option<String>,
        /// With `group_id: "new"`: the window to mint the lane in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window_id: Option<i64>,
        /// How long the server will wait for the result; the extension may give up earlier.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline_ms: Option<u64>,
        /// The server's domain allowlist (empty: any). The server checks navigation targets;
        /// the extension checks the page a command acts on, which only it can see.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        allowed_domains: Vec<String>,
        /// Who asks: the MCP client's name and version (`claude-ai/0.1`), recorded on a
        /// lane it mints so the person at the browser sees which agent works there. Only
        /// a label: it grants nothing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        /// For `upload`: the files the server read from its upload directories.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<UploadFile>,
    },
    /// ext → srv outcome of an `EXECUTE` with the same id.
    Result {
        id: String,
        ok: bool,
        output: String,
        /// The lane (tab group) the command ran in, when it ran in one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lane: Option<String>,
    },
    /// srv → ext: stop working on `EXECUTE` `id`; its result is no longer wanted.
    Cancel { id: String },
    /// srv → ext: create shell state for an MCP session. Answered by `ACK`.
    SessionStart { id: String, session: String },
    /// srv → ext: drop the shell state of an MCP session. Answered by `ACK`.
    SessionEnd { id: String, session: String },
    /// ext → srv acknowledgement of `SESSION_START`/`SESSION_END` with the same id.
    Ack { id: String },
    /// ext → srv: the lanes open now, sent when they change and when the link comes up.
    Lanes { lanes: Vec<LaneReport> },
    /// ext → srv: how far the running `EXECUTE` `id` is (a loop's item `done` of `total`),
    /// for the client's progress notifications. Only a report: nothing waits for it, and a
    /// server that does not know the type ignores it.
    Progress {
        id: String,
        done: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
        message: String,
    },
}

/// A file `upload` hands to the page: its name, its type and its bytes in base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadFile {
    pub name: String,
    pub mime: String,
    pub data: String,
}

impl UploadFile {
    fn from_value(value: &serde_json::Value) -> Result<UploadFile, String> {
        let field = |key: &str| {
            value[key]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("an upload file lacks `{key}`"))
        };
        Ok(UploadFile {
            name: field("name")?,
            mime: field("mime")?,
            data: field("data")?,
        })
    }
}

/// One lane as the extension reports it in `LANES`, for `domshell_status` and `/health`.
/// Read member by member ([`LaneReport::from_value`]): a derived reader would put a
/// deserializer the extension never uses into its WASM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaneReport {
    /// The tab group id.
    pub id: String,
    pub name: String,
    /// The shell session (MCP session key) that minted it.
    pub owner: String,
    /// The MCP client that minted it (`claude-ai/0.1`), or `person` for the side panel.
    pub agent: String,
    /// Sessions in it, the owner included.
    pub sessions: u32,
    pub tabs: u32,
    pub age_ms: u64,
    /// The name of the last command run in it (`click`), without its arguments.
    pub last_command: String,
}

impl LaneReport {
    /// One entry of `LANES`' `lanes`; `last_command` may be missing.
    pub fn from_value(value: &serde_json::Value) -> Result<LaneReport, String> {
        let text = |key: &str| {
            value[key]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("a lane without `{key}`"))
        };
        let number = |key: &str| {
            value[key]
                .as_u64()
                .ok_or_else(|| format!("a lane without a number `{key}`"))
        };
        Ok(LaneReport {
            id: text("id")?,
            name: text("name")?,
            owner: text("owner")?,
            agent: value["agent"].as_str().unwrap_or_default().to_string(),
            sessions: u32::try_from(number("sessions")?).unwrap_or(u32::MAX),
            tabs: u32::try_from(number("tabs")?).unwrap_or(u32::MAX),
            age_ms: number("age_ms")?,
            last_command: value["last_command"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        })
    }
}

/// A frame as read from the wire: the `type` tag and the fields of every frame type side by
/// side, checked against the tag when it becomes a [`Frame`]. Serde's internally tagged
/// derive reads the same objects but buffers each one whole before it knows its type, and
/// that generic code was a tenth of the extension's WASM. As with the derive, fields that
/// the tagged type does not have are ignored; a name means the same thing in every frame
/// type (`id` is a number in `PING`/`PONG`, a string elsewhere: [`WireId`]). Frames are
/// objects: the derive also read an array with the tag first, a form no peer sends.
#[derive(Deserialize)]
struct WireFrame {
    #[serde(rename = "type")]
    kind: String,
    protocol: Option<u32>,
    /// Hex, checked only for the types that carry it.
    nonce: Option<String>,
    /// Hex, checked only for the types that carry it.
    proof: Option<String>,
    version: Option<String>,
    #[serde(default)]
    capabilities: Vec<String>,
    resume: Option<WireResume>,
    server_version: Option<String>,
    ping_interval_ms: Option<u64>,
    silence_limit_ms: Option<u64>,
    id: Option<WireId>,
    sent_at_ms: Option<u64>,
    last_rtt_ms: Option<u64>,
    session: Option<String>,
    command: Option<String>,
    group_id: Option<String>,
    initial_url: Option<String>,
    group_name: Option<String>,
    window_id: Option<i64>,
    deadline_ms: Option<u64>,
    #[serde(default)]
    allowed_domains: Vec<String>,
    agent: Option<String>,
    ok: Option<bool>,
    output: Option<String>,
    lane: Option<String>,
    lanes: Option<serde_json::Value>,
    done: Option<u64>,
    total: Option<u64>,
    message: Option<String>,
    files: Option<serde_json::Value>,
}

/// `id`: a number in heartbeats, a string in the frames that answer one another.
enum WireId {
    Number(u64),
    Text(String),
}

/// `resume`: a claim object in `HELLO`, a ticket string in `WELCOME`.
enum WireResume {
    Claim(ResumeClaim),
    Ticket(ResumeTicket),
}

impl<'de> Deserialize<'de> for WireId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl<'de> serde::de::Visitor<'de> for IdVisitor {
            type Value = WireId;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<WireId, E> {
                Ok(WireId::Number(n))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<WireId, E> {
                Ok(WireId::Text(text.to_string()))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

impl<'de> Deserialize<'de> for WireResume {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ResumeVisitor;
        impl<'de> serde::de::Visitor<'de> for ResumeVisitor {
            type Value = WireResume;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a resume claim or ticket")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<WireResume, E> {
                ResumeTicket::deserialize(serde::de::value::StrDeserializer::<E>::new(text))
                    .map(WireResume::Ticket)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<WireResume, A::Error> {
                ResumeClaim::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(WireResume::Claim)
            }
        }
        deserializer.deserialize_any(ResumeVisitor)
    }
}

impl<'de> Deserialize<'de> for Frame {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireFrame::deserialize(deserializer)?;
        Frame::try_from(wire).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<WireFrame> for Frame {
    type Error = String;

    fn try_from(w: WireFrame) -> Result<Frame, String> {
        fn missing(name: &str) -> String {
            format!("missing field `{name}`")
        }
        fn need<T>(field: Option<T>, name: &str) -> Result<T, String> {
            field.ok_or_else(|| missing(name))
        }
        fn hex<T: serde::de::DeserializeOwned>(
            field: Option<String>,
            name: &str,
        ) -> Result<T, String> {
            let text = need(field, name)?;
            T::deserialize(serde::de::value::StringDeserializer::<
                serde::de::value::Error,
            >::new(text))
            .map_err(|e| e.to_string())
        }
        fn number(id: Option<WireId>) -> Result<u64, String> {
            match need(id, "id")? {
                WireId::Number(n) => Ok(n),
                WireId::Text(t) => Err(format!("invalid type: string {t:?}, expected u64")),
            }
        }
        fn text(id: Option<WireId>) -> Result<String, String> {
            match need(id, "id")? {
                WireId::Text(t) => Ok(t),
                WireId::Number(n) => Err(format!("invalid type: integer `{n}`, expected a string")),
            }
        }
        Ok(match w.kind.as_str() {
            "CHALLENGE" => Frame::Challenge {
                protocol: need(w.protocol, "protocol")?,
                nonce: hex(w.nonce, "nonce")?,
            },
            "HELLO" => Frame::Hello {
                protocol: need(w.protocol, "protocol")?,
                version: need(w.version, "version")?,
                capabilities: w.capabilities,
                nonce: hex(w.nonce, "nonce")?,
                proof: hex(w.proof, "proof")?,
                resume: match w.resume {
                    None => None,
                    Some(WireResume::Claim(claim)) => Some(claim),
                    Some(WireResume::Ticket(_)) => {
                        return Err("invalid type: string, expected struct ResumeClaim".into())
                    }
                },
            },
            "WELCOME" => Frame::Welcome {
                protocol: need(w.protocol, "protocol")?,
                server_version: need(w.server_version, "server_version")?,
                ping_interval_ms: need(w.ping_interval_ms, "ping_interval_ms")?,
                silence_limit_ms: need(w.silence_limit_ms, "silence_limit_ms")?,
                proof: hex(w.proof, "proof")?,
                resume: match need(w.resume, "resume")? {
                    WireResume::Ticket(ticket) => ticket,
                    WireResume::Claim(_) => {
                        return Err("invalid type: map, expected a string".into())
                    }
                },
            },
            "PING" => Frame::Ping {
                id: number(w.id)?,
                sent_at_ms: need(w.sent_at_ms, "sent_at_ms")?,
                last_rtt_ms: w.last_rtt_ms,
            },
            "PONG" => Frame::Pong { id: number(w.id)? },
            "EXECUTE" => Frame::Execute {
                id: text(w.id)?,
                session: need(w.session, "session")?,
                command: need(w.command, "command")?,
                group_id: w.group_id,
                initial_url: w.initial_url,
                group_name: w.group_name,
                window_id: w.window_id,
                deadline_ms: w.deadline_ms,
                allowed_domains: w.allowed_domains,
                agent: w.agent,
                files: match w.files {
                    None => Vec::new(),
                    Some(list) => list
                        .as_array()
                        .ok_or("`files` is not a list")?
                        .iter()
                        .map(UploadFile::from_value)
                        .collect::<Result<_, _>>()?,
                },
            },
            "RESULT" => Frame::Result {
                id: text(w.id)?,
                ok: need(w.ok, "ok")?,
                output: need(w.output, "output")?,
                lane: w.lane,
            },
            "CANCEL" => Frame::Cancel { id: text(w.id)? },
            "SESSION_START" => Frame::SessionStart {
                id: text(w.id)?,
                session: need(w.session, "session")?,
            },
            "SESSION_END" => Frame::SessionEnd {
                id: text(w.id)?,
                session: need(w.session, "session")?,
            },
            "ACK" => Frame::Ack { id: text(w.id)? },
            "LANES" => Frame::Lanes {
                lanes: need(w.lanes, "lanes")?
                    .as_array()
                    .ok_or("`lanes` is not a list")?
                    .iter()
                    .map(LaneReport::from_value)
                    .collect::<Result<_, _>>()?,
            },
            "PROGRESS" => Frame::Progress {
                id: text(w.id)?,
                done: need(w.done, "done")?,
                total: w.total,
                message: need(w.message, "message")?,
            },
            other => {
                return Err(format!(
                    "unknown variant `{other}`, expected one of {}",
                    KNOWN_KINDS.join(", ")
                ))
            }
        })
    }
}

impl Frame {
    /// The `type` tag as it appears on the wire, for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Challenge { .. } => "CHALLENGE",
            Frame::Hello { .. } => "HELLO",
            Frame::Welcome { .. } => "WELCOME",
            Frame::Ping { .. } => "PING",
            Frame::Pong { .. } => "PONG",
            Frame::Execute { .. } => "EXECUTE",
            Frame::Result { .. } => "RESULT",
            Frame::Cancel { .. } => "CANCEL",
            Frame::SessionStart { .. } => "SESSION_START",
            Frame::SessionEnd { .. } => "SESSION_END",
            Frame::Ack { .. } => "ACK",
            Frame::Lanes { .. } => "LANES",
            Frame::Progress { .. } => "PROGRESS",
        }
    }

    /// Encode as the JSON text sent on the socket.
    pub fn encode(&self) -> Result<String, FrameError> {
        serde_json::to_string(self).map_err(|e| FrameError::Malformed(e.to_string()))
    }

    /// Decode one text frame, refusing anything larger than `max_bytes` before parsing it.
    pub fn decode(text: &str, max_bytes: usize) -> Result<Frame, FrameError> {
        if text.len() > max_bytes {
            return Err(FrameError::TooLarge {
                len: text.len(),
                max: max_bytes,
            });
        }
        match serde_json::from_str::<Frame>(text) {
            Ok(frame) => Ok(frame),
            Err(err) => {
                // Only on the error path: tell "a type we do not know" (ignored, for forward
                // compatibility) from "not a frame at all" (counted as malformed).
                #[derive(Deserialize)]
                struct TypeOnly {
                    #[serde(rename = "type")]
                    kind: String,
                }
                match serde_json::from_str::<TypeOnly>(text) {
                    Ok(t) if !KNOWN_KINDS.contains(&t.kind.as_str()) => {
                        Err(FrameError::UnknownType(truncate(&t.kind, 64)))
                    }
                    _ => Err(FrameError::Malformed(truncate(&err.to_string(), 200))),
                }
            }
        }
    }
}

/// The two fields every version of the opening frames agrees on, read without decoding the
/// rest, so a peer of another protocol version gets an answer that names the version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Preamble {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub protocol: Option<u32>,
}

impl Preamble {
    /// `None` when `text` is not a JSON object with a string `type`.
    pub fn peek(text: &str) -> Option<Preamble> {
        serde_json::from_str(text).ok()
    }
}

const KNOWN_KINDS: [&str; 13] = [
    "CHALLENGE",
    "HELLO",
    "WELCOME",
    "PING",
    "PONG",
    "EXECUTE",
    "RESULT",
    "CANCEL",
    "SESSION_START",
    "SESSION_END",
    "ACK",
    "LANES",
    "PROGRESS",
];

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// Why a text could not become a [`Frame`]. None of these should close a healthy connection
/// on their own: the receiver logs, counts and carries on (except `TooLarge` on the server,
/// which cannot trust the peer's framing any more).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("unknown frame type {0:?} (ignored)")]
    UnknownType(String),
    #[error("malformed frame: {0}")]
    Malformed(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_FRAME_BYTES;
    use proptest::prelude::*;

    fn samples() -> Vec<Frame> {
        vec![
            Frame::Challenge {
                protocol: 2,
                nonce: Nonce([9; 32]),
            },
            Frame::Hello {
                protocol: 2,
                version: "0.1.0".into(),
                capabilities: vec!["shell".into()],
                nonce: Nonce([1; 32]),
                proof: Proof([2; 32]),
                resume: ResumeTicket::issue("t0k3n", &[3; 16]).claim(&Nonce([9; 32])),
            },
            Frame::Welcome {
                protocol: 2,
                server_version: "0.1.0".into(),
                ping_interval_ms: 20_000,
                silence_limit_ms: 60_000,
                proof: Proof([4; 32]),
                resume: ResumeTicket::issue("t0k3n", &[5; 16]),
            },
            Frame::Ping {
                id: 7,
                sent_at_ms: 1234,
                last_rtt_ms: Some(3),
            },
            Frame::Pong { id: 7 },
            Frame::Execute {
                id: "a1".into(),
                session: "s".into(),
                command: "ls | grep x".into(),
                group_id: Some("new".into()),
                initial_url: None,
                group_name: None,
                window_id: Some(3),
                deadline_ms: Some(45_000),
                allowed_domains: vec!["example.com".into()],
                agent: Some("claude-ai/0.1".into()),
                files: vec![UploadFile {
                    name: "a.txt".into(),
                    mime: "text/plain".into(),
                    data: "aGk=".into(),
                }],
            },
            Frame::Result {
                id: "a1".into(),
                ok: true,
                output: "✓ done\r\n".into(),
                lane: Some("42".into()),
            },
            Frame::Cancel { id: "a1".into() },
            Frame::SessionStart {
                id: "b".into(),
                session: "s".into(),
            },
            Frame::SessionEnd {
                id: "c".into(),
                session: "s".into(),
            },
            Frame::Ack { id: "b".into() },
            Frame::Lanes {
                lanes: vec![LaneReport {
                    id: "17".into(),
                    name: "research".into(),
                    owner: "s".into(),
                    agent: "claude-ai/0.1".into(),
                    sessions: 2,
                    tabs: 3,
                    age_ms: 4_000,
                    last_command: "click buy_btn".into(),
                }],
            },
            Frame::Progress {
                id: "a1".into(),
                done: 3,
                total: Some(5),
                message: "watch: run 3 of 5".into(),
            },
        ]
    }

    #[test]
    fn every_frame_round_trips_and_kind_matches_tag() {
        for frame in samples() {
            let text = frame.encode().unwrap();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["type"], frame.kind());
            assert!(KNOWN_KINDS.contains(&frame.kind()));
            assert_eq!(Frame::decode(&text, MAX_FRAME_BYTES).unwrap(), frame);
        }
    }

    #[test]
    fn wire_names_are_stable() {
        let text = Frame::SessionStart {
            id: "1".into(),
            session: "s".into(),
        }
        .encode()
        .unwrap();
        assert_eq!(text, r#"{"type":"SESSION_START","id":"1","session":"s"}"#);
        let ping = Frame::decode(r#"{"type":"PING","id":3,"sent_at_ms":9}"#, 100).unwrap();
        assert_eq!(
            ping,
            Frame::Ping {
                id: 3,
                sent_at_ms: 9,
                last_rtt_ms: None
            }
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let debug = format!("{:?}", Secret("t0k3n".into()));
        assert!(!debug.contains("t0k3n"), "{debug}");
        assert!(debug.contains("redacted"));
        let Frame::Welcome { resume, .. } = &samples()[2] else {
            unreachable!()
        };
        let debug = format!("{:?}", samples()[2]);
        assert!(!debug.contains(resume.as_str()), "{debug}");
    }

    #[test]
    fn no_frame_has_a_token_field() {
        for frame in samples() {
            let value: serde_json::Value = serde_json::from_str(&frame.encode().unwrap()).unwrap();
            assert!(value.get("token").is_none(), "{value}");
        }
    }

    #[test]
    fn the_preamble_of_any_version_is_readable() {
        let v1 = r#"{"type":"HELLO","protocol":1,"version":"0.1.0","token":"secret"}"#;
        assert_eq!(
            Preamble::peek(v1),
            Some(Preamble {
                kind: "HELLO".into(),
                protocol: Some(1)
            })
        );
        assert!(
            Frame::decode(v1, 1000).is_err(),
            "a v1 HELLO is not a v2 frame"
        );
        assert_eq!(
            Preamble::peek(r#"{"type":"PONG","id":1}"#)
                .unwrap()
                .protocol,
            None
        );
        assert_eq!(Preamble::peek("nope"), None);
    }

    #[test]
    fn oversize_frames_are_refused_before_parsing() {
        let big = format!(r#"{{"type":"PONG","id":1,"pad":"{}"}}"#, "x".repeat(200));
        assert_eq!(
            Frame::decode(&big, 100),
            Err(FrameError::TooLarge {
                len: big.len(),
                max: 100
            })
        );
    }

    #[test]
    fn unknown_types_and_garbage_are_distinguished() {
        assert_eq!(
            Frame::decode(r#"{"type":"FUTURE_THING","x":1}"#, 1000),
            Err(FrameError::UnknownType("FUTURE_THING".into()))
        );
        for garbage in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"type":"PING"}"#,
            r#"{"type":42}"#,
            "\u{0}\u{1}",
        ] {
            assert!(
                matches!(Frame::decode(garbage, 1000), Err(FrameError::Malformed(_))),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn frames_are_read_whatever_the_order_of_their_fields() {
        // The tag need not come first, and fields the type does not have are ignored.
        let text = r#"{"id":"a1","session":"s","command":"ls","type":"EXECUTE","nonce":"x"}"#;
        assert_eq!(
            Frame::decode(text, 1000).unwrap(),
            Frame::Execute {
                id: "a1".into(),
                session: "s".into(),
                command: "ls".into(),
                group_id: None,
                initial_url: None,
                group_name: None,
                window_id: None,
                deadline_ms: None,
                allowed_domains: vec![],
                agent: None,
                files: vec![],
            }
        );
        let pong = Frame::decode(r#"{"pad":[1,{"a":null}],"type":"PONG","id":4}"#, 1000);
        assert_eq!(pong.unwrap(), Frame::Pong { id: 4 });
    }

    #[test]
    fn a_field_of_the_wrong_type_is_malformed() {
        for wrong in [
            r#"{"type":"PONG","id":"4"}"#,
            r#"{"type":"ACK","id":4}"#,
            r#"{"type":"PING","id":-1,"sent_at_ms":9}"#,
            r#"{"type":"RESULT","id":"a","ok":"yes","output":""}"#,
            r#"{"type":"EXECUTE","id":"a","session":"s","command":"ls","allowed_domains":null}"#,
            r#"{"type":"WELCOME","protocol":2,"server_version":"0","ping_interval_ms":1,"silence_limit_ms":1,"proof":"00","resume":"t"}"#,
        ] {
            assert!(
                matches!(Frame::decode(wrong, 1000), Err(FrameError::Malformed(_))),
                "{wrong}"
            );
        }
        // A resume claim where a ticket belongs, and the other way round.
        let Frame::Hello { resume: claim, .. } = samples()[1].clone() else {
            unreachable!()
        };
        let Frame::Welcome { resume: ticket, .. } = samples()[2].clone() else {
            unreachable!()
        };
        let mut hello: serde_json::Value =
            serde_json::from_str(&samples()[1].encode().unwrap()).unwrap();
        hello["resume"] = serde_json::to_value(&ticket).unwrap();
        assert!(Frame::decode(&hello.to_string(), 1000).is_err());
        let mut welcome: serde_json::Value =
            serde_json::from_str(&samples()[2].encode().unwrap()).unwrap();
        welcome["resume"] = serde_json::to_value(&claim).unwrap();
        assert!(Frame::decode(&welcome.to_string(), 1000).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(text in ".{0,300}") {
            let _ = Frame::decode(&text, 256);
        }

        #[test]
        fn execute_round_trips_any_text(command in ".{0,200}", session in "[a-z0-9-]{0,40}") {
            let frame = Frame::Execute {
                id: "x".into(), session, command, group_id: None, initial_url: None,
                group_name: None, window_id: None, deadline_ms: None, allowed_domains: vec![],
                agent: None, files: vec![],
            };
            let text = frame.encode().unwrap();
            prop_assert_eq!(Frame::decode(&text, MAX_FRAME_BYTES).unwrap(), frame);
        }
    }
}
