//! The kernel's [`Browser`] port over the real `chrome.tabs`, `chrome.windows` and
//! `chrome.debugger` APIs, plus the small bindings and helpers it needs (a `cdp` call with
//! a timeout, sleeping, the monotonic clock).
//!
//! It owns what the worker knows about Chrome between events: which tabs this extension's
//! debugger is attached to (and which attachments Chrome ended, from `onDetach`), and how
//! many loads each tab finished (from `tabs.onUpdated`), and which JavaScript dialog each
//! tab has open (from `Page.javascriptDialogOpening`/`Closed`). A dialog pauses the page's
//! JavaScript, so calls in flight on its tab are ended when one opens and calls made while
//! it is open fail at once, instead of waiting out their timeout. It must not decide anything the
//! kernel decides; it only carries out calls and reports Chrome's answers.

use std::cell::RefCell;
use std::collections::HashMap;

use js_sys::Promise;
use serde::Serialize;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::shell::activity::TabActivity;
use crate::shell::browser::{
    Attachment, Browser, BrowserError, Dialog, FrameSession, HistoryEntry, LoadMark, LoadOutcome,
    NavigationHistory, Slices, TabInfo, WindowInfo,
};

/// The debugger protocol version `chrome.debugger.attach` asks for.
const PROTOCOL_VERSION: &str = "1.3";
/// Bound on any single Chrome call, so a wedged tab cannot hang a command.
const CALL_TIMEOUT_MS: u64 = 10_000;
/// Bound on a call whose reply is a page's tree (`Browser::cdp_text`): Chromium takes more
/// than 10 s to build the accessibility tree of a page with tens of thousands of nodes on a
/// busy machine. The command's own deadline still ends it earlier (`shell::deadline`).
const TREE_CALL_TIMEOUT_MS: u64 = 45_000;
/// How often a load wait looks at the tab.
const LOAD_POLL_MS: u64 = 50;
/// What a call ended by a dialog rejects with (Chrome rejects with Error objects, the
/// timeout with `undefined`).
const DIALOG_INTERRUPT: &str = "domshell:dialog-opened";
/// Calls that do not wait on the page's JavaScript, so a dialog neither blocks nor ends
/// them (answering it is one of them).
const DIALOG_SAFE_METHODS: [&str; 4] = [
    "Page.handleJavaScriptDialog",
    "Page.enable",
    "Inspector.enable",
    // Answered by the browser, not the paused page: a new tab's page may be in a dialog
    // when its blank first entry is dropped.
    "Page.resetNavigationHistory",
];

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["chrome", "tabs"], js_name = query)]
    fn tabs_query(query: &JsValue) -> Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "tabs"], js_name = get)]
    fn tabs_get(id: f64) -> Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "tabs"], js_name = create)]
    fn tabs_create(props: &JsValue) -> Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "tabs"], js_name = update)]
    fn tabs_update(id: f64, props: &JsValue) -> Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "tabs"], js_name = remove)]
    fn tabs_remove(id: f64) -> Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "tabs"], js_name = reload)]
    fn tabs_reload(id: f64) -> Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "tabs"], js_name = group)]
    fn tabs_group(options: &JsValue) -> Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "tabs"], js_name = ungroup)]
    fn tabs_ungroup(ids: &JsValue) -> Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "tabGroups"], js_name = get)]
    fn tab_groups_get(id: f64) -> Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "tabGroups"], js_name = update)]
    fn tab_groups_update(id: f64, props: &JsValue) -> Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "windows"], js_name = getAll)]
    fn windows_get_all(query: &JsValue) -> Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "windows"], js_name = update)]
    fn windows_update(id: f64, props: &JsValue) -> Promise;
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["chrome", "debugger"], js_name = attach)]
    fn debugger_attach(target: &JsValue, version: &str) -> Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "debugger"], js_name = detach)]
    fn debugger_detach(target: &JsValue) -> Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "debugger"], js_name = sendCommand)]
    fn debugger_send_command(target: &JsValue, method: &str, params: &JsValue) -> Promise;
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Milliseconds on a clock that never jumps (unlike `Date.now()`, which follows the wall
/// clock through sleep and NTP corrections). For deadlines and liveness, not for display.
pub fn monotonic_ms() -> u64 {
    performance_now().max(0.0) as u64
}

thread_local! {
    static ATTACHMENTS: RefCell<HashMap<i64, Attachment>> = RefCell::new(HashMap::new());
    static LOADS: RefCell<HashMap<i64, u64>> = RefCell::new(HashMap::new());
    /// Tabs whose renderer crashed under our debugger; the next attach reloads them.
    static CRASHED: RefCell<std::collections::HashSet<i64>> = RefCell::new(Default::default());
    /// Out-of-process frames of attached tabs, from `Target.attachedToTarget` events.
    static FRAME_SESSIONS: RefCell<HashMap<i64, Vec<FrameSession>>> = RefCell::new(HashMap::new());
    /// The open JavaScript dialog per tab, numbered so an answer clears only the dialog it
    /// answered (the next one may already have opened).
    static DIALOGS: RefCell<HashMap<i64, (u64, Dialog)>> = RefCell::new(HashMap::new());
    static DIALOG_COUNT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Per tab, the page-load waits between two polls: (wait number, its resolver), called
    /// when the tab finishes a load or goes away.
    static LOAD_WAITERS: RefCell<HashMap<i64, Vec<(u64, js_sys::Function)>>> = RefCell::new(HashMap::new());
    static LOAD_WAIT_COUNT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Per tab, the calls in flight a dialog would block: (call number, its rejecter).
    static DIALOG_WAITERS: RefCell<HashMap<i64, Vec<(u64, js_sys::Function)>>> = RefCell::new(HashMap::new());
    /// Per attached tab, what its page logged and fetched (`shell::activity`).
    static ACTIVITY: RefCell<HashMap<i64, TabActivity>> = RefCell::new(HashMap::new());
    /// Tabs whose console arguments are due to be released (see `release_console_soon`).
    static CONSOLE_RELEASE: RefCell<std::collections::HashSet<i64>> = RefCell::new(Default::default());
}

/// How long after a console message its arguments are released in the page.
const CONSOLE_RELEASE_MS: u64 = 2_000;

/// Tries of `Runtime.enable`/`Network.enable` on a tab, and the pause between two.
const ACTIVITY_ENABLE_TRIES: u32 = 5;
const ACTIVITY_ENABLE_PAUSE_MS: u64 = 1_000;

/// Turns on the console and network events of tab `id` (see `attach`); bounded tries, for a
/// tab whose page is paused in a dialog refuses them until it is answered.
async fn enable_activity(id: i64) {
    for domain in ["Runtime.enable", "Network.enable"] {
        for _ in 0..ACTIVITY_ENABLE_TRIES {
            if cdp(id, domain, json!({}), CALL_TIMEOUT_MS).await.is_ok() {
                break;
            }
            sleep(ACTIVITY_ENABLE_PAUSE_MS).await;
        }
    }
}

/// A console message's arguments arrive as remote objects that keep what was logged alive
/// in the page; the text is all the ring keeps, so they are released (a while later, once
/// per burst) instead of pinning a chatty app's objects for as long as domshell watches.
fn release_console_soon(tab: i64) {
    let first = CONSOLE_RELEASE.with(|r| r.borrow_mut().insert(tab));
    if !first {
        return;
    }
    wasm_bindgen_futures::spawn_local(async move {
        sleep(CONSOLE_RELEASE_MS).await;
        CONSOLE_RELEASE.with(|r| r.borrow_mut().remove(&tab));
        let _ = cdp(
            tab,
            "Runtime.releaseObjectGroup",
            json!({ "objectGroup": "console" }),
            CALL_TIMEOUT_MS,
        )
        .await;
    });
}

/// `value` as a plain JavaScript value (objects, not `Map`s: Chrome's APIs take JSON-like
/// values). Values cross the boundary as JSON text both ways: the engine's own parser and
/// serialiser run in native code, and serde's JSON code is in the WASM anyway, where a
/// second, object-walking serde format would add its own copy per type.
pub fn to_js(value: &impl Serialize) -> JsValue {
    serde_json::to_string(value)
        .ok()
        .and_then(|text| js_sys::JSON::parse(&text).ok())
        .unwrap_or(JsValue::NULL)
}

/// The JSON text of a JavaScript value (`None` for `undefined`, functions and values that
/// do not serialise, such as cycles).
fn json_text(value: &JsValue) -> Option<String> {
    js_sys::JSON::stringify(value)
        .ok()
        .and_then(|t| t.as_string())
}

/// A JavaScript value as JSON; `null` where it has no JSON form.
pub fn from_js_value(value: &JsValue) -> Value {
    from_js(value.clone(), "the browser").unwrap_or(Value::Null)
}

/// The message of a rejected Chrome promise.
pub fn error_text(error: &JsValue) -> String {
    if let Some(text) = error.as_string() {
        return text;
    }
    js_sys::Reflect::get(error, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

/// Resolves after `ms`.
pub async fn sleep(ms: u64) {
    let promise = Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms as f64);
    });
    let _ = JsFuture::from(promise).await;
}

