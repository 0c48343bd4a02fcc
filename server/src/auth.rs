//! Who may open the bridge: the `Origin` check, the constant-time token comparison, a
//! throttle on failed attempts, and the persisted token.
//!
//! It must not log a token, and it must not decide anything about frames beyond `HELLO`.

use std::io::Write;
use std::path::{Path, PathBuf};

use shared_protocol::extension_origin;

/// Compare two tokens in time that depends only on their lengths, so that a web page probing
/// the port cannot learn a prefix of the token by timing.
pub fn tokens_match(expected: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
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

/// Counts failed authentications in a sliding window and refuses further attempts for a
/// while once the limit is hit. Sans-IO: the caller passes `now_ms`.
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

/// Read the persisted token, or generate one and persist it with mode 0600 so that the token
/// saved in the extension survives server restarts.
pub fn load_or_create_token(path: &Path) -> Result<(String, TokenOrigin), TokenError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim().to_string();
            if token.is_empty() {
                return Err(TokenError::Empty(path.to_path_buf()));
            }
            Ok((token, TokenOrigin::Existing))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = random_hex(32)?;
            write_private(path, &token).map_err(|source| TokenError::Write {
                path: path.to_path_buf(),
                source,
            })?;
            Ok((token, TokenOrigin::Generated))
        }
        Err(source) => Err(TokenError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
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
    fn token_is_generated_once_with_private_mode_and_then_reused() {
        let dir = std::env::temp_dir().join(format!("domshell-token-test-{}", std::process::id()));
        let path = dir.join("nested").join("token");
        let _ = std::fs::remove_dir_all(&dir);
        let (first, origin) = load_or_create_token(&path).unwrap();
        assert_eq!(origin, TokenOrigin::Generated);
        assert_eq!(first.len(), 64);
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
