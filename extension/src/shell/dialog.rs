//! JavaScript dialogs (`alert`, `confirm`, `prompt`, `beforeunload`): the `dialog` command,
//! what a command answers while its tab has a dialog open, and the notice a command gets
//! when a dialog opened while it ran.
//!
//! An open dialog pauses the page's JavaScript, so anything that evaluates in the page would
//! wait until it closes. The kernel therefore refuses page commands at once while one is
//! open (naming it and saying how to answer it) and never waits on the paused page. The
//! glue tracks which dialog is open ([`Browser::open_dialog`]); this module only decides.
//! It must not evaluate anything in the page.

use shared_protocol::grammar::{Args, Command};

use super::browser::{Browser, Dialog, LoadOutcome};
use super::session::{Cwd, Session};
use super::{navigation, reading, Context};

/// Commands that work on the page of the session's tab, which a dialog pauses. `ls`/`cd`
/// count when they act inside the page.
const PAGE_COMMANDS: [&str; 22] = [
    "cat",
    "text",
    "read",
    "tree",
    "find",
    "grep",
    "extract_links",
    "extract_table",
    "screenshot",
    "wait",
    "whoami",
    "click",
    "focus",
    "type",
    "key",
    "submit",
    "select",
    "scroll",
    "navigate",
    "goto",
    "back",
    "forward",
];

/// Commands whose whole point is leaving the page: a `beforeunload` dialog means they did
/// not (yet) do it.
const LEAVING_COMMANDS: [&str; 5] = ["navigate", "goto", "back", "forward", "refresh"];

/// `alert: "hi"`, with the default text of a prompt.
pub(crate) fn describe(dialog: &Dialog) -> String {
    match dialog.kind.as_str() {
        "beforeunload" => "beforeunload: the page asks to confirm leaving it".into(),
        "prompt" => format!(
            "prompt: \"{}\" (default text \"{}\")",
            dialog.message, dialog.default_prompt
        ),
        kind => format!("{kind}: \"{}\"", dialog.message),
    }
}

/// How the agent answers this kind of dialog.
pub(crate) fn how_to_answer(dialog: &Dialog) -> &'static str {
    match dialog.kind.as_str() {
        "confirm" => "`dialog accept` answers OK, `dialog dismiss` answers Cancel",
        "prompt" => "`dialog accept [text]` answers with the text (the default text when none is given), `dialog dismiss` cancels",
        "beforeunload" => "`dialog accept` leaves the page, `dialog dismiss` stays on it",
        _ => "`dialog accept` (or `dialog dismiss`) closes it",
    }
}

/// Whether `cmd` would touch the paused page of the session's tab.
fn touches_page(session: &Session, cmd: &Command) -> bool {
    let name = cmd.name.as_str();
    if PAGE_COMMANDS.contains(&name) || name == "refresh" {
        return true;
    }
    if matches!(name, "ls" | "cd") {
        // An unparsable line is refused by dispatch, with its own message.
        return cmd
            .parse_args()
            .is_ok_and(|args| reading::is_page_path(session, &args));
    }
    false
}

/// The answer to a command that would touch a page paused by a dialog, without running it
/// (or `None`: run it).
pub(crate) fn refusal<B: Browser>(session: &Session, browser: &B, cmd: &Command) -> Option<String> {
    if cmd.wants_help() || !touches_page(session, cmd) {
        return None;
    }
    let tab = session.tab()?;
    let dialog = browser.open_dialog(tab)?;
    Some(format!(
        "{}: not run: tab {tab} has a JavaScript dialog open, which pauses the page — {}\r\nAnswer it first: {}.",
        cmd.name,
        describe(&dialog),
        how_to_answer(&dialog)
    ))
}