/// What a call on `tab` fails with when a dialog is open or opens while it waits.
fn dialog_error(tab: i64, method: &str) -> BrowserError {
    let kind = DIALOGS.with(|d| d.borrow().get(&tab).map(|(_, dialog)| dialog.kind.clone()));
    BrowserError(format!(
        "{method} cannot run: the page has a JavaScript {} dialog open, which pauses it (`dialog` shows it)",
        kind.unwrap_or_else(|| "dialog".into())
    ))
}

/// `promise`, or a rejection with [`DIALOG_INTERRUPT`] as soon as a dialog opens on `tab`;
/// the number to pass to [`forget_dialog_waiter`] once the call is over.
fn or_dialog(tab: i64, promise: Promise) -> (Promise, u64) {
    let number = DIALOG_COUNT.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let interrupt = Promise::new(&mut |_, reject| {
        DIALOG_WAITERS.with(|w| {
            w.borrow_mut()
                .entry(tab)
                .or_default()
                .push((number, reject))
        });
    });
    (
        Promise::race(&js_sys::Array::of2(&promise, &interrupt)),
        number,
    )
}

fn forget_dialog_waiter(tab: i64, number: u64) {
    DIALOG_WAITERS.with(|w| {
        if let Some(list) = w.borrow_mut().get_mut(&tab) {
            list.retain(|(n, _)| *n != number);
        }
    });
}

