//! The audit log: one JSON object per line for every command the server decided on.
//!
//! This module owns the file (creation with mode 0600, appending, size rotation) and the
//! record format, and applies redaction to every command it records. It must not decide
//! anything and must never fail its caller: I/O errors are reported once through
//! `tracing::warn!` and the command goes on.
//!
//! Format (bug 32: `serde_json` escapes newlines, so one record is always one line):
//! `{"time":"2025-01-31T12:00:00.123Z","session":"…","tier":"write","command":"type «redacted 6 chars»","outcome":"ok","duration_ms":12,"detail":"…"}`
//! where `detail` is omitted when absent.
//!
//! Redaction (`shared_protocol::grammar::redact_command`, which lives with the grammar so
//! the classifier's explanations use it too): the text of `type`, the value of `submit` (its input name
//! and `--submit` button stay), and the token of `connect` become `«redacted N chars»`,
//! also inside `for`/`each`/`watch`/`script save`. JavaScript of `js`/`eval` is kept
//! verbatim: it is the record of what ran.
//!
//! Writing: [`AuditLog::record`] is synchronous — a `Mutex`-guarded `BufWriter` that is
//! flushed after every record. That is a few microseconds at our volume (one record per
//! command), short enough to call from async code; a background writer would only add a
//! way to lose the last records at exit.
//!
//! Rotation: before a record would push the file past `max_bytes`, `audit.log` becomes
//! `audit.log.1`, `.1` becomes `.2` and so on; `generations` old files are kept.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use shared_protocol::grammar::redact_command;

/// Number of rotated files kept (`.1` … `.3`).
pub const DEFAULT_GENERATIONS: usize = 3;

/// Size at which the log rotates unless `--audit-max-bytes` says otherwise.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Longest `detail` kept, in characters.
pub const MAX_DETAIL_CHARS: usize = 2_000;

#[derive(Debug, Clone, PartialEq, Eq)]
struct AuditConfig {
    path: PathBuf,
    max_bytes: u64,
    generations: usize,
}

/// One audit record before redaction and timestamping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The MCP session id.
    pub session: String,
    /// `Classification::tier_label` (`read`, `write+sensitive`, …) or `unknown`.
    pub tier: String,
    /// The command line as received; [`AuditLog::record`] redacts it.
    pub command: String,
    /// How it ended: `ok`, `error`, `denied`, or the bridge's failure reason
    /// (`link_lost`, `timeout`, `cancelled`, …).
    pub outcome: String,
    pub duration_ms: u64,
    /// An error message or denial reason. Never command output: `submit` echoes the typed
    /// value, and output is not redacted.
    pub detail: Option<String>,
    /// The MCP `initial_url` parameter, on the line that carried it.
    pub initial_url: Option<String>,
    /// The MCP `group_id` parameter (`new` or the lane joined), on the lines that carried it.
    pub group_id: Option<String>,
}

#[derive(Serialize)]
struct Record<'a> {
    time: String,
    session: &'a str,
    tier: &'a str,
    command: String,
    outcome: &'a str,
    duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    initial_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Option<&'a str>,
}

/// The append-only, size-rotated audit file. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct AuditLog {
    config: AuditConfig,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    file: Option<BufWriter<File>>,
    size: u64,
    /// A failure was reported and nothing has succeeded since: stay quiet.
    failing: bool,
}

impl AuditLog {
    /// Opens `path` now, creating its directory, so a bad path fails at startup; rotates at
    /// `max_bytes` keeping [`DEFAULT_GENERATIONS`] old files.
    pub fn open(path: impl AsRef<Path>, max_bytes: u64) -> std::io::Result<Self> {
        Self::open_config(AuditConfig {
            path: path.as_ref().to_path_buf(),
            max_bytes,
            generations: DEFAULT_GENERATIONS,
        })
    }

    fn open_config(config: AuditConfig) -> std::io::Result<Self> {
        let log = Self {
            config,
            state: Mutex::new(State::default()),
        };
        let (file, size) = log.open_file()?;
        let mut state = match log.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.file = Some(BufWriter::new(file));
        state.size = size;
        drop(state);
        Ok(log)
    }

    /// Appends one record. Never fails and never panics; see the module docs.
    pub fn record(&self, entry: AuditEntry) {
        self.record_at(&entry, SystemTime::now());
    }

