//! Commands that act on a page: `click`, `focus`, `type`, `key`, `submit`, `select`,
//! `scroll`, plus `wait`, `screenshot` and `whoami`.
//!
//! Every interaction marks the tab's tree stale (the next command re-reads it) and, when it
//! started a navigation, waits (bounded) for the new page. Input goes through trusted CDP
//! events where Chrome delivers them and falls back to DOM calls where it does not; replies
//! say which path ran. Chrome delivers CDP key events only to the tab in front, so
//! `key --activate` brings the session's tab forward for the keys and gives the focus back
//! afterwards. What a key is to CDP lives in [`super::keys`]. It must not format listings
//! (that is [`super::reading`]).

use serde_json::{json, Value};
use shared_protocol::decimal::parse_f64;
use shared_protocol::grammar::{Args, Command};

use super::browser::{Browser, LoadMark};
use super::deadline::join_all;
use super::keys::{self, key_for, modifier_mask, named_key, KeySpec, KEY_NAMES};
use super::reading::{open, OpenPage};
use super::session::Session;
use super::Context;
use crate::ax::{Entry, EntryId, FindQuery, TypeFilter};

/// `wait` without `--timeout`, and its cap (seconds).
const DEFAULT_WAIT_S: f64 = 5.0;
const MAX_WAIT_S: f64 = 30.0;
/// The longest single page-side wait for a DOM change (under the glue's call timeout).
const WAIT_SLICE_MS: u64 = 8_000;
/// Round trips `wait` makes at most, whatever the page does.
const MAX_WAIT_ROUNDS: usize = 200;
/// Suffixes `submit` strips when a name is not found as given.
const NAME_SUFFIXES: [&str; 8] = [
    "_input",
    "_textbox",
    "_searchbox",
    "_field",
    "_btn",
    "_button",
    "_combobox",
    "_link",
];

/// Whether the command's reply ends with an account of what it changed
/// ([`super::account::account`]).
pub(crate) fn accounts_for(command: &str) -> bool {
    matches!(
        command,
        "click" | "type" | "key" | "submit" | "select" | "scroll"
    )
}

pub(crate) async fn run<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    // An action's downloads are this session's: the book learns who acted, and when.
    let acted_at = browser.monotonic_ms();
    if matches!(
        cmd.name.as_str(),
        "click" | "key" | "submit" | "type" | "upload"
    ) {
        ctx.downloads
            .borrow_mut()
            .acted(&ctx.session_name, acted_at);
    }
    // What the directory showed before the action, for the account its reply ends with.
    let before = if accounts_for(&cmd.name) && !args.has("--quiet") {
        match open(session, browser, ctx, &cmd.name).await {
            Ok(page) => Some(super::account::look(&page, session, browser)),
            Err(_) => None,
        }
    } else {
        None
    };
    let outcome = match cmd.name.as_str() {
        "click" => click_cmd(session, browser, ctx, cmd, args).await,
        "focus" => focus(session, browser, ctx, cmd, args).await,
        "type" => type_text(session, browser, ctx, cmd).await,
        "key" => key(session, browser, ctx, args).await,
        "submit" => submit(session, browser, ctx, args).await,
        "select" => select(session, browser, ctx, args).await,
        "scroll" => scroll(session, browser, ctx, args).await,
        "wait" => wait(session, browser, ctx, args).await,
        "screenshot" | "pdf" => super::capture::run(session, browser, ctx, cmd, args).await,
        "whoami" => whoami(session, browser, ctx).await,
        "upload" => upload(session, browser, ctx, cmd, args).await,
        other => Err(format!("{other}: not an interaction command")),
    };
    let outcome = match (outcome, before) {
        (Ok(mut out), Some(before)) => {
            if let Some(said) =
                super::account::account(session, browser, ctx, &cmd.name, args, before).await
            {
                out.push_str("\r\n");
                out.push_str(&said);
            }
            Ok(out)
        }
        (outcome, _) => outcome,
    };
    // Downloads the action started by the time it settled.
    let started = ctx.downloads.borrow().since(&ctx.session_name, acted_at);
    match outcome {
        Ok(mut out) if !started.is_empty() => {
            for download in &started {
                out.push_str("\r\n↓ Download: ");
                out.push_str(&super::observe::download_line(download));
            }
            if started.iter().any(|d| !d.finished()) {
                out.push_str("\r\n(`downloads wait` waits for it to finish)");
            }
            Ok(out)
        }
        other => other,
    }
}

