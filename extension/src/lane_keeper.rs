//! The worker's lanes at runtime: the one [`LaneBook`] every session's commands share, kept
//! in `chrome.storage.session` so a restarted worker resumes its lanes, and the events that
//! change it outside any command — a session ending, the link coming up (the grace period
//! after which lanes of sessions the server no longer announces are reaped), tabs a lane's
//! pages open, tabs and groups the user closes.
//!
//! It owns I/O only: what a lane holds, who may see it and what closing it closes are
//! decided by [`crate::shell::lanes`] and done by [`crate::shell::group::close_lane`].

use std::cell::{Cell, RefCell};

use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};

use shared_protocol::frame::{Frame, LaneReport};

use crate::chrome::{self, to_js, ChromeBrowser};
use crate::shell::browser::{Browser, TabInfo};
use crate::shell::deadline::DeadlineBrowser;
use crate::shell::group::{self, LaneCell};
use crate::shell::lanes::{Lane, LaneBook, STORAGE_KEY};

/// What closing one lane may take (a `chrome.tabs.remove` per tab).
const CLOSE_BUDGET_MS: u64 = 10_000;
/// The grace period, in the server's silence limits (3 minutes by default): the server
/// announces the sessions it knows at once, but a relay's host that reattached to a new
/// server is known there only from its next command.
const GRACE_SILENCE_LIMITS: u64 = 3;
/// The grace period before the first `WELCOME` says the server's silence limit.
const DEFAULT_GRACE_MS: u64 = shared_protocol::DEFAULT_SILENCE_LIMIT_MS * GRACE_SILENCE_LIMITS;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["chrome", "storage", "session"], js_name = set)]
    fn session_storage_set(items: &JsValue) -> js_sys::Promise;
    #[wasm_bindgen(js_namespace = console, js_name = info)]
    fn console_info(text: &str);
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(text: &str);
}

thread_local! {
    static LANES: LaneCell = LaneCell::default();
    /// The book's stored text as last written, so unchanged books are not written again.
    static SAVED: RefCell<String> = const { RefCell::new(String::new()) };
    static GRACE_MS: Cell<u64> = const { Cell::new(DEFAULT_GRACE_MS) };
    /// Tabs created lately, with when: (id, wall-clock ms), oldest first.
    static RECENT_TABS: RefCell<Vec<(i64, f64)>> = const { RefCell::new(Vec::new()) };
    /// Pages that asked for a new tab lately and have not got it yet: (opener tab, URL,
    /// wall-clock ms), oldest first.
    static OPENS: RefCell<Vec<(i64, String, f64)>> = const { RefCell::new(Vec::new()) };
    /// Whether [`pair_opens_with_tabs`] runs.
    static MATCHING: Cell<bool> = const { Cell::new(false) };
    /// Per window, the tabs lately in front, most recent last: (window, tabs), at most
    /// [`MAX_RECENT_TABS`] windows of [`FRONT_HISTORY`] tabs.
    static FRONT: RefCell<Vec<(i64, Vec<i64>)>> = const { RefCell::new(Vec::new()) };
}

/// Tabs remembered after their creation, at most, and for how long.
const MAX_RECENT_TABS: usize = 32;
const RECENT_TAB_MS: f64 = 5_000.0;
/// Tabs remembered per window as having been in front.
const FRONT_HISTORY: usize = 8;
/// How often the tab a page opened is looked for (for [`RECENT_TAB_MS`] at most).
const PLACE_POLL_MS: u64 = 100;

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// The book, for a command's context.
pub fn book() -> LaneCell {
    LANES.with(Clone::clone)
}

/// At start-up: the lanes the previous worker kept (from all of `chrome.storage.session`).
pub fn restore(items: &Value) {
    let Some(stored) = items.get(STORAGE_KEY) else {
        return;
    };
    match LaneBook::from_storage(stored) {
        Ok(book) => {
            if !book.is_empty() {
                console_info(&format!("domshell: resumed {} lane(s)", book.len()));
            }
            SAVED.with(|s| *s.borrow_mut() = book.to_storage().to_string());
            LANES.with(|l| *l.borrow_mut() = book);
        }
        Err(e) => console_warn(&format!("domshell: {e}")),
    }
}

/// Writes the book if it changed since it was last written.
pub fn persist() {
    let value = LANES.with(|l| l.borrow().to_storage());
    let text = value.to_string();
    let changed = SAVED.with(|s| {
        let mut saved = s.borrow_mut();
        let changed = *saved != text;
        if changed {
            saved.clone_from(&text);
        }
        changed
    });
    if !changed {
        return;
    }
    report();
    let promise = session_storage_set(&to_js(&json!({ STORAGE_KEY: value })));
    spawn_local(async move {
        if let Err(e) = JsFuture::from(promise).await {
            console_warn(&format!(
                "domshell: cannot save the lanes: {}",
                chrome::error_text(&e)
            ));
        }
    });
}