/// Awaits a Chrome promise for at most `ms`; `what` names the call in the error.
async fn call(promise: Promise, ms: u64, what: &str) -> Result<JsValue, BrowserError> {
    // The timer rejects with `undefined`; Chrome rejects with an Error, never undefined.
    let timer = Promise::new(&mut |_, reject| {
        set_timeout(&reject, ms as f64);
    });
    let race = Promise::race(&js_sys::Array::of2(&promise, &timer));
    JsFuture::from(race).await.map_err(|e| {
        if e.is_undefined() {
            BrowserError(format!(
                "{what} did not answer within {:.1} s",
                ms as f64 / 1000.0
            ))
        } else {
            BrowserError(error_text(&e))
        }
    })
}

pub(crate) fn from_js<T: serde::de::DeserializeOwned>(
    value: JsValue,
    what: &str,
) -> Result<T, BrowserError> {
    let text = json_text(&value).unwrap_or_else(|| "null".into());
    serde_json::from_str(&text)
        .map_err(|e| BrowserError(format!("unexpected answer from {what}: {e}")))
}

fn debuggee(tab: i64) -> JsValue {
    to_js(&json!({ "tabId": tab }))
}

/// One Chrome DevTools Protocol call on an attached tab (or in one of its child sessions),
/// bounded by `timeout_ms`; `None` when Chrome answers nothing.
async fn send(
    tab: i64,
    session: Option<&str>,
    method: &str,
    params: &Value,
    timeout_ms: u64,
) -> Result<Option<JsValue>, BrowserError> {
    let target = match session {
        Some(session) => to_js(&json!({ "tabId": tab, "sessionId": session })),
        None => debuggee(tab),
    };
    let dialog_safe = DIALOG_SAFE_METHODS.contains(&method);
    if !dialog_safe && DIALOGS.with(|d| d.borrow().contains_key(&tab)) {
        return Err(dialog_error(tab, method));
    }
    let promise = debugger_send_command(&target, method, &to_js(params));
    let result = if dialog_safe {
        call(promise, timeout_ms, method).await
    } else {
        let (promise, number) = or_dialog(tab, promise);
        let result = call(promise, timeout_ms, method).await;
        forget_dialog_waiter(tab, number);
        result
    };
    let result = match result {
        Err(e) if e.0 == DIALOG_INTERRUPT => return Err(dialog_error(tab, method)),
        other => other?,
    };
    Ok((!result.is_undefined() && !result.is_null()).then_some(result))
}

/// One Chrome DevTools Protocol call on an attached tab, bounded by `timeout_ms`.
pub async fn cdp(
    tab: i64,
    method: &str,
    params: Value,
    timeout_ms: u64,
) -> Result<Value, BrowserError> {
    match send(tab, None, method, &params, timeout_ms).await? {
        Some(result) => from_js(result, method),
        None => Ok(Value::Null),
    }
}

/// `chrome.debugger.onDetach`: Chrome ended this extension's session on a tab.
pub fn on_debugger_detach(tab: i64, reason: &str) {
    FRAME_SESSIONS.with(|f| f.borrow_mut().remove(&tab));
    // Without the debugger nobody is told when the dialog closes.
    DIALOGS.with(|d| d.borrow_mut().remove(&tab));
    let why = match reason {
        "target_closed" => {
            "the tab closed, crashed or moved to a page that cannot be debugged (target_closed)"
                .to_string()
        }
        "canceled_by_user" => "it was detached from outside domshell: DevTools opened on the tab, another debugger took it, or the debugging banner was dismissed (canceled_by_user)".to_string(),
        other => format!("Chrome detached the debugger ({other})"),
    };
    ATTACHMENTS.with(|a| {
        a.borrow_mut().insert(tab, Attachment::Lost { reason: why });
    });
}

