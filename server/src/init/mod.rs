//! `domshell init`: register this binary with an MCP host (Claude Desktop by default) in one
//! step, then tell the person the three steps left in the browser.
//!
//! It owns the write of the host's configuration file: find it ([`hosts`]), merge the entry
//! ([`merge`]), keep a backup of the previous file next to it, replace the file atomically with
//! its permissions kept, and do nothing at all when the entry is already there or on
//! `--dry-run`. It must never write a token into the host's file (the stdio server reads its
//! own token file) and must not start or stop the host or the server.

pub mod hosts;
pub mod merge;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use hosts::{HostClient, Os, SERVER_NAME};
use merge::Merge;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The MCP host to configure.
    #[arg(long, value_enum, default_value = "claude-desktop")]
    pub client: HostClient,

    /// Write without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Show the file that would be written and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Configuration file to edit instead of the host's usual one.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Flags the host passes to `domshell serve`, after `--` (e.g. `-- --allow-write`).
    #[arg(last = true, value_name = "SERVE_FLAGS")]
    pub serve_args: Vec<String>,
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The entry was already there; nothing was touched.
    AlreadyConfigured,
    /// `--dry-run`: this text would have been written.
    WouldWrite(String),
    /// The person said no at the prompt.
    Declined,
    /// Written; `backup` holds the previous file, when there was one.
    Written { backup: Option<PathBuf> },
}

/// Options of one [`apply`] call.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    pub dry_run: bool,
    /// Seconds since the epoch, for the backup's name.
    pub now_secs: u64,
}

/// Merge `entry` into the file at `path` for `client`. `confirm` is asked (with a question)
/// before anything is written, and only then.
pub fn apply(
    path: &Path,
    client: HostClient,
    entry: &serde_json::Value,
    options: ApplyOptions,
    confirm: impl FnOnce(&str) -> anyhow::Result<bool>,
) -> anyhow::Result<Outcome> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let merged = merge::merge(existing.as_deref(), client, entry)
        .with_context(|| format!("{} was left unchanged", path.display()))?;
    let (text, previous) = match merged {
        Merge::Unchanged => return Ok(Outcome::AlreadyConfigured),
        Merge::Write { text, previous } => (text, previous),
    };
    if options.dry_run {
        return Ok(Outcome::WouldWrite(text));
    }
    let question = match (&existing, &previous) {
        (None, _) => format!("Create {} with the domshell server?", path.display()),
        (Some(_), None) => format!(
            "Add the domshell server to {} (the current file is backed up first)?",
            path.display()
        ),
        (Some(_), Some(_)) => format!(
            "Replace the domshell server in {} (the current file is backed up first)?",
            path.display()
        ),
    };
    if !confirm(&question)? {
        return Ok(Outcome::Declined);
    }
    let backup = match existing {
        Some(_) => Some(back_up(path, options.now_secs)?),
        None => None,
    };
    write_atomically(path, text.as_bytes())?;
    Ok(Outcome::Written { backup })
}

/// Copy `path` to `<name>.domshell-backup-<secs>` (with `-N` when taken); returns the copy.
fn back_up(path: &Path, now_secs: u64) -> anyhow::Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    let mut candidate = path.with_file_name(format!("{name}.domshell-backup-{now_secs}"));
    let mut n = 1;
    while candidate.exists() {
        candidate = path.with_file_name(format!("{name}.domshell-backup-{now_secs}-{n}"));
        n += 1;
    }
    // fs::copy keeps the permission bits: a host file holding credentials stays private.
    std::fs::copy(path, &candidate)
        .with_context(|| format!("backing {} up to {}", path.display(), candidate.display()))?;
    Ok(candidate)
}