/// Tells the server which lanes are open (`LANES`), with their tab counts, for
/// `domshell_status` and `/health`.
pub fn report() {
    spawn_local(async {
        let tabs = ChromeBrowser.tabs().await.unwrap_or_default();
        let now = now_ms();
        let lanes = LANES.with(|l| {
            l.borrow()
                .list()
                .map(|lane| LaneReport {
                    id: lane.id.to_string(),
                    name: lane.name.clone(),
                    owner: lane.owner.clone(),
                    agent: lane.agent.clone(),
                    sessions: lane.members.len() as u32,
                    tabs: tabs.iter().filter(|t| lane.holds(t)).count() as u32,
                    age_ms: now.saturating_sub(lane.created_ms),
                    last_command: lane.last_command.clone(),
                })
                .collect()
        });
        crate::worker::send_to_server(&Frame::Lanes { lanes });
    });
}

/// The server announced or used `session`: it is alive.
pub fn confirm(session: &str) {
    if LANES.with(|l| l.borrow_mut().confirm(session)) {
        persist();
    }
}

/// `SESSION_END`: the session leaves its lanes; those it was the last in are closed.
pub fn end_session(session: &str) {
    let ended = LANES.with(|l| l.borrow_mut().end_session(session));
    persist();
    close_all(ended, "its last session ended");
}

/// The link came up: the server announces its live sessions now; lanes none of whose
/// sessions it announces (or uses) within the grace period are reaped then.
pub fn link_up(silence_limit_ms: u64) {
    let grace_ms = silence_limit_ms.saturating_mul(GRACE_SILENCE_LIMITS);
    GRACE_MS.with(|g| g.set(grace_ms));
    LANES.with(|l| l.borrow_mut().link_up(now_ms()));
    persist();
    report();
    spawn_local(async move {
        chrome::sleep(grace_ms.saturating_add(100)).await;
        reap();
    });
}

/// Reaps lanes whose grace period ended (also run from the alarm, in case the worker was
/// stopped while it waited).
pub fn reap() {
    let grace = GRACE_MS.with(Cell::get);
    let due = LANES.with(|l| l.borrow_mut().reap(now_ms(), grace));
    if due.is_empty() {
        return;
    }
    persist();
    close_all(due, "none of its sessions came back");
}

fn close_all(lanes: Vec<Lane>, why: &'static str) {
    if lanes.is_empty() {
        return;
    }
    spawn_local(async move {
        let browser = DeadlineBrowser::new(&ChromeBrowser, CLOSE_BUDGET_MS);
        for lane in lanes {
            match group::close_lane(&browser, &lane).await {
                Ok(plan) if plan.released => console_info(&format!(
                    "domshell: lane {} released ({why}): the user renamed its group",
                    lane.id
                )),
                Ok(plan) => console_info(&format!(
                    "domshell: closed lane {} and {} tab(s): {why}",
                    lane.id,
                    plan.tabs.len()
                )),
                Err(e) => console_warn(&format!("domshell: closing lane {}: {e}", lane.id)),
            }
        }
    });
}

/// `chrome.tabs.onCreated`: remembered a while, to be matched with the page that opened it.
pub fn on_tab_created(tab: TabInfo) {
    let Some(id) = tab.id else {
        return;
    };
    RECENT_TABS.with(|r| {
        let mut recent = r.borrow_mut();
        if recent.len() >= MAX_RECENT_TABS {
            recent.remove(0);
        }
        recent.push((id, js_sys::Date::now()));
    });
}

/// `Page.windowOpen` in an attached tab: a tab its page opens (`target=_blank`,
/// `window.open`) belongs where the page is. Chrome decides by the *active* tab of the
/// window: a link an agent follows in its background lane tab opens in the user's tabs
/// (or in another lane) unless put right here. Opens are paired with the tabs created
/// since, first with first (Chrome creates them in the order the pages asked), by URL, and
/// each new tab is moved: into the opener's lane (its group, or its popups when Chrome
/// cannot group it), or out of any lane when the opener is the user's.
pub fn on_window_open(opener: i64, url: String) {
    OPENS.with(|o| {
        let mut opens = o.borrow_mut();
        if opens.len() >= MAX_RECENT_TABS {
            opens.remove(0);
        }
        opens.push((opener, url, js_sys::Date::now()));
    });
    if !MATCHING.with(|m| m.replace(true)) {
        spawn_local(pair_opens_with_tabs());
    }
}