/// Takes `tab` out of its tab group (a lane's tab that belongs to the user's tabs).
pub async fn ungroup_tab(tab: i64) -> Result<(), BrowserError> {
    let ids = to_js(&json!([tab]));
    call(tabs_ungroup(&ids), CALL_TIMEOUT_MS, "chrome.tabs.ungroup")
        .await
        .map(|_| ())
}

/// Makes `tab` its window's active tab again, without focusing the window (unlike
/// [`Browser::activate_tab`]): the user's view is given back, nothing is brought forward.
pub async fn give_back_tab(tab: i64) -> Result<(), BrowserError> {
    call(
        tabs_update(tab as f64, &to_js(&json!({ "active": true }))),
        CALL_TIMEOUT_MS,
        "chrome.tabs.update",
    )
    .await
    .map(|_| ())
}

/// A protocol event of an attached tab (`chrome.debugger.onEvent`), in the tab itself
/// (`session` `None`) or in one of its child sessions.
pub fn on_debugger_event(tab: i64, session: Option<&str>, method: &str, params: &Value) {
    // Console and network events of the tab's own target go to its rings.
    if session.is_none() && (method.starts_with("Network.") || method.starts_with("Runtime.")) {
        let now = performance_now();
        let taken = ACTIVITY.with(|a| {
            a.borrow_mut()
                .entry(tab)
                .or_default()
                .on_event(method, params, now)
        });
        if taken && method == "Runtime.consoleAPICalled" {
            release_console_soon(tab);
        }
        if taken {
            return;
        }
    }
    match method {
        // A page of the tab opens a new tab or window (a `target=_blank` link, `window.open`).
        "Page.windowOpen" if session.is_none() => {
            if let Some(url) = params["url"].as_str() {
                crate::lane_keeper::on_window_open(tab, url.to_string());
            }
        }
        "Target.attachedToTarget" if params["targetInfo"]["type"] == "iframe" => {
            let (Some(frame_id), Some(session_id)) = (
                params["targetInfo"]["targetId"].as_str(),
                params["sessionId"].as_str(),
            ) else {
                return;
            };
            FRAME_SESSIONS.with(|f| {
                let mut f = f.borrow_mut();
                let list = f.entry(tab).or_default();
                list.retain(|s| s.frame_id != frame_id);
                list.push(FrameSession {
                    frame_id: frame_id.to_string(),
                    session_id: session_id.to_string(),
                    parent_session: session.map(str::to_string),
                    parent_frame_id: params["targetInfo"]["parentFrameId"]
                        .as_str()
                        .map(str::to_string),
                });
            });
            // Frames nested in this one attach only when its own session asks for them. A
            // failure here is retried by the next page read, which asks every session again.
            let session_id = session_id.to_string();
            wasm_bindgen_futures::spawn_local(async move {
                let params =
                    json!({ "autoAttach": true, "waitForDebuggerOnStart": false, "flatten": true });
                let _ = send(
                    tab,
                    Some(&session_id),
                    "Target.setAutoAttach",
                    &params,
                    CALL_TIMEOUT_MS,
                )
                .await;
            });
            return;
        }
        "Target.detachedFromTarget" => {
            if let Some(session_id) = params["sessionId"].as_str() {
                FRAME_SESSIONS.with(|f| {
                    if let Some(list) = f.borrow_mut().get_mut(&tab) {
                        // Frames nested in a detached frame went with it.
                        let mut gone = vec![session_id.to_string()];
                        while let Some(next) = gone.pop() {
                            list.retain(|s| {
                                if s.session_id == next {
                                    return false;
                                }
                                if s.parent_session.as_deref() == Some(next.as_str()) {
                                    gone.push(s.session_id.clone());
                                }
                                true
                            });
                        }
                    }
                });
            }
            return;
        }
        "Page.javascriptDialogOpening" => {
            let text = |key: &str| params[key].as_str().unwrap_or_default().to_string();
            let dialog = Dialog {
                kind: text("type"),
                message: text("message"),
                default_prompt: text("defaultPrompt"),
                url: text("url"),
            };
            let number = DIALOG_COUNT.with(|c| {
                c.set(c.get() + 1);
                c.get()
            });
            DIALOGS.with(|d| d.borrow_mut().insert(tab, (number, dialog)));
            let waiters = DIALOG_WAITERS.with(|w| w.borrow_mut().remove(&tab));
            for (_, reject) in waiters.unwrap_or_default() {
                let _ = reject.call1(&JsValue::NULL, &JsValue::from_str(DIALOG_INTERRUPT));
            }
            return;
        }
        "Page.javascriptDialogClosed" => {
            DIALOGS.with(|d| d.borrow_mut().remove(&tab));
            return;
        }
        _ => {}
    }
    if method == "Inspector.targetCrashed" {
        // The debugger stays attached to a crashed tab, but nothing answers until the
        // page is loaded again.
        CRASHED.with(|c| c.borrow_mut().insert(tab));
        ATTACHMENTS.with(|a| {
            a.borrow_mut().insert(
                tab,
                Attachment::Lost {
                    reason: "the tab's renderer crashed (Inspector.targetCrashed); the next command reloads the tab".into(),
                },
            );
        });
    }
}

