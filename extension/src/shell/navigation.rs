//! Browser-level commands: `tabs`, `windows`, `ls` at browser level, `here`, `cd`, `open`,
//! `navigate`/`goto`, `back`, `forward`, `close`, `refresh`, and [`require_page`], the one
//! gate every command that acts on the session's tab passes.
//!
//! It owns path resolution at browser level, tab selection by id or pattern, the
//! load-wait and allowlist checks around every navigation (the final URL after redirects
//! included). It must not call Chrome directly (only through [`Browser`]) and must not
//! know the page's accessibility tree.

use shared_protocol::decimal::parse_f64;
use shared_protocol::grammar::{navigation_url, Args, Command};

use super::access::{check_navigation, check_page};
use super::browser::{Attachment, Browser, LoadMark, LoadOutcome, TabInfo};
use super::cdp;
use super::dialog;
use super::session::{Cwd, Session};
use super::{expect_flags, format, parse_args, Context};

pub async fn run<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
) -> Result<String, String> {
    let args = parse_args(cmd)?;
    let name = cmd.name.as_str();
    let fail = |e: super::browser::BrowserError| format!("{name}: {e}");
    match name {
        "tabs" => {
            no_positionals(cmd, &args)?;
            let tabs = browser.tabs().await.map_err(fail)?;
            Ok(if args.has("--json") {
                format::tabs_json(&tabs, session.tab(), &ctx.domains).to_string()
            } else {
                format::tabs_table(&tabs, session.tab(), &ctx.domains)
            })
        }
        "windows" => {
            no_positionals(cmd, &args)?;
            let windows = browser.windows().await.map_err(fail)?;
            Ok(if args.has("--json") {
                format::windows_json(&windows, session.tab(), &ctx.domains).to_string()
            } else {
                format::windows_tree(&windows, session.tab(), &ctx.domains)
            })
        }
        "ls" => ls(session, browser, ctx, cmd, &args).await,
        "here" => {
            no_positionals(cmd, &args)?;
            let tab = browser
                .focused_tab()
                .await
                .map_err(fail)?
                .ok_or("here: no active tab in the focused window")?;
            enter(session, browser, ctx, "here", &tab, None).await
        }
        "cd" => cd(session, browser, ctx, &args).await,
        "open" => open(session, browser, ctx, cmd, &args).await,
        "navigate" | "goto" => navigate(session, browser, ctx, cmd, &args).await,
        "back" | "forward" => history_step(session, browser, ctx, cmd, &args).await,
        "close" => close(session, browser, ctx, &args).await,
        "refresh" => {
            no_positionals(cmd, &args)?;
            let tab = require_page(session, browser, ctx, "refresh").await?;
            let id = tab.id.unwrap_or_default();
            let tab = match browser
                .wait_for_load(id, None, ctx.load_timeout_ms)
                .await
                .map_err(fail)?
            {
                LoadOutcome::Complete(t) | LoadOutcome::TimedOut(t) => t,
                LoadOutcome::Gone => return Err(gone(session, "refresh", id)),
            };
            session.cwd = Cwd::tab_root(id, via_window(&session.cwd));
            Ok(format!(
                "✓ Refreshed tab {id}\r\n{}",
                format::tab_lines(&tab)
            ))
        }
        other => Err(format!("{other}: not a browser command")),
    }
}

fn no_positionals(cmd: &Command, args: &Args) -> Result<(), String> {
    match args.positional.first() {
        None => Ok(()),
        Some(word) => Err(format!(
            "{}: unexpected argument `{word}`; usage: {}",
            cmd.name,
            super::commands::find(&cmd.name)
                .map(|s| s.usage)
                .unwrap_or("")
        )),
    }
}

fn via_window(cwd: &Cwd) -> Option<i64> {
    match cwd {
        Cwd::Tab { via_window, .. } => *via_window,
        _ => None,
    }
}

fn gone(session: &mut Session, command: &str, tab: i64) -> String {
    if session.tab() == Some(tab) {
        session.cwd = Cwd::Root;
    }
    format!("{command}: tab {tab} no longer exists (it was closed); you are at ~ now. `tabs` lists the open tabs.")
}

