//! Lanes at work: the `group` command (`group`, `group new`, `group attach`, `group
//! detach`, `group close`, `group list`), the lane parameters an `EXECUTE` carries
//! (`group_id`, `initial_url`, `group_name`, `window_id`), applied before its line runs, and
//! closing a lane (also for the worker, when a lane's last session ended).
//!
//! It owns minting (a background tab in a normal window, grouped and titled; on any
//! failure the tab is closed again, so a failed mint leaves nothing), joining, and the
//! session's move between lanes. The rules of who sees what and when a lane closes are
//! [`super::lanes`]'s. It calls Chrome only through the [`Browser`] port, unconfined: it is
//! the one command that sees every lane.

use std::cell::RefCell;
use std::rc::Rc;

use shared_protocol::grammar::Command;

use super::access::check_navigation;
use super::browser::{Browser, TabInfo};
use super::lanes::{self, ClosePlan, Lane, LaneBook};
use super::session::{Cwd, Session};
use super::{expect_flags, format, navigation, parse_args, Context};

/// The worker's book of lanes, shared by every session's commands.
pub type LaneCell = Rc<RefCell<LaneBook>>;

/// The lane parameters of one `EXECUTE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaneRequest {
    /// No `group_id`: the session stays where it is; `initial_url` alone opens that page
    /// in a new tab there first.
    Keep { open: Option<String> },
    /// `group_id: "shared"`: the user's tabs (and `initial_url` opened there first).
    Shared { open: Option<String> },
    /// `group_id: "<id>"`: join that lane.
    Join(String),
    /// `group_id: "new"`: mint a lane, optionally at a page, with a name, in a window.
    New {
        url: Option<String>,
        name: Option<String>,
        window: Option<i64>,
    },
}

impl LaneRequest {
    /// From the `EXECUTE` fields, as the server sends them (it sends the mint once).
    pub fn from_frame(
        group_id: Option<&str>,
        initial_url: Option<&str>,
        group_name: Option<&str>,
        window_id: Option<i64>,
    ) -> LaneRequest {
        let present = |v: Option<&str>| {
            v.map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        match group_id.map(str::trim) {
            None | Some("") => LaneRequest::Keep {
                open: present(initial_url),
            },
            Some(g) if g.eq_ignore_ascii_case("shared") => LaneRequest::Shared {
                open: present(initial_url),
            },
            Some(g) if g.eq_ignore_ascii_case(shared_protocol::tier::NEW_LANE) => {
                LaneRequest::New {
                    url: present(initial_url),
                    name: present(group_name),
                    window: window_id,
                }
            }
            Some(g) => LaneRequest::Join(g.to_string()),
        }
    }
}

/// Before a line runs: applies the `EXECUTE`'s lane parameters, and refuses the line when
/// the session's lane was closed meanwhile (the session goes back to the user's tabs, at
/// `~`, and nothing runs: the line was meant for the lane). Returns what a mint reports.
pub async fn prepare<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
) -> Result<Option<String>, String> {
    let open = match &ctx.lane_request {
        LaneRequest::Keep { open } => {
            if let Some(id) = session.lane {
                if ctx.lanes.borrow().get(id).is_none() {
                    session.leave_closed_lane(id);
                    return Err(format!(
                        "lane {id} was closed, so nothing was done; this session is in the user's tabs now, at ~. `group new` makes a new lane."
                    ));
                }
            }
            open
        }
        LaneRequest::Shared { open } => {
            session.switch_lane(None);
            open
        }
        LaneRequest::Join(text) => {
            let id = lanes::parse_id(text).map_err(|e| format!("group_id: {e}"))?;
            join(session, ctx, id).map_err(|e| format!("group_id: {e}"))?;
            return Ok(None);
        }
        LaneRequest::New { url, name, window } => {
            return mint(
                session,
                browser,
                ctx,
                "group_id \"new\"",
                url.as_deref(),
                name.as_deref(),
                *window,
            )
            .await
            .map(Some)
        }
    };
    let Some(url) = open else {
        return Ok(None);
    };
    // Opened as `open` would, where the session now is (in its lane, if it is in one).
    let url = shared_protocol::grammar::navigation_url(url);
    check_navigation(&url, &ctx.domains).map_err(|r| format!("initial_url: {r}"))?;
    let view = ctx.lanes.borrow().view(session.lane);
    let confined = super::confined::Confined::new(browser, view);
    navigation::open_url(
        session,
        &confined,
        ctx,
        "initial_url",
        &url,
        ctx.load_timeout_ms,
    )
    .await
    .map(Some)
}

fn join(session: &mut Session, ctx: &Context, id: i64) -> Result<(), String> {
    ctx.lanes
        .borrow_mut()
        .join(id, &ctx.session_name, ctx.now_ms)?;
    session.switch_lane(Some(id));
    Ok(())
}

