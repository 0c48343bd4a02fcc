//! An in-memory browser for the kernel's tests: tabs, windows, per-tab history, redirects,
//! slow pages, debugger attachments and JavaScript dialogs, synchronous unless a test asks
//! it to interleave: then every DevTools call first lets other futures run, and a virtual
//! clock advances by a fixed step per call ([`run_together`] drives such tests).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::future::Future;

use super::browser::{
    Attachment, Browser, BrowserError, Dialog, FrameSession, HistoryEntry, LoadMark, LoadOutcome,
    NavigationHistory, TabInfo, WindowInfo,
};

#[derive(Debug, Default)]
pub struct FakeState {
    pub tabs: Vec<TabInfo>,
    pub windows: Vec<i64>,
    pub focused_window: i64,
    pub next_id: i64,
    pub attachments: HashMap<i64, Attachment>,
    pub attach_calls: usize,
    pub refuse_attach: HashSet<i64>,
    /// Per tab: visited URLs and the index of the current one.
    pub histories: HashMap<i64, (Vec<String>, usize)>,
    pub redirects: HashMap<String, String>,
    pub slow: HashSet<String>,
    pub loads: HashMap<i64, u64>,
    pub waits: Vec<u64>,
    /// Canned answers to `cdp` calls by method, and the calls made (tab, method).
    pub cdp_replies: HashMap<String, serde_json::Value>,
    pub cdp_calls: Vec<(i64, String)>,
    /// The same calls with their parameters.
    pub cdp_params: Vec<(i64, String, serde_json::Value)>,
    /// Tabs activated (`activate_tab`), in order.
    pub activations: Vec<i64>,
    /// Tabs `activate_tab` fails for.
    pub refuse_activate: HashSet<i64>,
    /// Out-of-process frames per tab, and canned answers in their sessions by
    /// (session, method).
    pub frame_sessions: HashMap<i64, Vec<FrameSession>>,
    pub session_replies: HashMap<(String, String), serde_json::Value>,
    /// The open JavaScript dialog per tab. While one is open every `cdp` call on the tab
    /// fails at once but the answer, as the glue makes it.
    pub dialogs: HashMap<i64, Dialog>,
    /// What each tab's page logged and fetched, as the glue would have kept it.
    pub activity: HashMap<i64, super::activity::TabActivity>,
    /// CDP methods whose call makes the page open this dialog (a click whose handler calls
    /// `alert`): the call is ended by the dialog, as in the glue.
    pub dialog_on: HashMap<String, Dialog>,
    /// Tabs whose page has a `beforeunload` handler: navigating asks first, and the URL
    /// waits here until the dialog is answered.
    pub beforeunload: HashSet<i64>,
    pub leaving_to: HashMap<i64, String>,
    /// Tabs whose `Page.close` waits on their `beforeunload` dialog: accepting it closes them.
    pub closing: HashSet<i64>,
    /// Dialog answers given: (tab, accept, prompt text).
    pub dialog_answers: Vec<(i64, bool, Option<String>)>,
    /// A whole accessibility tree (`AXNode`s, root first) every tab shows: when set, the
    /// fake answers `getFullAXTree`, `getRootAXNode` and `getChildAXNodes {id}` from it, as
    /// Chromium does.
    pub ax_page: Option<Vec<serde_json::Value>>,
    /// Every DevTools call first yields once to the other futures of [`run_together`].
    pub interleave: bool,
    /// The virtual clock `monotonic_ms` reads, and how far each DevTools call moves it.
    pub clock_ms: f64,
    pub call_ms: f64,
    /// How far each reading of the clock moves it: work between two readings takes time.
    pub work_ms: f64,
    /// How many times the kernel yielded to the event loop (`yield_now`).
    pub yields: usize,
    /// Tab groups: id → (title, window). Chrome removes a group with its last tab.
    pub groups: HashMap<i64, (String, i64)>,
    pub next_group: i64,
    /// Window types other than `normal` (`popup`, `devtools`, …).
    pub window_kinds: HashMap<i64, String>,
    /// Calls that fail, each once, with their message (a node gone with its document):
    /// (method, message), taken in order.
    pub fail_once: Vec<(String, String)>,
}

