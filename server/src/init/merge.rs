//! Merging domshell's entry into a host's existing configuration text.
//!
//! Pure: text in, decision out. Every other key of the file and every other server is kept;
//! only the `domshell` entry is added or replaced. It must refuse, rather than repair, a file
//! it cannot read as a JSON object: that file belongs to the person and their host.

use serde_json::{Map, Value};

use super::hosts::{HostClient, SERVER_NAME};

/// What writing the entry would do to the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Merge {
    /// The file already holds exactly this entry.
    Unchanged,
    /// Write `text`. `previous` is the `domshell` entry it replaces, if any.
    Write {
        text: String,
        previous: Option<Value>,
    },
}

/// Why an existing file was left alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("it is not valid JSON ({0}); fix it or move it aside, then run `domshell init` again")]
    NotJson(String),
    #[error("its top level is not a JSON object; fix it or move it aside, then run `domshell init` again")]
    NotAnObject,
    #[error("its \"{0}\" is not a JSON object; fix it, then run `domshell init` again")]
    ServersNotAnObject(&'static str),
}

/// Merge `entry` as the `domshell` server of `client` into `existing` (`None`: no file yet).
pub fn merge(
    existing: Option<&str>,
    client: HostClient,
    entry: &Value,
) -> Result<Merge, MergeError> {
    let mut root = match existing.map(str::trim) {
        None | Some("") => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(MergeError::NotAnObject),
            Err(e) => return Err(MergeError::NotJson(e.to_string())),
        },
    };
    let key = client.servers_key();
    let servers = root
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(servers) = servers else {
        return Err(MergeError::ServersNotAnObject(key));
    };
    if servers.get(SERVER_NAME) == Some(entry) {
        return Ok(Merge::Unchanged);
    }
    let previous = servers.insert(SERVER_NAME.to_string(), entry.clone());
    let mut text = serde_json::to_string_pretty(&Value::Object(root))
        .map_err(|e| MergeError::NotJson(e.to_string()))?;
    text.push('\n');
    Ok(Merge::Write { text, previous })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry() -> Value {
        HostClient::ClaudeDesktop.entry("/usr/local/bin/domshell", &[])
    }

    fn written(merge: Merge) -> (Value, Option<Value>) {
        match merge {
            Merge::Write { text, previous } => (serde_json::from_str(&text).unwrap(), previous),
            Merge::Unchanged => panic!("expected a write"),
        }
    }

    #[test]
    fn a_missing_or_empty_file_gets_just_our_server() {
        for existing in [None, Some(""), Some("  \n")] {
            let (doc, previous) =
                written(merge(existing, HostClient::ClaudeDesktop, &entry()).unwrap());
            assert_eq!(doc, json!({"mcpServers": {"domshell": entry()}}));
            assert_eq!(previous, None);
        }
    }

    #[test]
    fn other_servers_and_settings_are_kept() {
        let existing = r#"{"globalShortcut": "Ctrl+Space",
            "mcpServers": {"files": {"command": "npx", "args": ["-y", "fs"], "env": {"KEY": "v"}}}}"#;
        let (doc, _) = written(merge(Some(existing), HostClient::ClaudeDesktop, &entry()).unwrap());
        assert_eq!(doc["globalShortcut"], "Ctrl+Space");
        assert_eq!(doc["mcpServers"]["files"]["env"]["KEY"], "v");
        assert_eq!(doc["mcpServers"]["domshell"], entry());
    }

    #[test]
    fn a_stale_entry_is_replaced_and_reported() {
        let existing =
            r#"{"mcpServers": {"domshell": {"command": "/old/domshell", "args": ["serve"]}}}"#;
        let (doc, previous) =
            written(merge(Some(existing), HostClient::ClaudeDesktop, &entry()).unwrap());
        assert_eq!(doc["mcpServers"]["domshell"], entry());
        assert_eq!(previous.unwrap()["command"], "/old/domshell");
    }

    #[test]
    fn the_same_entry_twice_changes_nothing() {
        let (doc, _) = written(merge(None, HostClient::ClaudeDesktop, &entry()).unwrap());
        let again = merge(Some(&doc.to_string()), HostClient::ClaudeDesktop, &entry()).unwrap();
        assert_eq!(again, Merge::Unchanged);
    }

    #[test]
    fn vscode_servers_live_under_their_own_key() {
        let existing = r#"{"inputs": [], "servers": {"gh": {"type": "http", "url": "https://x"}}}"#;
        let e = HostClient::Vscode.entry("/d", &[]);
        let (doc, _) = written(merge(Some(existing), HostClient::Vscode, &e).unwrap());
        assert_eq!(doc["servers"]["gh"]["type"], "http");
        assert_eq!(doc["servers"]["domshell"]["type"], "stdio");
        assert!(doc.get("mcpServers").is_none());
    }

    #[test]
    fn unreadable_files_are_refused_not_repaired() {
        assert!(matches!(
            merge(
                Some("{\"mcpServers\": {"),
                HostClient::ClaudeDesktop,
                &entry()
            ),
            Err(MergeError::NotJson(_))
        ));
        assert_eq!(
            merge(Some("[1, 2]"), HostClient::ClaudeDesktop, &entry()),
            Err(MergeError::NotAnObject)
        );
        assert_eq!(
            merge(
                Some(r#"{"mcpServers": []}"#),
                HostClient::ClaudeDesktop,
                &entry()
            ),
            Err(MergeError::ServersNotAnObject("mcpServers"))
        );
    }
}