/// The gate for every command that acts on the session's tab. It finds the tab, reports a
/// debugger connection Chrome dropped (once: the next call re-attaches), refuses internal
/// pages and pages outside the domain allowlist, and makes sure the debugger is attached.
pub async fn require_page<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    command: &str,
) -> Result<TabInfo, String> {
    let Some(id) = session.tab() else {
        return Err(format!(
            "{command}: not in a tab. Enter one with `here`, `cd ~/tabs/<id>` or `open <url>`."
        ));
    };
    let tab = browser
        .tab(id)
        .await
        .map_err(|e| format!("{command}: {e}"))?;
    let Some(tab) = tab else {
        browser.acknowledge_loss(id);
        return Err(gone(session, command, id));
    };
    if let Attachment::Lost { reason } = browser.attachment(id) {
        browser.acknowledge_loss(id);
        return Err(format!(
            "{command}: the debugger connection to tab {id} was lost: {reason}. Nothing was done; run the command again to re-attach."
        ));
    }
    check_page(&tab.url, &ctx.domains).map_err(|r| format!("{command}: tab {id}: {r}"))?;
    browser
        .attach(id)
        .await
        .map_err(|e| format!("{command}: cannot attach to tab {id}: {e}"))?;
    Ok(tab)
}

/// Enters `tab`: checks it may be read, attaches, moves the session to its root.
pub(crate) async fn enter<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    command: &str,
    tab: &TabInfo,
    via: Option<i64>,
) -> Result<String, String> {
    let id = tab
        .id
        .ok_or_else(|| format!("{command}: that tab has no id"))?;
    check_page(&tab.url, &ctx.domains).map_err(|r| format!("{command}: tab {id}: {r}"))?;
    let already = session.tab() == Some(id) && browser.attachment(id) == Attachment::Attached;
    // Entering a tab is the way back from a lost connection: start afresh.
    browser.acknowledge_loss(id);
    browser
        .attach(id)
        .await
        .map_err(|e| format!("{command}: cannot attach to tab {id}: {e}"))?;
    session.cwd = Cwd::tab_root(id, via);
    if already && command == "here" {
        return Ok(format!("Already in tab {id} — {}", tab.title));
    }
    Ok(format!("✓ Entered tab {id}\r\n{}", format::tab_lines(tab)))
}

/// Where a browser-level path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Root,
    Tabs,
    Windows,
    Window(i64),
    /// A tab chosen by id or pattern, optionally inside a window.
    Tab {
        selector: String,
        window: Option<i64>,
    },
    /// An already known tab (the current one, e.g. after `cd .` inside it).
    Current,
    /// Inside a page: needs the accessibility-tree mapping.
    Page,
    /// `%here%`: the active tab of the focused window, entered through its window.
    Here,
    /// `%here%/..`: that tab's window.
    HereWindow,
}

fn resolve(cwd: &Cwd, path: &str) -> Result<Place, String> {
    let (mut place, rest) = if let Some(rest) = path.strip_prefix("%here%") {
        (Place::Here, rest)
    } else if let Some(rest) = path.strip_prefix('~') {
        (Place::Root, rest)
    } else if let Some(rest) = path.strip_prefix('/') {
        (Place::Root, rest)
    } else {
        let place = match cwd {
            Cwd::Root => Place::Root,
            Cwd::Tabs => Place::Tabs,
            Cwd::Windows => Place::Windows,
            Cwd::Window { window } => Place::Window(*window),
            Cwd::Tab { dom, .. } if !dom.is_empty() => Place::Page,
            Cwd::Tab { .. } => Place::Current,
        };
        (place, path)
    };
    if !rest.is_empty() && !rest.starts_with('/') && (path.starts_with('~') || place == Place::Here)
    {
        return Err(format!("cd: {path}: No such directory"));
    }
    for segment in rest.split('/').filter(|s| !s.is_empty() && *s != ".") {
        place = match (place, segment) {
            (Place::Root, "..") => Place::Root,
            (Place::Root, s) if s.eq_ignore_ascii_case("tabs") => Place::Tabs,
            (Place::Root, s) if s.eq_ignore_ascii_case("windows") => Place::Windows,
            (Place::Root, s) => {
                return Err(format!(
                    "cd: {s}: No such directory (at ~ there are tabs/ and windows/)"
                ))
            }
            (Place::Tabs | Place::Windows, "..") => Place::Root,
            (Place::Tabs, s) => Place::Tab {
                selector: s.to_string(),
                window: None,
            },
            (Place::Windows, s) => Place::Window(s.parse().map_err(|_| {
                format!("cd: {s}: No such window (window ids are numbers; see `windows`)")
            })?),
            (Place::Window(_), "..") => Place::Windows,
            (Place::Window(w), s) => Place::Tab {
                selector: s.to_string(),
                window: Some(w),
            },
            (Place::Tab { window, .. }, "..") => match window {
                Some(w) => Place::Window(w),
                None => Place::Tabs,
            },
            (Place::Current, "..") => match cwd {
                Cwd::Tab {
                    via_window: Some(w),
                    ..
                } => Place::Window(*w),
                _ => Place::Tabs,
            },
            (Place::Tab { .. } | Place::Current | Place::Page, _) => Place::Page,
            (Place::Here, "..") => Place::HereWindow,
            (Place::HereWindow, "..") => Place::Windows,
            (Place::Here, _) => Place::Page,
            (Place::HereWindow, s) => {
                return Err(format!(
                    "cd: {s}: after %here%/.. give the tab by its full path (~/windows/<id>/<tab>)"
                ))
            }
        };
    }
    Ok(place)
}

