//! The server's command policy: which command lines it lets through to the extension.
//!
//! This module owns the decision — tier flags (`--allow-write`, `--allow-sensitive`,
//! `--allow-all`) and the domain allowlist (`--domains`) applied to what
//! [`shared_protocol::tier`] found in a line — and the audit log ([`audit`]). It must not
//! parse commands itself (the shared grammar is the only parser), run them, or touch
//! the network; only [`audit`] does I/O.
//!
//! Use: split MCP input with [`shared_protocol::grammar::split_lines`] and call
//! [`Policy::check`] for each line right before sending it, passing `initial_url` with the
//! line that carries it. A line that is denied is not sent.

pub mod audit;

use serde::Serialize;
use shared_protocol::grammar::{navigation_url, redact_command, ParseError};
use shared_protocol::tier::{classify_line, Classification, Tier};

use shared_protocol::domains::DomainAllowlist;

/// What the operator allowed on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PolicyConfig {
    /// `--allow-write` (or `--allow-all`): navigate and write tiers.
    pub allow_write: bool,
    /// `--allow-sensitive` (or `--allow-all`): the sensitive tier.
    pub allow_sensitive: bool,
    /// `--domains`: navigation targets must be on these hosts; empty = anywhere.
    pub domains: Vec<String>,
    /// `--granular`: offer one MCP tool per command family besides `domshell_execute`.
    /// Not a permission (every tool's lines pass the same checks); it travels with the rails
    /// so a relay's host gets the tools its operator chose. Left out when off, so owners
    /// that predate it still admit such relays.
    #[serde(default, skip_serializing_if = "is_false")]
    pub granular: bool,
    /// `--upload-dir`: the only directories `upload` reads files from (none: no upload).
    /// Left out when empty, like `granular`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upload_dirs: Vec<std::path::PathBuf>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Stable machine-readable cause of a [`Denial`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenialReason {
    TierDenied,
    DomainDenied,
    ParseError,
    UnknownCommand,
}

impl DenialReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenialReason::TierDenied => "tier_denied",
            DenialReason::DomainDenied => "domain_denied",
            DenialReason::ParseError => "parse_error",
            DenialReason::UnknownCommand => "unknown_command",
        }
    }
}

impl std::fmt::Display for DenialReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A line the server refuses to send, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    pub reason: DenialReason,
    /// Names the command, what it needs and the flag (or fix) that would allow it. The
    /// command is quoted redacted (see `shared_protocol::grammar::redact_command`), so the message may be
    /// logged.
    pub message: String,
    /// Only the remedy, for structured errors: "Start the server with --allow-write …".
    pub hint: String,
    /// Why the command needs what it was refused (from the classifier).
    pub explanation: String,
    /// What the line needs, when it could be parsed (for the audit log's `tier`).
    #[serde(skip)]
    pub classification: Option<Box<Classification>>,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} Why: {}", self.message, self.explanation)
    }
}

impl std::error::Error for Denial {}

impl Denial {
    /// What the denied line needs ([`Classification::tier_label`]), or `unknown` when it
    /// could not be parsed.
    pub fn tier_label(&self) -> &'static str {
        self.classification
            .as_ref()
            .map_or("unknown", |c| c.tier_label())
    }
}

/// Longest command text quoted in a denial message.
const QUOTE_CHARS: usize = 80;

fn quote_command(line: &str) -> String {
    let flat: String = line
        .trim()
        .chars()
        .map(|c| if c == '\n' { '⏎' } else { c })
        .collect();
    if flat.chars().count() <= QUOTE_CHARS {
        flat
    } else {
        let cut: String = flat.chars().take(QUOTE_CHARS - 1).collect();
        format!("{cut}…")
    }
}

/// MCP parameters of a `domshell_execute` call that do what commands do: `initial_url`
/// opens a page and `group_id: "new"` opens a tab. They are checked with the line that
/// carries them to the extension (the first); blank values count as absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallParams<'a> {
    pub initial_url: Option<&'a str>,
    pub group_id: Option<&'a str>,
}

/// The configured policy, ready to check lines.
#[derive(Debug, Clone)]
pub struct Policy {
    config: PolicyConfig,
    allowlist: DomainAllowlist,
}

impl Policy {
    pub fn new(config: PolicyConfig) -> Self {
        let allowlist = DomainAllowlist::new(&config.domains);
        Self { config, allowlist }
    }

