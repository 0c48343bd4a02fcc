//! Properties of the grammar and the tier classifier over generated input: nothing
//! panics, and running a command through `for`/`each`/`watch`/`script save` never needs
//! less than running it directly (the first-word bypasses of the original server).

use proptest::prelude::*;
use shared_protocol::grammar::{parse_line, quote_word, split_lines};
use shared_protocol::tier::{classify, classify_line, Classification};

const NAMES: &[&str] = &[
    "ls",
    "cd",
    "tabs",
    "text",
    "click",
    "focus",
    "type",
    "key",
    "scroll",
    "select",
    "close",
    "submit",
    "open",
    "navigate",
    "goto",
    "back",
    "forward",
    "group",
    "connect",
    "disconnect",
    "js",
    "eval",
    "call",
    "whoami",
    "watch",
    "each",
    "script",
    "for",
    "find",
    "frob",
    "!1",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9./:_-]{1,8}",
        Just("new".to_string()),
        Just("close".to_string()),
        Just("run".to_string()),
        Just("--url".to_string()),
        Just("-n".to_string()),
        Just("--help".to_string()),
        Just("--".to_string()),
        Just("https://x.org/a".to_string()),
        Just("javascript:1".to_string()),
        Just("'a b'".to_string()),
        Just("\"c d\"".to_string()),
    ]
}

fn command() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(NAMES),
        proptest::collection::vec(word(), 0..5),
    )
        .prop_map(|(name, args)| {
            let mut text = name.to_string();
            for arg in args {
                text.push(' ');
                text.push_str(&arg);
            }
            text
        })
}

/// `outer` needs at least what `inner` needs.
fn covers(outer: &Classification, inner: &Classification) -> bool {
    (!inner.needs_navigate || outer.needs_navigate)
        && (!inner.needs_write || outer.needs_write)
        && (!inner.needs_sensitive || outer.needs_sensitive)
        && inner
            .nav_targets
            .iter()
            .all(|t| outer.nav_targets.contains(t))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn classify_never_panics(text in "\\PC{0,120}") {
        let _ = classify(&text);
    }

    #[test]
    fn classify_never_panics_on_command_like_text(
        parts in proptest::collection::vec(prop_oneof![
            command(),
            Just(" : ".to_string()),
            Just(" ; ".to_string()),
            Just(" | ".to_string()),
            Just("{}".to_string()),
            Just("\n".to_string()),
            Just("\"".to_string()),
        ], 1..6)
    ) {
        let _ = classify(&parts.concat());
    }

    #[test]
    fn wrapping_never_weakens(cmd in command()) {
        let Ok(direct) = classify_line(&cmd) else {
            return Ok(());
        };
        // Piping is left out: `!1 | head` is not a history replay (`!N` is a whole line).
        let wrapped = [
            format!("each {cmd}"),
            format!("each --limit 2 {cmd}"),
            format!("watch {} --times 2", quote_word(&cmd)),
            format!("for tabs : {cmd}"),
            format!("for tabs | grep x : {cmd}"),
            format!("for {cmd} : ls"),
            format!("script save s {cmd}"),
            format!("script save s ls ; {cmd}"),
        ];
        for text in wrapped {
            // `for` splits on its last ` : ` and `script save` on ` ; `: a command containing
            // those separators is split differently by design (the extension runs the same
            // split), so wrapping it is not "the same command inside".
            if (text.starts_with("for ") && cmd.contains(" : "))
                || (text.starts_with("script ") && cmd.contains(" ; "))
            {
                continue;
            }
            // A wrapper may reject what the bare command accepts; that must be a parse error.
            let Ok(outer) = classify_line(&text) else {
                prop_assert!(parse_line(&text).is_err(), "{text}");
                continue;
            };
            prop_assert!(covers(&outer, &direct), "{text}: {outer:?} vs {direct:?}");
        }
    }

    #[test]
    fn multi_line_is_the_union_of_lines(cmds in proptest::collection::vec(command(), 1..5)) {
        let text = cmds.join("\n");
        let Ok(all) = classify(&text) else {
            return Ok(());
        };
        for line in split_lines(&text) {
            let one = classify_line(&line).unwrap();
            prop_assert!(covers(&all, &one), "{line}");
        }
    }
}
