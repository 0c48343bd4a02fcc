//! Who may talk to the server: the bridge's `Origin` check, the constant-time token
//! comparison, the throttle on failed attempts (shared design for the bridge handshake and the
//! `/mcp` bearer check), and the persisted token with its strength and permission checks.
//!
//! It must not log a token, and it must not decide anything about frames.

use std::io::Write;
use std::path::{Path, PathBuf};

use shared_protocol::extension_origin;
use shared_protocol::frame::Secret;
use shared_protocol::handshake::weak_token_reason;

/// Compare two tokens in time that depends only on their lengths, so that a web page probing
/// the port cannot learn a prefix of the token by timing.
pub fn tokens_match(expected: &(impl AsRef<str> + ?Sized), presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    let expected = expected.as_ref();
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), the one
/// bearer parser of every route.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Origins allowed to upgrade to the bridge WebSocket: only Chrome extension pages with one of
/// the configured ids. Any web page can dial `ws://127.0.0.1:9876`, so this is a wall of its
/// own, not a formality.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    allowed: Vec<String>,
}

impl OriginPolicy {
    pub fn new(extension_ids: &[String]) -> Self {
        Self {
            allowed: extension_ids
                .iter()
                .map(|id| extension_origin(id))
                .collect(),
        }
    }

    pub fn check(&self, origin: Option<&str>) -> Result<(), String> {
        match origin {
            None => Err("missing Origin header: only the domshell extension may connect".into()),
            Some(o) if self.allowed.iter().any(|a| a == o) => Ok(()),
            Some(o) if o.starts_with("chrome-extension://") => Err(format!(
                "extension origin {o} is not allowed; start the server with --allowed-extension-id <id> to admit it"
            )),
            Some(o) => Err(format!(
                "origin {o} is not a Chrome extension; web pages may not open the bridge"
            )),
        }
    }
}

/// What became of one authentication attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Accepted,
    /// Evaluated and wrong; counted against the budget.
    Rejected,
    /// Not evaluated: the budget is spent for `retry_after_ms`.
    Throttled {
        retry_after_ms: u64,
    },
}

/// Counts failed authentications in a sliding window and refuses further attempts for a
/// while once the limit is hit. Sans-IO: the caller passes `now_ms`.
///
/// A guess is accounted in the same step that evaluates it ([`Self::attempt`], under the
/// caller's lock), so N connections opened at once get no more guesses than one connection
/// trying N times. Callers exempt a peer that proved earlier success (a resume ticket, an
/// authenticated MCP session): a flood of wrong guesses then cannot lock the real client out.
#[derive(Debug)]
pub struct AuthThrottle {
    window_ms: u64,
    max_failures: usize,
    failures: std::collections::VecDeque<u64>,
}

impl AuthThrottle {
    pub fn new(window_ms: u64, max_failures: usize) -> Self {
        Self {
            window_ms,
            max_failures: max_failures.max(1),
            failures: Default::default(),
        }
    }

    fn expire(&mut self, now_ms: u64) {
        while let Some(&t) = self.failures.front() {
            if now_ms.saturating_sub(t) >= self.window_ms {
                self.failures.pop_front();
            } else {
                break;
            }
        }
    }

    /// `Some(retry_after_ms)` when attempts are currently refused.
    pub fn blocked_for(&mut self, now_ms: u64) -> Option<u64> {
        self.expire(now_ms);
        if self.failures.len() >= self.max_failures {
            let oldest = self.failures.front().copied().unwrap_or(now_ms);
            Some((oldest + self.window_ms).saturating_sub(now_ms).max(1))
        } else {
            None
        }
    }

    pub fn record_failure(&mut self, now_ms: u64) {
        self.expire(now_ms);
        self.failures.push_back(now_ms);
    }

    /// Evaluate one guess with `check`, unless the budget is spent and the caller is not
    /// `exempt`; a wrong guess is counted before this returns.
    pub fn attempt(&mut self, now_ms: u64, exempt: bool, check: impl FnOnce() -> bool) -> Attempt {
        if !exempt {
            if let Some(retry_after_ms) = self.blocked_for(now_ms) {
                return Attempt::Throttled { retry_after_ms };
            }
        }
        if check() {
            Attempt::Accepted
        } else {
            self.record_failure(now_ms);
            Attempt::Rejected
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot find a config directory: set HOME, XDG_CONFIG_HOME or pass --token-file")]
    NoConfigDir,
    #[error("cannot read token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write token file {path}: {source} (pass --token or DOMSHELL_TOKEN instead)")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {0} is empty; delete it to have a new token generated")]
    Empty(PathBuf),
    #[error("token file {path} can be read by other users (mode {mode:o}); run `chmod 600 {path}` and start again")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("{reason}. {remedy}")]
    Weak { reason: String, remedy: String },
    #[error("cannot generate a random token: {0}")]
    Random(String),
}

/// Where the generated token lives unless `--token-file` says otherwise.
pub fn default_token_path() -> Result<PathBuf, TokenError> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").ok_or(TokenError::NoConfigDir)?).join(".config")
        }
    };
    Ok(base.join("domshell").join("token"))
}

