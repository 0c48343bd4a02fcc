//! Properties of the grammar and the tier classifier over generated input: nothing
//! panics, running a command through `for`/`each`/`watch`/`script save` never needs
//! less than running it directly (the first-word bypasses of the original server), and a
//! `for` template needs at least what any line it can expand to needs.

use proptest::prelude::*;
use shared_protocol::grammar::{parse_line, quote_word, split_lines, ForLoop};
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

/// Output lines a `for` source may produce, chosen to break the template's words apart
/// or to smuggle flags, quotes and dangerous URLs into it.
const ITEMS: &[&str] = &[
    "plain",
    "x \\",
    "a '",
    "b \"",
    " -- ",
    "--help",
    "-- --help",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "data:text/html,hi",
    "view-source:file:///etc/passwd",
    "https://evil.example",
    "--url evil.example",
    "-n 5",
    "-la",
    "-ln 5",
    "-u evil.example",
    "new",
    "run x",
    "close",
    "evil.example x",
    "{}",
    "a : b",
    "c ; d",
    "e | grep f",
    "e | js 1",
    "\\",
    "'",
];

/// A `for` template must need at least what the line it becomes needs, and any navigation
/// of that line must be either a target the template already names or flagged unchecked.
fn template_covers(template: &Classification, line: &Classification) -> bool {
    (!line.needs_navigate || template.needs_navigate)
        && (!line.needs_write || template.needs_write)
        && (!line.needs_sensitive || template.needs_sensitive)
        && (line
            .nav_targets
            .iter()
            .all(|t| template.nav_targets.contains(t))
            || !template.unchecked_navigation.is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn a_template_covers_every_line_it_expands_to(
        cmd in command(),
        at in 0usize..6,
        items in proptest::collection::vec(proptest::sample::select(ITEMS), 1..4),
    ) {
        // Put `{}` in front of one of the command's words (or at its end).
        let mut words: Vec<&str> = cmd.split(' ').collect();
        let at = at.min(words.len());
        let with_placeholder: Vec<String> = words
            .drain(..)
            .enumerate()
            .map(|(i, w)| if i == at { format!("{{}}{w}") } else { w.to_string() })
            .collect();
        let mut template = with_placeholder.join(" ");
        if at == with_placeholder.len() {
            template.push_str(" {}");
        }
        // `for` splits on its last ` : `; a template holding one is not this template.
        if template.contains(" : ") {
            return Ok(());
        }
        let text = format!("for tabs : {template}");
        let Ok(outer) = classify_line(&text) else {
            return Ok(());
        };
        let form = ForLoop { source: "tabs".into(), template: template.clone() };
        for item in items {
            let line = form.substitute(item);
            // The extension cannot run what does not parse.
            let Ok(inner) = classify_line(&line) else {
                continue;
            };
            prop_assert!(
                template_covers(&outer, &inner),
                "template `{template}` with item {item:?} -> `{line}`: {outer:?} vs {inner:?}"
            );
        }
    }

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