async fn cd<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    args: &Args,
) -> Result<String, String> {
    if args.positional.len() > 1 {
        return Err(
            "cd: too many arguments; quote a pattern with spaces: cd ~/tabs/\"my title\"".into(),
        );
    }
    let path = args.positional.first().map(String::as_str).unwrap_or("~");
    match resolve(&session.cwd, path)? {
        Place::Root => set(session, Cwd::Root),
        Place::Tabs => set(session, Cwd::Tabs),
        Place::Windows => set(session, Cwd::Windows),
        Place::Window(w) => {
            let windows = browser.windows().await.map_err(super::plain)?;
            if !windows.iter().any(|win| win.id == Some(w)) {
                return Err(format!("cd: {w}: No such window (see `windows`)"));
            }
            set(session, Cwd::Window { window: w })
        }
        Place::Current => Ok(String::new()),
        Place::Page => Err(
            "cd: moving inside a page is not available yet in this build (only ~, ~/tabs/<id> and ~/windows/<id> work)".into(),
        ),
        Place::Here => {
            let tab = browser
                .focused_tab()
                .await
                .map_err(super::plain)?
                .ok_or("cd: %here%: no active tab in the focused window")?;
            let via = tab.window_id;
            enter(session, browser, ctx, "cd", &tab, via).await
        }
        Place::HereWindow => {
            let tab = browser
                .focused_tab()
                .await
                .map_err(super::plain)?
                .ok_or("cd: %here%: no active tab in the focused window")?;
            let window = tab
                .window_id
                .ok_or("cd: %here%/..: the active tab has no window")?;
            set(session, Cwd::Window { window })
        }
        Place::Tab { selector, window } => {
            let tab = select_tab(browser, &selector, window).await?;
            enter(session, browser, ctx, "cd", &tab, window).await
        }
    }
}

fn set(session: &mut Session, cwd: Cwd) -> Result<String, String> {
    session.cwd = cwd;
    Ok(String::new())
}

/// A tab by id, or the one tab whose title or URL contains `selector` (case-insensitive).
async fn select_tab<B: Browser>(
    browser: &B,
    selector: &str,
    window: Option<i64>,
) -> Result<TabInfo, String> {
    let tabs: Vec<TabInfo> = browser
        .tabs()
        .await
        .map_err(super::plain)?
        .into_iter()
        .filter(|t| window.is_none() || t.window_id == window)
        .collect();
    let place = match window {
        Some(w) => format!(" in window {w}"),
        None => String::new(),
    };
    if let Ok(id) = selector.parse::<i64>() {
        return tabs
            .into_iter()
            .find(|t| t.id == Some(id))
            .ok_or_else(|| format!("cd: {id}: No such tab{place} (see `tabs`)"));
    }
    let needle = selector.to_lowercase();
    let matches: Vec<TabInfo> = tabs
        .into_iter()
        .filter(|t| {
            t.title.to_lowercase().contains(&needle) || t.url.to_lowercase().contains(&needle)
        })
        .collect();
    match matches.len() {
        0 => Err(format!(
            "cd: {selector}: No such tab{place} (no title or URL contains it; see `tabs`)"
        )),
        1 => Ok(matches.into_iter().next().unwrap_or_default()),
        n => {
            let mut lines = vec![format!(
                "cd: {selector}: matches {n} tabs{place}; enter one by id:"
            )];
            lines.extend(matches.iter().map(|t| {
                format!(
                    "  {} {} {}",
                    t.id.map(|i| i.to_string()).unwrap_or_default(),
                    format::clip(&t.title, 36),
                    t.url
                )
            }));
            Err(lines.join("\r\n"))
        }
    }
}

