//! What a request to the extension can end with: an [`Outcome`] (the extension answered) or a
//! [`BridgeError`] (it could not), each error with a stable reason, whether a retry can help,
//! and what to do next.
//!
//! It owns the wording the MCP layer and `/debug/execute` show; it must not decide when an
//! error happens.

use serde::Serialize;

/// A successful `RESULT` (which may still report a command failure with `ok: false`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    pub ok: bool,
    pub output: String,
    pub lane: Option<String>,
}

/// Why a request got no `RESULT`. Each variant says whether retrying can help and what the
/// person or agent should do.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum BridgeError {
    #[error("the browser extension is not connected (waited {waited_ms} ms)")]
    NotConnected { waited_ms: u64 },
    #[error("the link to the browser extension was lost: {reason}")]
    LinkLost { reason: String },
    #[error("the command did not finish within {after_ms} ms and was cancelled")]
    Timeout { after_ms: u64 },
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("the command was cancelled by the client")]
    Cancelled,
    /// The extension's `RESULT` was over the frame limit; it was not read, the link stays.
    #[error("the reply was {len} bytes, larger than the {} a reply may be", size_text(.limit))]
    ReplyTooLarge { len: usize, limit: usize },
}

/// `16 MB`, or `64 KB` for limits under a megabyte (tests run with small ones).
fn size_text(bytes: &usize) -> String {
    const MB: usize = 1024 * 1024;
    if *bytes >= MB {
        format!("{} MB", bytes / MB)
    } else {
        format!("{} KB", bytes.div_ceil(1024))
    }
}

impl BridgeError {
    /// Stable machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotConnected { .. } => "extension_not_connected",
            Self::LinkLost { .. } => "extension_link_lost",
            Self::Timeout { .. } => "command_timeout",
            Self::ShuttingDown => "server_shutting_down",
            Self::Cancelled => "cancelled",
            Self::ReplyTooLarge { .. } => "reply_too_large",
        }
    }

    pub fn retryable(&self) -> bool {
        !matches!(
            self,
            Self::Timeout { .. } | Self::Cancelled | Self::ReplyTooLarge { .. }
        )
    }

    /// Whether the call's later lines must not run: the link failed or the client gave up.
    /// A reply that was too large ran on a link that is still up, so the call goes on.
    pub fn ends_call(&self) -> bool {
        !matches!(self, Self::ReplyTooLarge { .. })
    }

    pub fn hint(&self) -> &'static str {
        match self {
            Self::NotConnected { .. } => {
                "Open Chrome with the domshell extension enabled, and check that the token in its options matches `domshell token`."
            }
            Self::LinkLost { .. } => {
                "The extension reconnects by itself within seconds; retry the command. A browser action may or may not have happened: check the page before repeating it."
            }
            Self::Timeout { .. } => {
                "The page may be slow or the command too broad; narrow it (e.g. a path or --limit) or raise --command-timeout-ms."
            }
            Self::ShuttingDown => "Start the server again; the extension reconnects by itself.",
            Self::Cancelled => "The extension was told to stop the command.",
            Self::ReplyTooLarge { .. } => {
                "Page through it with -n N and --offset K (or narrow it with `| grep PATTERN`); the command did run."
            }
        }
    }
}
