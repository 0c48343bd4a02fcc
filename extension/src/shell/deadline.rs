//! One deadline per command, and the cancellation that stops it.
//!
//! A command's deadline is fixed when it starts, from the budget its `EXECUTE` frame carries
//! ([`super::Context::wait_cap_ms`]); [`DeadlineBrowser`] wraps the kernel's [`Browser`] port
//! so that every call and wait inside the command takes only what is left of it, and fails
//! with a clear "the command's budget … ran out while …" error instead of running past the
//! server's deadline. [`CancelToken`] is how the glue stops a running command (`CANCEL`): the
//! command's future is raced against it and dropped at its next await.
//!
//! It is sans-IO: the clock and the timer are the port's ([`Browser::monotonic_ms`],
//! [`Browser::sleep_ms`]). It must not decide what a command does with its time; it only
//! bounds it.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Poll, Waker};

use super::browser::{
    Attachment, Browser, BrowserError, Dialog, FrameSession, LoadMark, LoadOutcome,
    NavigationHistory, TabInfo, WindowInfo,
};

/// How long before the command's deadline a wait of its own ends, so that a wait whose end
/// coincides with the deadline reports its own timeout rather than a budget error.
pub const WAIT_END_MARGIN_MS: u64 = 25;

/// A command's deadline: when it started on the port's clock and how long it may take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deadline {
    start_ms: f64,
    budget_ms: u64,
}

impl Deadline {
    pub fn new(start_ms: f64, budget_ms: u64) -> Deadline {
        Deadline {
            start_ms,
            budget_ms,
        }
    }

    pub fn budget_ms(&self) -> u64 {
        self.budget_ms
    }

    /// What is left at `now_ms` (zero once it passed; a clock that went back counts as no
    /// time spent).
    pub fn remaining_ms(&self, now_ms: f64) -> u64 {
        let spent = (now_ms - self.start_ms).max(0.0);
        (self.budget_ms as f64 - spent).max(0.0) as u64
    }

    /// How long a wait that asks for `requested_ms` may last at `now_ms`: what it asked for
    /// when that ends well before the deadline, else what is left less
    /// [`WAIT_END_MARGIN_MS`].
    pub fn wait_ms(&self, requested_ms: u64, now_ms: f64) -> u64 {
        wait_within(requested_ms, self.remaining_ms(now_ms))
    }

    /// The error of a call the deadline cut short.
    pub fn ran_out(&self, during: &str) -> String {
        format!(
            "the command's budget of {} s ran out while {during}; retry with a larger timeout, or a narrower command",
            seconds(self.budget_ms)
        )
    }
}

/// A wait of `requested_ms` with `remaining_ms` of the command left (see [`Deadline::wait_ms`]).
pub fn wait_within(requested_ms: u64, remaining_ms: u64) -> u64 {
    if requested_ms.saturating_add(WAIT_END_MARGIN_MS) <= remaining_ms {
        requested_ms
    } else {
        remaining_ms.saturating_sub(WAIT_END_MARGIN_MS)
    }
}

/// Milliseconds as seconds for a message: `13`, `0.5`.
fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        format!("{:.1}", ms as f64 / 1000.0)
    }
}

/// Which of two raced futures finished first.
#[derive(Debug, PartialEq, Eq)]
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls both futures until one is ready and drops the other (the first wins a tie).
pub async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    })
    .await
}

/// Polls all `futures` together until every one is ready; their outputs in order. Calls
/// started together are sent in order and answered in one round trip's time.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[derive(Debug, Default)]
struct CancelState {
    cancelled: bool,
    waker: Option<Waker>,
}

/// A running command's stop signal: the glue keeps one per running `EXECUTE` and cancels it
/// on `CANCEL`. Single-threaded, like the worker.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Rc<RefCell<CancelState>>);