/// The answer of one `Accessibility` method from a whole tree, as Chromium gives it.
fn ax_answer(
    nodes: &[serde_json::Value],
    method: &str,
    params: &serde_json::Value,
) -> Option<serde_json::Value> {
    match method {
        "Accessibility.enable" => Some(serde_json::json!({})),
        "Accessibility.getFullAXTree" => Some(serde_json::json!({ "nodes": nodes })),
        "Accessibility.getRootAXNode" => Some(serde_json::json!({ "node": nodes.first()? })),
        "Accessibility.getChildAXNodes" => {
            let parent = nodes.iter().find(|n| n["nodeId"] == params["id"])?;
            let children: Vec<&serde_json::Value> = parent["childIds"]
                .as_array()?
                .iter()
                .filter_map(|c| nodes.iter().find(|n| &n["nodeId"] == c))
                .collect();
            Some(serde_json::json!({ "nodes": children }))
        }
        _ => None,
    }
}

#[derive(Debug, Default)]
pub struct FakeBrowser {
    pub state: RefCell<FakeState>,
}

/// Runs a future that never waits (everything in the fake answers at once).
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the fake browser never waits"),
    }
}

/// Runs `a` and `b` on one thread, polling each in turn as a single-threaded executor does
/// (the worker's event loop), and calls `between` with the number of rounds so far before
/// each round, so a test can change the page while both are under way. Panics after 10,000
/// rounds: the two futures are waiting on each other.
pub fn run_together<A: Future, B: Future>(
    a: A,
    b: B,
    mut between: impl FnMut(usize),
) -> (A::Output, B::Output) {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let (mut out_a, mut out_b) = (None, None);
    for round in 0..10_000 {
        between(round);
        if out_a.is_none() {
            if let std::task::Poll::Ready(v) = a.as_mut().poll(&mut cx) {
                out_a = Some(v);
            }
        }
        if out_b.is_none() {
            if let std::task::Poll::Ready(v) = b.as_mut().poll(&mut cx) {
                out_b = Some(v);
            }
        }
        if out_a.is_some() && out_b.is_some() {
            break;
        }
    }
    match (out_a, out_b) {
        (Some(a), Some(b)) => (a, b),
        _ => panic!("the two futures never finished: they wait on each other"),
    }
}