async fn ls<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    // Browser-level listings are always long and complete: `-l` and `-a` change nothing, and
    // are accepted so `ls -la` works everywhere.
    expect_flags(cmd, args, &["--json", "-l", "--long", "-a", "--all"])?;
    let place = match args.positional.first() {
        Some(path) => resolve(&session.cwd, path).map_err(|e| e.replacen("cd:", "ls:", 1))?,
        None => resolve(&session.cwd, ".")?,
    };
    let json = args.has("--json");
    let current = session.tab();
    match place {
        Place::Root => {
            let windows = browser.windows().await.map_err(super::plain)?;
            let active = browser
                .focused_tab()
                .await
                .map_err(super::plain)?;
            if json {
                Ok(serde_json::json!({
                    "windows": windows.len(),
                    "tabs": windows.iter().map(|w| w.tabs.len()).sum::<usize>(),
                    "activeTab": active.as_ref().and_then(|t| t.id),
                })
                .to_string())
            } else {
                Ok(format::root_listing(&windows, active.as_ref()))
            }
        }
        Place::Tabs => {
            let tabs = browser.tabs().await.map_err(super::plain)?;
            Ok(if json {
                format::tabs_json(&tabs, current, &ctx.domains).to_string()
            } else {
                format::tabs_table(&tabs, current, &ctx.domains)
            })
        }
        Place::Windows => {
            let windows = browser.windows().await.map_err(super::plain)?;
            Ok(if json {
                format::windows_json(&windows, current, &ctx.domains).to_string()
            } else {
                format::windows_tree(&windows, current, &ctx.domains)
            })
        }
        Place::Window(w) => {
            let windows = browser.windows().await.map_err(super::plain)?;
            let window: Vec<_> = windows.into_iter().filter(|x| x.id == Some(w)).collect();
            if window.is_empty() {
                return Err(format!("ls: {w}: No such window (see `windows`)"));
            }
            Ok(if json {
                format::windows_json(&window, current, &ctx.domains).to_string()
            } else {
                format::windows_tree(&window, current, &ctx.domains)
            })
        }
        Place::Tab { .. } | Place::Current | Place::Page | Place::Here | Place::HereWindow => Err(
            "ls: that path is inside a tab you are not in; enter it first (cd ~/tabs/<id>), then ls <path>".into(),
        ),
    }
}

/// The load wait a command asked for with `--timeout S`, within the server's deadline.
fn wait_ms(cmd: &Command, args: &Args, ctx: &Context) -> Result<u64, String> {
    let Some(text) = args.value("--timeout") else {
        return Ok(ctx.load_timeout_ms);
    };
    let seconds: f64 = parse_f64(text)
        .filter(|s: &f64| s.is_finite() && *s > 0.0)
        .ok_or_else(|| {
            format!(
                "{}: --timeout expects seconds (e.g. 10), got '{text}'",
                cmd.name
            )
        })?;
    Ok(((seconds * 1000.0) as u64).min(ctx.wait_cap_ms))
}

/// After a load: the tab as it ended up, checked against the allowlist (redirects!).
pub(crate) fn loaded<B: Browser>(
    browser: &B,
    outcome: LoadOutcome,
    command: &str,
    wait_ms: u64,
) -> Result<(TabInfo, Option<String>), String> {
    match outcome {
        LoadOutcome::Complete(tab) => Ok((tab, None)),
        // The wait ended early: the page's dialog (reported with how to answer it) holds
        // the load.
        LoadOutcome::TimedOut(tab)
            if tab.id.is_some_and(|id| browser.open_dialog(id).is_some()) =>
        {
            Ok((
                tab,
                Some("  (still loading: a JavaScript dialog the page opened holds it)".into()),
            ))
        }
        LoadOutcome::TimedOut(tab) => Ok((
            tab,
            Some(format!(
                "  (still loading after {:.1} s; the page may be incomplete — `refresh` waits again)",
                wait_ms as f64 / 1000.0
            )),
        )),
        LoadOutcome::Gone => Err(format!("{command}: the tab closed while loading")),
    }
}

