//! The MCP hosts `domshell init` knows: where each keeps its configuration on each OS, under
//! which key its servers live, and the entry that starts domshell over stdio.
//!
//! Pure: the OS and the environment are parameters, so every path is unit-tested on every
//! platform. It must never put a token in an entry: a stdio server reads its own token file.

use std::path::PathBuf;

use serde_json::{json, Value};

/// The name of domshell's entry in every host's server list.
pub const SERVER_NAME: &str = "domshell";

/// An MCP host application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HostClient {
    /// Claude Desktop (`claude_desktop_config.json`).
    ClaudeDesktop,
    /// Claude Code, user scope (`~/.claude.json`).
    ClaudeCode,
    /// Cursor, global (`~/.cursor/mcp.json`).
    Cursor,
    /// Visual Studio Code, user profile (`mcp.json`).
    Vscode,
}

/// The operating systems with distinct config locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    Mac,
    Windows,
}

impl Os {
    pub fn current() -> Os {
        match std::env::consts::OS {
            "macos" => Os::Mac,
            "windows" => Os::Windows,
            _ => Os::Linux,
        }
    }
}

impl HostClient {
    /// The application's name, for messages.
    pub fn label(self) -> &'static str {
        match self {
            HostClient::ClaudeDesktop => "Claude Desktop",
            HostClient::ClaudeCode => "Claude Code",
            HostClient::Cursor => "Cursor",
            HostClient::Vscode => "VS Code",
        }
    }

    /// The top-level key holding the servers.
    pub fn servers_key(self) -> &'static str {
        match self {
            HostClient::Vscode => "servers",
            _ => "mcpServers",
        }
    }

    /// The entry that makes the host start `command serve_args…` over stdio.
    pub fn entry(self, command: &str, serve_args: &[String]) -> Value {
        let mut args = vec!["serve".to_string()];
        args.extend(serve_args.iter().cloned());
        match self {
            HostClient::ClaudeDesktop | HostClient::Cursor => {
                json!({ "command": command, "args": args })
            }
            HostClient::ClaudeCode => {
                json!({ "type": "stdio", "command": command, "args": args, "env": {} })
            }
            HostClient::Vscode => json!({ "type": "stdio", "command": command, "args": args }),
        }
    }

    /// The host's configuration file on `os`. `env` looks up environment variables.
    pub fn config_path(
        self,
        os: Os,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<PathBuf, String> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = || {
            let name = if os == Os::Windows {
                "USERPROFILE"
            } else {
                "HOME"
            };
            var(name).ok_or_else(|| format!("{name} is not set: pass --config <path>"))
        };
        let appdata =
            || var("APPDATA").ok_or_else(|| "APPDATA is not set: pass --config <path>".to_string());
        // Linux applications follow XDG; macOS keeps app data under Application Support.
        let app_config_dir = || -> Result<PathBuf, String> {
            match os {
                Os::Windows => appdata(),
                Os::Mac => Ok(home()?.join("Library").join("Application Support")),
                Os::Linux => match var("XDG_CONFIG_HOME") {
                    Some(dir) => Ok(dir),
                    None => Ok(home()?.join(".config")),
                },
            }
        };
        Ok(match self {
            HostClient::ClaudeDesktop => app_config_dir()?
                .join("Claude")
                .join("claude_desktop_config.json"),
            HostClient::ClaudeCode => match var("CLAUDE_CONFIG_DIR") {
                Some(dir) => dir.join(".claude.json"),
                None => home()?.join(".claude.json"),
            },
            HostClient::Cursor => home()?.join(".cursor").join("mcp.json"),
            HostClient::Vscode => app_config_dir()?.join("Code").join("User").join("mcp.json"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    const UNIX: &[(&str, &str)] = &[("HOME", "/home/ada")];
    const WINDOWS: &[(&str, &str)] = &[
        ("USERPROFILE", "C:/Users/ada"),
        ("APPDATA", "C:/Users/ada/AppData/Roaming"),
    ];

    #[test]
    fn claude_desktop_lives_where_each_os_keeps_app_settings() {
        let c = HostClient::ClaudeDesktop;
        assert_eq!(
            c.config_path(Os::Mac, env(UNIX)).unwrap(),
            PathBuf::from(
                "/home/ada/Library/Application Support/Claude/claude_desktop_config.json"
            )
        );
        assert_eq!(
            c.config_path(Os::Linux, env(UNIX)).unwrap(),
            PathBuf::from("/home/ada/.config/Claude/claude_desktop_config.json")
        );
        assert_eq!(
            c.config_path(Os::Linux, env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "/x")]))
                .unwrap(),
            PathBuf::from("/x/Claude/claude_desktop_config.json")
        );
        assert_eq!(
            c.config_path(Os::Windows, env(WINDOWS)).unwrap(),
            PathBuf::from("C:/Users/ada/AppData/Roaming/Claude/claude_desktop_config.json")
        );
    }

    #[test]
    fn the_other_hosts_have_their_own_files() {
        assert_eq!(
            HostClient::ClaudeCode
                .config_path(Os::Linux, env(UNIX))
                .unwrap(),
            PathBuf::from("/home/ada/.claude.json")
        );
        assert_eq!(
            HostClient::ClaudeCode
                .config_path(
                    Os::Linux,
                    env(&[("HOME", "/h"), ("CLAUDE_CONFIG_DIR", "/c")])
                )
                .unwrap(),
            PathBuf::from("/c/.claude.json")
        );
        assert_eq!(
            HostClient::Cursor
                .config_path(Os::Windows, env(WINDOWS))
                .unwrap(),
            PathBuf::from("C:/Users/ada/.cursor/mcp.json")
        );
        assert_eq!(
            HostClient::Vscode.config_path(Os::Mac, env(UNIX)).unwrap(),
            PathBuf::from("/home/ada/Library/Application Support/Code/User/mcp.json")
        );
        assert_eq!(
            HostClient::Vscode
                .config_path(Os::Linux, env(UNIX))
                .unwrap(),
            PathBuf::from("/home/ada/.config/Code/User/mcp.json")
        );
    }

    #[test]
    fn a_missing_home_asks_for_an_explicit_path() {
        let err = HostClient::Cursor
            .config_path(Os::Linux, env(&[]))
            .unwrap_err();
        assert!(err.contains("--config"), "{err}");
    }

    #[test]
    fn entries_start_the_server_over_stdio_and_carry_no_token() {
        let extra = vec!["--allow-write".to_string()];
        for client in [
            HostClient::ClaudeDesktop,
            HostClient::ClaudeCode,
            HostClient::Cursor,
            HostClient::Vscode,
        ] {
            let entry = client.entry("/opt/domshell", &extra);
            assert_eq!(entry["command"], "/opt/domshell");
            assert_eq!(entry["args"], json!(["serve", "--allow-write"]));
            assert!(
                !entry.to_string().to_lowercase().contains("token"),
                "{entry}"
            );
        }
        assert_eq!(HostClient::Vscode.entry("d", &[])["type"], "stdio");
        assert_eq!(HostClient::Vscode.servers_key(), "servers");
        assert_eq!(HostClient::ClaudeDesktop.servers_key(), "mcpServers");
    }
}