/// Read what naming `name` needs that is not read yet: the directories on its path and, for
/// a bare name not found as given, the page below the current directory (where [`target`]
/// searches).
async fn read_for<B: Browser>(
    page: &mut OpenPage,
    session: &Session,
    browser: &B,
    ctx: &Context,
    command: &str,
    name: &str,
) -> Result<(), String> {
    page.prepare(session, browser, ctx, Some(name), false)
        .await
        .map_err(|e| format!("{command}: {e}"))?;
    if !name.contains('/') && page.entry_at(session, command, Some(name)).is_err() {
        page.prepare(session, browser, ctx, None, true)
            .await
            .map_err(|e| format!("{command}: {e}"))?;
    }
    Ok(())
}

/// The entry a command names: as a path, else (for bare names) anywhere below the current
/// directory, trying without a role suffix when nothing matches as given.
fn target(
    page: &OpenPage,
    session: &Session,
    command: &str,
    name: &str,
    roles: Option<&str>,
) -> Result<EntryId, String> {
    let direct = page.entry_at(session, command, Some(name));
    if direct.is_ok() || name.contains('/') {
        return direct.map(|(id, _)| id);
    }
    let (from, _) = page.entry_at(session, command, None)?;
    let filter = roles.map(TypeFilter::with_aliases);
    let search = |pattern: &str| {
        page.vfs()
            .find(
                from,
                &FindQuery {
                    pattern: None,
                    type_filter: filter.clone(),
                    limit: None,
                },
            )
            .into_iter()
            .find(|f| {
                page.vfs().entry(f.id).is_some_and(|e| {
                    e.name.eq_ignore_ascii_case(pattern)
                        || e.own_name().eq_ignore_ascii_case(pattern)
                        || e.accessible_name.eq_ignore_ascii_case(pattern)
                })
            })
            .map(|f| f.id)
    };
    if let Some(id) = search(name) {
        return Ok(id);
    }
    let stripped = NAME_SUFFIXES
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name);
    let spaced = stripped.replace('_', " ");
    search(stripped)
        .or_else(|| search(&spaced))
        .ok_or_else(|| direct.err().unwrap_or_default())
}

fn one_name(cmd: &Command, args: &Args) -> Result<String, String> {
    match args.positional.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "{}: which element? usage: {} <name|path> (see `ls`)",
            cmd.name, cmd.name
        )),
        _ => Err(format!(
            "{}: too many arguments; quote a name with spaces",
            cmd.name
        )),
    }
}

/// After an interaction: if the tab started loading a new page, wait for it (bounded) so the
/// next command reads the new page whole; else tell the cache what was acted on ([`touch`]).
async fn settle<B: Browser>(
    browser: &B,
    ctx: &Context,
    page: &OpenPage,
    before: LoadMark,
    acted_on: &[&Entry],
) {
    let tab = page.id;
    let loading = match browser.tab(tab).await {
        Ok(Some(t)) => t.status.as_deref() == Some("loading") || t.pending_url.is_some(),
        _ => false,
    };
    if loading || browser.load_mark(tab) != before {
        ctx.pages.invalidate(tab);
        let _ = browser
            .wait_for_load(tab, Some(before), ctx.load_timeout_ms)
            .await;
        return;
    }
    touch(ctx, page, acted_on);
}

/// Tell the page cache a command acted on the page, on `acted_on` (none: on whatever has the
/// focus): the next read re-reads what changed, those elements included. The page-side
/// tracker watches the main document only, so acting inside a child frame, or on the focus
/// of a page that has frames, makes the next read a whole one.
fn touch(ctx: &Context, page: &OpenPage, acted_on: &[&Entry]) {
    let main_frame = page
        .vfs()
        .entry(page.vfs().root())
        .map(|r| r.frame_id.as_str())
        .unwrap_or("");
    let in_child_frame = |e: &&Entry| !e.frame_id.is_empty() && e.frame_id != main_frame;
    let unseen = if acted_on.is_empty() {
        page.vfs().frame_count() > 0
    } else {
        acted_on.iter().any(in_child_frame)
    };
    if unseen {
        ctx.pages.invalidate(page.id);
        return;
    }
    ctx.pages.touched(page.id, None);
    for entry in acted_on {
        ctx.pages.touched(page.id, entry.backend_node_id);
    }
}

/// JS: the DOM's own click.
const CLICK: &str = page_js!("click.js");

/// JS: focus the element.
const FOCUS: &str = page_js!("focus.js");

/// JS: scroll the element to the middle of its scroller.
const SCROLL_INTO_VIEW: &str = page_js!("scroll_into_view.js");

/// JS: scroll the element into view and say where its centre is and whether that point
/// shows the element (not an overlay).
const LOCATE: &str = page_js!("locate.js");