/// Pending on its first poll, ready on the next: lets the other futures run.
pub(crate) struct YieldOnce(pub bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

impl FakeBrowser {
    /// What every DevTools call does first: move the virtual clock, and yield when the test
    /// interleaves futures.
    async fn step(&self) {
        let interleave = {
            let mut s = self.state.borrow_mut();
            s.clock_ms += s.call_ms;
            s.interleave
        };
        if interleave {
            YieldOnce(false).await;
        }
    }

    /// Window 1 (focused) with an active `about:blank` tab 100 and `https://example.com/`
    /// (tab 101); window 2 with `https://other.org/docs` (tab 200, active).
    pub fn standard() -> FakeBrowser {
        let fake = FakeBrowser::default();
        {
            let mut s = fake.state.borrow_mut();
            s.windows = vec![1, 2];
            s.focused_window = 1;
            s.next_id = 300;
            for (id, window, url, title, active) in [
                (100, 1, "about:blank", "", true),
                (101, 1, "https://example.com/", "Example Domain", false),
                (200, 2, "https://other.org/docs", "Other docs", true),
            ] {
                s.tabs.push(TabInfo {
                    id: Some(id),
                    window_id: Some(window),
                    title: title.into(),
                    url: url.into(),
                    active,
                    status: Some("complete".into()),
                    ..Default::default()
                });
                s.histories.insert(id, (vec![url.to_string()], 0));
            }
            // Every tab shows an empty document until a test scripts another page.
            s.cdp_replies.insert(
                "Page.getFrameTree".into(),
                serde_json::json!({"frameTree": {"frame": {"id": "MAIN", "url": ""}}}),
            );
            s.cdp_replies.insert(
                "Accessibility.getFullAXTree".into(),
                serde_json::json!({"nodes": [{"nodeId": "1", "role": {"type": "role", "value": "RootWebArea"}}]}),
            );
            s.cdp_replies.insert(
                "Runtime.evaluate".into(),
                serde_json::json!({"result": {"value": {"doc": "blank", "n": 0}}}),
            );
            // Page-side helpers run in an isolated world of each frame.
            s.cdp_replies.insert(
                "Page.createIsolatedWorld".into(),
                serde_json::json!({"executionContextId": 7}),
            );
        }
        fake
    }

    pub fn url_of(&self, id: i64) -> Option<String> {
        let s = self.state.borrow();
        s.tabs
            .iter()
            .find(|t| t.id == Some(id))
            .map(|t| t.url.clone())
    }

    /// Make `id` the active tab of its window and focus that window, as the user clicking on
    /// it would (not counted in `activations`).
    pub fn activate_now(&self, id: i64) {
        let mut s = self.state.borrow_mut();
        let Some(window) = s
            .tabs
            .iter()
            .find(|t| t.id == Some(id))
            .and_then(|t| t.window_id)
        else {
            return;
        };
        for t in s.tabs.iter_mut().filter(|t| t.window_id == Some(window)) {
            t.active = t.id == Some(id);
        }
        s.focused_window = window;
    }

    /// What Chrome's onDetach would record.
    pub fn lose(&self, id: i64, reason: &str) {
        self.state.borrow_mut().attachments.insert(
            id,
            Attachment::Lost {
                reason: reason.into(),
            },
        );
    }

    fn load(s: &mut FakeState, id: i64, url: &str, push: bool) {
        let url = s
            .redirects
            .get(url)
            .cloned()
            .unwrap_or_else(|| url.to_string());
        if let Some(tab) = s.tabs.iter_mut().find(|t| t.id == Some(id)) {
            tab.title = if url == "about:blank" {
                String::new()
            } else {
                format!("Page {url}")
            };
            tab.url = url.clone();
        }
        if push {
            let (list, index) = s.histories.entry(id).or_default();
            if !list.is_empty() {
                list.truncate(*index + 1);
            }
            list.push(url.clone());
            *index = list.len() - 1;
        }
        if !s.slow.contains(&url) {
            *s.loads.entry(id).or_default() += 1;
        }
    }
}

impl Browser for FakeBrowser {
    async fn tabs(&self) -> Result<Vec<TabInfo>, BrowserError> {
        Ok(self.state.borrow().tabs.clone())
    }

    async fn windows(&self) -> Result<Vec<WindowInfo>, BrowserError> {
        let s = self.state.borrow();
        Ok(s.windows
            .iter()
            .map(|w| WindowInfo {
                id: Some(*w),
                focused: *w == s.focused_window,
                kind: Some(
                    s.window_kinds
                        .get(w)
                        .cloned()
                        .unwrap_or_else(|| "normal".into()),
                ),
                tabs: s
                    .tabs
                    .iter()
                    .filter(|t| t.window_id == Some(*w))
                    .cloned()
                    .collect(),
            })
            .collect())
    }

    async fn tab(&self, id: i64) -> Result<Option<TabInfo>, BrowserError> {
        Ok(self
            .state
            .borrow()
            .tabs
            .iter()
            .find(|t| t.id == Some(id))
            .cloned())
    }

    async fn focused_tab(&self) -> Result<Option<TabInfo>, BrowserError> {
        let s = self.state.borrow();
        Ok(s.tabs
            .iter()
            .find(|t| t.active && t.window_id == Some(s.focused_window))
            .cloned())
    }

    async fn create_tab(&self, url: &str) -> Result<TabInfo, BrowserError> {
        let mut s = self.state.borrow_mut();
        let id = s.next_id;
        s.next_id += 1;
        let window = s.focused_window;
        for t in s.tabs.iter_mut().filter(|t| t.window_id == Some(window)) {
            t.active = false;
        }
        s.tabs.push(TabInfo {
            id: Some(id),
            window_id: Some(window),
            active: true,
            status: Some("loading".into()),
            ..Default::default()
        });
        FakeBrowser::load(&mut s, id, url, true);
        let tab = s.tabs.iter().find(|t| t.id == Some(id)).cloned();
        tab.ok_or_else(|| BrowserError("lost the new tab".into()))
    }

    async fn create_background_tab(&self, url: &str, window: i64) -> Result<TabInfo, BrowserError> {
        let mut s = self.state.borrow_mut();
        if !s.windows.contains(&window) {
            return Err(BrowserError(format!("No window with id: {window}.")));
        }
        let id = s.next_id;
        s.next_id += 1;
        s.tabs.push(TabInfo {
            id: Some(id),
            window_id: Some(window),
            active: false,
            status: Some("loading".into()),
            group_id: Some(-1),
            ..Default::default()
        });
        FakeBrowser::load(&mut s, id, url, true);
        let tab = s.tabs.iter().find(|t| t.id == Some(id)).cloned();
        tab.ok_or_else(|| BrowserError("lost the new tab".into()))
    }

    async fn group_tab(&self, tab: i64, group: Option<i64>) -> Result<i64, BrowserError> {
        let mut s = self.state.borrow_mut();
        let window = s
            .tabs
            .iter()
            .find(|t| t.id == Some(tab))
            .and_then(|t| t.window_id)
            .ok_or_else(|| BrowserError(format!("No tab with id: {tab}.")))?;
        if s.window_kinds.contains_key(&window) {
            return Err(BrowserError(
                "Grouping is only supported for normal browser windows.".into(),
            ));
        }
        let group = match group {
            Some(g) if s.groups.contains_key(&g) => g,
            Some(g) => return Err(BrowserError(format!("No group with id: {g}."))),
            None => {
                s.next_group += 1;
                let g = 900 + s.next_group;
                s.groups.insert(g, (String::new(), window));
                g
            }
        };
        if let Some(t) = s.tabs.iter_mut().find(|t| t.id == Some(tab)) {
            t.group_id = Some(group);
        }
        Ok(group)
    }

    async fn set_group_title(&self, group: i64, title: &str) -> Result<(), BrowserError> {
        let mut s = self.state.borrow_mut();
        let entry = s
            .groups
            .get_mut(&group)
            .ok_or_else(|| BrowserError(format!("No group with id: {group}.")))?;
        entry.0 = title.to_string();
        Ok(())
    }

    async fn group_title(&self, group: i64) -> Result<Option<String>, BrowserError> {
        Ok(self.state.borrow().groups.get(&group).map(|g| g.0.clone()))
    }

    async fn navigate_tab(&self, id: i64, url: &str) -> Result<(), BrowserError> {
        let mut s = self.state.borrow_mut();
        if !s.tabs.iter().any(|t| t.id == Some(id)) {
            return Err(BrowserError(format!("No tab with id: {id}.")));
        }
        if s.beforeunload.contains(&id) {
            s.dialogs.insert(
                id,
                Dialog {
                    kind: "beforeunload".into(),
                    ..Default::default()
                },
            );
            s.leaving_to.insert(id, url.to_string());
            return Ok(());
        }
        FakeBrowser::load(&mut s, id, url, true);
        Ok(())
    }

    async fn close_tab(&self, id: i64) -> Result<(), BrowserError> {
        let mut s = self.state.borrow_mut();
        s.tabs.retain(|t| t.id != Some(id));
        s.attachments.remove(&id);
        let tabs = std::mem::take(&mut s.tabs);
        s.groups
            .retain(|g, _| tabs.iter().any(|t| t.group_id == Some(*g)));
        s.tabs = tabs;
        Ok(())
    }

    async fn activate_tab(&self, id: i64) -> Result<(), BrowserError> {
        let mut s = self.state.borrow_mut();
        if s.refuse_activate.contains(&id) {
            return Err(BrowserError(format!(
                "Tabs cannot be edited right now ({id})."
            )));
        }
        let window = s
            .tabs
            .iter()
            .find(|t| t.id == Some(id))
            .and_then(|t| t.window_id)
            .ok_or_else(|| BrowserError(format!("No tab with id: {id}.")))?;
        for t in s.tabs.iter_mut().filter(|t| t.window_id == Some(window)) {
            t.active = t.id == Some(id);
        }
        s.focused_window = window;
        s.activations.push(id);
        Ok(())
    }

    async fn cdp(
        &self,
        id: i64,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, BrowserError> {
        self.step().await;
        let mut s = self.state.borrow_mut();
        if s.attachments.get(&id) != Some(&Attachment::Attached) {
            return Err(BrowserError(format!(
                "Debugger is not attached to the tab with id: {id}."
            )));
        }
        s.cdp_calls.push((id, method.to_string()));
        s.cdp_params.push((id, method.to_string(), params.clone()));
        if method == "Page.handleJavaScriptDialog" {
            let Some(dialog) = s.dialogs.remove(&id) else {
                return Err(BrowserError("No dialog is showing".into()));
            };
            let accept = params["accept"].as_bool().unwrap_or(false);
            let text = params["promptText"].as_str().map(str::to_string);
            s.dialog_answers.push((id, accept, text));
            if let Some(url) = s.leaving_to.remove(&id) {
                if accept && dialog.kind == "beforeunload" {
                    FakeBrowser::load(&mut s, id, &url, true);
                }
            }
            if s.closing.remove(&id) && accept {
                s.tabs.retain(|t| t.id != Some(id));
                s.attachments.remove(&id);
            }
            return Ok(serde_json::json!({}));
        }
        if s.dialogs.contains_key(&id) {
            return Err(BrowserError(format!(
                "{method} cannot run: the page has a JavaScript dialog open"
            )));
        }
        if method == "Page.close" {
            if s.beforeunload.contains(&id) {
                s.dialogs.insert(
                    id,
                    Dialog {
                        kind: "beforeunload".into(),
                        ..Default::default()
                    },
                );
                s.closing.insert(id);
            } else {
                s.tabs.retain(|t| t.id != Some(id));
                s.attachments.remove(&id);
            }
            return Ok(serde_json::json!({}));
        }
        if let Some(at) = s.fail_once.iter().position(|(m, _)| m == method) {
            let (_, message) = s.fail_once.remove(at);
            return Err(BrowserError(message));
        }
        if let Some(dialog) = s.dialog_on.remove(method) {
            s.dialogs.insert(id, dialog);
            return Err(BrowserError(format!(
                "{method} cannot run: the page has a JavaScript dialog open"
            )));
        }
        if let Some(answer) = s
            .ax_page
            .as_deref()
            .and_then(|nodes| ax_answer(nodes, method, &params))
        {
            return Ok(answer);
        }
        s.cdp_replies
            .get(method)
            .cloned()
            .ok_or_else(|| BrowserError(format!("'{method}' wasn't found")))
    }

    async fn cdp_in_session(
        &self,
        id: i64,
        session_id: &str,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, BrowserError> {
        self.step().await;
        let mut s = self.state.borrow_mut();
        s.cdp_calls.push((id, format!("{session_id}:{method}")));
        s.cdp_params
            .push((id, format!("{session_id}:{method}"), params.clone()));
        s.session_replies
            .get(&(session_id.to_string(), method.to_string()))
            .cloned()
            .ok_or_else(|| BrowserError(format!("No session with given id: {session_id}")))
    }

    fn open_dialog(&self, id: i64) -> Option<Dialog> {
        self.state.borrow().dialogs.get(&id).cloned()
    }

    fn activity(&self, id: i64) -> Option<super::activity::TabActivity> {
        self.state.borrow().activity.get(&id).cloned()
    }

    fn clear_console(&self, id: i64) {
        if let Some(tab) = self.state.borrow_mut().activity.get_mut(&id) {
            tab.clear_console();
        }
    }

    fn frame_sessions(&self, id: i64) -> Vec<FrameSession> {
        self.state
            .borrow()
            .frame_sessions
            .get(&id)
            .cloned()
            .unwrap_or_default()
    }

    async fn navigation_history(&self, id: i64) -> Result<NavigationHistory, BrowserError> {
        let s = self.state.borrow();
        let (list, index) = s.histories.get(&id).cloned().unwrap_or_default();
        Ok(NavigationHistory {
            current: index,
            entries: list
                .into_iter()
                .enumerate()
                .map(|(i, url)| HistoryEntry { id: i as i64, url })
                .collect(),
        })
    }

    async fn go_to_history_entry(&self, id: i64, entry: i64) -> Result<(), BrowserError> {
        let mut s = self.state.borrow_mut();
        let url = {
            let (list, index) = s.histories.entry(id).or_default();
            let i = entry as usize;
            *index = i;
            list.get(i).cloned().unwrap_or_default()
        };
        FakeBrowser::load(&mut s, id, &url, false);
        Ok(())
    }

    async fn attach(&self, id: i64) -> Result<(), BrowserError> {
        let mut s = self.state.borrow_mut();
        if s.refuse_attach.contains(&id) {
            return Err(BrowserError(format!(
                "Another debugger is already attached to the tab with id: {id}."
            )));
        }
        if s.attachments.get(&id) != Some(&Attachment::Attached) {
            s.attach_calls += 1;
            s.attachments.insert(id, Attachment::Attached);
        }
        Ok(())
    }

    async fn detach(&self, id: i64) -> Result<(), BrowserError> {
        self.state.borrow_mut().attachments.remove(&id);
        Ok(())
    }

    fn attachment(&self, id: i64) -> Attachment {
        self.state
            .borrow()
            .attachments
            .get(&id)
            .cloned()
            .unwrap_or(Attachment::NotAttached)
    }

    fn acknowledge_loss(&self, id: i64) {
        let mut s = self.state.borrow_mut();
        if matches!(s.attachments.get(&id), Some(Attachment::Lost { .. })) {
            s.attachments.remove(&id);
        }
    }

    fn monotonic_ms(&self) -> f64 {
        let mut s = self.state.borrow_mut();
        s.clock_ms += s.work_ms;
        s.clock_ms
    }

    /// Pages here navigate during the call that asks for it, never a moment later.
    async fn navigation_begins(
        &self,
        id: i64,
        since: LoadMark,
        _ms: u64,
        _done: &dyn Fn() -> bool,
    ) -> bool {
        self.load_mark(id) != since
    }

    async fn yield_now(&self) {
        self.state.borrow_mut().yields += 1;
        YieldOnce(false).await;
    }

    fn load_mark(&self, id: i64) -> LoadMark {
        LoadMark(self.state.borrow().loads.get(&id).copied().unwrap_or(0))
    }

    async fn wait_for_load(
        &self,
        id: i64,
        since: Option<LoadMark>,
        timeout_ms: u64,
    ) -> Result<LoadOutcome, BrowserError> {
        let mut s = self.state.borrow_mut();
        s.waits.push(timeout_ms);
        let Some(tab) = s.tabs.iter().find(|t| t.id == Some(id)).cloned() else {
            return Ok(LoadOutcome::Gone);
        };
        let count = s.loads.get(&id).copied().unwrap_or(0);
        let done = since.is_none_or(|m| count > m.0)
            && !s.slow.contains(&tab.url)
            && !s.dialogs.contains_key(&id);
        Ok(if done {
            LoadOutcome::Complete(tab)
        } else {
            LoadOutcome::TimedOut(tab)
        })
    }
}
