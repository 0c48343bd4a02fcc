//! The kernel's port to the browser: the few operations the shell needs from Chrome
//! (`chrome.tabs`, `chrome.windows`, `chrome.debugger`), as an async trait.
//!
//! The service-worker glue implements it over the real APIs; tests implement it with an
//! in-memory browser. It owns the shapes that cross the port. It must not hold shell
//! state or decide anything: policy (which URLs, which tabs) is the kernel's.

use serde::{Deserialize, Serialize};

/// A tab as `chrome.tabs` reports it (the fields the shell uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TabInfo {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub window_id: Option<i64>,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub url: String,
    /// The URL being loaded, before it commits (Chrome's `pendingUrl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_url: Option<String>,
    #[serde(default)]
    pub active: bool,
    /// `loading` or `complete`.
    #[serde(default)]
    pub status: Option<String>,
    /// The tab group it is in (Chrome's `groupId`, -1 for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<i64>,
    /// The tab that opened it (a link with `target=_blank`, `window.open`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opener_tab_id: Option<i64>,
}

/// A window as `chrome.windows.getAll({populate: true})` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct WindowInfo {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub focused: bool,
    /// `normal`, `popup`, `app`, `devtools`, `panel`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub tabs: Vec<TabInfo>,
}

/// How the debugger connection to a tab stands, as the glue saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    Attached,
    /// Never attached (or the worker restarted and does not know).
    NotAttached,
    /// Chrome ended the connection (`chrome.debugger.onDetach`); not reported yet.
    Lost {
        reason: String,
    },
}

/// One entry of a tab's session history (`Page.getNavigationHistory`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub id: i64,
    pub url: String,
}

/// A tab's session history and where in it the tab is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavigationHistory {
    pub current: usize,
    pub entries: Vec<HistoryEntry>,
}

/// What waiting for a page load found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadOutcome {
    Complete(TabInfo),
    /// Still loading when the wait ended; the tab as it was then.
    TimedOut(TabInfo),
    /// The tab disappeared while loading.
    Gone,
}

/// An out-of-process child frame of a tab that the debugger attached to (reported by
/// `Target.attachedToTarget` with type `iframe` after `Target.setAutoAttach {flatten}`): its
/// target id is its frame id, and commands reach it through its session. A frame nested in
/// another out-of-process frame is reported by that frame's session (`parent_session`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FrameSession {
    pub frame_id: String,
    pub session_id: String,
    /// The session the attach was reported in; `None` for the tab itself.
    pub parent_session: Option<String>,
    /// The frame holding it (`targetInfo.parentFrameId`), when Chrome says.
    pub parent_frame_id: Option<String>,
}

/// A JavaScript dialog a page opened and nobody answered yet (`Page.javascriptDialogOpening`).
/// While it is open the page's JavaScript is paused: nothing that evaluates in the page
/// answers until it closes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dialog {
    /// `alert`, `confirm`, `prompt` or `beforeunload`.
    pub kind: String,
    pub message: String,
    /// The text a `prompt` offers (empty for the other kinds).
    pub default_prompt: String,
    /// The URL of the frame that opened it.
    pub url: String,
}

/// A failed browser operation, with Chrome's own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BrowserError(pub String);

/// A counter the glue increments each time a tab finishes loading; waiting for "a load after
/// this mark" is how navigation commands avoid mistaking the previous page's load for theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadMark(pub u64);