fn final_url(tab: &TabInfo) -> &str {
    if tab.url.is_empty() {
        tab.pending_url.as_deref().unwrap_or("")
    } else {
        &tab.url
    }
}

fn target_url(cmd: &Command) -> Result<String, String> {
    // Exactly the grammar's navigation target: what the server checked. It refuses any form
    // (a second URL, an unknown flag) that one side could read differently from the other.
    match cmd.navigation_target().map_err(|e| e.to_string())? {
        Some(target) => Ok(navigation_url(&target)),
        None => Err(format!(
            "{0}: missing URL; usage: {0} <url> (the URL is the first argument, e.g. `{0} https://example.com`)",
            cmd.name
        )),
    }
}

async fn open<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let url = target_url(cmd)?;
    check_navigation(&url, &ctx.domains).map_err(|r| format!("open: {r}"))?;
    let wait = wait_ms(cmd, args, ctx)?;
    open_url(session, browser, ctx, "open", &url, wait).await
}

/// Opens `url` (checked against the allowlist already) in a new tab and enters it.
pub(crate) async fn open_url<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    command: &str,
    url: &str,
    wait: u64,
) -> Result<String, String> {
    let tab = browser
        .create_tab(BLANK)
        .await
        .map_err(|e| format!("{command}: {e}"))?;
    let id = tab
        .id
        .ok_or_else(|| format!("{command}: Chrome created a tab without an id"))?;
    let (tab, note) = load_new_tab(browser, ctx, command, id, url, wait).await?;
    session.cwd = Cwd::tab_root(id, None);
    let mut out = format!("✓ Opened new tab {id}\r\n{}", format::tab_lines(&tab));
    if let Some(note) = note {
        out.push_str("\r\n");
        out.push_str(&note);
    }
    Ok(out)
}

/// What a new tab is created at: it is sent to its page only once the debugger listens.
pub(crate) const BLANK: &str = "about:blank";

/// Sends a tab just created blank to `url`, waits for it to load, closes it if it ended up
/// outside the allowlist, and attaches to it: the tab as loaded, with a note when it is not
/// complete.
pub(crate) async fn load_new_tab<B: Browser>(
    browser: &B,
    ctx: &Context,
    command: &str,
    id: i64,
    url: &str,
    wait: u64,
) -> Result<(TabInfo, Option<String>), String> {
    let blank = url.eq_ignore_ascii_case(BLANK);
    let outcome = if blank {
        // about:blank may count no load: its status says when it is there.
        browser.wait_for_load(id, None, wait).await
    } else {
        // Attached before the page exists: a dialog the page opens while it loads (an
        // `alert` in an inline script) is then seen and reported. One that opens before the
        // debugger listens can be neither seen nor answered through it, and it holds the
        // attach itself. Nothing is read before the allowlist check below.
        let _ = browser
            .wait_for_load(id, None, wait.min(BLANK_WAIT_MS))
            .await;
        browser
            .attach(id)
            .await
            .map_err(|e| format!("{command}: opened tab {id} but cannot attach to it: {e}"))?;
        let since = browser.load_mark(id);
        browser
            .navigate_tab(id, url)
            .await
            .map_err(|e| format!("{command}: opened tab {id} but cannot load {url}: {e}"))?;
        let outcome = page_load(browser, id, since, wait).await;
        // The blank page is no step back: the new tab's history starts at its page. (A page
        // that has not committed by now keeps the blank entry; `back` then shows it.)
        if matches!(&outcome, Ok(LoadOutcome::Complete(tab) | LoadOutcome::TimedOut(tab)) if !tab.url.eq_ignore_ascii_case(BLANK))
        {
            let _ = cdp::call(browser, id, None, &cdp::ResetNavigationHistory).await;
        }
        outcome
    }
    .map_err(|e| format!("{command}: {e}"))?;
    let (tab, note) = loaded(browser, outcome, command, wait)?;
    if let Err(refusal) = check_navigation(final_url(&tab), &ctx.domains) {
        let _ = browser.close_tab(id).await;
        return Err(format!(
            "{command}: the page ended up at {} and was closed: {refusal}",
            final_url(&tab)
        ));
    }
    browser
        .attach(id)
        .await
        .map_err(|e| format!("{command}: opened tab {id} but cannot attach to it: {e}"))?;
    Ok((tab, note))
}