/// `chrome.tabs.onUpdated` with `status: "complete"`.
pub fn on_tab_loaded(tab: i64) {
    LOADS.with(|l| *l.borrow_mut().entry(tab).or_default() += 1);
    // A finished load means a live renderer again.
    CRASHED.with(|c| c.borrow_mut().remove(&tab));
    wake_load_waiters(tab);
}

fn wake_load_waiters(tab: i64) {
    let waiters = LOAD_WAITERS.with(|w| w.borrow_mut().remove(&tab).unwrap_or_default());
    for (_, resolve) in waiters {
        let _ = resolve.call0(&JsValue::UNDEFINED);
    }
}

/// Resolves after `ms`, or as soon as `tab` finishes a load or closes: a page-load wait
/// answers when the page is done instead of at its next poll.
async fn sleep_or_load(tab: i64, ms: u64) {
    let number = LOAD_WAIT_COUNT.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let promise = Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms as f64);
        LOAD_WAITERS.with(|w| {
            w.borrow_mut()
                .entry(tab)
                .or_default()
                .push((number, resolve))
        });
    });
    let _ = JsFuture::from(promise).await;
    LOAD_WAITERS.with(|w| {
        if let Some(list) = w.borrow_mut().get_mut(&tab) {
            list.retain(|(n, _)| *n != number);
        }
    });
}

/// `chrome.tabs.onRemoved`: nothing about the tab is worth keeping.
pub fn on_tab_removed(tab: i64) {
    FRAME_SESSIONS.with(|f| f.borrow_mut().remove(&tab));
    ACTIVITY.with(|a| a.borrow_mut().remove(&tab));
    DIALOGS.with(|d| d.borrow_mut().remove(&tab));
    DIALOG_WAITERS.with(|w| w.borrow_mut().remove(&tab));
    LOADS.with(|l| l.borrow_mut().remove(&tab));
    CRASHED.with(|c| c.borrow_mut().remove(&tab));
    wake_load_waiters(tab);
    // The attachment entry stays until the kernel reports the tab gone (a `Lost` from
    // onDetach) or enters another tab.
}

/// The real browser, as seen from the service worker.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChromeBrowser;

impl Browser for ChromeBrowser {
    async fn tabs(&self) -> Result<Vec<TabInfo>, BrowserError> {
        let tabs = call(
            tabs_query(&to_js(&json!({}))),
            CALL_TIMEOUT_MS,
            "chrome.tabs.query",
        )
        .await?;
        from_js(tabs, "chrome.tabs.query")
    }

    async fn windows(&self) -> Result<Vec<WindowInfo>, BrowserError> {
        let windows = call(
            windows_get_all(&to_js(&json!({ "populate": true }))),
            CALL_TIMEOUT_MS,
            "chrome.windows.getAll",
        )
        .await?;
        from_js(windows, "chrome.windows.getAll")
    }