    fn record_at(&self, entry: &AuditEntry, now: SystemTime) {
        let record = Record {
            time: rfc3339_utc(now),
            session: &entry.session,
            tier: &entry.tier,
            command: redact_command(&entry.command),
            outcome: &entry.outcome,
            duration_ms: entry.duration_ms,
            detail: entry
                .detail
                .as_deref()
                .map(|d| d.chars().take(MAX_DETAIL_CHARS).collect()),
            initial_url: entry.initial_url.as_deref(),
            group_id: entry.group_id.as_deref(),
        };
        let mut line = match serde_json::to_string(&record) {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!("audit log: cannot encode a record: {e}");
                return;
            }
        };
        line.push('\n');
        let mut state = match self.state.lock() {
            Ok(state) => state,
            // A panic elsewhere while holding the lock leaves nothing half-done that
            // matters here: at worst a partial line, after which we keep appending.
            Err(poisoned) => poisoned.into_inner(),
        };
        match self.append(&mut state, line.as_bytes()) {
            Ok(()) => {
                if state.failing {
                    state.failing = false;
                    tracing::info!("audit log {} is writable again", self.config.path.display());
                }
            }
            Err(e) => {
                state.file = None;
                if !state.failing {
                    state.failing = true;
                    tracing::warn!(
                        "audit log {}: {e}; records are dropped until it is writable again (this is reported once)",
                        self.config.path.display()
                    );
                }
            }
        }
    }

    fn append(&self, state: &mut State, bytes: &[u8]) -> std::io::Result<()> {
        let len = bytes.len() as u64;
        if state.file.is_none() {
            let (file, size) = self.open_file()?;
            state.file = Some(BufWriter::new(file));
            state.size = size;
        }
        if state.size > 0 && state.size.saturating_add(len) > self.config.max_bytes {
            if let Some(mut file) = state.file.take() {
                file.flush()?;
            }
            self.rotate()?;
            let (file, size) = self.open_file()?;
            state.file = Some(BufWriter::new(file));
            state.size = size;
        }
        let Some(file) = state.file.as_mut() else {
            return Err(std::io::Error::other("audit file not open"));
        };
        file.write_all(bytes)?;
        file.flush()?;
        state.size = state.size.saturating_add(len);
        Ok(())
    }

    fn open_file(&self) -> std::io::Result<(File, u64)> {
        let path = &self.config.path;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            options.mode(0o600);
            let file = options.open(path)?;
            // `mode` only applies to new files; an existing log may predate us.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            let size = file.metadata()?.len();
            Ok((file, size))
        }
        #[cfg(not(unix))]
        {
            let file = options.open(path)?;
            let size = file.metadata()?.len();
            Ok((file, size))
        }
    }

    fn rotate(&self) -> std::io::Result<()> {
        let path = &self.config.path;
        if self.config.generations == 0 {
            return remove_if_present(path);
        }
        remove_if_present(&generation(path, self.config.generations))?;
        for n in (1..self.config.generations).rev() {
            rename_if_present(&generation(path, n), &generation(path, n + 1))?;
        }
        rename_if_present(path, &generation(path, 1))
    }
}