/// Clicks an entry: a trusted mouse click at its centre when the centre shows it, else the
/// DOM's `click()`. Returns how it clicked.
/// Clicks an entry; says how (empty for a trusted click at its centre) and whether the
/// element submits a form (a navigation may follow a moment later).
async fn click_entry<B: Browser>(
    browser: &B,
    page: &OpenPage,
    entry: &Entry,
) -> Result<(&'static str, bool), String> {
    let main_frame = page
        .vfs()
        .entry(page.vfs().root())
        .map(|r| r.frame_id.clone())
        .unwrap_or_default();
    let dom = page.dom(browser);
    let spot = dom.call_on(entry, LOCATE, &[]).await?;
    let submits = spot["submits"].as_bool() == Some(true);
    let in_main_frame = entry.frame_id == main_frame || entry.frame_id.is_empty();
    if in_main_frame && spot["hit"].as_bool() == Some(true) && spot["w"].as_f64() > Some(0.0) {
        let (x, y) = (
            spot["x"].as_f64().unwrap_or_default(),
            spot["y"].as_f64().unwrap_or_default(),
        );
        // Sent together, the move, press and release reach the page in order and cost one
        // round trip instead of three.
        let events = [("mouseMoved", 0), ("mousePressed", 1), ("mouseReleased", 0)]
            .into_iter()
            .map(|(kind, buttons)| {
                let button = if kind == "mouseMoved" { "none" } else { "left" };
                let params = json!({ "type": kind, "x": x, "y": y, "button": button, "buttons": buttons, "clickCount": 1 });
                browser.cdp(page.id, "Input.dispatchMouseEvent", params)
            })
            .collect();
        let delivered = join_all(events).await;
        if delivered.iter().all(Result::is_ok) {
            return Ok(("", submits));
        }
        // A handler that opened a dialog (`alert` on mousedown or click) holds the events
        // until it is answered: the click happened.
        if browser.open_dialog(page.id).is_some() {
            return Ok(("", submits));
        }
    }
    page.dom(browser).call_on(entry, CLICK, &[]).await?;
    Ok((
        " (DOM click: the element's centre was covered, off-screen or in a frame)",
        submits,
    ))
}

/// The page and the one element a flagless `<cmd> <name|path>` acts on.
async fn named_entry<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<(OpenPage, Entry), String> {
    let name = one_name(cmd, args)?;
    let mut page = open(session, browser, ctx, &cmd.name).await?;
    read_for(&mut page, session, browser, ctx, &cmd.name, &name).await?;
    let id = target(&page, session, &cmd.name, &name, None)?;
    let entry = page.entry(id)?.clone();
    Ok((page, entry))
}

async fn click_cmd<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let (page, entry) = named_entry(session, browser, ctx, cmd, args).await?;
    let before = browser.load_mark(page.id);
    let clicked_at = browser.monotonic_ms();
    let (how, submits) = click_entry(browser, &page, &entry)
        .await
        .map_err(super::plain)?;
    ctx.pages
        .focused_in(page.id, page.tree.targets.session_of(&entry.frame_id));
    settle(browser, ctx, &page, before, &[&entry]).await;
    if (submits || leads_elsewhere(&entry, &page.tab.url)) && browser.load_mark(page.id) == before {
        late_navigation(browser, ctx, page.id, before, clicked_at).await;
    }
    Ok(format!(
        "✓ Clicked: {} ({}){how}",
        page.vfs().spoken_name(&entry),
        entry.role
    ))
}

/// A link to another address than the page's own (a fragment or `javascript:` leads nowhere).
fn leads_elsewhere(entry: &Entry, page_url: &str) -> bool {
    let Some(url) = entry.url.as_deref().filter(|_| entry.role == "link") else {
        return false;
    };
    let without_fragment = |u: &str| u.split('#').next().unwrap_or(u).to_string();
    !url.starts_with("javascript:") && without_fragment(url) != without_fragment(page_url)
}

/// How long a link or a form's submit button that had not navigated when the click returned
/// is given to begin a navigation (Chrome starts a form's submission a task later) or a
/// download (reported a moment after the click), so the reply and the next command see it.
const LATE_NAVIGATION_MS: u64 = 300;

async fn late_navigation<B: Browser>(
    browser: &B,
    ctx: &Context,
    tab: i64,
    before: LoadMark,
    since: f64,
) {
    let downloaded = || {
        !ctx.downloads
            .borrow()
            .since(&ctx.session_name, since)
            .is_empty()
    };
    if browser
        .navigation_begins(tab, before, LATE_NAVIGATION_MS, &downloaded)
        .await
    {
        ctx.pages.invalidate(tab);
        let _ = browser
            .wait_for_load(tab, Some(before), ctx.load_timeout_ms)
            .await;
    }
}