    async fn tab(&self, id: i64) -> Result<Option<TabInfo>, BrowserError> {
        match call(tabs_get(id as f64), CALL_TIMEOUT_MS, "chrome.tabs.get").await {
            Ok(tab) => from_js(tab, "chrome.tabs.get").map(Some),
            Err(e) if e.0.contains("No tab with id") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn focused_tab(&self) -> Result<Option<TabInfo>, BrowserError> {
        for query in [
            json!({ "active": true, "lastFocusedWindow": true }),
            json!({ "active": true }),
        ] {
            let tabs = call(
                tabs_query(&to_js(&query)),
                CALL_TIMEOUT_MS,
                "chrome.tabs.query",
            )
            .await?;
            let tabs: Vec<TabInfo> = from_js(tabs, "chrome.tabs.query")?;
            if let Some(tab) = tabs.into_iter().next() {
                return Ok(Some(tab));
            }
        }
        Ok(None)
    }

    async fn create_tab(&self, url: &str) -> Result<TabInfo, BrowserError> {
        let tab = call(
            tabs_create(&to_js(&json!({ "url": url, "active": true }))),
            CALL_TIMEOUT_MS,
            "chrome.tabs.create",
        )
        .await?;
        from_js(tab, "chrome.tabs.create")
    }

    async fn create_background_tab(&self, url: &str, window: i64) -> Result<TabInfo, BrowserError> {
        let props = json!({ "url": url, "active": false, "windowId": window });
        let tab = call(
            tabs_create(&to_js(&props)),
            CALL_TIMEOUT_MS,
            "chrome.tabs.create",
        )
        .await?;
        from_js(tab, "chrome.tabs.create")
    }

    async fn group_tab(&self, tab: i64, group: Option<i64>) -> Result<i64, BrowserError> {
        let options = match group {
            Some(group) => json!({ "tabIds": [tab], "groupId": group }),
            // A new group is made in the *current* window unless told otherwise, which may
            // be a popup the user just focused: it is made in the tab's own window.
            None => {
                let window = self
                    .tab(tab)
                    .await?
                    .and_then(|t| t.window_id)
                    .ok_or_else(|| BrowserError(format!("No tab with id: {tab}.")))?;
                json!({ "tabIds": [tab], "createProperties": { "windowId": window } })
            }
        };
        let id = call(
            tabs_group(&to_js(&options)),
            CALL_TIMEOUT_MS,
            "chrome.tabs.group",
        )
        .await?;
        id.as_f64()
            .map(|id| id as i64)
            .ok_or_else(|| BrowserError("chrome.tabs.group returned no group id".into()))
    }

    async fn set_group_title(&self, group: i64, title: &str) -> Result<(), BrowserError> {
        call(
            tab_groups_update(group as f64, &to_js(&json!({ "title": title }))),
            CALL_TIMEOUT_MS,
            "chrome.tabGroups.update",
        )
        .await
        .map(|_| ())
    }

    async fn group_title(&self, group: i64) -> Result<Option<String>, BrowserError> {
        match call(
            tab_groups_get(group as f64),
            CALL_TIMEOUT_MS,
            "chrome.tabGroups.get",
        )
        .await
        {
            Ok(info) => Ok(Some(
                from_js_value(&info)
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            )),
            Err(e) if e.0.contains("No group with id") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn navigate_tab(&self, id: i64, url: &str) -> Result<(), BrowserError> {
        call(
            tabs_update(id as f64, &to_js(&json!({ "url": url }))),
            CALL_TIMEOUT_MS,
            "chrome.tabs.update",
        )
        .await
        .map(|_| ())
    }

    async fn activate_tab(&self, id: i64) -> Result<(), BrowserError> {
        let tab = call(
            tabs_update(id as f64, &to_js(&json!({ "active": true }))),
            CALL_TIMEOUT_MS,
            "chrome.tabs.update",
        )
        .await?;
        let tab: TabInfo = from_js(tab, "chrome.tabs.update")?;
        let Some(window) = tab.window_id else {
            return Ok(());
        };
        call(
            windows_update(window as f64, &to_js(&json!({ "focused": true }))),
            CALL_TIMEOUT_MS,
            "chrome.windows.update",
        )
        .await
        .map(|_| ())
    }

    async fn close_tab(&self, id: i64) -> Result<(), BrowserError> {
        call(
            tabs_remove(id as f64),
            CALL_TIMEOUT_MS,
            "chrome.tabs.remove",
        )
        .await
        .map(|_| ())
    }

    async fn cdp(&self, id: i64, method: &str, params: Value) -> Result<Value, BrowserError> {
        cdp(id, method, params, CALL_TIMEOUT_MS).await
    }

    async fn cdp_in_session(
        &self,
        id: i64,
        session_id: &str,
        method: &str,
        params: Value,
    ) -> Result<Value, BrowserError> {
        match send(id, Some(session_id), method, &params, CALL_TIMEOUT_MS).await? {
            Some(result) => from_js(result, method),
            None => Ok(Value::Null),
        }
    }

    async fn cdp_text(
        &self,
        id: i64,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<String, BrowserError> {
        let Some(result) = send(id, session, method, &params, TREE_CALL_TIMEOUT_MS).await? else {
            return Ok("null".into());
        };
        // V8 serialises in native code; converting the object property by property across
        // the WebAssembly boundary costs seconds on a large page.
        js_sys::JSON::stringify(&result)
            .ok()
            .and_then(|text| text.as_string())
            .ok_or_else(|| BrowserError(format!("the answer of {method} is not JSON")))
    }

    async fn cdp_node_chunks(
        &self,
        id: i64,
        session: Option<&str>,
        method: &str,
        params: Value,
        per_chunk: usize,
    ) -> Result<Vec<String>, BrowserError> {
        let Some(result) = send(id, session, method, &params, TREE_CALL_TIMEOUT_MS).await? else {
            return Ok(Vec::new());
        };
        let nodes = js_sys::Reflect::get(&result, &"nodes".into()).unwrap_or(JsValue::UNDEFINED);
        if nodes.is_undefined() || nodes.is_null() {
            return Ok(Vec::new());
        }
        let nodes: js_sys::Array = nodes
            .dyn_into()
            .map_err(|_| BrowserError(format!("the answer of {method} has no list of nodes")))?;
        // V8 serialises in native code; converting the objects property by property across
        // the WebAssembly boundary costs seconds on a large page. A part at a time, so the
        // worker answers its heartbeat in between.
        let (len, step) = (
            nodes.length(),
            u32::try_from(per_chunk.max(1)).unwrap_or(u32::MAX),
        );
        let mut chunks = Vec::with_capacity((len / step + 1) as usize);
        let mut slices = Slices::start(self);
        let mut at = 0u32;
        while at < len {
            let end = at.saturating_add(step).min(len);
            let text = js_sys::JSON::stringify(&nodes.slice(at, end))
                .ok()
                .and_then(|text| text.as_string())
                .ok_or_else(|| BrowserError(format!("the answer of {method} is not JSON")))?;
            chunks.push(text);
            at = end;
            slices.breathe(self).await;
        }
        Ok(chunks)
    }

    fn monotonic_ms(&self) -> f64 {
        performance_now().max(0.0)
    }

    async fn yield_now(&self) {
        // A macrotask, so the heartbeat's message waiting in the queue runs first.
        sleep(0).await
    }

    async fn sleep_ms(&self, ms: u64) {
        sleep(ms).await
    }

    fn open_dialog(&self, id: i64) -> Option<Dialog> {
        DIALOGS.with(|d| d.borrow().get(&id).map(|(_, dialog)| dialog.clone()))
    }

    fn activity(&self, id: i64) -> Option<TabActivity> {
        ACTIVITY.with(|a| a.borrow().get(&id).cloned())
    }

    fn clear_console(&self, id: i64) {
        ACTIVITY.with(|a| {
            if let Some(tab) = a.borrow_mut().get_mut(&id) {
                tab.clear_console();
            }
        });
    }

    async fn answer_dialog(
        &self,
        id: i64,
        accept: bool,
        prompt_text: Option<&str>,
    ) -> Result<(), BrowserError> {
        let answering = DIALOGS.with(|d| d.borrow().get(&id).map(|(n, _)| *n));
        let mut params = json!({ "accept": accept });
        if let Some(text) = prompt_text {
            params["promptText"] = text.into();
        }
        cdp(id, "Page.handleJavaScriptDialog", params, CALL_TIMEOUT_MS).await?;
        // `javascriptDialogClosed` normally comes first; if it is late, the answer is proof
        // enough. A dialog opened since then is another one and stays.
        DIALOGS.with(|d| {
            let mut d = d.borrow_mut();
            if d.get(&id).map(|(n, _)| *n) == answering {
                d.remove(&id);
            }
        });
        Ok(())
    }

    fn frame_sessions(&self, id: i64) -> Vec<FrameSession> {
        FRAME_SESSIONS.with(|f| f.borrow().get(&id).cloned().unwrap_or_default())
    }

    async fn navigation_history(&self, id: i64) -> Result<NavigationHistory, BrowserError> {
        let history = cdp(id, "Page.getNavigationHistory", json!({}), CALL_TIMEOUT_MS).await?;
        let entries = history["entries"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|e| HistoryEntry {
                        id: e["id"].as_i64().unwrap_or_default(),
                        url: e["url"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(NavigationHistory {
            current: history["currentIndex"].as_u64().unwrap_or_default() as usize,
            entries,
        })
    }

    async fn go_to_history_entry(&self, id: i64, entry: i64) -> Result<(), BrowserError> {
        cdp(
            id,
            "Page.navigateToHistoryEntry",
            json!({ "entryId": entry }),
            CALL_TIMEOUT_MS,
        )
        .await
        .map(|_| ())
    }

    async fn attach(&self, id: i64) -> Result<(), BrowserError> {
        if self.attachment(id) == Attachment::Attached {
            return Ok(());
        }
        if CRASHED.with(|c| c.borrow_mut().remove(&id)) {
            let since = self.load_mark(id);
            call(
                tabs_reload(id as f64),
                CALL_TIMEOUT_MS,
                "chrome.tabs.reload",
            )
            .await?;
            if let LoadOutcome::TimedOut(_) =
                self.wait_for_load(id, Some(since), CALL_TIMEOUT_MS).await?
            {
                return Err(BrowserError(format!(
                    "reloaded the crashed tab {id}, but it did not finish loading within {} s",
                    CALL_TIMEOUT_MS / 1000
                )));
            }
        }
        let attached = call(
            debugger_attach(&debuggee(id), PROTOCOL_VERSION),
            CALL_TIMEOUT_MS,
            "chrome.debugger.attach",
        )
        .await;
        match attached {
            Ok(_) => {}
            Err(e) if e.0.contains("already attached") => {
                // After a worker restart, or an attach cut short by a dialog the page opened
                // while loading, this extension may hold the session already: if a command
                // goes through, it is ours. The probe is one a paused page still answers
                // (`Runtime.evaluate` is refused while a dialog is open).
                let probe = cdp(id, "Inspector.enable", json!({}), CALL_TIMEOUT_MS).await;
                if probe.is_err() {
                    return Err(BrowserError(format!(
                        "{} — close DevTools on that tab or stop the other debugger, then try again",
                        e.0
                    )));
                }
            }
            Err(e) => return Err(e),
        }
        // Crash reports arrive as Inspector events; without them a crashed tab would look
        // attached and answer nothing. JavaScript dialogs arrive as Page events; without
        // them a dialog would hang every command on the tab.
        for domain in ["Inspector.enable", "Page.enable"] {
            if let Err(e) = cdp(id, domain, json!({}), CALL_TIMEOUT_MS).await {
                return Err(BrowserError(format!(
                    "attached, but the tab does not answer {domain} ({})",
                    e.0
                )));
            }
        }
        // Console messages and requests, for `console` and `network`: worth having, but
        // not worth holding the attach for. A page paused in a dialog (an `alert` while it
        // loads) answers them only once the dialog is answered, so they are asked for in the
        // background, a few times, and the command that attached goes on at once.
        wasm_bindgen_futures::spawn_local(enable_activity(id));
        ATTACHMENTS.with(|a| {
            a.borrow_mut().insert(id, Attachment::Attached);
        });
        Ok(())
    }

    async fn detach(&self, id: i64) -> Result<(), BrowserError> {
        ATTACHMENTS.with(|a| a.borrow_mut().remove(&id));
        call(
            debugger_detach(&debuggee(id)),
            CALL_TIMEOUT_MS,
            "chrome.debugger.detach",
        )
        .await
        .map(|_| ())
    }

    fn attachment(&self, id: i64) -> Attachment {
        ATTACHMENTS.with(|a| {
            a.borrow()
                .get(&id)
                .cloned()
                .unwrap_or(Attachment::NotAttached)
        })
    }

    fn acknowledge_loss(&self, id: i64) {
        ATTACHMENTS.with(|a| {
            let mut a = a.borrow_mut();
            if matches!(a.get(&id), Some(Attachment::Lost { .. })) {
                a.remove(&id);
            }
        });
    }

    fn load_mark(&self, id: i64) -> LoadMark {
        LoadMark(LOADS.with(|l| l.borrow().get(&id).copied().unwrap_or(0)))
    }

    async fn wait_for_load(
        &self,
        id: i64,
        since: Option<LoadMark>,
        timeout_ms: u64,
    ) -> Result<LoadOutcome, BrowserError> {
        let started = monotonic_ms();
        loop {
            let Some(tab) = self.tab(id).await? else {
                return Ok(LoadOutcome::Gone);
            };
            let complete = tab.status.as_deref() == Some("complete");
            let counted = since.is_none_or(|mark| self.load_mark(id).0 > mark.0);
            if complete && counted {
                return Ok(LoadOutcome::Complete(tab));
            }
            // A dialog (`beforeunload` asking to leave, an `alert` while loading) holds the
            // load until someone answers it: the kernel reports it instead of waiting.
            if self.open_dialog(id).is_some() {
                return Ok(LoadOutcome::TimedOut(tab));
            }
            if monotonic_ms().saturating_sub(started) >= timeout_ms {
                // A page that reports complete without the event we waited for (a
                // same-document navigation) is done, not slow.
                return Ok(if complete {
                    LoadOutcome::Complete(tab)
                } else {
                    LoadOutcome::TimedOut(tab)
                });
            }
            sleep_or_load(id, LOAD_POLL_MS).await;
        }
    }
}