/// What the kernel needs from Chrome. Methods that wait take explicit bounds.
// The worker is single-threaded WebAssembly: futures need not be Send.
#[allow(async_fn_in_trait)]
pub trait Browser {
    async fn tabs(&self) -> Result<Vec<TabInfo>, BrowserError>;
    async fn windows(&self) -> Result<Vec<WindowInfo>, BrowserError>;
    /// `None` when no tab has that id.
    async fn tab(&self, id: i64) -> Result<Option<TabInfo>, BrowserError>;
    /// The active tab of the last focused window.
    async fn focused_tab(&self) -> Result<Option<TabInfo>, BrowserError>;
    async fn create_tab(&self, url: &str) -> Result<TabInfo, BrowserError>;
    /// Opens `url` in a new tab of `window` without making it active: a lane's tabs never
    /// take the user's view.
    async fn create_background_tab(&self, url: &str, window: i64) -> Result<TabInfo, BrowserError>;
    /// Puts `tab` into tab group `group`, or into a new group when `None`; the group's id.
    async fn group_tab(&self, tab: i64, group: Option<i64>) -> Result<i64, BrowserError>;
    /// Sets a tab group's title.
    async fn set_group_title(&self, group: i64, title: &str) -> Result<(), BrowserError>;
    /// A tab group's title; `None` when no group has that id.
    async fn group_title(&self, group: i64) -> Result<Option<String>, BrowserError>;
    async fn navigate_tab(&self, id: i64, url: &str) -> Result<(), BrowserError>;
    async fn close_tab(&self, id: i64) -> Result<(), BrowserError>;
    /// Make the tab the active one of its window and focus that window (what a person's
    /// click on it does).
    async fn activate_tab(&self, id: i64) -> Result<(), BrowserError>;
    /// One DevTools Protocol call on an attached tab (the page mapping's way in: e.g.
    /// `Accessibility.getChildAXNodes`). Bounded by the implementation's call timeout.
    async fn cdp(
        &self,
        id: i64,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, BrowserError>;
    /// One DevTools Protocol call in a child session of an attached tab (an out-of-process
    /// frame from [`Browser::frame_sessions`]).
    async fn cdp_in_session(
        &self,
        id: i64,
        session_id: &str,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, BrowserError>;
    /// One DevTools Protocol call in the tab (`session` `None`) or in one of its child
    /// sessions.
    async fn cdp_at(
        &self,
        id: i64,
        session: Option<&str>,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, BrowserError> {
        match session {
            Some(session) => self.cdp_in_session(id, session, method, params).await,
            None => self.cdp(id, method, params).await,
        }
    }
    /// One DevTools Protocol call (in the tab, or in a child `session`) whose reply comes back
    /// as JSON text. For replies too large to cross into WebAssembly value by value: a page's
    /// accessibility tree is tens of megabytes, and text is decoded at once straight into the
    /// types that need it. By default it serialises what the value-returning calls answer.
    async fn cdp_text(
        &self,
        id: i64,
        session: Option<&str>,
        method: &str,
        params: serde_json::Value,
    ) -> Result<String, BrowserError> {
        let reply = match session {
            Some(session) => self.cdp_in_session(id, session, method, params).await?,
            None => self.cdp(id, method, params).await?,
        };
        Ok(reply.to_string())
    }
    /// An `Accessibility` call that answers `{nodes}`, its nodes returned as JSON arrays of
    /// at most `per_chunk` nodes each: serialising or decoding tens of megabytes in one go
    /// would hold the worker, heartbeat included, for a long time ([`Slices`]). No `nodes`
    /// is no chunks. By default it splits what the value-returning calls answer.
    async fn cdp_node_chunks(
        &self,
        id: i64,
        session: Option<&str>,
        method: &str,
        params: serde_json::Value,
        per_chunk: usize,
    ) -> Result<Vec<String>, BrowserError> {
        let reply = self.cdp_at(id, session, method, params).await?;
        match reply.get("nodes") {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(serde_json::Value::Array(nodes)) => Ok(nodes
                .chunks(per_chunk.max(1))
                .map(|chunk| serde_json::Value::from(chunk.to_vec()).to_string())
                .collect()),
            Some(_) => Err(BrowserError(format!(
                "the answer of {method} has no list of nodes"
            ))),
        }
    }
    /// Milliseconds on a clock that never jumps, to time the work the kernel reports on (a
    /// tree read). Without one, every duration reads 0.
    fn monotonic_ms(&self) -> f64 {
        0.0
    }
    /// Let the worker's event loop run what is waiting (a heartbeat, another session's
    /// message) before long work goes on ([`Slices`]). By default it returns at once.
    async fn yield_now(&self) {}
    /// Resolves after `ms` on the glue's timer: a command's deadline races each call against
    /// it. By default it never resolves (a browser without a timer cannot cut a call short;
    /// calls that start after the deadline are still refused).
    async fn sleep_ms(&self, _ms: u64) {
        std::future::pending::<()>().await
    }
    /// Whether a navigation of tab `id` begins after `since` within `ms` (Chrome starts a
    /// form's submission a task after the click that asked for it); `done` ends the wait
    /// early (a download started instead).
    async fn navigation_begins(
        &self,
        id: i64,
        since: LoadMark,
        ms: u64,
        done: &dyn Fn() -> bool,
    ) -> bool {
        const POLL_MS: u64 = 25;
        for _ in 0..ms.div_ceil(POLL_MS) {
            let loading = match self.tab(id).await {
                Ok(Some(t)) => t.status.as_deref() == Some("loading") || t.pending_url.is_some(),
                _ => false,
            };
            if loading || self.load_mark(id) != since {
                return true;
            }
            if done() {
                return false;
            }
            self.sleep_ms(POLL_MS).await;
        }
        false
    }
    /// What is left of the running command's budget, when this browser carries one
    /// ([`super::deadline::DeadlineBrowser`]).
    fn remaining_ms(&self) -> Option<u64> {
        None
    }
    /// The JavaScript dialog open on the tab, as the glue last heard (none by default: a
    /// browser that cannot report dialogs has none to answer).
    /// What tab `id`'s page logged and fetched since it was attached (`None`: nothing kept).
    fn activity(&self, _id: i64) -> Option<super::activity::TabActivity> {
        None
    }
    /// Forget tab `id`'s console messages.
    fn clear_console(&self, _id: i64) {}
    fn open_dialog(&self, _id: i64) -> Option<Dialog> {
        None
    }
    /// Answer the tab's open dialog: accept it (with `prompt_text` for a `prompt`) or
    /// dismiss it.
    async fn answer_dialog(
        &self,
        id: i64,
        accept: bool,
        prompt_text: Option<&str>,
    ) -> Result<(), BrowserError> {
        let mut params = serde_json::json!({ "accept": accept });
        if let Some(text) = prompt_text {
            params["promptText"] = text.into();
        }
        self.cdp(id, "Page.handleJavaScriptDialog", params)
            .await
            .map(|_| ())
    }
    /// The out-of-process frames of the tab the glue knows sessions for.
    fn frame_sessions(&self, id: i64) -> Vec<FrameSession>;
    async fn navigation_history(&self, id: i64) -> Result<NavigationHistory, BrowserError>;
    async fn go_to_history_entry(&self, id: i64, entry: i64) -> Result<(), BrowserError>;
    /// Make sure this extension's debugger is attached to the tab (a no-op when it is).
    async fn attach(&self, id: i64) -> Result<(), BrowserError>;
    async fn detach(&self, id: i64) -> Result<(), BrowserError>;
    fn attachment(&self, id: i64) -> Attachment;
    /// Forget a reported loss, so the next [`Browser::attach`] starts afresh.
    fn acknowledge_loss(&self, id: i64);
    fn load_mark(&self, id: i64) -> LoadMark;
    /// Wait until the tab finished a load counted after `since` (or, when `since` is `None`,
    /// until it is simply not loading), at most `timeout_ms`.
    async fn wait_for_load(
        &self,
        id: i64,
        since: Option<LoadMark>,
        timeout_ms: u64,
    ) -> Result<LoadOutcome, BrowserError>;
}

/// Longest stretch of work between two yields to the event loop: far below the heartbeat's
/// patience, and short enough that a PONG or another session's command waits only briefly.
pub const SLICE_MS: f64 = 20.0;

/// Cuts long work (decoding, mapping a large tree) into slices of about [`SLICE_MS`]: call
/// [`Slices::breathe`] between small steps, and it yields when the slice is used up. Short
/// work never yields, so it costs nothing on small pages.
pub struct Slices {
    slice_started: f64,
    /// Time spent away, in yields: the work's own time is the elapsed time minus this.
    pub yielded_ms: f64,
    /// How many times it yielded.
    pub yields: usize,
}

impl Slices {
    pub fn start<B: Browser>(browser: &B) -> Slices {
        Slices {
            slice_started: browser.monotonic_ms(),
            yielded_ms: 0.0,
            yields: 0,
        }
    }

    pub async fn breathe<B: Browser>(&mut self, browser: &B) {
        let now = browser.monotonic_ms();
        if now - self.slice_started < SLICE_MS {
            return;
        }
        browser.yield_now().await;
        let back = browser.monotonic_ms();
        self.yielded_ms += back - now;
        self.yields += 1;
        self.slice_started = back;
    }
}
