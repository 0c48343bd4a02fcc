//! The extension's shell kernel, in its first form: per-session state and the commands that
//! need no page (`pwd`, `help`, `tabs`).
//!
//! It owns the command outputs and session bookkeeping. It must not call Chrome itself: the
//! glue fetches what a command needs (the tab list) and passes it in, so every output is
//! testable on the host.

use std::collections::HashMap;

/// A tab as `chrome.tabs.query` reports it (only the fields the shell shows).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct TabInfo {
    pub id: Option<i64>,
    #[serde(rename = "windowId")]
    pub window_id: Option<i64>,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub active: bool,
}

/// What the glue must do to answer a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// The answer is known now.
    Reply { ok: bool, output: String },
    /// List the browser's tabs and pass them to [`format_tabs`].
    ListTabs,
}

#[derive(Debug, Default)]
struct SessionState {
    cwd: String,
}

/// Shell state for every MCP session the server announced.
#[derive(Debug, Default)]
pub struct Shell {
    sessions: HashMap<String, SessionState>,
}

pub const HELP: &str = "domshell: the browser as a filesystem\r\n\
  pwd      print the current directory\r\n\
  tabs     list the open tabs (ID, title, URL, window)\r\n\
  help     this text";

impl Shell {
    pub fn start_session(&mut self, session: &str) {
        self.sessions
            .entry(session.to_string())
            .or_insert_with(|| SessionState { cwd: "~".into() });
    }

    pub fn end_session(&mut self, session: &str) {
        self.sessions.remove(session);
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Decide how to answer `command` in `session` (created on first use, so a session whose
    /// SESSION_START was lost still works).
    pub fn plan(&mut self, session: &str, command: &str) -> Plan {
        self.start_session(session);
        let cwd = self
            .sessions
            .get(session)
            .map(|s| s.cwd.clone())
            .unwrap_or_else(|| "~".into());
        let mut words = command.split_whitespace();
        match words.next() {
            None => Plan::Reply {
                ok: true,
                output: String::new(),
            },
            Some("pwd") => Plan::Reply {
                ok: true,
                output: cwd,
            },
            Some("help") => Plan::Reply {
                ok: true,
                output: HELP.into(),
            },
            Some("tabs") => Plan::ListTabs,
            Some(other) => Plan::Reply {
                ok: false,
                output: format!(
                    "domshell: {other}: command not found. Run `help` for the list of commands."
                ),
            },
        }
    }
}

fn clip(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        format!("{text:<width$}")
    } else {
        let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// The `tabs` listing: one line per tab, `*` marking the active tab of its window.
pub fn format_tabs(tabs: &[TabInfo]) -> String {
    if tabs.is_empty() {
        return "(no tabs)".into();
    }
    let mut lines = vec![format!("  {:<8} {:<36} {:<40} WIN", "ID", "TITLE", "URL")];
    for tab in tabs {
        lines.push(format!(
            "{} {:<8} {} {} {}",
            if tab.active { '*' } else { ' ' },
            tab.id.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            clip(&tab.title, 36),
            clip(&tab.url, 40),
            tab.window_id
                .map(|i| i.to_string())
                .unwrap_or_else(|| "-".into()),
        ));
    }
    lines.join("\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pwd_help_and_unknown_commands() {
        let mut shell = Shell::default();
        assert_eq!(
            shell.plan("s", "pwd"),
            Plan::Reply {
                ok: true,
                output: "~".into()
            }
        );
        assert!(
            matches!(shell.plan("s", "  help "), Plan::Reply { ok: true, output } if output.contains("tabs"))
        );
        assert_eq!(shell.plan("s", "tabs"), Plan::ListTabs);
        assert!(
            matches!(shell.plan("s", "frobnicate x"), Plan::Reply { ok: false, output } if output.contains("frobnicate: command not found"))
        );
        assert_eq!(shell.session_count(), 1);
        shell.end_session("s");
        assert_eq!(shell.session_count(), 0);
    }

    #[test]
    fn tabs_listing_marks_the_active_tab_and_clips_long_text() {
        let tabs = vec![
            TabInfo {
                id: Some(12),
                window_id: Some(1),
                title: "Fixture".into(),
                url: "http://127.0.0.1:8000/".into(),
                active: true,
            },
            TabInfo {
                id: Some(13),
                window_id: Some(1),
                title: "x".repeat(50),
                url: "about:blank".into(),
                active: false,
            },
        ];
        let out = format_tabs(&tabs);
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("* 12"));
        assert!(lines[1].contains("http://127.0.0.1:8000/"));
        assert!(lines[2].contains('…'));
        assert_eq!(format_tabs(&[]), "(no tabs)");
    }
}
