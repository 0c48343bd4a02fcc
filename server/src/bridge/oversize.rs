//! What to do with a frame from the extension that is over the frame limit but under the
//! hard ceiling the socket reads (see [`shared_protocol::OVERSIZE_CEILING_FACTOR`]).
//!
//! Such a frame is not decoded as a whole. When it is a `RESULT` whose `id` can be read, that
//! one request fails with [`BridgeError::ReplyTooLarge`](super::BridgeError) and the link stays
//! up; anything else is counted and ignored (the request it may have answered times out).
//! Frames over the ceiling never get here: the socket refuses them and the link closes
//! (1009). Sans-IO: bytes in, a verdict out; it must not touch the bridge or the socket.

use serde::Deserialize;

/// Longest request id looked up; the server's own ids are a letter and a counter.
const MAX_ID_CHARS: usize = 64;

/// What the connection does with an oversized frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Fail request `id` (its `RESULT` was `len` bytes) and keep the link.
    FailRequest { id: String, len: usize },
    /// Count it as malformed and carry on: nothing to attribute it to.
    Ignore { len: usize, why: &'static str },
}

/// The two fields that attribute a `RESULT`, read by a scan that skips every other value
/// without copying it (`serde_json` ignores unknown fields without allocating them).
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
}

/// Decide about one frame of `bytes` that is over the frame limit.
pub(super) fn judge(bytes: &[u8]) -> Verdict {
    let len = bytes.len();
    let Ok(head) = serde_json::from_slice::<Head>(bytes) else {
        return Verdict::Ignore {
            len,
            why: "not a JSON frame",
        };
    };
    if head.kind != "RESULT" {
        return Verdict::Ignore {
            len,
            why: "not a RESULT",
        };
    }
    match head.id {
        Some(id) if !id.is_empty() && id.chars().count() <= MAX_ID_CHARS => Verdict::FailRequest {
            id: id.into_owned(),
            len,
        },
        _ => Verdict::Ignore {
            len,
            why: "a RESULT without a usable id",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_result_is_attributed_by_its_id_wherever_the_id_is() {
        let output = "x".repeat(5_000);
        for text in [
            format!(r#"{{"type":"RESULT","id":"r7","ok":true,"output":"{output}"}}"#),
            format!(r#"{{"output":"{output}","ok":true,"id":"r7","type":"RESULT"}}"#),
            format!(r#"{{"type":"RESULT","output":"{output}\"\\","id":"r\u0037","ok":true}}"#),
        ] {
            assert_eq!(
                judge(text.as_bytes()),
                Verdict::FailRequest {
                    id: "r7".into(),
                    len: text.len()
                },
                "{}",
                &text[..40]
            );
        }
    }

    #[test]
    fn what_cannot_be_attributed_is_ignored() {
        let cases: [(&str, &str); 6] = [
            (
                r#"{"type":"RESULT","ok":true,"output":"x"}"#,
                "a RESULT without a usable id",
            ),
            (
                r#"{"type":"RESULT","id":"","output":"x"}"#,
                "a RESULT without a usable id",
            ),
            (r#"{"type":"PONG","id":"r1"}"#, "not a RESULT"),
            (
                r#"{"type":"RESULT","id":"r1","output":"cut"#,
                "not a JSON frame",
            ),
            ("not json", "not a JSON frame"),
            (r#"{"type":"RESULT","id":7}"#, "not a JSON frame"),
        ];
        for (text, why) in cases {
            assert_eq!(
                judge(text.as_bytes()),
                Verdict::Ignore {
                    len: text.len(),
                    why
                },
                "{text}"
            );
        }
        let long_id = format!(r#"{{"type":"RESULT","id":"{}"}}"#, "i".repeat(65));
        assert!(matches!(judge(long_id.as_bytes()), Verdict::Ignore { .. }));
    }

    proptest! {
        #[test]
        fn judging_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let verdict = judge(&bytes);
            let len = match verdict {
                Verdict::FailRequest { len, .. } | Verdict::Ignore { len, .. } => len,
            };
            prop_assert_eq!(len, bytes.len());
        }

        #[test]
        fn any_result_with_a_short_id_is_attributed(id in "[a-z0-9]{1,20}", output in "(?s).{0,200}") {
            let text = serde_json::json!({"type": "RESULT", "ok": true, "output": output, "id": id}).to_string();
            prop_assert_eq!(judge(text.as_bytes()), Verdict::FailRequest { id, len: text.len() });
        }
    }
}