async fn focus<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let (page, entry) = named_entry(session, browser, ctx, cmd, args).await?;
    page.dom(browser)
        .call_on(&entry, FOCUS, &[])
        .await
        .map_err(super::plain)?;
    ctx.pages
        .focused_in(page.id, page.tree.targets.session_of(&entry.frame_id));
    touch(ctx, &page, &[&entry]);
    Ok(format!("✓ Focused: {}", page.vfs().spoken_name(&entry)))
}

/// A piece of typed text: text to insert, or a key to press.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Typed {
    Text(String),
    Key(&'static str),
}

/// Splits text at the `\n` and `\t` escapes (`\\` is a backslash).
pub(crate) fn typed_parts(text: &str) -> Vec<Typed> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let key = match (c, chars.peek()) {
            ('\\', Some('n')) => Some("Enter"),
            ('\\', Some('t')) => Some("Tab"),
            ('\\', Some('\\')) => {
                chars.next();
                current.push('\\');
                continue;
            }
            ('\n', _) => Some("Enter"),
            ('\t', _) => Some("Tab"),
            _ => None,
        };
        match key {
            Some(k) => {
                if c == '\\' {
                    chars.next();
                }
                if !current.is_empty() {
                    parts.push(Typed::Text(std::mem::take(&mut current)));
                }
                parts.push(Typed::Key(k));
            }
            None => current.push(c),
        }
    }
    if !current.is_empty() {
        parts.push(Typed::Text(current));
    }
    parts
}

async fn type_text<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
) -> Result<String, String> {
    let text = cmd.args.join(" ");
    if text.is_empty() {
        return Err("type: nothing to type; usage: type <text…> (focus a field first)".into());
    }
    let page = open(session, browser, ctx, "type").await?;
    let before = browser.load_mark(page.id);
    // Text goes to the target whose frame has the focus (an out-of-process frame's own).
    let target = ctx.pages.focus_session(browser, page.id);
    let mut typed = 0usize;
    for part in typed_parts(&text) {
        match part {
            Typed::Text(t) => {
                browser
                    .cdp_at(
                        page.id,
                        target.as_deref(),
                        "Input.insertText",
                        json!({ "text": t }),
                    )
                    .await
                    .map_err(super::plain)?;
                typed += t.chars().count();
            }
            Typed::Key(k) => {
                let key = named_key(k).ok_or_else(|| format!("type: no key {k}"))?;
                press(browser, page.id, target.as_deref(), &key, 0)
                    .await
                    .map_err(super::plain)?;
                typed += 1;
            }
        }
    }
    settle(browser, ctx, &page, before, &[]).await;
    Ok(format!("✓ Typed {typed} characters"))
}