impl CancelToken {
    pub fn cancel(&self) {
        let waker = {
            let mut s = self.0.borrow_mut();
            s.cancelled = true;
            s.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.borrow().cancelled
    }

    /// Resolves once [`CancelToken::cancel`] was called.
    pub async fn cancelled(&self) {
        poll_fn(|cx| {
            let mut s = self.0.borrow_mut();
            if s.cancelled {
                Poll::Ready(())
            } else {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Runs `work` unless the token is cancelled first; `None` when it was (the work's
    /// future is dropped at the await it was in).
    pub async fn run<F: Future>(&self, work: F) -> Option<F::Output> {
        match race(work, self.cancelled()).await {
            Either::Left(v) => Some(v),
            Either::Right(()) => None,
        }
    }
}

/// The kernel's browser with the command's deadline on every call: a call that starts after
/// the deadline fails at once, one still running when it passes is dropped, and page-load
/// waits are shortened to what is left.
pub struct DeadlineBrowser<'a, B: Browser> {
    inner: &'a B,
    deadline: Deadline,
}

impl<'a, B: Browser> DeadlineBrowser<'a, B> {
    /// The deadline starts now, on `inner`'s clock.
    pub fn new(inner: &'a B, budget_ms: u64) -> DeadlineBrowser<'a, B> {
        DeadlineBrowser {
            inner,
            deadline: Deadline::new(inner.monotonic_ms(), budget_ms),
        }
    }

    fn left(&self) -> u64 {
        self.deadline.remaining_ms(self.inner.monotonic_ms())
    }

    /// `call`, unless the deadline passes first. The call comes boxed and `during` behind
    /// `dyn`, so this is one function per result type rather than one per port method.
    async fn bound<T>(
        &self,
        during: &dyn Fn() -> String,
        call: Pin<Box<dyn Future<Output = Result<T, BrowserError>> + '_>>,
    ) -> Result<T, BrowserError> {
        let left = self.left();
        if left == 0 {
            return Err(BrowserError(self.deadline.ran_out(&during())));
        }
        match race(call, self.inner.sleep_ms(left)).await {
            Either::Left(result) => result,
            Either::Right(()) => Err(BrowserError(self.deadline.ran_out(&during()))),
        }
    }
}

fn calling(method: &str) -> String {
    format!("waiting for Chrome to answer {method}")
}

impl<B: Browser> Browser for DeadlineBrowser<'_, B> {
    async fn tabs(&self) -> Result<Vec<TabInfo>, BrowserError> {
        self.bound(&|| "listing tabs".into(), Box::pin(self.inner.tabs()))
            .await
    }
    async fn windows(&self) -> Result<Vec<WindowInfo>, BrowserError> {
        self.bound(&|| "listing windows".into(), Box::pin(self.inner.windows()))
            .await
    }
    async fn tab(&self, id: i64) -> Result<Option<TabInfo>, BrowserError> {
        self.bound(
            &|| format!("looking up tab {id}"),
            Box::pin(self.inner.tab(id)),
        )
        .await
    }
    async fn focused_tab(&self) -> Result<Option<TabInfo>, BrowserError> {
        self.bound(
            &|| "looking up the focused tab".into(),
            Box::pin(self.inner.focused_tab()),
        )
        .await
    }
    async fn create_tab(&self, url: &str) -> Result<TabInfo, BrowserError> {
        self.bound(
            &|| "opening a tab".into(),
            Box::pin(self.inner.create_tab(url)),
        )
        .await
    }
    async fn create_background_tab(&self, url: &str, window: i64) -> Result<TabInfo, BrowserError> {
        self.bound(
            &|| "opening a tab".into(),
            Box::pin(self.inner.create_background_tab(url, window)),
        )
        .await
    }
    async fn group_tab(&self, tab: i64, group: Option<i64>) -> Result<i64, BrowserError> {
        self.bound(
            &|| format!("grouping tab {tab}"),
            Box::pin(self.inner.group_tab(tab, group)),
        )
        .await
    }
    async fn set_group_title(&self, group: i64, title: &str) -> Result<(), BrowserError> {
        self.bound(
            &|| format!("naming tab group {group}"),
            Box::pin(self.inner.set_group_title(group, title)),
        )
        .await
    }
    async fn group_title(&self, group: i64) -> Result<Option<String>, BrowserError> {
        self.bound(
            &|| format!("reading tab group {group}"),
            Box::pin(self.inner.group_title(group)),
        )
        .await
    }
    async fn navigate_tab(&self, id: i64, url: &str) -> Result<(), BrowserError> {
        self.bound(
            &|| format!("navigating tab {id}"),
            Box::pin(self.inner.navigate_tab(id, url)),
        )
        .await
    }
    async fn close_tab(&self, id: i64) -> Result<(), BrowserError> {
        self.bound(
            &|| format!("closing tab {id}"),
            Box::pin(self.inner.close_tab(id)),
        )
        .await
    }
    async fn activate_tab(&self, id: i64) -> Result<(), BrowserError> {
        self.bound(
            &|| format!("activating tab {id}"),
            Box::pin(self.inner.activate_tab(id)),
        )
        .await
    }
    async fn cdp(
        &self,
        id: i64,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, BrowserError> {
        self.bound(
            &|| calling(method),
            Box::pin(self.inner.cdp(id, method, params)),
        )
        .await
    }
    async fn cdp_in_session(
        &self,
        id: i64,
        session_id: &str,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, BrowserError> {
        self.bound(
            &|| calling(method),
            Box::pin(self.inner.cdp_in_session(id, session_id, method, params)),
        )
        .await
    }
    async fn cdp_text(
        &self,
        id: i64,
        session: Option<&str>,
        method: &str,
        params: serde_json::Value,
    ) -> Result<String, BrowserError> {
        self.bound(
            &|| calling(method),
            Box::pin(self.inner.cdp_text(id, session, method, params)),
        )
        .await
    }
    async fn cdp_node_chunks(
        &self,
        id: i64,
        session: Option<&str>,
        method: &str,
        params: serde_json::Value,
        per_chunk: usize,
    ) -> Result<Vec<String>, BrowserError> {
        self.bound(
            &|| calling(method),
            Box::pin(
                self.inner
                    .cdp_node_chunks(id, session, method, params, per_chunk),
            ),
        )
        .await
    }
    fn monotonic_ms(&self) -> f64 {
        self.inner.monotonic_ms()
    }
    async fn yield_now(&self) {
        self.inner.yield_now().await
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
        self.bound(
            &|| "answering the dialog".into(),
            Box::pin(self.inner.answer_dialog(id, accept, prompt_text)),
        )
        .await
    }
    fn frame_sessions(&self, id: i64) -> Vec<FrameSession> {
        self.inner.frame_sessions(id)
    }
    async fn navigation_history(&self, id: i64) -> Result<NavigationHistory, BrowserError> {
        self.bound(
            &|| "reading the tab's history".into(),
            Box::pin(self.inner.navigation_history(id)),
        )
        .await
    }
    async fn go_to_history_entry(&self, id: i64, entry: i64) -> Result<(), BrowserError> {
        self.bound(
            &|| "moving in the tab's history".into(),
            Box::pin(self.inner.go_to_history_entry(id, entry)),
        )
        .await
    }
    async fn attach(&self, id: i64) -> Result<(), BrowserError> {
        self.bound(
            &|| format!("attaching the debugger to tab {id}"),
            Box::pin(self.inner.attach(id)),
        )
        .await
    }
    async fn detach(&self, id: i64) -> Result<(), BrowserError> {
        self.bound(
            &|| format!("detaching from tab {id}"),
            Box::pin(self.inner.detach(id)),
        )
        .await
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
    /// Shortened to what is left, so it ends with its own "still loading" outcome; not raced,
    /// the inner wait's own timer ends it.
    async fn wait_for_load(
        &self,
        id: i64,
        since: Option<LoadMark>,
        timeout_ms: u64,
    ) -> Result<LoadOutcome, BrowserError> {
        let left = self.left();
        if left == 0 {
            return Err(BrowserError(
                self.deadline.ran_out("waiting for the page to load"),
            ));
        }
        self.inner
            .wait_for_load(id, since, timeout_ms.min(left))
            .await
    }
    async fn sleep_ms(&self, ms: u64) {
        self.inner.sleep_ms(ms.min(self.left())).await
    }
    /// Within what is left.
    async fn navigation_begins(
        &self,
        id: i64,
        since: LoadMark,
        ms: u64,
        done: &dyn Fn() -> bool,
    ) -> bool {
        self.inner
            .navigation_begins(id, since, ms.min(self.left()), done)
            .await
    }
    fn remaining_ms(&self) -> Option<u64> {
        Some(self.left())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::fake::{block_on, FakeBrowser};

    #[test]
    fn joined_futures_all_start_before_any_ends_and_answer_in_order() {
        use crate::shell::fake::{run_together, YieldOnce};
        let log = RefCell::new(Vec::new());
        let step = |name: &'static str, waits: usize| {
            let log = &log;
            async move {
                log.borrow_mut().push(format!("start {name}"));
                for _ in 0..waits {
                    YieldOnce(false).await;
                }
                log.borrow_mut().push(format!("end {name}"));
                name
            }
        };
        let futures = vec![step("move", 2), step("press", 0), step("release", 1)];
        let (out, ()) = run_together(join_all(futures), async {}, |_| {});
        assert_eq!(out, ["move", "press", "release"]);
        let log = log.into_inner();
        assert_eq!(&log[..3], ["start move", "start press", "end press"]);
        assert_eq!(
            log[3], "start release",
            "sent before the first answered: {log:?}"
        );
        assert_eq!(log.len(), 6);
    }

    #[test]
    fn what_is_left_shrinks_with_time_and_stops_at_zero() {
        let d = Deadline::new(1_000.0, 5_000);
        assert_eq!(d.remaining_ms(1_000.0), 5_000);
        assert_eq!(d.remaining_ms(3_500.0), 2_500);
        assert_eq!(d.remaining_ms(9_000.0), 0);
        // A clock that went back spends nothing.
        assert_eq!(d.remaining_ms(0.0), 5_000);
    }

    #[test]
    fn a_wait_ending_at_the_deadline_ends_a_little_before_it() {
        let d = Deadline::new(0.0, 2_000);
        assert_eq!(d.wait_ms(1_000, 0.0), 1_000);
        assert_eq!(d.wait_ms(2_000, 0.0), 2_000 - WAIT_END_MARGIN_MS);
        assert_eq!(d.wait_ms(5_000, 1_500.0), 500 - WAIT_END_MARGIN_MS);
        assert_eq!(d.wait_ms(5_000, 2_000.0), 0);
    }

    #[test]
    fn the_error_names_the_budget_and_what_ran_out() {
        let d = Deadline::new(0.0, 13_000);
        let e = d.ran_out("waiting for Chrome to answer DOM.resolveNode");
        assert!(
            e.starts_with("the command's budget of 13 s ran out while waiting for Chrome to answer DOM.resolveNode"),
            "{e}"
        );
        assert!(Deadline::new(0.0, 500).ran_out("x").contains("0.5 s"));
    }

    #[test]
    fn a_cancelled_token_stops_work_that_is_still_waiting() {
        let token = CancelToken::default();
        let mut work = std::pin::pin!(token.run(std::future::pending::<u32>()));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(work.as_mut().poll(&mut cx).is_pending());
        token.cancel();
        assert_eq!(work.as_mut().poll(&mut cx), Poll::Ready(None));
        assert!(token.is_cancelled());
        // Work that finishes before any cancel keeps its result.
        let other = CancelToken::default();
        assert_eq!(block_on(other.run(async { 7 })), Some(7));
    }

    #[test]
    fn the_wrapper_refuses_calls_once_the_budget_is_spent() {
        let b = FakeBrowser::standard();
        let bounded = DeadlineBrowser::new(&b, 0);
        let e = block_on(bounded.tabs()).unwrap_err();
        assert!(e.0.contains("ran out while listing tabs"), "{e}");
        assert_eq!(bounded.remaining_ms(), Some(0));
        let open = DeadlineBrowser::new(&b, 1_000);
        assert!(block_on(open.tabs()).is_ok());
    }
}
