//! The kernel's browser as one session sees it: only the tabs of its lane (or, in the
//! shared lane, only tabs outside every lane), and new tabs opened into its lane.
//!
//! Every command reaches tabs through the port, so confining the port confines every
//! command, present and future: `tabs`, `windows`, `cd`, `here`, `open`, `close`, and the
//! gate page commands pass ([`super::navigation::require_page`]) all choose tabs through
//! [`Browser::tabs`], [`Browser::windows`], [`Browser::tab`] and [`Browser::focused_tab`].
//! It owns that filter and the placement of new tabs; the rules themselves are
//! [`super::lanes::View`]'s. It must not decide anything else: every other call passes
//! through unchanged.

use super::browser::{
    Attachment, Browser, BrowserError, Dialog, FrameSession, LoadMark, LoadOutcome,
    NavigationHistory, TabInfo, WindowInfo,
};
use super::lanes::View;

pub struct Confined<'a, B: Browser> {
    inner: &'a B,
    view: View,
}

impl<'a, B: Browser> Confined<'a, B> {
    pub fn new(inner: &'a B, view: View) -> Confined<'a, B> {
        Confined { inner, view }
    }

    fn refused(&self, id: i64) -> BrowserError {
        BrowserError(self.view.refusal(id))
    }
}

impl<B: Browser> Browser for Confined<'_, B> {
    async fn tabs(&self) -> Result<Vec<TabInfo>, BrowserError> {
        let mut tabs = self.inner.tabs().await?;
        tabs.retain(|t| self.view.shows(t));
        Ok(tabs)
    }
    /// Windows holding none of the view's tabs are left out only in a lane: a shared
    /// session still sees an empty window it may open a tab in.
    async fn windows(&self) -> Result<Vec<WindowInfo>, BrowserError> {
        let mut windows = self.inner.windows().await?;
        for window in &mut windows {
            window.tabs.retain(|t| self.view.shows(t));
        }
        if self.view.lane().is_some() {
            windows.retain(|w| !w.tabs.is_empty());
        }
        Ok(windows)
    }
    /// A tab outside the view is an error saying whose it is, not "no such tab": the
    /// session's own tab that the user dragged out of its lane must not read as closed.
    async fn tab(&self, id: i64) -> Result<Option<TabInfo>, BrowserError> {
        match self.inner.tab(id).await? {
            Some(tab) if !self.view.shows(&tab) => Err(self.refused(id)),
            other => Ok(other),
        }
    }
    /// The user's focused tab, in a lane the lane's tab that is active in its window.
    async fn focused_tab(&self) -> Result<Option<TabInfo>, BrowserError> {
        if self.view.lane().is_some() {
            let tabs = self.tabs().await?;
            let active = tabs.iter().position(|t| t.active).unwrap_or(0);
            return Ok(tabs.into_iter().nth(active));
        }
        Ok(self
            .inner
            .focused_tab()
            .await?
            .filter(|t| self.view.shows(t)))
    }
    /// In a lane: a background tab in the window of the lane's tabs, put in its group (a
    /// tab that cannot join is closed again, and the error says why).
    async fn create_tab(&self, url: &str) -> Result<TabInfo, BrowserError> {
        let Some(lane) = self.view.lane() else {
            return self.inner.create_tab(url).await;
        };
        let window = self
            .tabs()
            .await?
            .into_iter()
            .find(|t| t.group_id == Some(lane.id))
            .and_then(|t| t.window_id)
            .ok_or_else(|| {
                BrowserError(format!(
                    "lane {} has no tab left to open a new one beside; close it with `group close` and make a new one with `group new`",
                    lane.id
                ))
            })?;
        let mut tab = self.inner.create_background_tab(url, window).await?;
        let id = tab
            .id
            .ok_or_else(|| BrowserError("Chrome opened a tab without an id".into()))?;
        if let Err(e) = self.inner.group_tab(id, Some(lane.id)).await {
            let _ = self.inner.close_tab(id).await;
            return Err(BrowserError(format!(
                "the new tab could not join lane {} ({e}); it was closed again",
                lane.id
            )));
        }
        tab.group_id = Some(lane.id);
        Ok(tab)
    }
    async fn create_background_tab(&self, url: &str, window: i64) -> Result<TabInfo, BrowserError> {
        self.inner.create_background_tab(url, window).await
    }
    async fn group_tab(&self, tab: i64, group: Option<i64>) -> Result<i64, BrowserError> {
        self.inner.group_tab(tab, group).await
    }
    async fn set_group_title(&self, group: i64, title: &str) -> Result<(), BrowserError> {
        self.inner.set_group_title(group, title).await
    }
    async fn group_title(&self, group: i64) -> Result<Option<String>, BrowserError> {
        self.inner.group_title(group).await
    }
    async fn navigate_tab(&self, id: i64, url: &str) -> Result<(), BrowserError> {
        self.inner.navigate_tab(id, url).await
    }
    async fn close_tab(&self, id: i64) -> Result<(), BrowserError> {
        self.inner.close_tab(id).await
    }
    async fn activate_tab(&self, id: i64) -> Result<(), BrowserError> {
        self.inner.activate_tab(id).await
    }
    async fn cdp(
        &self,
        id: i64,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, BrowserError> {
        self.inner.cdp(id, method, params).await
    }
    async fn cdp_in_session(
        &self,
        id: i64,
        session_id: &str,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, BrowserError> {
        self.inner
            .cdp_in_session(id, session_id, method, params)
            .await
    }
    async fn cdp_at(
        &self,
        id: i64,
        session: Option<&str>,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, BrowserError> {
        self.inner.cdp_at(id, session, method, params).await
    }
    async fn cdp_text(
        &self,
        id: i64,
        session: Option<&str>,
        method: &str,
        params: serde_json::Value,
    ) -> Result<String, BrowserError> {
        self.inner.cdp_text(id, session, method, params).await
    }
    async fn cdp_node_chunks(
        &self,
        id: i64,
        session: Option<&str>,
        method: &str,
        params: serde_json::Value,
        per_chunk: usize,
    ) -> Result<Vec<String>, BrowserError> {
        self.inner
            .cdp_node_chunks(id, session, method, params, per_chunk)
            .await
    }
    fn monotonic_ms(&self) -> f64 {
        self.inner.monotonic_ms()
    }
    async fn yield_now(&self) {
        self.inner.yield_now().await
    }
    async fn sleep_ms(&self, ms: u64) {
        self.inner.sleep_ms(ms).await
    }
    async fn navigation_begins(
        &self,
        id: i64,
        since: LoadMark,
        ms: u64,
        done: &dyn Fn() -> bool,
    ) -> bool {
        self.inner.navigation_begins(id, since, ms, done).await
    }
    fn remaining_ms(&self) -> Option<u64> {
        self.inner.remaining_ms()
    }
    fn activity(&self, id: i64) -> Option<super::activity::TabActivity> {
        self.inner.activity(id)
    }
    fn clear_console(&self, id: i64) {
        self.inner.clear_console(id)
    }
    fn open_dialog(&self, id: i64) -> Option<Dialog> {
        self.inner.open_dialog(id)
    }
    async fn answer_dialog(
        &self,
        id: i64,
        accept: bool,
        prompt_text: Option<&str>,
    ) -> Result<(), BrowserError> {
        self.inner.answer_dialog(id, accept, prompt_text).await
    }
    fn frame_sessions(&self, id: i64) -> Vec<FrameSession> {
        self.inner.frame_sessions(id)
    }
    async fn navigation_history(&self, id: i64) -> Result<NavigationHistory, BrowserError> {
        self.inner.navigation_history(id).await
    }
    async fn go_to_history_entry(&self, id: i64, entry: i64) -> Result<(), BrowserError> {
        self.inner.go_to_history_entry(id, entry).await
    }
    async fn attach(&self, id: i64) -> Result<(), BrowserError> {
        self.inner.attach(id).await
    }
    async fn detach(&self, id: i64) -> Result<(), BrowserError> {
        self.inner.detach(id).await
    }
    fn attachment(&self, id: i64) -> Attachment {
        self.inner.attachment(id)
    }
    fn acknowledge_loss(&self, id: i64) {
        self.inner.acknowledge_loss(id)
    }
    fn load_mark(&self, id: i64) -> LoadMark {
        self.inner.load_mark(id)
    }
    async fn wait_for_load(
        &self,
        id: i64,
        since: Option<LoadMark>,
        timeout_ms: u64,
    ) -> Result<LoadOutcome, BrowserError> {
        self.inner.wait_for_load(id, since, timeout_ms).await
    }
}
