//! WebSocket close codes of the bridge. Every close carries one of these and a reason string,
//! so the other side (and the person reading its log) knows what to do next.

/// Close code sent by the server; the reason string travels beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum CloseCode {
    /// The proof in `HELLO` does not match the server's token. The extension stops dialing
    /// until its settings change.
    BadToken = 4001,
    /// `HELLO` carried a protocol version this server does not speak (a version-1 extension
    /// is told to update).
    ProtocolMismatch = 4002,
    /// A newer authenticated connection took over the bridge.
    Replaced = 4003,
    /// Nothing arrived for longer than the silence limit.
    SilenceLimit = 4004,
    /// The first frame was not a valid `HELLO`, or it did not arrive in time.
    HandshakeFailed = 4005,
    /// The server is shutting down; reconnect later.
    ServerShutdown = 4006,
    /// Too many failed proofs recently; the proof was not even checked. Retry later (an
    /// extension with a resume ticket is exempt).
    Throttled = 4007,
}

impl CloseCode {
    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            4001 => Self::BadToken,
            4002 => Self::ProtocolMismatch,
            4003 => Self::Replaced,
            4004 => Self::SilenceLimit,
            4005 => Self::HandshakeFailed,
            4006 => Self::ServerShutdown,
            4007 => Self::Throttled,
            _ => return None,
        })
    }

    /// A short reason suitable for the close frame (which is limited to 123 bytes).
    pub fn reason(self) -> &'static str {
        match self {
            Self::BadToken => "invalid token: copy the server's token into the extension options",
            Self::ProtocolMismatch => {
                "protocol version mismatch: update the server or the extension"
            }
            Self::Replaced => "replaced by a newer extension connection",
            Self::SilenceLimit => "nothing received within the silence limit",
            Self::HandshakeFailed => "expected a HELLO frame answering the CHALLENGE",
            Self::ServerShutdown => "server shutting down",
            Self::Throttled => "too many failed authentication attempts; retry later",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_reasons_fit_a_close_frame() {
        for code in [
            CloseCode::BadToken,
            CloseCode::ProtocolMismatch,
            CloseCode::Replaced,
            CloseCode::SilenceLimit,
            CloseCode::HandshakeFailed,
            CloseCode::ServerShutdown,
            CloseCode::Throttled,
        ] {
            assert_eq!(CloseCode::from_code(code.code()), Some(code));
            assert!(code.reason().len() <= 123, "{code:?} reason too long");
        }
        assert_eq!(CloseCode::from_code(1000), None);
        assert_eq!(CloseCode::BadToken.code(), 4001);
    }
}