    /// The policy for status documents: `{"allow_write", "allow_sensitive", "domains"}`, with
    /// the domains normalised as they are matched (what the extension should enforce on the
    /// pages commands run in).
    /// The normalised allowlist (empty: any domain), sent with every command.
    pub fn domains(&self) -> &[String] {
        self.allowlist.entries()
    }

    /// Whether every command this policy lets through only reads (no write, navigate or
    /// sensitive tier), so clients may treat calls as read-only.
    pub fn reads_only(&self) -> bool {
        !self.config.allow_write && !self.config.allow_sensitive
    }

    /// Whether lines needing `tier` may run under this policy.
    pub fn allows(&self, tier: Tier) -> bool {
        match tier {
            Tier::Read => true,
            Tier::Navigate | Tier::Write => self.config.allow_write,
            Tier::Sensitive => self.config.allow_sensitive,
        }
    }

    /// The directories `upload` may read from.
    pub fn upload_dirs(&self) -> &[std::path::PathBuf] {
        &self.config.upload_dirs
    }

    /// Whether the operator asked for the granular tools.
    pub fn granular(&self) -> bool {
        self.config.granular
    }

    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "allow_write": self.config.allow_write,
            "allow_sensitive": self.config.allow_sensitive,
            "domains": self.allowlist.entries(),
        })
    }

    /// Decides one command line, together with the call parameters that act with it (see
    /// [`CallParams`]; pass them with the first line of a call only).
    pub fn check(&self, line: &str, call: CallParams<'_>) -> Result<Classification, Denial> {
        let redacted = redact_command(line);
        let has_secrets = redacted != line.trim();
        let shown = quote_command(&redacted);
        let mut classification = classify_line(line).map_err(|e| Denial {
            reason: if matches!(e.innermost(), ParseError::UnknownCommand(_)) {
                DenialReason::UnknownCommand
            } else {
                DenialReason::ParseError
            },
            message: format!(
                "`{shown}` was not run: {}.",
                if has_secrets { without_excerpts(e) } else { e }
            ),
            hint: "Fix the command as the message says; `help` lists commands and `<command> --help` shows usage.".into(),
            explanation: "the server checks every command before it runs and cannot check one it cannot parse".into(),
            classification: None,
        })?;
        if let Some(url) = call.initial_url.map(str::trim).filter(|u| !u.is_empty()) {
            classification = classification.with_initial_url(url);
        }
        if let Some(group_id) = call.group_id {
            classification = classification.with_group_id(group_id);
        }
        self.check_tiers(&shown, &classification)?;
        self.check_domains(&shown, &classification)?;
        Ok(classification)
    }

    fn check_tiers(&self, shown: &str, c: &Classification) -> Result<(), Denial> {
        let write_missing = (c.needs_write || c.needs_navigate) && !self.config.allow_write;
        let sensitive_missing = c.needs_sensitive && !self.config.allow_sensitive;
        let (flag, needs, tier) = match (write_missing, sensitive_missing) {
            (false, false) => return Ok(()),
            (true, true) => (
                "--allow-all (or both --allow-write and --allow-sensitive)",
                format!("{} and sensitive", write_tier(c)),
                Tier::Sensitive,
            ),
            (true, false) => ("--allow-write", write_tier(c).to_string(), write_tier(c)),
            (false, true) => (
                "--allow-sensitive",
                "sensitive".to_string(),
                Tier::Sensitive,
            ),
        };
        let hint = format!("Start the server with {flag} to allow it.");
        Err(Denial {
            reason: DenialReason::TierDenied,
            message: format!(
                "`{shown}` was not run: it needs {needs} access, which this server does not allow. {hint}"
            ),
            hint,
            explanation: c.reason_for(tier).map(str::to_string).unwrap_or_else(|| c.explanation()),
            classification: Some(Box::new(c.clone())),
        })
    }

    fn check_domains(&self, shown: &str, c: &Classification) -> Result<(), Denial> {
        if self.allowlist.is_empty() {
            return Ok(());
        }
        let allowed = self.allowlist.entries().join(", ");
        for target in &c.nav_targets {
            if let Err(denied) = self.allowlist.check(target) {
                return Err(Denial {
                    reason: DenialReason::DomainDenied,
                    message: format!(
                        "`{shown}` was not run: navigation target `{target}` is outside the domain allowlist ({allowed}): {}. Restart the server with --domains including it to allow it.",
                        denied.why
                    ),
                    hint: "Navigate only to hosts on the --domains list, or restart the server with a list that includes this one.".into(),
                    explanation: format!(
                        "every navigation target is checked against --domains, and `{target}` opens {}",
                        navigation_url(target)
                    ),
                    classification: Some(Box::new(c.clone())),
                });
            }
        }
        if let Some(why) = c.unchecked_navigation.first() {
            return Err(Denial {
                reason: DenialReason::DomainDenied,
                message: format!(
                    "`{shown}` was not run: it may navigate to a page the server cannot check against the domain allowlist ({allowed}). Run the navigation with an explicit URL instead, or start the server without --domains."
                ),
                hint: "Use open/navigate with an explicit URL, or start the server without --domains.".into(),
                explanation: why.clone(),
                classification: Some(Box::new(c.clone())),
            });
        }
        Ok(())
    }
}

