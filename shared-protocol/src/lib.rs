//! The one definition of everything the domshell server and the browser extension agree on.
//!
//! It owns the wire frames ([`frame`]), the WebSocket close codes ([`close`]), the default
//! ports and timings (this module), the mutual-authentication handshake ([`handshake`]), the
//! sans-IO heartbeat machine ([`liveness`]), the
//! reconnect backoff ([`backoff`]), the names of link states ([`link`]), the command
//! language ([`grammar`]) and the numbers in it ([`decimal`]), the security tier of a
//! command ([`tier`]) and the domain allowlist's matching rules ([`domains`]).
//!
//! It must not do I/O or read a clock: every function that depends on time takes `now_ms`,
//! a monotonic millisecond count chosen by the caller. That keeps it buildable for
//! `wasm32-unknown-unknown` and testable with a fake clock.

pub mod attachments;
pub mod backoff;
pub mod close;
pub mod commands;
pub mod decimal;
pub mod domains;
pub mod frame;
pub mod grammar;
pub mod handshake;
pub mod link;
pub mod liveness;
pub mod tier;
pub mod tools;

/// Version of the wire protocol; bumped on any incompatible frame change.
pub const PROTOCOL_VERSION: u32 = 2;

/// Port the server's bridge listener binds and the extension dials by default.
pub const DEFAULT_BRIDGE_PORT: u16 = 9876;

/// Path of the WebSocket endpoint on the bridge listener.
pub const BRIDGE_PATH: &str = "/bridge";

/// Version of the attach handshake between domshell servers (a stdio server relaying its
/// host to the owner of the bridge port); the owner publishes it on `/health`.
pub const RELAY_PROTOCOL_VERSION: u32 = 1;

/// Route on the owner's bridge listener where a relay asks for a challenge.
pub const RELAY_CHALLENGE_PATH: &str = "/relay/challenge";

/// How often the server sends `PING` by default.
pub const DEFAULT_PING_INTERVAL_MS: u64 = 20_000;

/// Silence after which either side declares the link dead by default.
pub const DEFAULT_SILENCE_LIMIT_MS: u64 = 60_000;

/// Chrome's minimum alarm period for packed MV3 extensions; the extension's default.
pub const DEFAULT_ALARM_PERIOD_MS: u64 = 30_000;

/// Largest frame either side accepts. Large enough for a full-page screenshot.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Most characters (Unicode scalar values) the output of one command line may have, its
/// final "left out" line included. Commands that can say more page through the rest with
/// `-n`/`--offset`; the extension cuts anything longer at dispatch. Sized for an agent's
/// context (about 25k tokens), far below the frame limit.
pub const MAX_OUTPUT_CHARS: usize = 100_000;

/// Most bytes an image reply (`screenshot`'s base64 PNG) may have. Images are never cut:
/// a larger one is refused with an error.
pub const MAX_IMAGE_OUTPUT_BYTES: usize = 12 * 1024 * 1024;

/// What a `RESULT` adds around its output (type, id, ok, lane), with room to spare.
pub const RESULT_ENVELOPE_BYTES: usize = 4 * 1024;

// JSON escaping grows a character to at most 6 bytes (`\u001f`), so a capped output always
// fits a frame; a base64 image is ASCII and not escaped.
const _: () = assert!(MAX_OUTPUT_CHARS * 6 + RESULT_ENVELOPE_BYTES <= MAX_FRAME_BYTES);
const _: () = assert!(MAX_IMAGE_OUTPUT_BYTES + RESULT_ENVELOPE_BYTES <= MAX_FRAME_BYTES);

/// A frame up to this many times the limit is read whole by the server so the request it
/// answers can be failed on its own (the link stays up); a larger one closes the link (1009).
pub const OVERSIZE_CEILING_FACTOR: usize = 4;

/// Longest time the server waits for `HELLO` after sending `CHALLENGE`.
pub const HELLO_TIMEOUT_MS: u64 = 5_000;

/// The extension id fixed by the `key` in `manifest.json`; the server accepts WebSocket
/// upgrades from this origin by default.
pub const EXTENSION_ID: &str = "foegmbfmhpijglmkpgnpgkbaaiffgiam";

/// `Origin` header value the extension's service worker sends.
pub fn extension_origin(extension_id: &str) -> String {
    format!("chrome-extension://{extension_id}")
}