/// Mints a lane and moves the session into it, at its first tab. Nothing is left behind
/// when it fails: the tab it opened is closed again.
async fn mint<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    command: &str,
    url: Option<&str>,
    name: Option<&str>,
    window: Option<i64>,
) -> Result<String, String> {
    let fail = |e: String| format!("{command}: lane mint failed: {e}; nothing was created");
    ctx.lanes.borrow().has_room().map_err(fail)?;
    let url = url.map_or_else(
        || "about:blank".to_string(),
        shared_protocol::grammar::navigation_url,
    );
    check_navigation(&url, &ctx.domains).map_err(|r| fail(r.to_string()))?;
    let windows = browser.windows().await.map_err(|e| fail(e.to_string()))?;
    let window = lanes::mint_window(&windows, window).map_err(fail)?;
    let tab = browser
        .create_background_tab(navigation::BLANK, window)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let id = tab
        .id
        .ok_or_else(|| fail("Chrome opened a tab without an id".into()))?;
    let name = lanes::clean_name(name);
    let grouped = async {
        let group = browser.group_tab(id, None).await?;
        browser
            .set_group_title(group, &lanes::title_for(&name))
            .await?;
        Ok::<i64, super::browser::BrowserError>(group)
    };
    let group = match grouped.await {
        Ok(group) => group,
        Err(e) => {
            let _ = browser.close_tab(id).await;
            return Err(fail(e.to_string()));
        }
    };
    let (tab, note) = match navigation::load_new_tab(
        browser,
        ctx,
        command,
        id,
        &url,
        ctx.load_timeout_ms,
    )
    .await
    {
        Ok(loaded) => loaded,
        Err(e) => {
            // The tab (and with it the group) may be closed already; closing again is harmless.
            let _ = browser.close_tab(id).await;
            return Err(format!("{e}; the lane was not kept"));
        }
    };
    ctx.lanes
        .borrow_mut()
        .mint(group, &name, &ctx.session_name, &ctx.agent, ctx.now_ms);
    session.switch_lane(Some(group));
    session.cwd = Cwd::tab_root(id, None);
    let mut out = format!(
        "✓ New lane {group} ({}): tab {id} in window {window}\r\n{}",
        lanes::title_for(&name),
        format::tab_lines(&tab)
    );
    if let Some(note) = note {
        out.push_str("\r\n");
        out.push_str(&note);
    }
    Ok(out)
}

/// Closes a lane as [`lanes::close_plan`] says, and says what it did.
pub async fn close_lane<B: Browser>(browser: &B, lane: &Lane) -> Result<ClosePlan, String> {
    let title = browser
        .group_title(lane.id)
        .await
        .map_err(|e| e.to_string())?;
    let tabs = browser.tabs().await.map_err(|e| e.to_string())?;
    let plan = lanes::close_plan(lane, title.as_deref(), &tabs);
    let mut failed = Vec::new();
    for tab in &plan.tabs {
        if let Err(e) = browser.close_tab(*tab).await {
            failed.push(format!("tab {tab}: {e}"));
        }
    }
    if failed.is_empty() {
        Ok(plan)
    } else {
        Err(format!("could not close {}", failed.join(", ")))
    }
}

/// The `group` command.
pub async fn run<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
) -> Result<String, String> {
    let args = parse_args(cmd)?;
    let sub = args
        .positional
        .first()
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default();
    let rest = args.positional.get(1..).unwrap_or_default();
    match sub.as_str() {
        "" => {
            expect_flags(cmd, &args, &[])?;
            current(session, browser, ctx).await
        }
        "new" => {
            expect_flags(cmd, &args, &["--url"])?;
            let name = rest.join(" ");
            let name = (!name.is_empty()).then_some(name.as_str());
            mint(
                session,
                browser,
                ctx,
                "group new",
                args.value("--url"),
                name,
                None,
            )
            .await
        }
        "attach" | "join" => {
            expect_flags(cmd, &args, &[])?;
            let [id] = rest else {
                return Err(
                    "group attach: usage: group attach <id> (`group list` shows the lanes)".into(),
                );
            };
            let id = lanes::parse_id(id).map_err(|e| format!("group attach: {e}"))?;
            join(session, ctx, id).map_err(|e| format!("group attach: {e}"))?;
            Ok(format!(
                "✓ In lane {id}; you are at {} there",
                session.cwd.display()
            ))
        }
        "detach" => {
            expect_flags(cmd, &args, &[])?;
            session.switch_lane(None);
            Ok(format!(
                "✓ In the user's tabs (shared); you are at {} there. The lanes you were in stay open.",
                session.cwd.display()
            ))
        }
        "close" => {
            expect_flags(cmd, &args, &[])?;
            let id = match rest {
                [] => session
                    .lane
                    .ok_or("group close: not in a lane; give its id: group close <id>")?,
                [id] => lanes::parse_id(id).map_err(|e| format!("group close: {e}"))?,
                _ => return Err("group close: usage: group close [id]".into()),
            };
            close(session, browser, ctx, id).await
        }
        "list" | "ls" => {
            expect_flags(cmd, &args, &["--json"])?;
            list(session, browser, ctx, args.has("--json")).await
        }
        other => Err(format!(
            "group: unknown subcommand `{other}`; usage: {}",
            super::commands::find("group")
                .map(|s| s.usage)
                .unwrap_or("")
        )),
    }
}