/// Random hex string of `bytes` random bytes.
pub fn random_hex(bytes: usize) -> Result<String, TokenError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| TokenError::Random(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether the token was read back or created now (the caller prints instructions then).
#[derive(Debug, PartialEq, Eq)]
pub enum TokenOrigin {
    Existing,
    Generated,
}

/// Refuse a token too short to resist guessing, saying how to get a good one. `file` is where
/// it came from (`None`: the `--token` flag or `DOMSHELL_TOKEN`).
pub fn check_token_strength(token: &Secret, file: Option<&Path>) -> Result<(), TokenError> {
    let Some(reason) = weak_token_reason(token.expose()) else {
        return Ok(());
    };
    let remedy = match file {
        Some(path) => format!(
            "Delete {} to have a strong token generated (then paste the new `domshell token` into the extension), or pass --token with at least 32 random hex characters (e.g. `openssl rand -hex 32`)",
            path.display()
        ),
        None => "Pass --token (or DOMSHELL_TOKEN) with at least 32 random hex characters (e.g. `openssl rand -hex 32`), or leave it unset to have one generated".to_string(),
    };
    Err(TokenError::Weak { reason, remedy })
}

/// Refuse a token file that other users can read: anyone who reads it can drive the browser.
fn check_private(path: &Path) -> Result<(), TokenError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|source| TokenError::Read {
                path: path.to_path_buf(),
                source,
            })?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(TokenError::Exposed {
                path: path.to_path_buf(),
                mode: mode & 0o777,
            });
        }
    }
    Ok(())
}

