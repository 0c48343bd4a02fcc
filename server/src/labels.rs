//! Text that arrives from outside (client names and versions, relay identities) and ends up
//! in the status document, `/health`, logs and audit records: capped and stripped of control
//! characters at the door, so no client can make those documents large or garble a log.
//!
//! It must not decide who a client is; it only makes its self-description safe to show.

/// Longest client name or version kept, in characters.
pub const MAX_LABEL_CHARS: usize = 64;

/// `text` without control characters, trimmed, and cut to `max_chars` (with `…` when cut).
pub fn sanitize(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (kept, c) in text.trim().chars().filter(|c| !c.is_control()).enumerate() {
        if kept == max_chars {
            out.pop();
            out.push('…');
            return out;
        }
        out.push(c);
    }
    out
}

/// `name/version` of an MCP client, each part capped.
pub fn client_label(name: &str, version: &str) -> String {
    format!(
        "{}/{}",
        sanitize(name, MAX_LABEL_CHARS),
        sanitize(version, MAX_LABEL_CHARS)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn long_names_are_cut_and_control_characters_dropped() {
        assert_eq!(sanitize("claude-ai", 64), "claude-ai");
        assert_eq!(sanitize(" a\u{1b}[31mb\nc\t ", 64), "a[31mbc");
        let cut = sanitize(&"x".repeat(300_000), 64);
        assert_eq!(cut.chars().count(), 64);
        assert!(cut.ends_with('…'));
        assert_eq!(client_label("n", "1.0"), "n/1.0");
    }

    proptest! {
        #[test]
        fn a_label_is_never_longer_than_its_cap(text in ".{0,400}", cap in 1usize..80) {
            let label = sanitize(&text, cap);
            prop_assert!(label.chars().count() <= cap);
            prop_assert!(!label.chars().any(char::is_control));
        }
    }
}