/// A trusted key press (down and up) through CDP.
async fn press<B: Browser>(
    browser: &B,
    tab: i64,
    target: Option<&str>,
    key: &KeySpec,
    modifiers: i64,
) -> Result<(), String> {
    for event in key.events(modifiers) {
        browser
            .cdp_at(tab, target, "Input.dispatchKeyEvent", event)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// JS for a background tab, where Chrome drops CDP key events: a synthetic key press on the
/// focused element, with the default actions that matter emulated (Enter submits a form
/// field's form, a printable key types into a field). Returns what it did.
const SYNTHETIC_KEY: &str = page_js!("synthetic_key.js");

async fn key<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    args: &Args,
) -> Result<String, String> {
    let name = match args.positional.as_slice() {
        [one] => one.clone(),
        _ => {
            return Err(format!(
                "key: usage: key <KeyName|char> [--modifiers ctrl,shift,alt,meta] [--activate] ({KEY_NAMES})"
            ))
        }
    };
    let spec = key_for(&name)
        .ok_or_else(|| format!("key: unknown key '{name}'. Named keys: {KEY_NAMES}"))?;
    let modifiers = modifier_mask(args.value("--modifiers").unwrap_or(""))?;
    let page = open(session, browser, ctx, "key").await?;
    let before = browser.load_mark(page.id);
    let shown = spec.shown().to_string();
    // Keys go to the target whose frame has the focus (an out-of-process frame's own).
    let focus = ctx.pages.focus_session(browser, page.id);
    let reply = if args.has("--activate") {
        let how = press_activated(browser, &page, focus.as_deref(), &spec, modifiers).await?;
        format!("✓ Pressed {shown} (trusted input){how}")
    } else if page.tab.active {
        press(browser, page.id, focus.as_deref(), &spec, modifiers)
            .await
            .map_err(super::plain)?;
        format!("✓ Pressed {shown} (trusted input)")
    } else {
        let modifiers = modifiers | if spec.shifted { keys::SHIFT } else { 0 };
        let expression = format!(
            "{SYNTHETIC_KEY}({}, {}, {}, {modifiers})",
            json!(spec.key),
            json!(spec.code),
            spec.key_code
        );
        let did = page
            .dom(browser)
            .evaluate(&expression)
            .await
            .map_err(super::plain)?;
        format!(
            "✓ Pressed {shown} (background tab: synthetic event, {}; use --activate for trusted input)",
            did.as_str().unwrap_or("dispatched")
        )
    };
    settle(browser, ctx, &page, before, &[]).await;
    Ok(reply)
}

/// `key --activate`: Chrome delivers CDP key events only to the tab the user sees, so make the
/// session's tab the active one of its window and focus that window, press, then give the
/// focus back — to the tab that was active in that window and to the tab the user had before
/// (last, so that is where focus ends). The keys are pressed even when the tab already was
/// in front. Returns the note for the reply.
async fn press_activated<B: Browser>(
    browser: &B,
    page: &OpenPage,
    focus: Option<&str>,
    spec: &KeySpec,
    modifiers: i64,
) -> Result<String, String> {
    let users = browser
        .focused_tab()
        .await
        .map_err(|e| format!("key: cannot tell which tab is in front: {e}"))?
        .and_then(|t| t.id);
    let tabs = browser
        .tabs()
        .await
        .map_err(|e| format!("key: cannot list the tabs: {e}"))?;
    let window_had = tabs
        .iter()
        .find(|t| t.active && t.window_id.is_some() && t.window_id == page.tab.window_id)
        .and_then(|t| t.id);
    if users == Some(page.id) {
        press(browser, page.id, focus, spec, modifiers)
            .await
            .map_err(super::plain)?;
        return Ok(String::new());
    }
    browser
        .activate_tab(page.id)
        .await
        .map_err(|e| format!("key: cannot activate tab {}: {e}", page.id))?;
    let pressed = press(browser, page.id, focus, spec, modifiers).await;
    // Focus goes back whether or not the keys went through.
    let mut back = Vec::new();
    let mut problems = Vec::new();
    let restore = window_had
        .filter(|w| *w != page.id && Some(*w) != users)
        .into_iter()
        .chain(users);
    for tab in restore {
        match browser.activate_tab(tab).await {
            Ok(()) => back.push(tab),
            Err(e) => problems.push(format!("could not make tab {tab} active again: {e}")),
        }
    }
    pressed.map_err(|e| {
        let mut message = format!("key: {e}");
        for p in &problems {
            message.push_str(&format!("; {p}"));
        }
        message
    })?;
    let mut note = format!(" (tab {} activated for the keys", page.id);
    if let Some(tab) = users.filter(|t| back.contains(t)) {
        note.push_str(&format!(", then tab {tab} active again as before"));
    }
    for p in &problems {
        note.push_str(&format!("; {p}"));
    }
    note.push(')');
    Ok(note)
}

/// JS: set a field's value the way frameworks notice (the prototype's native setter, then
/// `input` and `change`), focusing it first. Returns whether the element is in a form.
const SET_VALUE: &str = page_js!("set_value.js");

/// JS: submit the field's form as pressing Enter would (`requestSubmit` runs validation and
/// the page's submit handlers), else a synthetic Enter.
const SUBMIT_FORM: &str = page_js!("submit_form.js");

async fn submit<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    args: &Args,
) -> Result<String, String> {
    let (name, value) = match args.positional.split_first() {
        Some((name, rest)) if !rest.is_empty() => (name.clone(), rest.join(" ")),
        _ => return Err("submit: usage: submit <input> <value…> [--submit <button>]".into()),
    };
    let mut page = open(session, browser, ctx, "submit").await?;
    read_for(&mut page, session, browser, ctx, "submit", &name).await?;
    if let Some(b) = args.value("--submit") {
        read_for(&mut page, session, browser, ctx, "submit", b).await?;
    }
    let field_id = target(&page, session, "submit", &name, Some("field"))?;
    let field = page.entry(field_id)?.clone();
    let button = match args.value("--submit") {
        Some(b) => Some(
            page.entry(target(&page, session, "submit", b, Some("button"))?)?
                .clone(),
        ),
        None => None,
    };
    let before = browser.load_mark(page.id);
    page.dom(browser)
        .call_on(&field, SET_VALUE, &[json!(value)])
        .await
        .map_err(super::plain)?;
    let then = match &button {
        Some(b) => {
            let (how, _) = click_entry(browser, &page, b).await.map_err(super::plain)?;
            format!("clicked {}{how}", b.name)
        }
        None => {
            let did = page
                .dom(browser)
                .call_on(&field, SUBMIT_FORM, &[])
                .await
                .map_err(super::plain)?;
            did.as_str().unwrap_or("pressed Enter").to_string()
        }
    };
    let acted_on: Vec<&Entry> = std::iter::once(&field).chain(button.as_ref()).collect();
    let submitted_at = browser.monotonic_ms();
    settle(browser, ctx, &page, before, &acted_on).await;
    // A form's submission navigates a moment later, if at all.
    if browser.load_mark(page.id) == before {
        late_navigation(browser, ctx, page.id, before, submitted_at).await;
    }
    Ok(format!(
        "✓ Submitted: typed \"{value}\" into {}, then {then}",
        page.vfs().spoken_name(&field)
    ))
}

