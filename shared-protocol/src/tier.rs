//! Security tiers: what a command line is able to do, decided on the parsed structure from
//! [`crate::grammar`] rather than on its first word.
//!
//! This module owns the mapping from commands to the capabilities they need (navigate,
//! write, sensitive), the navigation targets a domain allowlist must see, and the human
//! explanation of why. It must not decide whether a capability is granted (that is the
//! server's policy) and must not look at the page, the network or a clock.
//!
//! Rules, strictest wins, everything nested counts:
//!
//! * navigate: `open`, `navigate`, `goto`, `back`, `forward`, `group new` (a new tab).
//!   The URLs of `open`/`navigate`/`goto`/`group new --url` and the MCP `initial_url`
//!   ([`Classification::with_initial_url`]) are collected as [`Classification::nav_targets`].
//! * write: `click focus type key scroll select close submit connect disconnect`,
//!   `group close`.
//! * everything (navigate + write + sensitive): `script run` and `!N`, whose content the
//!   server cannot see (a stored `js` line must not run with less than `js` itself
//!   needs); `connect`, which hands the browser to another server; and a navigation whose
//!   target is only known at run time (`for … : open {}`), because it could turn out to be
//!   a `javascript:` URL.
//! * write + sensitive: `js`, `eval`, `call` (arbitrary JavaScript reads cookies and
//!   storage) and navigation to a `javascript:` URL.
//! * sensitive: `whoami`, and navigation to anything but `http(s)` and `about:blank`
//!   (`file:` reads local files, `data:` and `view-source:` render content of the agent's
//!   choosing with the browser's privileges).
//! * `for`, `each`, `watch`, `script save`: the union of their inner commands. Pipe
//!   consumers only filter text and add nothing. `<cmd> --help` only prints help — except
//!   in a `for` template with `{}`: substitution can turn `--help` into part of another
//!   word (an item ending in a backslash, holding a quote or ` -- `), so such a command is
//!   classified as the command it would run.
//! * everything else: read. Each command's rule is its row of the command table
//!   ([`crate::commands`]); a word that names no command is refused
//!   ([`ParseError::UnknownCommand`]), never taken for a harmless one.
//!
//! `for` templates are classified with `{}` as a literal word. Because the extension
//! replaces `{}` as plain text ([`crate::grammar::ForLoop::substitute`]), a placeholder can
//! change a command only where the command's meaning depends on its words. Those cases get
//! every capability (placeholder in the command name, in `group`, `script`, `for`, in the
//! flags of `each`/`watch` or in a quoted inner command) or an unknown navigation target
//! (placeholder anywhere in `open`/`navigate`/`goto`).
//!
//! Explanations quote commands through [`crate::grammar::redact_command`], so they can be
//! logged and shown without leaking typed text.

use serde::Serialize;

use crate::commands::TierRule;
use crate::grammar::{
    navigation_url, next_token, parse_line, redact_command, split_lines, Command, Line, Nested,
    ParseError, Script, MAX_NESTING,
};

/// How much a command may do, weakest first. A classification's tier is the strictest of
/// its requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Read,
    Navigate,
    Write,
    Sensitive,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Read => "read",
            Tier::Navigate => "navigate",
            Tier::Write => "write",
            Tier::Sensitive => "sensitive",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one capability is needed, e.g. `click` "clicks in the page (inside `for …`)".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub tier: Tier,
    pub why: String,
}

/// What a command line (or several) needs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Classification {
    pub needs_navigate: bool,
    pub needs_write: bool,
    pub needs_sensitive: bool,
    /// Navigation targets as written (apply [`navigation_url`] before checking a host).
    pub nav_targets: Vec<String>,
    /// Navigations whose target cannot be known before running, with why. A domain
    /// allowlist cannot vouch for these.
    pub unchecked_navigation: Vec<String>,
    /// Why each capability is needed, in the order found, without duplicates.
    pub reasons: Vec<Reason>,
}

/// The MCP `group_id` value that creates a lane.
pub const NEW_LANE: &str = "new";

