//! Redaction of secrets in command text, for logs and for messages that quote commands.
//!
//! It owns which words are secret: the text of `type`, the value of `submit` (its input
//! name and `--submit` button stay), the token of `connect`, and the arguments of
//! `script run` (they become `$1…` inside stored `type`/`submit` lines), which become
//! `«redacted N chars»`, also inside `for`/`each`/`watch`/`script save`. A trailing
//! `--help` changes nothing: the words before it are redacted all the same. JavaScript of
//! `js`/`eval` is kept verbatim (it is the record of what ran; keep secrets out of it). A
//! line that cannot be parsed keeps only its first word, when that is a plain word that
//! names no secret-bearing command, and a `for` template whose command name is `{}` (it
//! may become `type`) loses all its arguments. It must not decide anything else and never
//! fails.

use super::{
    parse_line, quote_word, split_lines, tokenize, Args, Command, Line, Nested, Script, MAX_NESTING,
};

/// Commands whose arguments [`redact_command`] hides.
const SECRET_COMMANDS: [&str; 3] = ["type", "submit", "connect"];

/// `«redacted N chars»` for a secret of N characters.
fn marker(secret: &str) -> String {
    format!("«redacted {} chars»", secret.chars().count())
}

/// The command text with secrets replaced (see the module docs). Multi-line input is
/// redacted line by line and rejoined with `\n`.
pub fn redact_command(text: &str) -> String {
    let lines = split_lines(text);
    if lines.is_empty() {
        return text.trim().to_string();
    }
    lines
        .iter()
        .map(|line| redact_line(line, 0))
        .collect::<Vec<_>>()
        .join("\n")
}

fn redact_line(line: &str, depth: usize) -> String {
    let parsed = match parse_line(line) {
        Ok(Line::Pipeline(p)) => p,
        Ok(Line::HistoryReplay(_)) => return line.to_string(),
        Err(_) => return redact_unparsable(line),
    };
    let command = &parsed.command;
    let redacted = redact_single(command, depth);
    if redacted == command.raw {
        return line.to_string();
    }
    match line.strip_prefix(command.raw.as_str()) {
        Some(consumers) => format!("{redacted}{consumers}"),
        None => redacted,
    }
}

/// A line the grammar cannot read may still hold a secret in any shape (`t\\ype "pw`), so
/// only a plain first word that names no secret-bearing command survives.
fn redact_unparsable(line: &str) -> String {
    let line = line.trim();
    let (first, rest) = match line.find(char::is_whitespace) {
        Some(at) => (&line[..at], line[at..].trim_start()),
        None => (line, ""),
    };
    let plain = !first.is_empty()
        && first
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let secret_name = SECRET_COMMANDS.contains(&first.to_ascii_lowercase().as_str());
    match (plain && !secret_name, rest.is_empty()) {
        (true, true) => line.to_string(),
        (true, false) => format!("{first} {}", marker(rest)),
        (false, _) => marker(line),
    }
}

fn redact_single(command: &Command, depth: usize) -> String {
    // Only a bare `<cmd> --help` is certainly free of secrets; `submit q pw --help` is not.
    if depth > MAX_NESTING || command.args == ["--help"] {
        return command.raw.clone();
    }
    // A `for` template named by its placeholder may turn out to be `type`.
    let placeholder_name = command.name.contains("{}");
    match command.name.as_str() {
        _ if placeholder_name => {
            redact_words(command).unwrap_or_else(|| redact_unparsable(&command.raw))
        }
        "type" | "submit" | "connect" => redact_words(command).unwrap_or_else(|| {
            // The line parsed, so tokenising again cannot fail; stay safe anyway.
            redact_unparsable(&command.raw)
        }),
        "for" | "each" | "watch" | "script" => redact_nested(command, depth),
        _ => command.raw.clone(),
    }
}

