//! `help` and `<cmd> --help`, written from the command table
//! ([`shared_protocol::commands`]), which says for every command its usage, what it does,
//! its section and whether this build runs it.
//!
//! It owns the layout of those texts. It must not run anything (dispatch lives in
//! [`super`]) and holds no list of commands of its own.

pub use shared_protocol::commands::{find, CommandDef, COMMANDS, SECTIONS};

/// `help`: every command, grouped, with the unavailable ones marked.
pub fn help_text() -> String {
    let mut lines = vec![
        "domshell: the browser as a filesystem. `<command> --help` for details; `cmd | grep x`, `cmd | head -n N` filter output.".to_string(),
        format!("A reply holds at most {} characters: a longer one ends with a `[left out: …]` line naming the next page (`-n N`, `--offset K`: characters for text, rows for extract_table, entries for the listings).", shared_protocol::MAX_OUTPUT_CHARS),
    ];
    for section in SECTIONS {
        lines.push(String::new());
        lines.push(format!("{section}:"));
        for c in COMMANDS.iter().filter(|c| c.section == section) {
            let mark = if c.available() {
                ""
            } else {
                " (not available yet)"
            };
            lines.push(format!("  {:<14} {}{mark}", c.name, c.summary));
        }
    }
    lines.join("\r\n")
}

/// `<cmd> --help`.
pub fn command_help(spec: &CommandDef) -> String {
    let mut lines = vec![
        format!("usage: {}", spec.usage),
        format!("  {}", spec.summary),
    ];
    if !spec.details.is_empty() {
        lines.push(format!("  {}", spec.details));
    }
    if !spec.available() {
        lines.push("  Not available yet in this build.".into());
    }
    lines.join("\r\n")
}

/// The error for running a command this build does not have.
pub fn unavailable(spec: &CommandDef) -> String {
    format!(
        "{}: not available yet in this build. Available now: {}.",
        spec.name,
        COMMANDS
            .iter()
            .filter(|c| c.available())
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    )
}