/// Runs while opens wait for their tab; one at a time ([`MATCHING`]).
async fn pair_opens_with_tabs() {
    let browser = ChromeBrowser;
    loop {
        let now = js_sys::Date::now();
        OPENS.with(|o| {
            o.borrow_mut()
                .retain(|(_, _, at)| now - at <= RECENT_TAB_MS)
        });
        let Some((opener, url, _)) = OPENS.with(|o| o.borrow().first().cloned()) else {
            break;
        };
        let candidates: Vec<i64> = RECENT_TABS.with(|r| {
            r.borrow()
                .iter()
                .filter(|(id, at)| now - at <= RECENT_TAB_MS && *id != opener)
                .map(|(id, _)| *id)
                .collect()
        });
        let mut found = None;
        for id in candidates {
            if let Ok(Some(tab)) = browser.tab(id).await {
                if tab.url == url || tab.pending_url.as_deref() == Some(url.as_str()) {
                    found = Some(tab);
                    break;
                }
            }
        }
        match found {
            Some(tab) => {
                let id = tab.id.unwrap_or_default();
                RECENT_TABS.with(|r| r.borrow_mut().retain(|(t, _)| *t != id));
                OPENS.with(|o| {
                    o.borrow_mut().remove(0);
                });
                place(&browser, opener, tab).await;
            }
            None => chrome::sleep(PLACE_POLL_MS).await,
        }
    }
    MATCHING.with(|m| m.set(false));
}

async fn place(browser: &ChromeBrowser, opener: i64, tab: TabInfo) {
    let Some(id) = tab.id else {
        return;
    };
    let Ok(Some(opener)) = browser.tab(opener).await else {
        return;
    };
    let (belongs, now_in) = LANES.with(|l| {
        let book = l.borrow();
        (book.lane_of(&opener), book.lane_of(&tab))
    });
    match belongs {
        // Chrome cannot group it (a popup window): it is the lane's popup.
        Some(lane) if now_in != Some(lane) && browser.group_tab(id, Some(lane)).await.is_err() => {
            LANES.with(|l| l.borrow_mut().add_popup(lane, id));
            persist();
        }
        None if now_in.is_some() => {
            if let Err(e) = chrome::ungroup_tab(id).await {
                console_warn(&format!(
                    "domshell: tab {id}, opened from the user's tab {}, is left in a lane: {e}",
                    opener.id.unwrap_or_default()
                ));
            }
        }
        _ => {}
    }
    // Chrome brings a tab a link opens to the front: an agent's link must not take the
    // user's view (also when Chrome put the tab in the right group itself).
    if belongs.is_some() {
        give_back_front(browser, id).await;
    }
}

/// `chrome.tabs.onActivated`: remembered per window, so that a lane's tab Chrome brought
/// to the front can give the front back.
pub fn on_tab_activated(tab: i64, window: i64) {
    FRONT.with(|f| {
        let mut front = f.borrow_mut();
        let at = match front.iter().position(|(w, _)| *w == window) {
            Some(at) => at,
            None => {
                if front.len() >= MAX_RECENT_TABS {
                    front.remove(0);
                }
                front.push((window, Vec::new()));
                front.len() - 1
            }
        };
        let tabs = &mut front[at].1;
        tabs.retain(|t| *t != tab);
        if tabs.len() >= FRONT_HISTORY {
            tabs.remove(0);
        }
        tabs.push(tab);
    });
}

/// The tabs lately in front in `window`, most recent first.
fn fronts(window: i64) -> Vec<i64> {
    FRONT.with(|f| {
        f.borrow()
            .iter()
            .find(|(w, _)| *w == window)
            .map(|(_, tabs)| tabs.iter().rev().copied().collect())
            .unwrap_or_default()
    })
}

/// A tab a lane's page opened is in front (Chrome brings a link's tab forward): the user's
/// tab that was in front last gets the front back. A lane's tab the user brought forward
/// is left alone: only tabs agents' pages opened come here.
async fn give_back_front(browser: &ChromeBrowser, lane_tab: i64) {
    let Ok(Some(now)) = browser.tab(lane_tab).await else {
        return;
    };
    let Some(window) = now.window_id.filter(|_| now.active) else {
        return;
    };
    for candidate in fronts(window).into_iter().filter(|t| *t != lane_tab) {
        let Ok(Some(tab)) = browser.tab(candidate).await else {
            continue;
        };
        if tab.window_id != Some(window) || LANES.with(|l| l.borrow().lane_of(&tab)).is_some() {
            continue;
        }
        if let Err(e) = chrome::give_back_tab(candidate).await {
            console_warn(&format!(
                "domshell: cannot give the front back to tab {candidate}: {e}"
            ));
        }
        return;
    }
}

/// `chrome.tabs.onRemoved`.
pub fn on_tab_removed(tab: i64) {
    if LANES.with(|l| l.borrow_mut().forget_tab(tab)) {
        persist();
    }
}

/// `chrome.tabGroups.onRemoved`: the lane's last tab closed (or the user ungrouped it);
/// the lane is over, and a session still in it is told so at its next command.
pub fn on_group_removed(group: i64) {
    if LANES.with(|l| l.borrow_mut().remove(group)).is_some() {
        console_info(&format!(
            "domshell: lane {group} ended: its tab group is gone"
        ));
        persist();
    }
}