/// A command's result, told about a dialog that opened while it ran (`open_before`: whether
/// one was open when it started).
pub(crate) fn after<B: Browser>(
    session: &Session,
    browser: &B,
    cmd: &Command,
    open_before: bool,
    result: Result<String, String>,
) -> Result<String, String> {
    // `close` tells of the dialog its own closing opened.
    if open_before || cmd.name == "dialog" || cmd.name == "close" {
        return result;
    }
    let Some(dialog) = session.tab().and_then(|tab| browser.open_dialog(tab)) else {
        return result;
    };
    if dialog.kind == "beforeunload" && LEAVING_COMMANDS.contains(&cmd.name.as_str()) {
        let failed = result
            .err()
            .map(|e| format!("\r\n({e})"))
            .unwrap_or_default();
        return Err(format!(
            "{}: the page asks to confirm leaving it (beforeunload dialog); the tab stays where it was until you answer: {}.{failed}",
            cmd.name,
            how_to_answer(&dialog)
        ));
    }
    let notice = format!(
        "⚠ The page opened a JavaScript dialog and is paused until it is answered — {}\r\n  {}.",
        describe(&dialog),
        how_to_answer(&dialog)
    );
    match result {
        Ok(output) => Ok(format!("{output}\r\n{notice}")),
        Err(error) => Err(format!("{error}\r\n{notice}")),
    }
}

/// `dialog`, `dialog accept [text…]`, `dialog dismiss`.
pub(crate) async fn run<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    args: &Args,
) -> Result<String, String> {
    let Some(tab) = session.tab() else {
        return Err(
            "dialog: not in a tab; dialogs belong to a tab (`here` or `cd ~/tabs/<id>` enters one)"
                .into(),
        );
    };
    let open = browser.open_dialog(tab);
    let (action, text) = match args.positional.split_first() {
        None => {
            return Ok(match open {
                Some(d) => format!(
                    "Dialog open on tab {tab} — {}\r\n  {}.",
                    describe(&d),
                    how_to_answer(&d)
                ),
                None => format!("No dialog is open on tab {tab}."),
            })
        }
        Some((action, rest)) => (action.to_ascii_lowercase(), rest.join(" ")),
    };
    let accept = match action.as_str() {
        "accept" => true,
        "dismiss" => false,
        other => {
            return Err(format!(
                "dialog: unknown action '{other}'; usage: dialog [accept [text] | dismiss]"
            ))
        }
    };
    let Some(dialog) = open else {
        return Err(format!(
            "dialog: no dialog is open on tab {tab}; nothing to {action}"
        ));
    };
    if !text.is_empty() && (dialog.kind != "prompt" || !accept) {
        return Err(format!(
            "dialog: only `dialog accept` on a prompt takes text; this is a {} dialog: {}",
            dialog.kind,
            how_to_answer(&dialog)
        ));
    }
    // Accepting a prompt without text answers what the browser would have shown.
    let prompt_text = (dialog.kind == "prompt" && accept).then(|| {
        if text.is_empty() {
            dialog.default_prompt.clone()
        } else {
            text.clone()
        }
    });
    let since = browser.load_mark(tab);
    browser
        .answer_dialog(tab, accept, prompt_text.as_deref())
        .await
        .map_err(|e| {
            format!("dialog: Chrome refused the answer: {e}. `dialog` shows what is open now.")
        })?;
    // The page ran on from where it stopped: what was read of it is out of date.
    ctx.pages.invalidate(tab);
    let verb = if accept { "Accepted" } else { "Dismissed" };
    let what = describe(&dialog);
    if dialog.kind == "beforeunload" && accept {
        let outcome = browser
            .wait_for_load(tab, Some(since), ctx.load_timeout_ms)
            .await
            .map_err(|e| format!("dialog: accepted leaving the page, then: {e}"))?;
        if matches!(outcome, LoadOutcome::Gone) {
            // The dialog asked because of a `close`: leaving the page was closing the tab.
            browser.acknowledge_loss(tab);
            session.cwd = Cwd::Root;
            return Ok("✓ Accepted beforeunload: the tab is closed; you are at ~ now".into());
        }
        let (tab_info, note) = navigation::loaded(browser, outcome, "dialog", ctx.load_timeout_ms)?;
        return navigation::settle(
            session,
            ctx,
            "dialog",
            "Accepted beforeunload: left the page",
            &tab_info,
            note,
        );
    }
    let answer = match &prompt_text {
        Some(t) => format!(" with \"{t}\""),
        None if dialog.kind == "beforeunload" => ": staying on the page".into(),
        None => String::new(),
    };
    Ok(format!("✓ {verb} the {what}{answer}"))
}
