//! Commands that need no browser: `pwd`, `env`, `export`, `history`, `clear`, `help`.
//!
//! It owns their outputs. It must not reach the browser; everything it needs is in the
//! [`Session`].

use shared_protocol::grammar::Command;

use super::commands;
use super::session::Session;
use super::{expect_flags, parse_args};

/// Entries `history` shows without `-n`.
const DEFAULT_HISTORY_LINES: usize = 20;

pub fn run(session: &mut Session, cmd: &Command) -> Result<String, String> {
    let args = parse_args(cmd)?;
    match cmd.name.as_str() {
        "pwd" => {
            expect_flags(cmd, &args, &[])?;
            Ok(session.cwd.display())
        }
        "clear" => {
            expect_flags(cmd, &args, &[])?;
            Ok(String::new())
        }
        "env" => {
            expect_flags(cmd, &args, &[])?;
            Ok(env_listing(session))
        }
        "export" => {
            expect_flags(cmd, &args, &[])?;
            export(session, &args.positional)
        }
        "history" => {
            expect_flags(cmd, &args, &["-n"])?;
            history(session, &args)
        }
        "help" => {
            expect_flags(cmd, &args, &[])?;
            match args.positional.first() {
                None => Ok(commands::help_text()),
                Some(name) => commands::find(&name.to_ascii_lowercase())
                    .map(commands::command_help)
                    .ok_or_else(|| format!("help: no command named {name}; `help` lists them")),
            }
        }
        other => Err(format!("{other}: not a builtin")),
    }
}

fn env_listing(session: &Session) -> String {
    session
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn export(session: &mut Session, words: &[String]) -> Result<String, String> {
    if words.is_empty() {
        return Ok(env_listing(session));
    }
    let mut set = Vec::new();
    for word in words {
        let Some((name, value)) = word.split_once('=') else {
            return Err(format!(
                "export: `{word}` has no value; usage: export NAME=value"
            ));
        };
        if !valid_name(name) {
            return Err(format!(
                "export: `{name}` is not a valid name (letters, digits and _, not starting with a digit)"
            ));
        }
        set.push((name.to_string(), value.to_string()));
    }
    let lines: Vec<String> = set.iter().map(|(k, v)| format!("✓ {k}={v}")).collect();
    session.env.extend(set);
    Ok(lines.join("\r\n"))
}

fn history(session: &mut Session, args: &shared_protocol::grammar::Args) -> Result<String, String> {
    match args.positional.first().map(String::as_str) {
        Some("clear") => {
            session.clear_history();
            return Ok("✓ History cleared".into());
        }
        Some(other) => {
            return Err(format!(
                "history: unexpected `{other}`; usage: history [-n N] | history clear"
            ))
        }
        None => {}
    }
    let count = match args.value("-n") {
        None => DEFAULT_HISTORY_LINES,
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| format!("history: -n expects a whole number, got '{n}'"))?,
    };
    let lines: Vec<String> = session
        .history_tail(count)
        .map(|(n, line)| format!("{n:>4}  {line}"))
        .collect();
    if lines.is_empty() {
        Ok("(history is empty)".into())
    } else {
        Ok(lines.join("\r\n"))
    }
}