/// The load of the page a new tab was sent to. The blank page it was made with may report
/// complete late, after the page was asked for: that load is not the page's, and the wait
/// goes on (a few times: the page's own load follows it).
async fn page_load<B: Browser>(
    browser: &B,
    id: i64,
    mut since: LoadMark,
    wait: u64,
) -> Result<LoadOutcome, super::browser::BrowserError> {
    for _ in 0..STALE_BLANK_LOADS {
        let outcome = browser.wait_for_load(id, Some(since), wait).await?;
        match &outcome {
            LoadOutcome::Complete(tab) if tab.url.eq_ignore_ascii_case(BLANK) => {
                since = browser.load_mark(id);
            }
            _ => return Ok(outcome),
        }
    }
    browser.wait_for_load(id, Some(since), wait).await
}

/// How long a new tab may take to show its blank page before it is attached anyway (it
/// takes milliseconds).
const BLANK_WAIT_MS: u64 = 2_000;

/// How many late loads of a new tab's blank page [`page_load`] passes over.
const STALE_BLANK_LOADS: usize = 3;

/// The session's tab for a navigation command (it need not be readable: leaving a page
/// outside the allowlist is fine, reading it is not).
async fn current_tab<B: Browser>(
    session: &mut Session,
    browser: &B,
    command: &str,
) -> Result<TabInfo, String> {
    let Some(id) = session.tab() else {
        return Err(format!(
            "{command}: not in a tab. `open <url>` opens one; `here` or `cd ~/tabs/<id>` enters one."
        ));
    };
    match browser
        .tab(id)
        .await
        .map_err(|e| format!("{command}: {e}"))?
    {
        Some(tab) => Ok(tab),
        None => {
            browser.acknowledge_loss(id);
            Err(gone(session, command, id))
        }
    }
}

/// After a navigation in the session's tab: refuse (and leave) a page outside the
/// allowlist, else stay at the tab's root.
pub(crate) fn settle(
    session: &mut Session,
    ctx: &Context,
    command: &str,
    done: &str,
    tab: &TabInfo,
    note: Option<String>,
) -> Result<String, String> {
    let id = tab.id.unwrap_or_default();
    if let Err(refusal) = check_page(final_url(tab), &ctx.domains) {
        session.cwd = Cwd::Root;
        return Err(format!(
            "{command}: the page ended up at {}: {refusal}. You are at ~ now; the tab stays open but cannot be read.",
            final_url(tab)
        ));
    }
    session.cwd = Cwd::tab_root(id, via_window(&session.cwd));
    let mut out = format!("✓ {done}\r\n{}", format::tab_lines(tab));
    if let Some(note) = note {
        out.push_str("\r\n");
        out.push_str(&note);
    }
    Ok(out)
}

async fn navigate<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let name = cmd.name.as_str();
    let url = target_url(cmd)?;
    check_navigation(&url, &ctx.domains).map_err(|r| format!("{name}: {r}"))?;
    let wait = wait_ms(cmd, args, ctx)?;
    let tab = current_tab(session, browser, name).await?;
    let id = tab.id.unwrap_or_default();
    let since = browser.load_mark(id);
    browser
        .navigate_tab(id, &url)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let since = (!url.eq_ignore_ascii_case("about:blank")).then_some(since);
    let outcome = browser
        .wait_for_load(id, since, wait)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let (tab, note) = loaded(browser, outcome, name, wait)?;
    settle(session, ctx, name, "Navigated", &tab, note)
}

