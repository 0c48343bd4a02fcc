//! Names of the states of the extension link, shared so that the server's `/health`, the
//! extension's options page and the logs all use the same words.

use serde::{Deserialize, Serialize};

/// State of the bridge between the server and the extension, as one side sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// The extension's bridge is switched off in its settings.
    Disabled,
    /// A socket is being dialed, or is open and waiting for `WELCOME`/`HELLO`.
    Connecting,
    /// Authenticated and hearing from the peer within the silence limit.
    Connected,
    /// Connected, but the peer has been quiet for longer than one ping interval; it is being
    /// verified.
    Silent,
    /// The last connection was lost; the next dial is scheduled.
    Reconnecting,
    /// The server refused the token; nothing is dialed until the settings change.
    Unauthorized,
    /// Server side only: no extension has connected yet, or the last one is gone.
    Waiting,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Silent => "silent",
            Self::Reconnecting => "reconnecting",
            Self::Unauthorized => "unauthorized",
            Self::Waiting => "waiting",
        }
    }
}

impl std::fmt::Display for LinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_name_matches_display() {
        for state in [
            LinkState::Disabled,
            LinkState::Connecting,
            LinkState::Connected,
            LinkState::Silent,
            LinkState::Reconnecting,
            LinkState::Unauthorized,
            LinkState::Waiting,
        ] {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
        }
    }
}