/// Read the persisted token, or generate one and persist it with mode 0600 so that the token
/// saved in the extension survives server restarts. A file readable by group or others is
/// refused with the `chmod` to run.
pub fn load_or_create_token(path: &Path) -> Result<(Secret, TokenOrigin), TokenError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim().to_string();
            if token.is_empty() {
                return Err(TokenError::Empty(path.to_path_buf()));
            }
            check_private(path)?;
            Ok((Secret(token), TokenOrigin::Existing))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = random_hex(32)?;
            match write_private(path, &token) {
                Ok(()) => Ok((Secret(token), TokenOrigin::Generated)),
                // Another server of this user generated it at the same moment: use theirs,
                // so both agree on one secret.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text =
                        std::fs::read_to_string(path).map_err(|source| TokenError::Read {
                            path: path.to_path_buf(),
                            source,
                        })?;
                    check_private(path)?;
                    Ok((Secret(text.trim().to_string()), TokenOrigin::Existing))
                }
                Err(source) => Err(TokenError::Write {
                    path: path.to_path_buf(),
                    source,
                }),
            }
        }
        Err(source) => Err(TokenError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Create `path` holding `contents`, readable by its owner only. The file appears whole or
/// not at all (written aside, then hard-linked into place), so a server starting at the same
/// moment never reads a half-written secret; `AlreadyExists` when someone else was first.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let suffix = random_hex(6).map_err(std::io::Error::other)?;
    let mut aside = path.as_os_str().to_os_string();
    aside.push(format!(".{}-{suffix}.tmp", std::process::id()));
    let aside = PathBuf::from(aside);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| {
        let mut file = options.open(&aside)?;
        file.write_all(contents.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::hard_link(&aside, path)
    })();
    let _ = std::fs::remove_file(&aside);
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(tokens_match("abc123", "abc123"));
        assert!(!tokens_match("abc123", "abc124"));
        assert!(!tokens_match("abc123", "abc12"));
        assert!(!tokens_match("abc123", ""));
        assert!(!tokens_match("", "x"));
        assert!(tokens_match("", ""));
        assert!(tokens_match(&Secret("abc123".into()), "abc123"));
    }

    #[test]
    fn parallel_guesses_share_one_budget() {
        // Each attempt is accounted as it is evaluated: 20 connections that all got past the
        // upgrade at once still get only 3 guesses.
        let mut t = AuthThrottle::new(10_000, 3);
        let mut evaluated = 0;
        let outcomes: Vec<Attempt> = (0..20)
            .map(|_| {
                t.attempt(5, false, || {
                    evaluated += 1;
                    false
                })
            })
            .collect();
        assert_eq!(evaluated, 3);
        assert_eq!(
            outcomes.iter().filter(|a| **a == Attempt::Rejected).count(),
            3
        );
        assert!(
            matches!(outcomes[3], Attempt::Throttled { retry_after_ms } if retry_after_ms == 10_000)
        );
        // An exempt peer (resume ticket) is still evaluated, and a right answer is accepted.
        assert_eq!(t.attempt(6, true, || true), Attempt::Accepted);
        assert!(matches!(
            t.attempt(6, false, || true),
            Attempt::Throttled { .. }
        ));
        assert_eq!(t.attempt(10_005, false, || true), Attempt::Accepted);
    }

    #[test]
    fn weak_tokens_are_refused_with_a_way_out() {
        let file = Path::new("/home/u/.config/domshell/token");
        let err = check_token_strength(&Secret("t".into()), Some(file))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Delete /home/u/.config/domshell/token"),
            "{err}"
        );
        assert!(err.contains("--token"), "{err}");
        let err = check_token_strength(&Secret("short".into()), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("32"), "{err}");
        assert!(
            check_token_strength(&Secret("0123456789abcdef0123456789abcdef".into()), None).is_ok()
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_token_file_readable_by_others_is_refused_with_the_chmod() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef0123456789abcdef\n").unwrap();
        for mode in [0o644, 0o640, 0o604] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = load_or_create_token(&path).unwrap_err().to_string();
            assert!(
                err.contains(&format!("chmod 600 {}", path.display())),
                "{err}"
            );
            assert!(
                !err.contains("0123456789abcdef"),
                "the token is not in the message"
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load_or_create_token(&path).is_ok());
    }

    #[test]
    fn origin_policy_admits_only_configured_extensions() {
        let policy = OriginPolicy::new(&["abcdefghijklmnopabcdefghijklmnop".to_string()]);
        assert!(policy
            .check(Some("chrome-extension://abcdefghijklmnopabcdefghijklmnop"))
            .is_ok());
        let other = policy.check(Some("chrome-extension://zzzz")).unwrap_err();
        assert!(other.contains("--allowed-extension-id"), "{other}");
        for bad in ["http://127.0.0.1:8000", "https://evil.example", "null", ""] {
            let err = policy.check(Some(bad)).unwrap_err();
            assert!(err.contains("not a Chrome extension"), "{bad}: {err}");
        }
        assert!(policy.check(None).unwrap_err().contains("missing Origin"));
        // A prefix of an allowed origin is not the origin.
        assert!(policy
            .check(Some(
                "chrome-extension://abcdefghijklmnopabcdefghijklmnop.evil"
            ))
            .is_err());
    }

    #[test]
    fn throttle_blocks_after_repeated_failures_and_recovers() {
        let mut t = AuthThrottle::new(10_000, 3);
        assert_eq!(t.blocked_for(0), None);
        t.record_failure(0);
        t.record_failure(1_000);
        assert_eq!(t.blocked_for(1_500), None);
        t.record_failure(2_000);
        assert_eq!(t.blocked_for(2_000), Some(8_000));
        assert_eq!(t.blocked_for(9_999), Some(1));
        assert_eq!(t.blocked_for(10_000), None, "oldest failure expired");
    }

    #[test]
    fn servers_generating_at_once_agree_on_one_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay-key");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || load_or_create_token(&path).unwrap().0)
            })
            .collect();
        let secrets: std::collections::HashSet<String> = handles
            .into_iter()
            .map(|h| h.join().unwrap().expose().to_string())
            .collect();
        assert_eq!(secrets.len(), 1, "one secret for all");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary files left behind");
    }

    #[test]
    fn token_is_generated_once_with_private_mode_and_then_reused() {
        let dir = std::env::temp_dir().join(format!("domshell-token-test-{}", std::process::id()));
        let path = dir.join("nested").join("token");
        let _ = std::fs::remove_dir_all(&dir);
        let (first, origin) = load_or_create_token(&path).unwrap();
        assert_eq!(origin, TokenOrigin::Generated);
        assert_eq!(first.expose().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (second, origin) = load_or_create_token(&path).unwrap();
        assert_eq!(origin, TokenOrigin::Existing);
        assert_eq!(first, second);
        std::fs::write(&path, "  \n").unwrap();
        assert!(matches!(
            load_or_create_token(&path),
            Err(TokenError::Empty(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