async fn history_step<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let name = cmd.name.as_str();
    no_positionals(cmd, args)?;
    let wait = wait_ms(cmd, args, ctx)?;
    let tab = current_tab(session, browser, name).await?;
    let id = tab.id.unwrap_or_default();
    if let Attachment::Lost { reason } = browser.attachment(id) {
        browser.acknowledge_loss(id);
        return Err(format!(
            "{name}: the debugger connection to tab {id} was lost: {reason}. Nothing was done; run the command again to re-attach."
        ));
    }
    browser
        .attach(id)
        .await
        .map_err(|e| format!("{name}: cannot attach to tab {id}: {e}"))?;
    let history = browser
        .navigation_history(id)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let target = if name == "back" {
        history.current.checked_sub(1)
    } else {
        Some(history.current + 1).filter(|i| *i < history.entries.len())
    };
    let Some(entry) = target.and_then(|i| history.entries.get(i)) else {
        return Ok(if name == "back" {
            "No previous page in history.".into()
        } else {
            "No next page in history.".into()
        });
    };
    check_navigation(&entry.url, &ctx.domains).map_err(|r| format!("{name}: {r}"))?;
    let since = browser.load_mark(id);
    browser
        .go_to_history_entry(id, entry.id)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let since = (!entry.url.eq_ignore_ascii_case("about:blank")).then_some(since);
    let outcome = browser
        .wait_for_load(id, since, wait)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let (tab, note) = loaded(browser, outcome, name, wait)?;
    let done = if name == "back" { "Back" } else { "Forward" };
    settle(session, ctx, name, done, &tab, note)
}

async fn close<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    args: &Args,
) -> Result<String, String> {
    let id = match args.positional.as_slice() {
        [] => session
            .tab()
            .ok_or("close: not in a tab; give a tab id: close <tabId> (see `tabs`)")?,
        [word] => word
            .parse::<i64>()
            .map_err(|_| format!("close: `{word}` is not a tab id (see `tabs`)"))?,
        _ => return Err("close: too many arguments; usage: close [tabId]".into()),
    };
    let tab = browser
        .tab(id)
        .await
        .map_err(super::plain)?
        .ok_or_else(|| format!("close: no tab with id {id} (see `tabs`)"))?;
    check_page(&tab.url, &ctx.domains).map_err(|r| format!("close: tab {id}: {r}"))?;
    if browser.attachment(id) == Attachment::Attached {
        if let Some(open) = browser.open_dialog(id) {
            return Err(format!(
                "close: not run: tab {id} has a JavaScript dialog open — {}\r\nAnswer it first: {}.",
                dialog::describe(&open),
                dialog::how_to_answer(&open)
            ));
        }
        if !close_through_page(browser, id).await? {
            // Closing detaches anyway; an error here must not keep the tab open.
            let _ = browser.detach(id).await;
            browser.close_tab(id).await.map_err(super::plain)?;
        }
    } else {
        browser.close_tab(id).await.map_err(super::plain)?;
    }
    browser.acknowledge_loss(id);
    if session.tab() == Some(id) {
        session.cwd = Cwd::Root;
    }
    Ok(format!("✓ Closed: {}", tab.title))
}

/// How long `close` waits for an attached tab to go once its page was asked to close.
const CLOSE_WAIT_MS: u64 = 3_000;

/// Close an attached tab the way a person's click on its ✕ does: its `beforeunload` handler
/// runs, and because the debugger is attached, the dialog it may open comes to the agent
/// instead of waiting, unseen, on a person (`chrome.tabs.remove` on a detached tab would
/// hang until its timeout). `Ok(true)`: the tab is gone; `Ok(false)`: the page could not be
/// asked, close the tab from outside; `Err`: the page asks to confirm leaving it.
async fn close_through_page<B: Browser>(browser: &B, id: i64) -> Result<bool, String> {
    let since = browser.load_mark(id);
    let asked = browser.cdp(id, "Page.close", serde_json::json!({})).await;
    if asked.is_err() && browser.open_dialog(id).is_none() {
        // Refused (or the tab went meanwhile): no dialog is coming.
        return Ok(matches!(browser.tab(id).await, Ok(None)));
    }
    let outcome = browser.wait_for_load(id, Some(since), CLOSE_WAIT_MS).await;
    if matches!(outcome, Ok(LoadOutcome::Gone)) {
        return Ok(true);
    }
    match browser.open_dialog(id) {
        Some(open) if open.kind == "beforeunload" => Err(
            "close: the page asks to confirm leaving it (beforeunload dialog); the tab stays open until you answer: `dialog accept` closes it, `dialog dismiss` keeps it."
                .into(),
        ),
        Some(open) => Err(format!(
            "close: the page opened a JavaScript dialog while closing — {}\r\nAnswer it: {}.",
            dialog::describe(&open),
            dialog::how_to_answer(&open)
        )),
        None => Ok(false),
    }
}