/// The error without quoted input, for lines that contain secrets.
fn without_excerpts(error: ParseError) -> ParseError {
    match error {
        ParseError::UnterminatedQuote { quote, column, .. } => ParseError::UnterminatedQuote {
            quote,
            column,
            near: "…".into(),
        },
        ParseError::Inside { context, inner } => ParseError::Inside {
            context,
            inner: Box::new(without_excerpts(*inner)),
        },
        other => other,
    }
}

fn write_tier(c: &Classification) -> Tier {
    if c.needs_write {
        Tier::Write
    } else {
        Tier::Navigate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow_write: bool, allow_sensitive: bool, domains: &[&str]) -> Policy {
        Policy::new(PolicyConfig {
            allow_write,
            allow_sensitive,
            domains: domains.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        })
    }

    fn reason(p: &Policy, line: &str) -> Option<&'static str> {
        p.check(line, CallParams::default())
            .err()
            .map(|d| d.reason.as_str())
    }

    #[test]
    fn read_only_server() {
        let p = policy(false, false, &[]);
        for line in [
            "ls",
            "tabs | grep x",
            "each ls",
            "for tabs : text {}",
            "click --help",
        ] {
            assert_eq!(reason(&p, line), None, "{line}");
        }
        for line in [
            "click x",
            "open x.com",
            "back",
            "submit q hello",
            "for tabs : click {}",
            "each click x",
            "watch \"click btn\"",
            "script run foo",
            "!3",
            "group new --url https://x",
            "group close",
            "connect tok --port 1",
            "disconnect",
            "js document.cookie",
            "whoami",
        ] {
            assert_eq!(reason(&p, line), Some("tier_denied"), "{line}");
        }
        assert_eq!(reason(&p, "ls | sort"), Some("parse_error"));
    }

    #[test]
    fn tier_messages_name_the_flag() {
        let p = policy(false, false, &[]);
        let d = p
            .check("for tabs : click {}", CallParams::default())
            .unwrap_err();
        assert_eq!(
            d.message,
            "`for tabs : click {}` was not run: it needs write access, which this server does not allow. Start the server with --allow-write to allow it."
        );
        assert_eq!(
            d.explanation,
            "`click` clicks in the page (inside `for tabs : click {}`)"
        );
        let d = p.check("back", CallParams::default()).unwrap_err();
        assert!(d.message.contains("needs navigate access") && d.message.contains("--allow-write"));
        let d = p
            .check("js document.cookie", CallParams::default())
            .unwrap_err();
        assert!(d.message.contains("write and sensitive") && d.message.contains("--allow-all"));
        assert!(d.explanation.contains("cookies"));
        let d = policy(true, false, &[])
            .check("js document.cookie", CallParams::default())
            .unwrap_err();
        assert!(
            d.message.contains("needs sensitive access") && d.message.contains("--allow-sensitive")
        );
        let d = policy(false, true, &[])
            .check("whoami", CallParams::default())
            .err();
        assert!(d.is_none());
        let d = policy(false, false, &[])
            .check("script run foo", CallParams::default())
            .unwrap_err();
        assert!(d.explanation.contains("cannot inspect"));
        assert!(d.to_string().contains(" Why: "));
    }

    #[test]
    fn write_server() {
        let p = policy(true, false, &[]);
        for line in ["click x", "open x.com", "for tabs : each click {}"] {
            assert_eq!(reason(&p, line), None, "{line}");
        }
        for line in [
            // Replays of content the server cannot see need every tier.
            "script run foo",
            "!3",
            "whoami",
            "eval 1",
            "call fn",
            "each js 1",
            "open javascript:alert(1)",
        ] {
            assert_eq!(reason(&p, line), Some("tier_denied"), "{line}");
        }
        assert!(policy(true, true, &[])
            .check("js 1", CallParams::default())
            .is_ok());
        assert!(policy(true, true, &[])
            .check("whoami", CallParams::default())
            .is_ok());
    }

    fn url(initial_url: &str) -> CallParams<'_> {
        CallParams {
            initial_url: Some(initial_url),
            group_id: None,
        }
    }

    /// One row of `tests/policy-cases.tsv`, the shared table of lines and verdicts: a new
    /// bypass is one line to add there.
    struct Case {
        row: usize,
        flags: String,
        domains: Vec<String>,
        initial_url: Option<String>,
        group_id: Option<String>,
        expected: String,
        line: String,
    }

    /// `\n`, `\t` and `\\` in a cell stand for a newline, a tab and a backslash.
    fn unescape(cell: &str) -> String {
        let mut out = String::new();
        let mut chars = cell.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        }
        out
    }

    fn cases() -> Vec<Case> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/policy-cases.tsv");
        let text = std::fs::read_to_string(path).expect("tests/policy-cases.tsv is readable");
        let mut out = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() || raw.starts_with('#') {
                continue;
            }
            let cells: Vec<&str> = raw.splitn(5, '\t').collect();
            assert_eq!(
                cells.len(),
                5,
                "row {}: five tab-separated cells",
                index + 1
            );
            let mut case = Case {
                row: index + 1,
                flags: cells[0].to_string(),
                domains: match cells[1] {
                    "-" => Vec::new(),
                    list => list.split(',').map(str::to_string).collect(),
                },
                initial_url: None,
                group_id: None,
                expected: cells[3].to_string(),
                line: unescape(cells[4]),
            };
            for param in cells[2].split(',').filter(|p| *p != "-") {
                match param.split_once('=') {
                    Some(("initial_url", v)) => case.initial_url = Some(unescape(v)),
                    Some(("group_id", v)) => case.group_id = Some(unescape(v)),
                    _ => panic!("row {}: unknown parameter {param}", case.row),
                }
            }
            out.push(case);
        }
        out
    }

    #[test]
    fn policy_cases_file() {
        let cases = cases();
        assert!(cases.len() >= 40, "only {} cases", cases.len());
        for case in &cases {
            let (allow_write, allow_sensitive) = match case.flags.as_str() {
                "-" => (false, false),
                "write" => (true, false),
                "sensitive" => (false, true),
                "all" => (true, true),
                other => panic!("row {}: unknown flags {other}", case.row),
            };
            let domains: Vec<&str> = case.domains.iter().map(String::as_str).collect();
            let p = policy(allow_write, allow_sensitive, &domains);
            let call = CallParams {
                initial_url: case.initial_url.as_deref(),
                group_id: case.group_id.as_deref(),
            };
            let verdict = match p.check(&case.line, call) {
                Ok(c) => format!("allow:{}", c.tier_label()),
                Err(d) => format!("deny:{}", d.reason),
            };
            assert_eq!(
                verdict, case.expected,
                "tests/policy-cases.tsv row {}: `{}` with flags {}",
                case.row, case.line, case.flags
            );
        }
    }

    #[test]
    fn initial_url_needs_navigate_and_is_domain_checked() {
        let p = policy(false, false, &[]);
        let d = p.check("ls", url("https://x.org")).unwrap_err();
        assert_eq!(d.reason, DenialReason::TierDenied);
        assert!(d.explanation.contains("initial_url"));
        assert!(p.check("ls", url("  ")).is_ok());
        let p = policy(true, false, &["x.org"]);
        assert!(p.check("ls", url("https://www.x.org/a")).is_ok());
        let d = p.check("ls", url("https://evil.com")).unwrap_err();
        assert_eq!(d.reason, DenialReason::DomainDenied);
        assert!(d.message.contains("evil.com") && d.message.contains("x.org"));
    }

    #[test]
    fn navigation_targets_are_checked() {
        let p = policy(true, false, &["example.com"]);
        for line in [
            "open example.com",
            "navigate https://www.example.com/a",
            "group new --url https://example.com",
            "each open example.com",
            "open about:blank",
            "click x",
            "back",
            "ls",
        ] {
            assert_eq!(reason(&p, line), None, "{line}");
        }
        for line in [
            "open evil.com",
            "goto https://example.com.evil.com",
            "group new x --url=https://evil.com",
            "each --limit 1 open evil.com",
            "watch \"navigate https://evil.com\"",
            "script save s open evil.com",
        ] {
            assert_eq!(reason(&p, line), Some("domain_denied"), "{line}");
        }
        // Replays and run-time targets need every tier; with all of them, their unknown
        // targets still fail the list.
        assert_eq!(reason(&p, "for tabs : open {}"), Some("tier_denied"));
        let all = policy(true, true, &["example.com"]);
        for line in [
            "script run x",
            "!4",
            "for tabs : open {}",
            "connect t --port 1",
            "open data:text/html,hi",
        ] {
            assert_eq!(reason(&all, line), Some("domain_denied"), "{line}");
        }
        let d = all
            .check("for tabs : open {}", CallParams::default())
            .unwrap_err();
        assert!(
            d.explanation.contains("source's output"),
            "{}",
            d.explanation
        );
    }

    #[test]
    fn tier_denial_comes_before_domain_denial() {
        let p = policy(false, false, &["example.com"]);
        assert_eq!(reason(&p, "open evil.com"), Some("tier_denied"));
    }

    #[test]
    fn parse_errors_are_explained() {
        let d = policy(true, true, &[])
            .check("type \"unfinished", CallParams::default())
            .unwrap_err();
        assert_eq!(d.reason, DenialReason::ParseError);
        assert!(
            d.message.contains("unterminated \" quote at column 6"),
            "{}",
            d.message
        );
        assert!(d.classification.is_none());
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["reason"], "parse_error");
        assert!(json.get("classification").is_none());
    }

    #[test]
    fn denial_labels_and_hints() {
        let p = policy(false, false, &["example.com"]);
        let d = p.check("for ls : js 1", CallParams::default()).unwrap_err();
        assert_eq!(d.tier_label(), "write+sensitive");
        assert_eq!(d.reason.to_string(), "tier_denied");
        assert!(d.hint.contains("--allow-all"));
        let d = p.check("ls |", CallParams::default()).unwrap_err();
        assert_eq!(d.tier_label(), "unknown");
        assert!(!d.hint.is_empty());
        assert_eq!(
            p.describe(),
            serde_json::json!({"allow_write": false, "allow_sensitive": false, "domains": ["example.com"]})
        );
        assert_eq!(
            policy(true, false, &[])
                .check("click x", CallParams::default())
                .unwrap()
                .tier_label(),
            "write"
        );
    }

    #[test]
    fn denials_never_quote_secrets() {
        let p = policy(false, false, &[]);
        for line in [
            "type hunter2",
            "submit pw_input hunter2",
            "for ls : type hunter2",
            "type \"hunter2",
            "for ls : type 'hunter2",
            "connect hunter2 --port 1",
        ] {
            let d = p.check(line, CallParams::default()).unwrap_err();
            assert!(!d.message.contains("hunter2"), "{line}: {}", d.message);
            assert!(
                !d.explanation.contains("hunter2"),
                "{line}: {}",
                d.explanation
            );
        }
        let d = p
            .check("type \"hunter2", CallParams::default())
            .unwrap_err();
        assert!(d.message.contains("column 6 (near `…`)"), "{}", d.message);
        // An unparsable line may hide a secret anywhere: only its plain first word is shown.
        let d = p
            .check("t\\ype \"hunter2", CallParams::default())
            .unwrap_err();
        assert!(!d.message.contains("hunter2"), "{}", d.message);
        let d = p.check("ls \"abc", CallParams::default()).unwrap_err();
        assert!(d.message.starts_with("`ls «redacted"), "{}", d.message);
    }

    #[test]
    fn long_commands_are_shortened_in_messages() {
        let line = format!("click {}", "x".repeat(500));
        let d = policy(false, false, &[])
            .check(&line, CallParams::default())
            .unwrap_err();
        assert!(d.message.chars().count() < 250, "{}", d.message);
    }
}
