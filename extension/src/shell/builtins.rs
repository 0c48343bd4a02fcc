//! Commands that need no browser: `pwd`, `env`, `export`, `history`, `clear`, `help`,
//! `echo`, and `sleep`, which only waits.
//!
//! It owns their outputs. It must not reach the browser (`sleep` uses only its clock);
//! everything else it needs is in the [`Session`].

use shared_protocol::decimal::parse_f64;
use shared_protocol::grammar::{Args, Command};

use super::browser::Browser;
use super::commands;
use super::session::Session;
use super::{parse_args, Context};

/// Entries `history` shows without `-n`.
const DEFAULT_HISTORY_LINES: usize = 20;

/// Runs a builtin; its flags were checked against its row at dispatch.
pub fn run(session: &mut Session, cmd: &Command) -> Result<String, String> {
    let args = parse_args(cmd)?;
    match cmd.name.as_str() {
        "pwd" => Ok(session.cwd.display()),
        "clear" => Ok(String::new()),
        "env" => Ok(env_listing(session)),
        "export" => export(session, &args.positional),
        "history" => history(session, &args),
        "echo" => Ok(args.positional.join(" ")),
        "help" => match args.positional.first() {
            None => Ok(commands::help_text()),
            Some(name) => commands::find(&name.to_ascii_lowercase())
                .map(commands::command_help)
                .ok_or_else(|| format!("help: no command named {name}; `help` lists them")),
        },
        other => Err(format!("{other}: not a builtin")),
    }
}

/// `sleep <seconds>`: waits, at most as long as the call's deadline allows (a cancelled
/// command stops at once: the wait is an await like any other).
pub async fn pause<B: Browser>(browser: &B, ctx: &Context, args: &Args) -> Result<String, String> {
    let (asked, ms) = sleep_plan(&args.positional, ctx.wait_cap_ms)?;
    if ms > 0 {
        browser.sleep_ms(ms).await;
    }
    Ok(if ms < asked {
        format!("slept {ms} ms (cut from {asked} ms: the call's deadline)")
    } else {
        format!("slept {ms} ms")
    })
}

/// What `sleep` was asked for and what it will wait (`cap_ms` at most), in ms.
fn sleep_plan(words: &[String], cap_ms: u64) -> Result<(u64, u64), String> {
    let [text] = words else {
        return Err("sleep: usage: sleep <seconds>".into());
    };
    let seconds = parse_f64(text)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| format!("sleep: expects seconds (e.g. 1.5), got '{text}'"))?;
    let asked = (seconds * 1000.0) as u64;
    Ok((asked, asked.min(cap_ms)))
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

#[cfg(test)]
mod tests {
    use super::sleep_plan;

    #[test]
    fn sleep_waits_what_it_is_asked_within_the_deadline() {
        let words = |w: &str| vec![w.to_string()];
        assert_eq!(sleep_plan(&words("0.25"), 60_000), Ok((250, 250)));
        assert_eq!(sleep_plan(&words("30"), 1_000), Ok((30_000, 1_000)));
        assert!(sleep_plan(&words("-1"), 1_000).is_err());
        assert!(sleep_plan(&words("inf"), 1_000).is_err());
        assert!(sleep_plan(&[], 1_000).is_err());
    }
}