/// The lower-cased scheme of a URL as [`navigation_url`] returns it (always has one).
fn url_scheme(url: &str) -> String {
    url.split_once(':')
        .map(|(scheme, _)| scheme.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Reasons kept per classification; enough to explain, bounded for huge inputs.
const MAX_REASONS: usize = 32;
/// Longest command text quoted inside an explanation.
const QUOTE_CHARS: usize = 60;

impl Classification {
    /// The strictest requirement.
    pub fn tier(&self) -> Tier {
        if self.needs_sensitive {
            Tier::Sensitive
        } else if self.needs_write {
            Tier::Write
        } else if self.needs_navigate {
            Tier::Navigate
        } else {
            Tier::Read
        }
    }

    /// Whether `tier` is among the requirements (`Read` always is).
    pub fn requires(&self, tier: Tier) -> bool {
        match tier {
            Tier::Read => true,
            Tier::Navigate => self.needs_navigate,
            Tier::Write => self.needs_write,
            Tier::Sensitive => self.needs_sensitive,
        }
    }

    /// All requirements joined with `+`, e.g. `write+sensitive`, or `read`: what the audit
    /// log records as the line's tier.
    pub fn tier_label(&self) -> &'static str {
        match (self.needs_navigate, self.needs_write, self.needs_sensitive) {
            (false, false, false) => "read",
            (true, false, false) => "navigate",
            (false, true, false) => "write",
            (true, true, false) => "navigate+write",
            (false, false, true) => "sensitive",
            (true, false, true) => "navigate+sensitive",
            (false, true, true) => "write+sensitive",
            (true, true, true) => "navigate+write+sensitive",
        }
    }

    /// The first reason found for `tier`.
    pub fn reason_for(&self, tier: Tier) -> Option<&str> {
        self.reasons
            .iter()
            .find(|r| r.tier == tier)
            .map(|r| r.why.as_str())
    }

    /// Why the strictest requirement applies.
    pub fn explanation(&self) -> String {
        self.reason_for(self.tier())
            .map(str::to_string)
            .unwrap_or_else(|| "it only reads".to_string())
    }

    /// Adds the MCP `initial_url` parameter: opening it is a navigation to that target.
    pub fn with_initial_url(mut self, url: &str) -> Self {
        self.navigation_to(url, "`initial_url` opens", &Context::default());
        self
    }

    /// Adds the MCP `group_id` parameter: `"new"` creates a lane, which opens a tab
    /// exactly as `group new` does.
    pub fn with_group_id(mut self, group_id: &str) -> Self {
        if group_id == NEW_LANE {
            self.need(
                Tier::Navigate,
                "`group_id: \"new\"` opens a new tab (like `group new`)".to_string(),
            );
        }
        self
    }

    /// Adds another line's requirements.
    pub fn merge(&mut self, other: Classification) {
        self.needs_navigate |= other.needs_navigate;
        self.needs_write |= other.needs_write;
        self.needs_sensitive |= other.needs_sensitive;
        for target in other.nav_targets {
            if !self.nav_targets.contains(&target) {
                self.nav_targets.push(target);
            }
        }
        for why in other.unchecked_navigation {
            self.unchecked(why);
        }
        for reason in other.reasons {
            self.need(reason.tier, reason.why);
        }
    }

    fn need(&mut self, tier: Tier, why: String) {
        match tier {
            Tier::Read => return,
            Tier::Navigate => self.needs_navigate = true,
            Tier::Write => self.needs_write = true,
            Tier::Sensitive => self.needs_sensitive = true,
        }
        let present = self.reasons.iter().any(|r| r.tier == tier && r.why == why);
        if !present && self.reasons.len() < MAX_REASONS {
            self.reasons.push(Reason { tier, why });
        }
    }

    fn unchecked(&mut self, why: String) {
        if !self.unchecked_navigation.contains(&why)
            && self.unchecked_navigation.len() < MAX_REASONS
        {
            self.unchecked_navigation.push(why);
        }
    }

    fn navigation_to(&mut self, target: &str, what: &str, ctx: &Context) {
        let url = navigation_url(target);
        self.need(
            Tier::Navigate,
            ctx.wrap(&format!("{what} {}", shorten(&url))),
        );
        match url_scheme(&url).as_str() {
            "http" | "https" => {}
            _ if url.eq_ignore_ascii_case("about:blank") => {}
            "javascript" => {
                let why = ctx.wrap(&format!(
                    "{what} a javascript: URL, which runs arbitrary JavaScript in the page"
                ));
                self.need(Tier::Write, why.clone());
                self.need(Tier::Sensitive, why);
            }
            scheme => self.need(
                Tier::Sensitive,
                ctx.wrap(&format!(
                    "{what} a {scheme}: URL; only http(s) and about:blank are ordinary pages (file: reads local files, data: and view-source: show content of the agent's choosing)"
                )),
            ),
        }
        if !self.nav_targets.iter().any(|t| t == target) {
            self.nav_targets.push(target.to_string());
        }
    }

    /// Everything: used where the server cannot know what will run.
    fn anything(&mut self, why: String) {
        self.need(Tier::Navigate, why.clone());
        self.need(Tier::Write, why.clone());
        self.need(Tier::Sensitive, why.clone());
        self.unchecked(why);
    }
}

/// Classifies MCP input: every line (see [`split_lines`]), merged. The server should
/// rather check each line with [`classify_line`] before sending it.
pub fn classify(text: &str) -> Result<Classification, ParseError> {
    let mut all = Classification::default();
    for line in split_lines(text) {
        all.merge(classify_line(&line)?);
    }
    Ok(all)
}

/// Classifies one command line.
pub fn classify_line(line: &str) -> Result<Classification, ParseError> {
    classify_parsed(&parse_line(line)?)
}

/// Classifies an already parsed line.
pub fn classify_parsed(line: &Line) -> Result<Classification, ParseError> {
    let mut out = Classification::default();
    walk_line(&mut out, line, &Context::default(), 0)?;
    Ok(out)
}

/// Where in the nesting a command sits.
#[derive(Debug, Clone, Default)]
struct Context {
    /// Enclosing commands, innermost last, already shortened for quoting.
    trail: Vec<String>,
    /// Inside a `for` template: `{}` will be replaced by unseen text.
    placeholder: bool,
}

impl Context {
    fn wrap(&self, why: &str) -> String {
        if self.trail.is_empty() {
            return why.to_string();
        }
        let inside: Vec<String> = self.trail.iter().rev().map(|t| format!("`{t}`")).collect();
        format!("{why} (inside {})", inside.join(", inside "))
    }

    fn enter(&self, command: &Command, placeholder: bool) -> Context {
        let mut trail = self.trail.clone();
        trail.push(quote(&command.raw));
        Context {
            trail,
            placeholder: self.placeholder || placeholder,
        }
    }
}

/// Command text for an explanation: redacted, so explanations can be logged, and short.
fn quote(command: &str) -> String {
    shorten(&redact_command(command))
}

fn shorten(text: &str) -> String {
    let flat: String = text
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

fn walk_line(
    out: &mut Classification,
    line: &Line,
    ctx: &Context,
    depth: usize,
) -> Result<(), ParseError> {
    if depth > MAX_NESTING {
        return Err(ParseError::TooDeep { max: MAX_NESTING });
    }
    match line {
        Line::HistoryReplay(n) => {
            out.anything(ctx.wrap(&format!(
                "`!{n}` replays a history entry whose content the server cannot inspect"
            )));
            Ok(())
        }
        // Pipe consumers only filter the command's output.
        Line::Pipeline(pipeline) => walk_command(out, &pipeline.command, ctx, depth),
    }
}

fn walk_command(
    out: &mut Classification,
    cmd: &Command,
    ctx: &Context,
    depth: usize,
) -> Result<(), ParseError> {
    let has_placeholder = ctx.placeholder && cmd.raw.contains("{}");
    if has_placeholder && name_has_placeholder(cmd)? {
        out.anything(ctx.wrap(&format!(
            "the `for` template `{}` takes its command name from the source's output, which the server cannot see",
            quote(&cmd.raw)
        )));
        return Ok(());
    }
    let name = cmd.name.as_str();
    // Not a command: refused, never taken for a harmless one.
    let Some(def) = crate::commands::find(name) else {
        return Err(ParseError::UnknownCommand(name.to_string()));
    };
    // `{}` may turn `--help` into part of another word once substituted: only a command
    // whose words are all known now may take the help shortcut.
    if cmd.wants_help() && !has_placeholder {
        return Ok(());
    }
    match def.tier {
        TierRule::Read => {}
        TierRule::Needs(tier, what) => out.need(tier, ctx.wrap(&format!("`{name}` {what}"))),
        TierRule::JavaScript(what) => {
            out.need(
                Tier::Write,
                ctx.wrap(&format!(
                    "`{name}` {what}, which can click, type and navigate"
                )),
            );
            out.need(
                Tier::Sensitive,
                ctx.wrap(&format!(
                    "`{name}` {what}, which can read cookies and storage"
                )),
            );
        }
        TierRule::ByArguments => by_arguments(out, cmd, ctx, depth, has_placeholder)?,
    }
    Ok(())
}

/// The needs of the commands whose row says [`TierRule::ByArguments`].
fn by_arguments(
    out: &mut Classification,
    cmd: &Command,
    ctx: &Context,
    depth: usize,
    has_placeholder: bool,
) -> Result<(), ParseError> {
    let name = cmd.name.as_str();
    let write = |out: &mut Classification, what: &str| {
        out.need(Tier::Write, ctx.wrap(&format!("`{name}` {what}")));
    };
    match name {
        "open" | "navigate" | "goto" => {
            let what = if name == "open" {
                format!("`{name}` opens a new tab at")
            } else {
                format!("`{name}` loads")
            };
            if has_placeholder {
                // The item could be `javascript:…` or `file:…`: the target needs what the
                // worst target needs, and no allowlist can vouch for it.
                out.anything(ctx.wrap(&format!(
                    "the `for` template `{}` navigates to a URL built from the source's output, which could be a javascript: or file: URL",
                    quote(&cmd.raw)
                )));
            } else if let Some(target) = cmd.navigation_target()? {
                out.navigation_to(&target, &what, ctx);
            }
        }
        "group" => {
            if has_placeholder {
                out.anything(placeholder_structure(cmd, ctx));
                return Ok(());
            }
            let args = cmd.parse_args()?;
            let sub = args
                .positional
                .first()
                .map(|s| s.to_ascii_lowercase())
                .unwrap_or_default();
            match sub.as_str() {
                "new" => match cmd.navigation_target()? {
                    Some(target) => {
                        out.navigation_to(&target, "`group new --url` opens a new tab at", ctx)
                    }
                    None => out.need(Tier::Navigate, ctx.wrap("`group new` opens a new tab")),
                },
                "close" => write(out, "closes every tab of the lane"),
                _ => {}
            }
        }
        // Showing the open dialog only reads; answering it lets the page run on (or leave).
        // Reads local files (sensitive) and puts them in the page (write).
        "upload" => {
            write(out, "puts files into the page's file input");
            out.need(
                Tier::Sensitive,
                ctx.wrap("`upload` reads local files and hands them to the page"),
            );
        }
        // A response body can hold credentials and personal data; the list shows none.
        "network" if has_placeholder || cmd.args.iter().any(|a| a.eq_ignore_ascii_case("body")) => {
            out.need(
                Tier::Sensitive,
                ctx.wrap("`network body` shows a response body, which can hold credentials"),
            )
        }
        "dialog" if has_placeholder || !cmd.args.is_empty() => {
            write(out, "answers the page's JavaScript dialog")
        }
        "connect" => out.anything(ctx.wrap(
            "`connect` re-points the extension's bridge to another server, which could then run anything without this server's policy",
        )),
        "for" | "each" | "watch" | "script" => walk_nested(out, cmd, ctx, depth, has_placeholder)?,
        _ => {}
    }
    Ok(())
}

/// The command name itself (first word as written) contains `{}`.
fn name_has_placeholder(cmd: &Command) -> Result<bool, ParseError> {
    Ok(match next_token(&cmd.raw, 0)? {
        Some(first) => cmd.raw[first.start..first.end].contains("{}"),
        None => false,
    })
}

fn placeholder_structure(cmd: &Command, ctx: &Context) -> String {
    ctx.wrap(&format!(
        "the `for` template `{}` puts the source's output where it changes what `{}` does, which the server cannot see",
        quote(&cmd.raw),
        cmd.name
    ))
}

fn walk_nested(
    out: &mut Classification,
    cmd: &Command,
    ctx: &Context,
    depth: usize,
    has_placeholder: bool,
) -> Result<(), ParseError> {
    let Some(form) = cmd.nested_form()? else {
        return Ok(());
    };
    let rest = cmd.rest();
    let placeholder_is_unsafe = has_placeholder
        && match &form {
            Nested::For(_) | Nested::Script(_) => true,
            Nested::Each(e) => {
                (e.command_was_quoted && e.command.contains("{}"))
                    || rest.matches("{}").count() != e.command.matches("{}").count()
            }
            Nested::Watch(w) => {
                (w.command_was_quoted && w.command.contains("{}"))
                    || rest.matches("{}").count() != w.command.matches("{}").count()
            }
        };
    if placeholder_is_unsafe {
        out.anything(placeholder_structure(cmd, ctx));
        return Ok(());
    }
    if let Nested::Script(Script::Run { .. }) = form {
        out.anything(
            ctx.wrap("`script run` replays stored commands that the server cannot inspect"),
        );
        return Ok(());
    }
    let children = cmd.nested()?;
    for (i, child) in children.iter().enumerate() {
        let is_template = matches!(form, Nested::For(_)) && i == 1;
        walk_line(out, child, &ctx.enter(cmd, is_template), depth + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_command(text: &str) -> Command {
        match parse_line(text) {
            Ok(Line::Pipeline(p)) => p.command,
            other => panic!("{text}: {other:?}"),
        }
    }

    /// Expected requirement: "read", "navigate", "write", "write+sensitive", …
    fn label(text: &str) -> &'static str {
        classify(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .tier_label()
    }

    #[test]
    fn bypass_table() {
        // Every first-word bypass of spec §2.2 and bugs 28–34, with what it really needs.
        let table: &[(&str, &str)] = &[
            ("submit q hello", "write"),
            ("for tabs : click {}", "write"),
            ("each click x", "write"),
            ("each --pattern wiki --limit 3 click x", "write"),
            ("watch \"click btn\"", "write"),
            ("watch click btn --times 3", "write"),
            ("script run foo", "navigate+write+sensitive"),
            ("script run foo a b", "navigate+write+sensitive"),
            ("!3", "navigate+write+sensitive"),
            ("group new --url https://x", "navigate"),
            ("group new", "navigate"),
            ("group new research --url=https://x", "navigate"),
            ("group close", "write"),
            ("connect tok --port 1", "navigate+write+sensitive"),
            ("connect tok --help", "read"),
            ("open --url evil.example", "navigate"),
            ("open file:///etc/passwd", "navigate+sensitive"),
            ("open view-source:file:///etc/passwd", "navigate+sensitive"),
            (
                "open data:text/html,<script>alert(1)</script>",
                "navigate+sensitive",
            ),
            ("navigate about:blank", "navigate"),
            ("goto About:Blank", "navigate"),
            ("open about:srcdoc", "navigate+sensitive"),
            ("open HTTP://x.org", "navigate"),
            ("open 'jav\tascript:alert(1)'", "navigate+write+sensitive"),
            ("disconnect", "write"),
            ("js document.cookie", "write+sensitive"),
            ("eval 1", "write+sensitive"),
            ("call fn", "write+sensitive"),
            ("tabs | grep x", "read"),
            ("for tabs : each click {}", "write"),
            ("for tabs : text {}", "read"),
            ("each ls", "read"),
            ("each open https://x", "navigate"),
            ("watch \"js 1\" --interval 1", "write+sensitive"),
            ("script save s click a ; type b", "write"),
            ("script save s ls ; js 1", "write+sensitive"),
            ("script save s \"ls ; open x.com\"", "navigate"),
            ("script save s ls ; cd main", "read"),
            ("script show s", "read"),
            ("script list", "read"),
            ("script", "read"),
            ("script delete s", "read"),
            ("whoami", "sensitive"),
            ("WHOAMI", "sensitive"),
            ("Click x", "write"),
            ("\"click\" x", "write"),
            ("c\\lick x", "write"),
            ("open javascript:alert(1)", "navigate+write+sensitive"),
            ("open example.com", "navigate"),
            ("navigate https://x", "navigate"),
            ("goto x", "navigate"),
            ("back", "navigate"),
            ("forward", "navigate"),
            ("close", "write"),
            ("focus a", "write"),
            ("type -5", "write"),
            ("key Enter", "write"),
            ("scroll down 2", "write"),
            ("select country us", "write"),
            ("dialog accept", "write"),
            ("dialog accept some text", "write"),
            ("dialog dismiss", "write"),
            ("DIALOG Dismiss", "write"),
            ("for ls : dialog {}", "write"),
            ("for click a : ls", "write"),
            ("for ls | grep btn : click {}", "write"),
            ("watch \"watch 'each click x'\"", "write"),
        ];
        for (text, expected) in table {
            assert_eq!(label(text), *expected, "{text}");
        }
    }

    #[test]
    fn read_commands() {
        for text in [
            "tabs",
            "windows",
            "here",
            "cd main",
            "cd ~/tabs/12",
            "pwd",
            "ls -l",
            "cat x",
            "text",
            "read -d 3",
            "tree 2",
            "grep -r x",
            "find --type button",
            "extract_links",
            "extract_table t --format csv",
            "screenshot",
            "diff",
            "wait x --timeout 3",
            "functions",
            "refresh",
            "bookmark home",
            "history -n 5",
            "history clear",
            "env",
            "export A=B",
            "help",
            "clear",
            "debug stats",
            "group",
            "group list",
            "group attach 4",
            "group detach",
            "group status",
            "echo hello",
            "sleep 1",
            "ls | head -n 3",
            "click --help",
            "js --help",
            "for --help",
            "whoami --help",
            "type --help",
            "dialog",
            "dialog --help",
            "console --level error",
            "network --failed",
            "network body --help",
        ] {
            assert_eq!(label(text), "read", "{text}");
        }
    }

    #[test]
    fn a_word_that_is_no_command_is_refused_not_read() {
        for text in [
            "frobnicate",
            "frobnicate --help",
            "each frobnicate",
            "for tabs : frobnicate {}",
            "watch frobnicate",
        ] {
            let error = classify_line(text).map(|c| c.tier()).unwrap_err();
            assert!(
                matches!(error.innermost(), ParseError::UnknownCommand(_)),
                "{text}: {error}"
            );
        }
        assert_eq!(
            classify_line("frobnicate").unwrap_err().to_string(),
            "`frobnicate` is not a domshell command; `help` lists the commands"
        );
    }

    #[test]
    fn combined_short_flags_keep_the_tier() {
        for (text, expected) in [
            ("ls -la", "read"),
            ("ls -al main", "read"),
            ("ls -la ~/tabs", "read"),
            ("grep -r login", "read"),
            ("ls -la | grep btn", "read"),
            ("each ls -la", "read"),
            ("watch \"ls -la\"", "read"),
            ("for ls -la : click {}", "write"),
            ("for ls : ls -la {}", "read"),
            ("script save s ls -la ; click x", "write"),
            ("click -la x", "write"),
            ("scroll -la", "write"),
            ("key -la", "write"),
            ("whoami -la", "sensitive"),
        ] {
            assert_eq!(label(text), expected, "{text}");
        }
    }

    #[test]
    fn a_short_flag_cannot_smuggle_a_navigation() {
        // Navigation commands have no one-letter flags: any letter is a parse error, so no
        // letter can stand for `--url` or take the next word as a destination.
        for text in [
            "open -u https://evil.example",
            "open -lu https://evil.example https://ok.example",
            "navigate -t 5 https://evil.example",
            "goto -la https://evil.example",
            "group new -u https://evil.example",
            "each open -u https://evil.example",
        ] {
            let err = classify(text).unwrap_err().to_string();
            assert!(err.contains("unknown option -"), "{text}: {err}");
        }
        // A letter that takes a value never takes one inside a combination.
        assert!(Command::parse_args(&first_command("ls -ln 5")).is_err());
        // Substituted into a template, a combination is judged as the command it makes.
        assert_eq!(label("for ls : open -{} x"), "navigate+write+sensitive");
    }

    #[test]
    fn help_word_inside_text_does_not_disarm_commands() {
        assert_eq!(label("type hello --help"), "write");
        assert_eq!(label("js x --help"), "write+sensitive");
        assert_eq!(label("click -- --help"), "write");
        assert_eq!(label("for ls : click --help"), "read");
    }

    #[test]
    fn explanations_say_why() {
        let c = classify("for tabs : click {}").unwrap();
        assert_eq!(c.tier(), Tier::Write);
        assert_eq!(
            c.explanation(),
            "`click` clicks in the page (inside `for tabs : click {}`)"
        );
        let c = classify("script run foo").unwrap();
        assert!(
            c.explanation().contains("cannot inspect"),
            "{}",
            c.explanation()
        );
        let c = classify("js document.cookie").unwrap();
        assert_eq!(c.tier(), Tier::Sensitive);
        assert!(c.explanation().contains("read cookies"));
        assert!(c.reason_for(Tier::Write).unwrap().contains("click, type"));
        let c = classify("for tabs : each click {}").unwrap();
        assert_eq!(
            c.explanation(),
            "`click` clicks in the page (inside `each click {}`, inside `for tabs : each click {}`)"
        );
        assert_eq!(classify("ls").unwrap().explanation(), "it only reads");
    }

    #[test]
    fn navigation_targets_are_collected() {
        let c = classify(
            "open example.com/x\ngroup new --url https://b.org\nnavigate https://c.net\nls",
        )
        .unwrap();
        assert_eq!(
            c.nav_targets,
            ["example.com/x", "https://b.org", "https://c.net"]
        );
        assert!(c.unchecked_navigation.is_empty());
        let c = classify("each open https://d.io").unwrap();
        assert_eq!(c.nav_targets, ["https://d.io"]);
        let c = classify("for tabs : open {}").unwrap();
        assert!(c.nav_targets.is_empty());
        // The item could be a javascript: URL: it needs what one needs, and no allowlist
        // can vouch for it.
        assert_eq!(c.tier_label(), "navigate+write+sensitive");
        assert_eq!(c.unchecked_navigation.len(), 1);
        let c = classify("open --url https://e.org").unwrap();
        assert_eq!(c.nav_targets, ["https://e.org"]);
        assert!(classify("back").unwrap().unchecked_navigation.is_empty());
        assert_eq!(classify("!2").unwrap().unchecked_navigation.len(), 1);
        assert_eq!(
            classify("script run x").unwrap().unchecked_navigation.len(),
            1
        );
    }

    #[test]
    fn initial_url_is_a_navigation() {
        let c = classify("ls")
            .unwrap()
            .with_initial_url("https://evil.example");
        assert_eq!(c.tier_label(), "navigate");
        assert_eq!(c.nav_targets, ["https://evil.example"]);
        assert!(c
            .explanation()
            .contains("`initial_url` opens https://evil.example"));
        let c = classify("ls")
            .unwrap()
            .with_initial_url(" javascript:alert(1)");
        assert!(c.needs_sensitive);
    }

    #[test]
    fn help_in_a_template_is_not_a_shortcut() {
        // Once `{}` is filled with `x \`, `a '` or ` -- `, `--help` is no longer a word of
        // its own and the command runs.
        for (text, expected) in [
            ("for tabs : close -d {} --help \\'", "write"),
            ("for text : click submit_btn {} --help \\'", "write"),
            ("for ls : each click x {} --help", "write"),
            ("for ls : watch click x {} --help", "write"),
            ("for ls : whoami {} --help", "sensitive"),
            ("for ls : open {} --help", "navigate+write+sensitive"),
            ("for ls : connect {} --help", "navigate+write+sensitive"),
            // Without a placeholder the words are final and help stays help.
            ("for ls : click --help", "read"),
            ("for ls : close -d x --help", "read"),
        ] {
            assert_eq!(label(text), expected, "{text}");
        }
    }

    #[test]
    fn group_id_new_is_a_new_tab() {
        let c = classify("ls").unwrap().with_group_id(NEW_LANE);
        assert_eq!(c.tier_label(), "navigate");
        assert!(c.explanation().contains("group_id"), "{}", c.explanation());
        assert_eq!(
            classify("ls").unwrap().with_group_id("17").tier_label(),
            "read"
        );
    }

    #[test]
    fn placeholders_that_can_change_a_command_get_everything() {
        for text in [
            "for ls : {}",
            "for ls : {} x",
            "for ls : cl{}",
            "for ls : \"{}\" x",
            "for ls : !{}",
            "for ls : group {}",
            "for ls : group new {}",
            "for ls : script run {}",
            "for ls : each --pattern {} ls",
            "for ls : each \"click {}\"",
            "for ls : watch \"ls {}\"",
            "for ls : watch --times 1 {} ls",
            "for ls : each watch {} x",
        ] {
            let c = classify(text).unwrap();
            assert_eq!(c.tier_label(), "navigate+write+sensitive", "{text}");
            assert!(!c.unchecked_navigation.is_empty(), "{text}");
        }
        // Arguments of commands whose tier does not depend on them stay as they are.
        for (text, expected) in [
            ("for ls : click {}", "write"),
            ("for ls : text {} | grep {}", "read"),
            ("for ls : each click {}", "write"),
            ("for ls : watch ls {} --times 2", "read"),
            ("for ls : js f('{}')", "write+sensitive"),
            ("for ls {} : ls", "read"),
            ("for ls : watch ls --until-change {}", "read"),
        ] {
            assert_eq!(label(text), expected, "{text}");
        }
        // A placeholder where a number must be is rejected before anything runs.
        assert!(classify("for ls : watch --interval {} ls").is_err());
    }

    #[test]
    fn explanations_do_not_quote_secrets() {
        for text in [
            "for ls : type hunter2",
            "each watch \"submit q hunter2\"",
            "for ls : {} hunter2",
            "for ls : connect hunter2 {}",
        ] {
            let c = classify(text).unwrap();
            for reason in &c.reasons {
                assert!(!reason.why.contains("hunter2"), "{text}: {}", reason.why);
            }
        }
    }

    #[test]
    fn multi_line_input_is_the_union() {
        let c = classify("ls\nclick a\nwhoami").unwrap();
        assert_eq!(c.tier_label(), "write+sensitive");
        assert_eq!(c.reasons.len(), 2);
        assert_eq!(classify("").unwrap().tier_label(), "read");
        // A multi-line JS snippet is one `js` command, not an unknown command per line.
        let c = classify("js (() => {\n  return 1;\n})()").unwrap();
        assert_eq!(c.tier_label(), "write+sensitive");
    }

    #[test]
    fn parse_errors_propagate() {
        assert!(classify("ls | js x").is_err());
        assert!(classify("for ls").is_err());
        assert!(classify("type \"x").is_err());
        assert!(classify("ls\nwatch").is_err());
    }

    #[test]
    fn reasons_are_bounded() {
        let text: String = (0..500).map(|i| format!("click a{i}\n")).collect();
        let c = classify(&text).unwrap();
        assert_eq!(c.reasons.len(), 1);
        let text: String = (0..500)
            .map(|i| format!("open https://x{i}.com\n"))
            .collect();
        assert_eq!(classify(&text).unwrap().reasons.len(), MAX_REASONS);
    }
}
