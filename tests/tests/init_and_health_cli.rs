//! The one-shot commands, run as a person runs them: `domshell init` against a throwaway
//! home directory (merge into an existing Claude Desktop file, backup, second run changes
//! nothing, `--dry-run`, no prompt without a terminal, no token in the host's file), and
//! `domshell health` against a live server and a dead port.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use domshell_tests::server::server_binary;
use domshell_tests::{ServerOptions, ServerProcess};
use serde_json::{json, Value};

/// `domshell args…` with a clean environment whose home is `home`.
fn domshell(home: &Path, args: &[&str]) -> Output {
    Command::new(server_binary().unwrap())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn backups(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("domshell-backup")
        })
        .count()
}

#[test]
fn init_merges_into_claude_desktop_once_and_prints_the_browser_steps() {
    let home = tempfile::tempdir().unwrap();
    let config_dir = home.path().join(".config").join("Claude");
    std::fs::create_dir_all(&config_dir).unwrap();
    let config = config_dir.join("claude_desktop_config.json");
    std::fs::write(
        &config,
        r#"{"mcpServers": {"notes": {"command": "notes-mcp", "args": []}}, "theme": "dark"}"#,
    )
    .unwrap();

    let out = domshell(home.path(), &["init", "--yes", "--", "--allow-write"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&config.display().to_string()), "{stdout}");
    for step in ["1. chrome://extensions", "2. run `", "token`", "3. "] {
        assert!(stdout.contains(step), "{step} missing from:\n{stdout}");
    }

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(doc["theme"], "dark");
    assert_eq!(doc["mcpServers"]["notes"]["command"], "notes-mcp");
    let entry = &doc["mcpServers"]["domshell"];
    let binary = server_binary().unwrap().canonicalize().unwrap();
    assert_eq!(entry["command"], binary.display().to_string());
    assert_eq!(entry["args"], json!(["serve", "--allow-write"]));
    assert!(!doc.to_string().to_lowercase().contains("token"), "{doc}");
    assert_eq!(backups(&config_dir), 1);

    let before = std::fs::read(&config).unwrap();
    let again = domshell(home.path(), &["init", "--yes", "--", "--allow-write"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("nothing changed"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(std::fs::read(&config).unwrap(), before);
    assert_eq!(
        backups(&config_dir),
        1,
        "an unchanged file gets no new backup"
    );
}

#[test]
fn init_without_a_terminal_asks_for_yes_and_dry_run_writes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let cursor = home.path().join(".cursor").join("mcp.json");

    let out = domshell(home.path(), &["init", "--client", "cursor"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
    assert!(!cursor.exists());

    let out = domshell(home.path(), &["init", "--client", "cursor", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("\"mcpServers\""),
        "{}",
        text(&out.stdout)
    );
    assert!(!cursor.exists(), "a dry run creates nothing");

    let out = domshell(
        home.path(),
        &["init", "--client", "cursor", "--yes", "--", "--token", "x"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("token file"),
        "{}",
        text(&out.stderr)
    );
    assert!(!cursor.exists());

    let out = domshell(home.path(), &["init", "--client", "vscode", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let vscode = home.path().join(".config/Code/User/mcp.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(vscode).unwrap()).unwrap();
    assert_eq!(doc["servers"]["domshell"]["type"], "stdio");
}

#[tokio::test]
async fn health_exits_0_for_a_live_server_and_1_for_a_dead_port() {
    let server = ServerProcess::start(ServerOptions::default())
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let port = server.port().to_string();

    let out = domshell(home.path(), &["health", "--port", &port, "--print"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(doc["name"], "domshell");

    let url = format!("http://127.0.0.1:{port}/health");
    let out = domshell(home.path(), &["health", "--url", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "", "quiet unless --print");

    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let out = domshell(home.path(), &["health", "--port", &dead.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is the server running"),
        "{}",
        text(&out.stderr)
    );
}