/// JS: choose an option of a `<select>` by value, else by text (case-insensitive).
const SELECT_OPTION: &str = page_js!("select_option.js");

async fn select<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    args: &Args,
) -> Result<String, String> {
    let (name, value) = match args.positional.split_first() {
        Some((name, rest)) if !rest.is_empty() => (name.clone(), rest.join(" ")),
        _ => return Err("select: usage: select <name> <value…>".into()),
    };
    let mut page = open(session, browser, ctx, "select").await?;
    read_for(&mut page, session, browser, ctx, "select", &name).await?;
    let id = target(&page, session, "select", &name, Some("select"))?;
    let entry = page.entry(id)?.clone();
    let result = page
        .dom(browser)
        .call_on(&entry, SELECT_OPTION, &[json!(value)])
        .await
        .map_err(super::plain)?;
    if let Some(error) = result["error"].as_str() {
        return Err(format!(
            "select: {} is {error} ({}); select works on drop-downs",
            entry.name, entry.role
        ));
    }
    if let Some(options) = result["options"].as_array() {
        let list: Vec<String> = options
            .iter()
            .map(|o| {
                format!(
                    "{} (value={})",
                    o["text"].as_str().unwrap_or(""),
                    o["value"].as_str().unwrap_or("")
                )
            })
            .collect();
        return Err(format!(
            "select: no option '{value}' in {}. Options: {}",
            page.vfs().spoken_name(&entry),
            list.join(", ")
        ));
    }
    touch(ctx, &page, &[&entry]);
    Ok(format!(
        "✓ Selected: {} (value={})",
        result["text"].as_str().unwrap_or(""),
        result["value"].as_str().unwrap_or("")
    ))
}

/// JS: scroll the nearest scrollable container of `this` (itself, then its ancestors), else
/// the largest scrollable container of the page when the window itself cannot scroll, else
/// the window, by `n` of its heights (negative: up). Returns the new position.
const SCROLL_PAGE: &str = page_js!("scroll_page.js");

/// JS: scroll the window itself by `n` of its heights, whatever containers the page has.
/// Returns the new position and whether the window moved.
const SCROLL_WINDOW: &str = page_js!("scroll_window.js");

async fn scroll<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    args: &Args,
) -> Result<String, String> {
    let window = args.has("--window");
    let words: Vec<&str> = args.positional.iter().map(String::as_str).collect();
    let mut page = open(session, browser, ctx, "scroll").await?;
    let direction = match words.first().map(|w| w.to_ascii_lowercase()) {
        None => Some(1.0),
        Some(w) if w == "down" => Some(1.0),
        Some(w) if w == "up" => Some(-1.0),
        Some(_) => None,
    };
    let Some(sign) = direction else {
        let [name] = words.as_slice() else {
            return Err("scroll: usage: scroll [down|up] [N] [--window] | scroll <name>".into());
        };
        if window {
            return Err(format!(
                "scroll: --window scrolls the page itself by viewports (scroll [down|up] [N] --window); `scroll {name}` brings an element into view"
            ));
        }
        read_for(&mut page, session, browser, ctx, "scroll", name).await?;
        let id = target(&page, session, "scroll", name, None)?;
        let entry = page.entry(id)?.clone();
        page.dom(browser)
            .call_on(&entry, SCROLL_INTO_VIEW, &[])
            .await
            .map_err(super::plain)?;
        touch(ctx, &page, &[&entry]);
        return Ok(format!("✓ Scrolled to {}", page.vfs().spoken_name(&entry)));
    };
    let times: f64 = match words.get(1) {
        None => 1.0,
        Some(n) => parse_f64(n)
            .filter(|n| n.is_finite() && *n > 0.0 && *n <= 100.0)
            .ok_or_else(|| format!("scroll: N must be a number from 1 to 100, got '{n}'"))?,
    };
    let (cwd, path) = page.entry_at(session, "scroll", None)?;
    let from = page.entry(cwd)?.clone();
    let n = json!(sign * times);
    let position = if window {
        page.dom(browser)
            .evaluate(&format!("{SCROLL_WINDOW}({n})"))
            .await
            .map_err(super::plain)?
    } else if from.backend_node_id.is_some() && !path.is_empty() {
        page.dom(browser)
            .call_on(&from, SCROLL_PAGE, &[n])
            .await
            .map_err(super::plain)?
    } else {
        page.dom(browser)
            .evaluate(&format!("({SCROLL_PAGE}).call(document.body, {n})"))
            .await
            .map_err(super::plain)?
    };
    touch(ctx, &page, &[]);
    let top = position["top"].as_f64().unwrap_or_default();
    let height = position["height"].as_f64().unwrap_or_default();
    let view = position["view"].as_f64().unwrap_or_default();
    let percent = if height > view {
        (top / (height - view) * 100.0).round().clamp(0.0, 100.0)
    } else {
        100.0
    };
    let inner = if position["inner"].as_bool() == Some(true) {
        " (inner container)"
    } else {
        ""
    };
    let stuck = if window && position["moved"].as_bool() == Some(false) {
        "\r\n(the window did not move: it is at its end, or the page scrolls only inside containers; `scroll` without --window scrolls the nearest one)"
    } else {
        ""
    };
    Ok(format!(
        "✓ Scrolled {} {times} viewport(s){inner}\r\nPosition: {top}/{height}px ({percent}%){stuck}",
        if sign > 0.0 { "down" } else { "up" }
    ))
}