/// Replaces the secret words of `type`/`submit`/`connect` in place, keeping the rest of
/// the text as written. Adjacent secret words share one marker.
fn redact_words(command: &Command) -> Option<String> {
    let tokens = tokenize(&command.raw).ok()?;
    let (_, words) = tokens.split_first()?;
    let values: Vec<String> = words.iter().map(|t| t.value.clone()).collect();
    let secret: Vec<usize> = match command.name.as_str() {
        name if name.contains("{}") => (0..words.len()).collect(),
        "type" => command.parse_args().ok()?.positional_index,
        "submit" => Args::parse("submit", &values)
            .ok()?
            .positional_index
            .into_iter()
            .skip(1)
            .collect(),
        _ => Args::parse("connect", &values)
            .ok()?
            .positional_index
            .into_iter()
            .take(1)
            .collect(),
    };
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < secret.len() {
        let mut j = i;
        while j + 1 < secret.len() && secret[j + 1] == secret[j] + 1 {
            j += 1;
        }
        let first = &words[secret[i]];
        let last = &words[secret[j]];
        let text: Vec<&str> = (secret[i]..=secret[j])
            .map(|k| words[k].value.as_str())
            .collect();
        out.push_str(&command.raw[copied..first.start]);
        out.push_str(&marker(&text.join(" ")));
        copied = last.end;
        i = j + 1;
    }
    out.push_str(&command.raw[copied..]);
    Some(out)
}

