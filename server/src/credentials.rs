//! The server's three secrets, one per door, and where each one comes from.
//!
//! | secret | who holds it | what it lets its holder do | default file |
//! | --- | --- | --- | --- |
//! | bridge token | the extension (pasted into its options) | be the extension to the server, or the server to the extension | `$XDG_CONFIG_HOME/domshell/token` |
//! | MCP token | HTTP MCP clients, ToolHive, containers | run tools on `/mcp` with the owner's rails | `…/mcp-token` |
//! | relay key | this user's own stdio servers (never printed) | attach as a relay and carry its host's own rails | `…/relay-key` |
//!
//! Each is generated on first use (256 random bits, mode 0600) unless given by flag or
//! environment; a file that group or others can read is refused. They are independent, so
//! each is rotated alone: delete its file (or change the flag) and restart the servers; for
//! the bridge token, paste the new `domshell token` into the extension, for the MCP token,
//! give HTTP clients the new `domshell token mcp`. The relay key needs nothing else: every
//! stdio server of the user reads the same file at its next attach.
//!
//! It owns resolution and the rules that tie the secrets together (all strong, the bridge
//! token and the MCP token distinct). It must not log a secret or decide who may use one.

use std::path::{Path, PathBuf};

use shared_protocol::frame::Secret;

use crate::auth::{self, TokenError, TokenOrigin};

/// Which secret, with its file name and how it is described to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    Bridge,
    Mcp,
    Relay,
}

impl SecretKind {
    pub fn file_name(self) -> &'static str {
        match self {
            SecretKind::Bridge => "token",
            SecretKind::Mcp => "mcp-token",
            SecretKind::Relay => "relay-key",
        }
    }

    fn what(self) -> &'static str {
        match self {
            SecretKind::Bridge => "extension token",
            SecretKind::Mcp => "MCP token",
            SecretKind::Relay => "relay key",
        }
    }

    /// What a person does with a freshly generated secret (printed to stderr once).
    fn next_step(self) -> Option<&'static str> {
        match self {
            SecretKind::Bridge => Some(
                "run `domshell token` to print it, then paste it in the extension's options\n\
                 domshell: (chrome://extensions → domshell → Details → Extension options)",
            ),
            SecretKind::Mcp => Some(
                "HTTP MCP clients send it as `Authorization: Bearer <token>`; `domshell token mcp` prints it",
            ),
            // Only this user's own servers read it; there is nothing to do.
            SecretKind::Relay => None,
        }
    }
}

/// Where a secret lives unless a flag says otherwise: `$XDG_CONFIG_HOME/domshell/<file>`.
pub fn default_path(kind: SecretKind) -> Result<PathBuf, TokenError> {
    Ok(auth::default_token_path()?.with_file_name(kind.file_name()))
}

/// The secret from its flag/environment value, or from its file (generated on first use).
/// Returns the file it came from, if any. Never prints the secret: stderr is the MCP host's
/// (or the container's) log.
pub fn resolve(
    kind: SecretKind,
    flag: Option<&Secret>,
    file: Option<&Path>,
) -> anyhow::Result<(Secret, Option<PathBuf>)> {
    if let Some(value) = flag.map(|t| t.expose().trim()).filter(|t| !t.is_empty()) {
        return Ok((Secret(value.to_string()), None));
    }
    let path = match file {
        Some(p) => p.to_path_buf(),
        None => default_path(kind)?,
    };
    let (secret, origin) = auth::load_or_create_token(&path)?;
    if origin == TokenOrigin::Generated {
        let mut message = format!(
            "domshell: generated a new {} and saved it (mode 0600) to {}",
            kind.what(),
            path.display()
        );
        if let Some(step) = kind.next_step() {
            message.push_str("\ndomshell: ");
            message.push_str(step);
        }
        eprintln!("{message}");
    }
    Ok((secret, Some(path)))
}

/// Refuse an MCP token equal to the bridge token: handing it to an HTTP client or a
/// container would then also let that client be the extension.
pub fn ensure_distinct(bridge: &Secret, mcp: &Secret) -> anyhow::Result<()> {
    anyhow::ensure!(
        !auth::tokens_match(bridge, mcp.expose()),
        "the MCP token (--mcp-token / DOMSHELL_MCP_TOKEN / mcp-token file) equals the extension token; \
         they guard different doors and must differ: leave the MCP token unset to have one generated, \
         or choose another (e.g. `openssl rand -hex 32`)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_secret_has_its_own_file_next_to_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = [SecretKind::Bridge, SecretKind::Mcp, SecretKind::Relay]
            .into_iter()
            .map(|kind| {
                let path = dir.path().join(kind.file_name());
                let (secret, from) = resolve(kind, None, Some(&path)).unwrap();
                assert_eq!(from.as_deref(), Some(path.as_path()));
                assert_eq!(secret.expose().len(), 64);
                path
            })
            .collect();
        let texts: std::collections::HashSet<String> = files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        assert_eq!(texts.len(), 3, "three independent secrets");
    }

    #[test]
    fn a_flag_wins_over_the_file_and_blank_means_unset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp-token");
        let given = Secret("0123456789abcdef0123456789abcdef".into());
        let (secret, from) = resolve(SecretKind::Mcp, Some(&given), Some(&path)).unwrap();
        assert_eq!(secret, given);
        assert_eq!(from, None);
        assert!(!path.exists());
        let (_, from) = resolve(SecretKind::Mcp, Some(&Secret("  ".into())), Some(&path)).unwrap();
        assert_eq!(from.as_deref(), Some(path.as_path()));
    }

    #[test]
    fn the_mcp_token_may_not_be_the_extension_token() {
        let a = Secret("0123456789abcdef0123456789abcdef".into());
        let b = Secret("fedcba9876543210fedcba9876543210".into());
        assert!(ensure_distinct(&a, &b).is_ok());
        let err = ensure_distinct(&a, &a.clone()).unwrap_err().to_string();
        assert!(err.contains("must differ"), "{err}");
        assert!(
            !err.contains(a.expose()),
            "the secret is not in the message"
        );
    }
}