/// JS: resolves when the page's DOM changes or after `ms` (`__MS__`), with the milliseconds waited.
const WAIT_FOR_CHANGE: &str = page_js!("wait_for_change.js");

fn wait_for_change(ms: u64) -> String {
    WAIT_FOR_CHANGE
        .replace("__KEY__", super::page::PAGE_STATE_KEY)
        .replace("__MS__", &ms.to_string())
}

async fn wait<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    args: &Args,
) -> Result<String, String> {
    let pattern = match args.positional.as_slice() {
        [] => None,
        [p] => Some(p.clone()),
        _ => return Err("one pattern; quote it if it has spaces".into()),
    };
    let timeout_s = match args.value("--timeout") {
        None => DEFAULT_WAIT_S,
        Some(t) => parse_f64(t)
            .filter(|s| s.is_finite() && *s > 0.0)
            .ok_or_else(|| format!("--timeout expects seconds, got '{t}'"))?
            .min(MAX_WAIT_S),
    };
    // The wait's own end, within the command's deadline (ending a little before it, so a
    // wait as long as the budget reports its own timeout); measured on the port's clock,
    // so the time spent re-reading a mutating page counts.
    let asked_ms = ((timeout_s * 1000.0) as u64).min(ctx.wait_cap_ms);
    let budget_ms = browser.remaining_ms().map_or(asked_ms, |left| {
        super::deadline::wait_within(asked_ms, left)
    });
    let url = args.value("--url");
    if args.has("--idle") || url.is_some() {
        if pattern.is_some() || args.has("--gone") || args.value("--type").is_some() {
            return Err("--idle and --url wait for the page as a whole: give no pattern".into());
        }
        return super::observe::wait_for_page(session, browser, ctx, url, budget_ms, timeout_s)
            .await;
    }
    let gone = args.has("--gone");
    let type_filter = args.value("--type").map(TypeFilter::with_aliases);
    if pattern.is_none() && type_filter.is_none() {
        return Err("usage: wait <pattern> [--type ROLE] [--gone] [--timeout S] | wait --idle | wait --url <pattern>".into());
    }
    let started = browser.monotonic_ms();
    let query = FindQuery {
        pattern: pattern.clone(),
        type_filter,
        limit: Some(1),
    };
    // The page-side waits add up too: a browser without a clock still ends the wait.
    let mut slept_ms = 0.0f64;
    let waited = |slept: f64| slept.max(browser.monotonic_ms() - started);
    for _ in 0..MAX_WAIT_ROUNDS {
        let page = open(session, browser, ctx, "wait").await?;
        let (from, _) = page.entry_at(session, "wait", None)?;
        let found = page.vfs().find(from, &query).into_iter().next();
        if gone && found.is_none() {
            return Ok(format!(
                "✓ Gone after {:.1}s: nothing matches \"{}\"",
                waited(slept_ms) / 1000.0,
                pattern.as_deref().or(args.value("--type")).unwrap_or("")
            ));
        }
        if let Some(found) = found.filter(|_| !gone) {
            let entry = page.entry(found.id)?;
            let slash = if entry.is_dir() { "/" } else { "" };
            return Ok(format!(
                "✓ Found after {:.1}s\r\n  {} {}{slash} ({})",
                waited(slept_ms) / 1000.0,
                entry.kind.marker(),
                found.relative_path.join("/"),
                entry.role
            ));
        }
        let left = budget_ms.saturating_sub(waited(slept_ms) as u64);
        if left == 0 {
            break;
        }
        let slice = left.min(WAIT_SLICE_MS);
        // The page's own timers are throttled in a background tab (a second or more): the
        // worker's timer ends the slice on time whatever the page does.
        let dom = page.dom(browser);
        let outcome = match super::deadline::race(
            dom.evaluate(&wait_for_change(slice)),
            browser.sleep_ms(slice),
        )
        .await
        {
            super::deadline::Either::Left(reply) => reply.unwrap_or(Value::Null),
            super::deadline::Either::Right(()) => Value::Null,
        };
        // A reply without a measured wait (the page went away) counts as the whole slice.
        slept_ms += outcome["waited"].as_f64().unwrap_or(slice as f64).max(1.0);
    }
    let what = pattern.unwrap_or_else(|| args.value("--type").unwrap_or("").to_string());
    Err(if gone {
        format!("timed out after {timeout_s}s — \"{what}\" is still there")
    } else {
        format!("wait: timed out after {timeout_s}s — \"{what}\" not found")
    })
}