/// Rebuilds `for`/`each`/`watch`/`script save` around redacted inner commands. Unchanged
/// inner commands leave the text exactly as written.
fn redact_nested(command: &Command, depth: usize) -> String {
    let inner = |text: &str| redact_line(text, depth + 1);
    let rebuilt = match command.nested_form() {
        Ok(Some(Nested::For(f))) => {
            let (source, template) = (inner(&f.source), inner(&f.template));
            (source != f.source || template != f.template)
                .then(|| format!("for {source} : {template}"))
        }
        Ok(Some(Nested::Each(e))) => {
            let cmd = inner(&e.command);
            (cmd != e.command).then(|| {
                let mut out = "each".to_string();
                if let Some(p) = &e.pattern {
                    out.push_str(&format!(" --pattern {}", quote_word(p)));
                }
                if let Some(n) = e.limit {
                    out.push_str(&format!(" --limit {n}"));
                }
                if e.command_was_quoted {
                    format!("{out} {}", quote_word(&cmd))
                } else {
                    format!("{out} {cmd}")
                }
            })
        }
        Ok(Some(Nested::Watch(w))) => {
            let cmd = inner(&w.command);
            (cmd != w.command).then(|| {
                let mut out = format!("watch {}", quote_word(&cmd));
                if let Some(s) = w.interval_s {
                    out.push_str(&format!(" --interval {s}"));
                }
                if let Some(n) = w.times {
                    out.push_str(&format!(" --times {n}"));
                }
                if w.until_change {
                    out.push_str(" --until-change");
                }
                out
            })
        }
        Ok(Some(Nested::Script(Script::Run { name, args }))) => (!args.is_empty()).then(|| {
            format!(
                "script run {} {}",
                quote_word(&name),
                marker(&args.join(" "))
            )
        }),
        Ok(Some(Nested::Script(Script::Save { name, commands }))) => {
            let redacted: Vec<String> = commands.iter().map(|c| inner(c)).collect();
            (redacted != commands)
                .then(|| format!("script save {} {}", quote_word(&name), redacted.join(" ; ")))
        }
        Ok(_) => None,
        Err(_) => Some(redact_unparsable(&command.raw)),
    };
    rebuilt.unwrap_or_else(|| command.raw.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn redaction_table() {
        let table: &[(&str, &str)] = &[
            ("ls -l", "ls -l"),
            ("type hunter2", "type «redacted 7 chars»"),
            ("type  my secret  words", "type  «redacted 15 chars»"),
            ("type \"pass word\"", "type «redacted 9 chars»"),
            ("type -- -5", "type -- «redacted 2 chars»"),
            ("type --help", "type --help"),
            ("TYPE pw", "TYPE «redacted 2 chars»"),
            ("type", "type"),
            ("submit login_input s3cret", "submit login_input «redacted 6 chars»"),
            (
                "submit q machine learning --submit go_btn",
                "submit q «redacted 16 chars» --submit go_btn",
            ),
            (
                "submit q a --submit b c",
                "submit q «redacted 1 chars» --submit b «redacted 1 chars»",
            ),
            ("submit q", "submit q"),
            ("connect abcdef0123 --port 9876", "connect «redacted 10 chars» --port 9876"),
            ("connect --port 1 tok", "connect --port 1 «redacted 3 chars»"),
            ("key Enter", "key Enter"),
            ("js document.cookie = 'a=b'", "js document.cookie = 'a=b'"),
            ("type pw | head", "type «redacted 2 chars» | head"),
            ("for ls : type {}", "for ls : type «redacted 2 chars»"),
            ("for ls : click {}", "for ls : click {}"),
            ("for ls : {} pw", "for ls : {} «redacted 2 chars»"),
            ("each --pattern \"my bank\" --limit 2 type pw", "each --pattern \"my bank\" --limit 2 type «redacted 2 chars»"),
            ("each \"type pw\"", "each \"type «redacted 2 chars»\""),
            ("watch \"submit q pw\" --times 2", "watch \"submit q «redacted 2 chars»\" --times 2"),
            (
                "script save login type me ; submit pw_input hunter2 ; click go",
                "script save login type «redacted 2 chars» ; submit pw_input «redacted 7 chars» ; click go",
            ),
            ("script run login me pw", "script run login «redacted 5 chars»"),
            ("script run login", "script run login"),
            ("submit pw_input hunter2 --help", "submit pw_input «redacted 7 chars» --help"),
            ("connect hunter2 --help", "connect «redacted 7 chars» --help"),
            ("submit --help", "submit --help"),
            ("t\\ype \"hunter2", "«redacted 14 chars»"),
            ("ls \"hunter2", "ls «redacted 8 chars»"),
            ("for ls : each watch \"type deep\"", "for ls : each watch \"type «redacted 4 chars»\""),
            ("type \"unterminated secret", "«redacted 25 chars»"),
            ("for ls : type \"oops", "for «redacted 15 chars»"),
            ("frob \"unterminated", "frob «redacted 13 chars»"),
            ("!3", "!3"),
        ];
        for (input, expected) in table {
            assert_eq!(&redact_command(input), expected, "{input}");
        }
    }

    proptest! {
        #[test]
        fn secrets_never_reach_the_log(secret in "Z[a-z0-9]{5,15}", wrapper in 0usize..21) {
            let text = match wrapper {
                0 => format!("type {secret}"),
                1 => format!("type hello {secret} world"),
                2 => format!("submit q {secret} --submit go"),
                3 => format!("connect {secret} --port 1"),
                4 => format!("for ls : type {secret}"),
                5 => format!("each --limit 1 type {secret}"),
                6 => format!("watch \"type {secret}\" --times 2"),
                7 => format!("script save s click a ; type {secret}"),
                8 => format!("type \"{secret}"),
                9 => format!("for ls : each watch \"submit q '{secret}'\""),
                10 => format!("ls\ntype \"a\n{secret}\""),
                11 => format!("submit pw_input {secret} --help"),
                12 => format!("connect {secret} --help"),
                13 => format!("script run login {secret}"),
                14 => format!("t\\ype \"{secret}"),
                15 => format!("for ls : submit q {{}} {secret} --help"),
                16 => format!("each \"script run s {secret}\""),
                // One-letter flags the command lacks make the words unreadable: all hidden.
                17 => format!("submit q -x {secret}"),
                18 => format!("connect -lp {secret}"),
                19 => format!("submit q -la {secret} --submit go"),
                _ => format!("type {secret} | head"),
            };
            let redacted = redact_command(&text);
            prop_assert!(!redacted.contains(&secret), "{text} -> {redacted}");
            prop_assert!(redacted.contains("«redacted"), "{text} -> {redacted}");
        }

        #[test]
        fn redaction_never_panics(text in "\\PC{0,80}") {
            let _ = redact_command(&text);
        }
    }

    #[test]
    fn multi_line_input_is_redacted_per_line() {
        assert_eq!(
            redact_command("click a\ntype \"two\nlines\"\ntype x"),
            "click a\ntype «redacted 9 chars»\ntype «redacted 1 chars»"
        );
        assert_eq!(redact_command(""), "");
    }
}