async fn current<B: Browser>(
    session: &Session,
    browser: &B,
    ctx: &Context,
) -> Result<String, String> {
    let Some(id) = session.lane else {
        return Ok("shared: this session works in the user's tabs (no lane). `group new [name]` makes a lane of its own.".into());
    };
    let tabs = browser.tabs().await.map_err(super::plain)?;
    let book = ctx.lanes.borrow();
    let lane = book
        .get(id)
        .ok_or_else(|| format!("group: lane {id} was closed"))?;
    Ok(format!(
        "lane {id} ({}): {} tab(s), {} session(s), made {} ago",
        lane.title,
        tabs.iter().filter(|t| lane.holds(t)).count(),
        lane.members.len(),
        format::duration_ms(ctx.now_ms.saturating_sub(lane.created_ms)),
    ))
}

async fn close<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    id: i64,
) -> Result<String, String> {
    let lane = {
        let book = ctx.lanes.borrow();
        let lane = book.get(id).cloned().ok_or_else(|| {
            format!("group close: lane {id} does not exist (`group list` shows the lanes)")
        })?;
        // The person at the browser may stop any agent; an agent only its own lanes.
        if ctx.session_name != lanes::PERSON && !lane.members.contains(&ctx.session_name) {
            return Err(format!(
                "group close: lane {id} belongs to other sessions; only a session in it may close it (`group attach {id}` first)"
            ));
        }
        lane
    };
    let plan = close_lane(browser, &lane)
        .await
        .map_err(|e| format!("group close: {e}"))?;
    ctx.lanes.borrow_mut().remove(id);
    session.leave_closed_lane(id);
    Ok(if plan.released {
        format!("✓ Lane {id} released: the group was renamed by the user, so its tabs stay open")
    } else {
        format!("✓ Closed lane {id} and its {} tab(s)", plan.tabs.len())
    })
}

async fn list<B: Browser>(
    session: &Session,
    browser: &B,
    ctx: &Context,
    json: bool,
) -> Result<String, String> {
    let tabs: Vec<TabInfo> = browser
        .tabs()
        .await
        .map_err(|e| format!("group list: {e}"))?;
    let book = ctx.lanes.borrow();
    if json {
        return Ok(lanes_json(&book, &tabs, ctx.now_ms, session.lane).to_string());
    }
    if book.is_empty() {
        return Ok("No lanes. `group new [name]` makes one.".into());
    }
    let mut lines = vec![format!("{} lane(s):", book.len())];
    for lane in book.list() {
        let mark = if session.lane == Some(lane.id) {
            "*"
        } else {
            " "
        };
        lines.push(format!(
            "{mark} {}  {}  {}  {} tab(s)  {} session(s)  {} old  last: {}",
            lane.id,
            lane.title,
            if lane.agent.is_empty() {
                "?"
            } else {
                lane.agent.as_str()
            },
            tabs.iter().filter(|t| lane.holds(t)).count(),
            lane.members.len(),
            format::duration_ms(ctx.now_ms.saturating_sub(lane.created_ms)),
            if lane.last_command.is_empty() {
                "-"
            } else {
                lane.last_command.as_str()
            }
        ));
    }
    Ok(lines.join("\r\n"))
}

/// Every lane as `group list --json` lists it (and the side panel shows it), `current`
/// marking the session's own.
pub fn lanes_json(
    book: &LaneBook,
    tabs: &[TabInfo],
    now_ms: u64,
    current: Option<i64>,
) -> serde_json::Value {
    book.list()
        .map(|lane| {
            serde_json::json!({
                "id": lane.id,
                "title": lane.title,
                "owner": lane.owner,
                "agent": lane.agent,
                "sessions": lane.members.len(),
                "tabs": tabs.iter().filter(|t| lane.holds(t)).count(),
                "ageMs": now_ms.saturating_sub(lane.created_ms),
                "lastCommand": lane.last_command,
                "current": current == Some(lane.id),
            })
        })
        .collect()
}