/// Cookie names that usually carry a login.
const UPLOAD: &str = page_js!("upload.js");

/// `upload <input> <file…>`: the files the server read for this line, set on the input.
async fn upload<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let Some(name) = args.positional.first() else {
        return Err("usage: upload <input> <file…>".into());
    };
    if ctx.files.is_empty() {
        return Err(
            "no files came with this line: `upload` runs on its own line (not inside loops or scripts), and the server reads the files"
                .into(),
        );
    }
    let mut page = open(session, browser, ctx, &cmd.name).await?;
    read_for(&mut page, session, browser, ctx, &cmd.name, name).await?;
    let id = target(&page, session, &cmd.name, name, None)?;
    let entry = page.entry(id)?.clone();
    let files = serde_json::to_value(&ctx.files).map_err(super::plain)?;
    let answer = page.dom(browser).call_on(&entry, UPLOAD, &[files]).await?;
    if let Some(error) = answer["error"].as_str() {
        return Err(format!("{}: {error}", entry.name));
    }
    touch(ctx, &page, &[&entry]);
    let names: Vec<&str> = ctx.files.iter().map(|f| f.name.as_str()).collect();
    let input = answer["input"]
        .as_str()
        .filter(|i| !i.is_empty())
        .unwrap_or("the file input");
    Ok(format!(
        "✓ Attached {} file(s) to {input}{}: {}",
        answer["count"].as_u64().unwrap_or(names.len() as u64),
        if answer["hidden"] == true {
            " (hidden)"
        } else {
            ""
        },
        names.join(", ")
    ))
}

const SESSION_HINTS: [&str; 6] = ["session", "sid", "auth", "token", "jwt", "user"];

async fn whoami<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
) -> Result<String, String> {
    let tab = super::navigation::require_page(session, browser, ctx, "whoami").await?;
    let id = tab.id.unwrap_or_default();
    let reply = browser
        .cdp(id, "Network.getCookies", json!({ "urls": [tab.url] }))
        .await
        .map_err(super::plain)?;
    let cookies = reply["cookies"].as_array().cloned().unwrap_or_default();
    let mut lines = vec![format!("URL: {}", tab.url)];
    let login = cookies.iter().find(|c| {
        let name = c["name"].as_str().unwrap_or("").to_lowercase();
        SESSION_HINTS.iter().any(|h| name.contains(h))
    });
    match login {
        Some(c) => {
            lines.push("Status: Authenticated".into());
            lines.push(format!("Via: {}", c["name"].as_str().unwrap_or("")));
            lines.push(format!("Expires: {}", expiry(c)));
        }
        None => lines.push("Status: Not authenticated (no session-like cookie)".into()),
    }
    lines.push(format!("Total cookies: {}", cookies.len()));
    for c in &cookies {
        // Names and expiry only: values are secrets.
        lines.push(format!(
            "  {}  expires {}",
            c["name"].as_str().unwrap_or(""),
            expiry(c)
        ));
    }
    Ok(lines.join("\r\n"))
}

fn expiry(cookie: &Value) -> String {
    match cookie["expires"].as_f64() {
        Some(secs) if secs > 0.0 && cookie["session"].as_bool() != Some(true) => {
            utc_date(secs as i64)
        }
        _ => "at the end of the browser session".into(),
    }
}

/// `YYYY-MM-DD HH:MM UTC` for a Unix time (civil-from-days, proleptic Gregorian).
pub(crate) fn utc_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60
    )
}