fn generation(path: &Path, n: usize) -> PathBuf {
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_present(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// `2025-01-31T12:00:00.123Z`. Times before 1970 (a broken clock) print as the epoch.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry(session: &str, command: impl Into<String>, outcome: &str) -> AuditEntry {
        AuditEntry {
            session: session.into(),
            tier: "unknown".into(),
            command: command.into(),
            outcome: outcome.into(),
            duration_ms: 0,
            detail: None,
            initial_url: None,
            group_id: None,
        }
    }

    fn small_log(path: &Path, max_bytes: u64, generations: usize) -> AuditLog {
        AuditLog::open_config(AuditConfig {
            path: path.to_path_buf(),
            max_bytes,
            generations,
        })
        .unwrap()
    }

    const TEN_MIB: u64 = 10 * 1024 * 1024;

    #[test]
    fn time_format() {
        let at = |secs: u64, ms: u64| {
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_700_000_000, 123), "2023-11-14T22:13:20.123Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH - Duration::from_secs(10)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    fn read_lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn records_are_single_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/audit.log");
        let log = AuditLog::open(&path, TEN_MIB).unwrap();
        let c = shared_protocol::tier::classify("type x").unwrap();
        log.record_at(
            &AuditEntry {
                tier: c.tier_label().into(),
                duration_ms: 42,
                detail: Some("line one\nline two \"quoted\" \u{1b}[31m".into()),
                initial_url: Some("https://x.org".into()),
                group_id: Some("new".into()),
                ..entry("sess-1", "type \"a\nb\"", "ok")
            },
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        log.record(entry("sess-2", "ls", "link_lost"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        let records = read_lines(&path);
        assert_eq!(records[0]["time"], "2023-11-14T22:13:20.000Z");
        assert_eq!(records[0]["session"], "sess-1");
        assert_eq!(records[0]["tier"], "write");
        assert_eq!(records[0]["command"], "type «redacted 3 chars»");
        assert_eq!(records[0]["outcome"], "ok");
        assert_eq!(records[0]["duration_ms"], 42);
        assert_eq!(
            records[0]["detail"],
            "line one\nline two \"quoted\" \u{1b}[31m"
        );
        assert_eq!(records[0]["initial_url"], "https://x.org");
        assert_eq!(records[0]["group_id"], "new");
        assert_eq!(records[1]["outcome"], "link_lost");
        assert_eq!(records[1]["tier"], "unknown");
        assert!(records[1].get("detail").is_none());
        assert!(records[1].get("initial_url").is_none() && records[1].get("group_id").is_none());
    }

    #[cfg(unix)]
    #[test]
    fn file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        AuditLog::open(&path, TEN_MIB)
            .unwrap()
            .record(entry("s", "ls", "ok"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn rotation_keeps_generations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = small_log(&path, 400, 3);
        for i in 0..40 {
            log.record(entry("s", format!("click n{i:02}"), "ok"));
        }
        let current = std::fs::metadata(&path).unwrap().len();
        assert!(current <= 400, "{current}");
        for n in 1..=3 {
            let rotated = generation(&path, n);
            let len = std::fs::metadata(&rotated).unwrap().len();
            assert!(len > 0 && len <= 400, "{}: {len}", rotated.display());
        }
        assert!(!generation(&path, 4).exists());
        // The newest record is in the current file, older ones in .1 and so on.
        let newest = read_lines(&path);
        assert_eq!(newest.last().unwrap()["command"], "click n39");
        let previous = read_lines(&generation(&path, 1));
        let last_prev = previous.last().unwrap()["command"]
            .as_str()
            .unwrap()
            .to_string();
        let first_now = newest[0]["command"].as_str().unwrap().to_string();
        assert!(last_prev < first_now, "{last_prev} / {first_now}");
    }

    #[test]
    fn reopening_continues_the_size_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        for i in 0..3 {
            small_log(&path, 300, 1).record(entry("s", format!("ls {i}"), "ok"));
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 300);
        assert!(generation(&path, 1).exists());
    }

    #[test]
    fn zero_generations_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = small_log(&path, 200, 0);
        for _ in 0..10 {
            log.record(entry("s", "ls", "ok"));
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 200);
        assert!(!generation(&path, 1).exists());
    }

    #[test]
    fn io_errors_do_not_panic_and_recover() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        // A non-empty directory where the rotated file must go: rotation fails.
        std::fs::create_dir_all(generation(&path, 1).join("x")).unwrap();
        let log = small_log(&path, 150, 1);
        log.record(entry("s", "ls", "ok"));
        log.record(entry("s", "ls", "ok"));
        assert!(log.state.lock().unwrap().failing);
        log.record(entry("s", "ls", "ok"));
        std::fs::remove_dir_all(generation(&path, 1)).unwrap();
        log.record(entry("s", "pwd", "ok"));
        assert!(!log.state.lock().unwrap().failing);
        assert_eq!(read_lines(&path).last().unwrap()["command"], "pwd");
    }

    #[test]
    fn open_fails_early_on_a_bad_path_and_writes_on_a_good_one() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        assert!(AuditLog::open(blocker.join("audit.log"), TEN_MIB).is_err());
        let path = dir.path().join("logs/audit.log");
        let log = AuditLog::open(&path, TEN_MIB).unwrap();
        assert!(path.exists());
        log.record(entry("s", "ls", "timeout"));
        assert_eq!(read_lines(&path)[0]["outcome"], "timeout");
    }

    #[test]
    fn long_details_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, TEN_MIB).unwrap();
        log.record(AuditEntry {
            detail: Some("é".repeat(5_000)),
            ..entry("s", "ls", "error")
        });
        let detail = read_lines(&path)[0]["detail"]
            .as_str()
            .unwrap()
            .chars()
            .count();
        assert_eq!(detail, MAX_DETAIL_CHARS);
    }
}