/// Replace `path` with `bytes` through a temporary file in the same directory, keeping the
/// old file's permissions, so the host never reads half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_file_name(format!(
        ".{}.domshell-tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(&tmp, meta.permissions())
            .with_context(|| format!("copying permissions onto {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

/// The repository root when this binary runs from a checkout's `target/<profile>/`: that
/// folder holds `manifest.json` and is what Chrome loads unpacked.
fn extension_folder(exe: &Path) -> Option<PathBuf> {
    exe.ancestors()
        .skip(1)
        .take(4)
        .find(|dir| dir.join("manifest.json").is_file() && dir.join("extension").is_dir())
        .map(Path::to_path_buf)
}

/// The three steps left in the browser, and how to check.
pub fn next_steps(client: HostClient, exe: &Path) -> String {
    let folder = match extension_folder(exe) {
        Some(dir) => dir.display().to_string(),
        None => format!(
            "the folder you extracted domshell-extension-{}.zip into",
            env!("CARGO_PKG_VERSION")
        ),
    };
    format!(
        "Restart {host} so it starts the server, then in Chrome:\n  \
         1. chrome://extensions → turn on Developer mode → Load unpacked → select {folder}\n  \
         2. run `{exe} token`, open the extension's options (Details → Extension options), paste the token, Save\n  \
         3. the options page shows Connected; in {host}, ask for the domshell_status tool to see the link from the server's side",
        host = client.label(),
        exe = exe.display(),
    )
}

fn ask_on_terminal(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("{question} — pass --yes to write without asking, or --dry-run to see the change");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// `domshell init`.
pub fn run(args: &InitArgs) -> anyhow::Result<()> {
    if let Some(flag) = args
        .serve_args
        .iter()
        .find(|a| *a == "--token" || a.starts_with("--token="))
    {
        bail!(
            "{flag} does not belong in {}'s configuration: the server reads its token file itself (see `domshell token`)",
            args.client.label()
        );
    }
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("finding this program's path (the host must be told where it is)")?;
    let command = exe
        .to_str()
        .context("this program's path is not valid UTF-8; move it and run init again")?;
    let entry = args.client.entry(command, &args.serve_args);
    let path = match &args.config {
        Some(path) => path.clone(),
        None => args
            .client
            .config_path(Os::current(), |name| std::env::var(name).ok())
            .map_err(anyhow::Error::msg)?,
    };
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let yes = args.yes;
    let outcome = apply(
        &path,
        args.client,
        &entry,
        ApplyOptions {
            dry_run: args.dry_run,
            now_secs,
        },
        |question| {
            if yes {
                Ok(true)
            } else {
                ask_on_terminal(question)
            }
        },
    )?;
    match outcome {
        Outcome::AlreadyConfigured => println!(
            "{} already starts this domshell ({}); nothing changed.",
            args.client.label(),
            path.display()
        ),
        Outcome::WouldWrite(text) => {
            println!(
                "Would write {}:\n{text}(dry run: nothing written)",
                path.display()
            );
            return Ok(());
        }
        Outcome::Declined => {
            println!("Nothing written.");
            return Ok(());
        }
        Outcome::Written { backup } => {
            println!("Added the \"{SERVER_NAME}\" server to {}.", path.display());
            if let Some(backup) = backup {
                println!("The previous file is kept as {}.", backup.display());
            }
        }
    }
    println!("{}", next_steps(args.client, &exe));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn entry() -> Value {
        HostClient::ClaudeDesktop.entry("/opt/domshell/domshell", &[])
    }

    fn options() -> ApplyOptions {
        ApplyOptions {
            dry_run: false,
            now_secs: 1_700_000_000,
        }
    }

    fn read(path: &Path) -> Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn backups(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("domshell-backup"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_new_file_is_created_with_its_directories_and_no_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Claude").join("claude_desktop_config.json");
        let outcome = apply(
            &path,
            HostClient::ClaudeDesktop,
            &entry(),
            options(),
            |_| Ok(true),
        )
        .unwrap();
        assert_eq!(outcome, Outcome::Written { backup: None });
        assert_eq!(read(&path), json!({"mcpServers": {"domshell": entry()}}));
    }

    #[test]
    fn an_existing_file_is_merged_and_backed_up_with_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claude_desktop_config.json");
        let original = r#"{"mcpServers": {"files": {"command": "npx"}}, "theme": "dark"}"#;
        std::fs::write(&path, original).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

        let outcome = apply(
            &path,
            HostClient::ClaudeDesktop,
            &entry(),
            options(),
            |_| Ok(true),
        )
        .unwrap();
        let Outcome::Written {
            backup: Some(backup),
        } = outcome
        else {
            panic!("expected a write with a backup, got {outcome:?}");
        };
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), original);
        assert_eq!(
            backup.file_name().unwrap(),
            "claude_desktop_config.json.domshell-backup-1700000000"
        );
        let doc = read(&path);
        assert_eq!(doc["mcpServers"]["files"]["command"], "npx");
        assert_eq!(doc["theme"], "dark");
        assert_eq!(doc["mcpServers"]["domshell"], entry());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the host's file keeps its permissions");
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "so does its backup");
    }

    #[test]
    fn running_twice_changes_nothing_the_second_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp.json");
        std::fs::write(&path, r#"{"mcpServers": {}}"#).unwrap();
        apply(&path, HostClient::Cursor, &entry(), options(), |_| Ok(true)).unwrap();
        let after_first = std::fs::read(&path).unwrap();
        assert_eq!(backups(dir.path()).len(), 1);

        let outcome = apply(&path, HostClient::Cursor, &entry(), options(), |_| {
            panic!("nothing to confirm when nothing changes")
        })
        .unwrap();
        assert_eq!(outcome, Outcome::AlreadyConfigured);
        assert_eq!(std::fs::read(&path).unwrap(), after_first);
        assert_eq!(backups(dir.path()).len(), 1, "no second backup");
    }

    #[test]
    fn backups_never_overwrite_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp.json");
        std::fs::write(&path, "{}").unwrap();
        apply(&path, HostClient::Cursor, &entry(), options(), |_| Ok(true)).unwrap();
        let other = HostClient::Cursor.entry("/elsewhere/domshell", &[]);
        apply(&path, HostClient::Cursor, &other, options(), |_| Ok(true)).unwrap();
        assert_eq!(
            backups(dir.path()),
            [
                "mcp.json.domshell-backup-1700000000",
                "mcp.json.domshell-backup-1700000000-1"
            ]
        );
        assert_eq!(read(&path)["mcpServers"]["domshell"], other);
    }

    #[test]
    fn dry_run_shows_the_text_and_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claude_desktop_config.json");
        std::fs::write(&path, "{}").unwrap();
        let outcome = apply(
            &path,
            HostClient::ClaudeDesktop,
            &entry(),
            ApplyOptions {
                dry_run: true,
                ..options()
            },
            |_| panic!("a dry run asks nothing"),
        )
        .unwrap();
        let Outcome::WouldWrite(text) = outcome else {
            panic!("expected the would-be text");
        };
        assert!(text.contains("/opt/domshell/domshell"), "{text}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}");
        assert!(backups(dir.path()).is_empty());
        // And a dry run for a file that does not exist creates nothing.
        let absent = dir.path().join("nope").join("x.json");
        apply(
            &absent,
            HostClient::ClaudeDesktop,
            &entry(),
            ApplyOptions {
                dry_run: true,
                ..options()
            },
            |_| Ok(true),
        )
        .unwrap();
        assert!(!absent.parent().unwrap().exists());
    }

    #[test]
    fn saying_no_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp.json");
        std::fs::write(&path, "{}").unwrap();
        let outcome = apply(&path, HostClient::Cursor, &entry(), options(), |question| {
            assert!(question.contains("backed up"), "{question}");
            Ok(false)
        })
        .unwrap();
        assert_eq!(outcome, Outcome::Declined);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}");
        assert!(backups(dir.path()).is_empty());
    }

    #[test]
    fn a_broken_file_is_left_exactly_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp.json");
        std::fs::write(&path, "{ not json").unwrap();
        let err = apply(&path, HostClient::Cursor, &entry(), options(), |_| Ok(true)).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("left unchanged"), "{message}");
        assert!(message.contains("not valid JSON"), "{message}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ not json");
        assert!(backups(dir.path()).is_empty());
    }

    #[test]
    fn the_next_steps_name_the_checkout_when_run_from_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("manifest.json"), "{}").unwrap();
        std::fs::create_dir_all(dir.path().join("extension")).unwrap();
        let exe = dir.path().join("target").join("release").join("domshell");
        let steps = next_steps(HostClient::ClaudeDesktop, &exe);
        assert!(
            steps.contains(&format!("select {}", dir.path().display())),
            "{steps}"
        );
        assert!(steps.contains("Restart Claude Desktop"), "{steps}");
        assert!(
            steps.contains(&format!("{} token", exe.display())),
            "{steps}"
        );
        let elsewhere = next_steps(HostClient::Cursor, Path::new("/usr/local/bin/domshell"));
        assert!(elsewhere.contains("domshell-extension-"), "{elsewhere}");
    }
}
