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

use crate::chrome::{self, to_js, ChromeBrowser};
use crate::shell::browser::{Browser, TabInfo};
use crate::shell::deadline::DeadlineBrowser;
use crate::shell::group::{self, LaneCell};
use crate::shell::lanes::{Lane, LaneBook, STORAGE_KEY};

/// What closing one lane may take (a `chrome.tabs.remove` per tab).
const CLOSE_BUDGET_MS: u64 = 10_000;
/// The grace period before the first `WELCOME` says the server's silence limit.
const DEFAULT_GRACE_MS: u64 = shared_protocol::DEFAULT_SILENCE_LIMIT_MS;

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
}

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
    let text = LANES.with(|l| l.borrow().to_storage().to_string());
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
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
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

/// The server announced or used `session`: it is alive.
pub fn confirm(session: &str) {
    LANES.with(|l| l.borrow_mut().confirm(session));
    persist();
}

/// `SESSION_END`: the session leaves its lanes; those it was the last in are closed.
pub fn end_session(session: &str) {
    let ended = LANES.with(|l| l.borrow_mut().end_session(session));
    persist();
    close_all(ended, "its last session ended");
}

/// The link came up: the server announces its live sessions now; lanes none of whose
/// sessions it announces within its silence limit are reaped then.
pub fn link_up(silence_limit_ms: u64) {
    GRACE_MS.with(|g| g.set(silence_limit_ms));
    LANES.with(|l| l.borrow_mut().link_up(now_ms()));
    persist();
    spawn_local(async move {
        chrome::sleep(silence_limit_ms.saturating_add(100)).await;
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

/// `chrome.tabs.onCreated`: a tab a lane's page opened (`target=_blank`, `window.open`)
/// joins the lane: its group when Chrome can put it there, else the lane's popups.
pub fn on_tab_created(tab: TabInfo) {
    let (Some(id), Some(opener)) = (tab.id, tab.opener_tab_id) else {
        return;
    };
    if LANES.with(|l| l.borrow().is_empty()) {
        return;
    }
    spawn_local(async move {
        let browser = ChromeBrowser;
        let Ok(Some(opener)) = browser.tab(opener).await else {
            return;
        };
        let Some(lane) = LANES.with(|l| l.borrow().lane_of(&opener)) else {
            return;
        };
        if tab.group_id == Some(lane) {
            return;
        }
        if browser.group_tab(id, Some(lane)).await.is_err() {
            LANES.with(|l| l.borrow_mut().add_popup(lane, id));
            persist();
        }
    });
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
    if LANES.with(|l| l.borrow_mut().group_gone(group)).is_some() {
        console_info(&format!(
            "domshell: lane {group} ended: its tab group is gone"
        ));
        persist();
    }
}
