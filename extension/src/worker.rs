//! Glue between the browser and the plain-Rust parts: WebSocket handlers, the one wake-up
//! timer, `chrome.storage`, `chrome.alarms`, and the shell kernel's sessions (run through
//! [`ChromeBrowser`], persisted in `chrome.storage.session`).
//!
//! It owns I/O only. Every decision (when to dial, what to answer) is made by [`Link`] and
//! the [`shell`](crate::shell) kernel; this module carries out their effects. Events arrive
//! from the JS bootstrap (`boot`, then `handle_event`) and from socket and timer callbacks.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use serde_json::{json, Value};
use shared_protocol::frame::Frame;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::chrome::{self, to_js, ChromeBrowser};
use crate::lane_keeper;
use crate::link::{Effect, Event, Link};
use crate::settings::{self, Settings, Status};
use crate::shell::deadline::CancelToken;
use crate::shell::group::LaneRequest;
use crate::shell::lanes;
use crate::shell::page::PageCache;
use crate::shell::saved::{self, Saved, SavedCell};
use crate::shell::session::{
    keep_recent, storage_key, SessionTable, MAX_STORED_SESSIONS, STORAGE_PREFIX,
};
use crate::shell::{self, Context, Session};

const ALARM_NAME: &str = "domshell-heartbeat";
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// What releasing a command's remote objects may take after its reply (a call per target).
const RELEASE_BUDGET_MS: u64 = 10_000;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["chrome", "storage", "local"], js_name = get)]
    fn storage_get(keys: &JsValue) -> js_sys::Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "storage", "local"], js_name = set)]
    fn storage_set(items: &JsValue) -> js_sys::Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "alarms"], js_name = get)]
    fn alarms_get(name: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "alarms"], js_name = create)]
    fn alarms_create(name: &str, info: &JsValue) -> js_sys::Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "storage", "session"], js_name = get)]
    fn session_storage_get(keys: &JsValue) -> js_sys::Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "storage", "session"], js_name = set)]
    fn session_storage_set(items: &JsValue) -> js_sys::Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "storage", "session"], js_name = remove)]
    fn session_storage_remove(key: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
    #[wasm_bindgen(js_namespace = console, js_name = info)]
    fn console_info(text: &str);
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(text: &str);
    /// The browser's cryptographic random source (the handshake nonces).
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]);
}

/// Fresh random bytes for a handshake nonce.
fn fresh_nonce() -> [u8; shared_protocol::handshake::NONCE_BYTES] {
    let mut nonce = [0u8; shared_protocol::handshake::NONCE_BYTES];
    get_random_values(&mut nonce);
    nonce
}

/// The link machine's clock: monotonic, so a wall-clock jump (NTP, a changed system
/// time) can neither fake nor hide silence. `Date.now()` is only for what people read.
fn now_ms() -> u64 {
    chrome::monotonic_ms()
}

/// The link stamps its status with [`now_ms`]; the options page compares the stamps with
/// `Date.now()`, so they are moved onto the wall clock when stored.
fn on_wall_clock(mut status: Status) -> Status {
    let mono = now_ms();
    let wall = js_sys::Date::now() as u64;
    let to_wall = |t: u64| wall.saturating_sub(mono.saturating_sub(t));
    status.last_inbound_at = status.last_inbound_at.map(to_wall);
    status.connected_since = status.connected_since.map(to_wall);
    status.updated_at = to_wall(status.updated_at);
    status
}

/// One command waiting for, or running in, its session: an `EXECUTE`, or a line the
/// person typed in the side panel.
struct Job {
    id: String,
    command: String,
    ctx: Context,
    reply_to: ReplyTo,
}

/// Where a command's reply goes.
enum ReplyTo {
    /// A `RESULT` on link `gen`, if that link is still the current one.
    Server(u64),
    /// The side panel's promise, resolved with `{ok, output, lane, cwd}`.
    Panel(js_sys::Function),
}

impl Job {
    fn answer(self, ok: bool, output: String, lane: Option<i64>, cwd: Option<String>) {
        match self.reply_to {
            ReplyTo::Server(gen) => reply_later(gen, self.id, ok, output, lane),
            ReplyTo::Panel(resolve) => {
                let reply = to_js(&json!({ "ok": ok, "output": output, "lane": lane, "cwd": cwd }));
                if let Err(e) = resolve.call1(&JsValue::NULL, &reply) {
                    console_warn(&format!(
                        "domshell: the side panel's reply failed: {}",
                        chrome::error_text(&e)
                    ));
                }
            }
        }
    }
}

struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut(web_sys::Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl Socket {
    fn detach(&self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
    }
}

struct Worker {
    link: Link,
    sockets: HashMap<u64, Socket>,
    /// Sockets abandoned during the current dispatch. Their closures may be the very code that
    /// is running, so they are dropped at the start of the next dispatch, not now.
    graveyard: Vec<Socket>,
    timer_id: Option<JsValue>,
    /// Created once and never dropped: re-arming must not free a callback that is running.
    timer_callback: Closure<dyn FnMut()>,
}

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
    // Apart from WORKER: commands run across awaits and must reach their sessions while a
    // dispatch holds the worker.
    static SESSIONS: RefCell<SessionTable<Job>> = RefCell::new(SessionTable::default());
    // Page trees of attached tabs, shared by every session's commands.
    static PAGES: PageCache = PageCache::default();
    /// The stop signal of each running command, by its EXECUTE id (what `CANCEL` names).
    static RUNNING: RefCell<HashMap<String, CancelToken>> = RefCell::new(HashMap::new());
    /// Bookmarks and scripts (one book per profile, in `chrome.storage.local`), and the
    /// book's stored text as last written.
    static SAVED: SavedCell = SavedCell::default();
    static SAVED_TEXT: RefCell<String> = const { RefCell::new(String::new()) };
    /// Downloads the sessions' actions started.
    static DOWNLOADS: crate::shell::downloads::DownloadCell = Default::default();
    /// Lines the person ran in the side panel, to name them in [`RUNNING`].
    static PERSON_JOBS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Start the worker: read settings, make sure the heartbeat alarm exists, and connect.
/// The bootstrap awaits this before handing over queued events.
#[wasm_bindgen]
pub async fn boot() -> Result<(), JsValue> {
    let settings = load_settings().await?;
    restore_saved().await;
    restore_sessions().await;
    let seed = (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64;
    let worker = Worker {
        link: Link::new(VERSION, seed),
        sockets: HashMap::new(),
        graveyard: Vec::new(),
        timer_id: None,
        timer_callback: Closure::new(|| dispatch(Event::Timer)),
    };
    WORKER.with(|w| *w.borrow_mut() = Some(worker));
    ensure_alarm(settings.alarm_period_ms).await;
    console_info(&format!("domshell {VERSION}: worker started"));
    dispatch(Event::Settings(settings));
    Ok(())
}

/// An event the bootstrap registered for at top level: `alarm`, `storage` (payload: the
/// `changes` object), `installed`, `startup`, and for page access `debugger_detach`
/// (`{tabId, reason}`), `debugger_event` (`{tabId, method, …}`), `tab_updated`
/// (`{tabId, status}`), `tab_removed` (the tab id).
#[wasm_bindgen]
pub fn handle_event(kind: &str, payload: JsValue) {
    match kind {
        "alarm" => {
            lane_keeper::reap();
            dispatch(Event::Alarm)
        }
        "storage" => {
            let changes: Value = chrome::from_js_value(&payload);
            let touches_settings = settings::SETTING_KEYS
                .iter()
                .any(|k| changes.get(k).is_some());
            if touches_settings {
                spawn_local(async {
                    match load_settings().await {
                        Ok(settings) => {
                            ensure_alarm(settings.alarm_period_ms).await;
                            dispatch(Event::Settings(settings));
                        }
                        Err(e) => console_warn(&format!("domshell: cannot read settings: {e:?}")),
                    }
                });
            }
        }
        // Boot already connected; a tick makes sure nothing is stuck.
        "installed" | "startup" => dispatch(Event::Alarm),
        "debugger_detach" => {
            let payload: Value = chrome::from_js_value(&payload);
            if let Some(tab) = payload["tabId"].as_i64() {
                let reason = payload["reason"].as_str().unwrap_or("unknown");
                console_info(&format!(
                    "domshell: debugger detached from tab {tab}: {reason}"
                ));
                chrome::on_debugger_detach(tab, reason);
            }
        }
        "tab_updated" => {
            let payload: Value = chrome::from_js_value(&payload);
            if let (Some(tab), Some("complete")) =
                (payload["tabId"].as_i64(), payload["status"].as_str())
            {
                chrome::on_tab_loaded(tab);
            }
        }
        "tab_removed" => {
            if let Some(tab) = payload.as_f64() {
                chrome::on_tab_removed(tab as i64);
                lane_keeper::on_tab_removed(tab as i64);
            }
        }
        // Downloads: kept when a session's action explains them (see `shell::downloads`).
        "download_created" => {
            if let Ok(item) = chrome::from_js::<Value>(payload, "chrome.downloads.onCreated") {
                let now = chrome::monotonic_ms() as f64;
                DOWNLOADS.with(|d| d.borrow_mut().created(&item, now));
            }
        }
        "download_changed" => {
            if let Ok(delta) = chrome::from_js::<Value>(payload, "chrome.downloads.onChanged") {
                DOWNLOADS.with(|d| d.borrow_mut().changed(&delta));
            }
        }
        "tab_created" => {
            if let Ok(tab) = chrome::from_js(payload, "chrome.tabs.onCreated") {
                lane_keeper::on_tab_created(tab);
            }
        }
        "tab_activated" => {
            let payload: Value = chrome::from_js_value(&payload);
            if let (Some(tab), Some(window)) =
                (payload["tabId"].as_i64(), payload["windowId"].as_i64())
            {
                lane_keeper::on_tab_activated(tab, window);
            }
        }
        "group_removed" => {
            if let Some(group) = payload.as_f64() {
                lane_keeper::on_group_removed(group as i64);
            }
        }
        // Protocol events of attached tabs: crashes, and out-of-process frames attaching.
        "debugger_event" => {
            let tab = js_sys::Reflect::get(&payload, &"tabId".into())
                .ok()
                .and_then(|v| v.as_f64());
            let method = js_sys::Reflect::get(&payload, &"method".into())
                .ok()
                .and_then(|v| v.as_string());
            let params: Value = js_sys::Reflect::get(&payload, &"params".into())
                .ok()
                .map(|v| chrome::from_js_value(&v))
                .unwrap_or(Value::Null);
            let session = js_sys::Reflect::get(&payload, &"sessionId".into())
                .ok()
                .and_then(|v| v.as_string());
            if let (Some(tab), Some(method)) = (tab, method) {
                chrome::on_debugger_event(tab as i64, session.as_deref(), &method, &params);
            }
        }
        other => console_warn(&format!("domshell: unknown event {other}")),
    }
}

async fn load_settings() -> Result<Settings, JsValue> {
    let items = JsFuture::from(storage_get(&JsValue::NULL)).await?;
    let items: Value = chrome::from_js_value(&items);
    Ok(Settings::from_storage(&items))
}

async fn ensure_alarm(period_ms: u64) {
    let minutes = period_ms as f64 / 60_000.0;
    let existing = JsFuture::from(alarms_get(ALARM_NAME)).await.ok();
    let current = existing
        .filter(|v| !v.is_undefined() && !v.is_null())
        .and_then(|v| js_sys::Reflect::get(&v, &"periodInMinutes".into()).ok())
        .and_then(|v| v.as_f64());
    if current.is_some_and(|c| (c - minutes).abs() < 1e-9) {
        return;
    }
    let info = to_js(&json!({ "periodInMinutes": minutes, "delayInMinutes": minutes }));
    if let Err(e) = JsFuture::from(alarms_create(ALARM_NAME, &info)).await {
        console_warn(&format!(
            "domshell: cannot create the heartbeat alarm: {e:?}"
        ));
    }
}

/// Feed one event to the link machine and carry out what it asks, including events that
/// carrying it out produces (a dial that fails synchronously).
fn dispatch(event: Event) {
    WORKER.with(|cell| {
        let Ok(mut guard) = cell.try_borrow_mut() else {
            // Only reachable if a callback fired synchronously inside a dispatch; defer it.
            let event = event.clone();
            spawn_local(async move { dispatch(event) });
            return;
        };
        let Some(worker) = guard.as_mut() else {
            return;
        };
        worker.graveyard.clear();
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            let effects = worker.link.handle(event, now_ms());
            for effect in effects {
                worker.apply(effect, &mut queue);
            }
        }
        worker.rearm_timer();
    });
}

impl Worker {
    fn apply(&mut self, effect: Effect, queue: &mut VecDeque<Event>) {
        match effect {
            Effect::Dial { gen, url } => match open_socket(gen, &url) {
                Ok(socket) => {
                    console_info(&format!("domshell: dialing {url} (#{gen})"));
                    self.sockets.insert(gen, socket);
                }
                Err(e) => queue.push_back(Event::SocketClosed {
                    gen,
                    code: 1006,
                    reason: format!("{e:?}"),
                }),
            },
            Effect::Send { gen, text } => self.send(gen, &text),
            Effect::Abandon { gen } => {
                if let Some(socket) = self.sockets.remove(&gen) {
                    socket.detach();
                    let _ = socket.ws.close();
                    console_info(&format!("domshell: abandoned socket #{gen}"));
                    self.graveyard.push(socket);
                }
            }
            Effect::Deliver { gen, frame } => self.deliver(gen, frame),
            Effect::LinkUp { silence_limit_ms } => lane_keeper::link_up(silence_limit_ms),
            Effect::RememberRefusal(refusal) => {
                let items = to_js(&json!({ settings::KEY_REFUSED_FOR: refusal }));
                wasm_bindgen_futures::spawn_local(async move {
                    if let Err(e) = JsFuture::from(storage_set(&items)).await {
                        console_warn(&format!(
                            "domshell: cannot remember the refused token: {e:?}"
                        ));
                    }
                });
            }
            Effect::StoreResumeTicket(ticket) => {
                let items = to_js(&json!({ settings::KEY_RESUME_TICKET: ticket }));
                let promise = storage_set(&items);
                spawn_local(async move {
                    if let Err(e) = JsFuture::from(promise).await {
                        console_warn(&format!("domshell: cannot store the resume ticket: {e:?}"));
                    }
                });
            }
            Effect::Persist(status) => {
                let items = to_js(&json!({ settings::KEY_STATUS: on_wall_clock(status) }));
                let promise = storage_set(&items);
                spawn_local(async move {
                    if let Err(e) = JsFuture::from(promise).await {
                        console_warn(&format!("domshell: cannot store status: {e:?}"));
                    }
                });
            }
        }
    }

    fn send(&self, gen: u64, text: &str) {
        if let Some(socket) = self.sockets.get(&gen) {
            if let Err(e) = socket.ws.send_with_str(text) {
                console_warn(&format!("domshell: send failed on #{gen}: {e:?}"));
            }
        }
    }

    fn send_frame(&self, gen: u64, frame: &Frame) {
        match frame.encode() {
            Ok(text) => self.send(gen, &text),
            Err(e) => console_warn(&format!("domshell: cannot encode {}: {e}", frame.kind())),
        }
    }

    fn deliver(&mut self, gen: u64, frame: Frame) {
        match frame {
            // The person's session is not the server's to start, end or use.
            Frame::SessionStart { id, session } | Frame::SessionEnd { id, session }
                if session == lanes::PERSON =>
            {
                console_warn(&format!(
                    "domshell: the server named the side panel's session `{session}`; ignored"
                ));
                self.send_frame(gen, &Frame::Ack { id });
            }
            Frame::Execute { id, session, .. } if session == lanes::PERSON => {
                self.send_frame(
                    gen,
                    &Frame::Result {
                        id,
                        ok: false,
                        output: format!("session `{session}` is the side panel's, the person at the browser's; the server must not run commands in it"),
                        lane: None,
                    },
                );
            }
            Frame::SessionStart { id, session } => {
                SESSIONS.with(|t| t.borrow_mut().start(&session));
                lane_keeper::confirm(&session);
                self.send_frame(gen, &Frame::Ack { id });
            }
            Frame::SessionEnd { id, session } => {
                let dropped = SESSIONS.with(|t| t.borrow_mut().end(&session));
                for job in dropped {
                    job.answer(
                        false,
                        "the session ended before this command ran".into(),
                        None,
                        None,
                    );
                }
                forget_session(&session);
                lane_keeper::end_session(&session);
                self.send_frame(gen, &Frame::Ack { id });
            }
            Frame::Execute {
                id,
                session,
                command,
                deadline_ms,
                allowed_domains,
                group_id,
                initial_url,
                group_name,
                window_id,
                agent,
                files,
            } => {
                lane_keeper::confirm(&session);
                let lane_request = LaneRequest::from_frame(
                    group_id.as_deref(),
                    initial_url.as_deref(),
                    group_name.as_deref(),
                    window_id,
                );
                let progress = progress_hook(id.clone());
                let job = Job {
                    id,
                    command,
                    ctx: Context::new(&allowed_domains, deadline_ms)
                        .with_pages(PAGES.with(Clone::clone))
                        .with_lanes(
                            lane_keeper::book(),
                            &session,
                            lane_request,
                            js_sys::Date::now() as u64,
                        )
                        .with_agent(agent.as_deref().unwrap_or_default())
                        .with_saved(SAVED.with(Clone::clone))
                        .with_progress(progress)
                        .with_downloads(DOWNLOADS.with(Clone::clone))
                        .with_files(files),
                    reply_to: ReplyTo::Server(gen),
                };
                submit(session, job);
            }
            // A command still waiting for its session never runs; one already running is
            // dropped at its next await, and its session goes on with the next command.
            Frame::Cancel { id } => {
                SESSIONS.with(|t| t.borrow_mut().drop_waiting(|job| job.id == id));
                if let Some(token) = RUNNING.with(|r| r.borrow().get(&id).cloned()) {
                    token.cancel();
                }
            }
            other => console_warn(&format!("domshell: unexpected {} frame", other.kind())),
        }
    }

    fn rearm_timer(&mut self) {
        if let Some(id) = self.timer_id.take() {
            clear_timeout(&id);
        }
        if let Some(at) = self.link.next_wakeup() {
            let delay = at.saturating_sub(now_ms()) as f64;
            let callback: &js_sys::Function = self.timer_callback.as_ref().unchecked_ref();
            self.timer_id = Some(set_timeout(callback, delay));
        }
    }
}

/// Send a frame the worker produced on its own (`LANES`) on the current link, if there is
/// one (a report is sent again when the next link comes up).
pub(crate) fn send_to_server(frame: &Frame) {
    WORKER.with(|cell| {
        if let Ok(guard) = cell.try_borrow() {
            if let Some(worker) = guard.as_ref() {
                if let Some(gen) = worker.link.current_gen() {
                    worker.send_frame(gen, frame);
                }
            }
        }
    });
}

/// Shortest time between two `PROGRESS` frames of one command.
const PROGRESS_GAP_MS: u64 = 250;

/// A command's loop reports, sent to the server as `PROGRESS` for `EXECUTE` `id`: the first
/// at once, then at most one per [`PROGRESS_GAP_MS`] (a fast `for` would flood the link).
fn progress_hook(id: String) -> shell::ProgressHook {
    let last_sent = std::rc::Rc::new(std::cell::Cell::new(None::<u64>));
    shell::ProgressHook::new(move |done, total, message| {
        let now = now_ms();
        if last_sent
            .get()
            .is_some_and(|at| now.saturating_sub(at) < PROGRESS_GAP_MS)
        {
            return;
        }
        last_sent.set(Some(now));
        send_to_server(&Frame::Progress {
            id: id.clone(),
            done,
            total,
            message: message.to_string(),
        });
    })
}

/// Queues `job` in `session`, starting it when the session is idle.
fn submit(session: String, job: Job) {
    let start = SESSIONS.with(|t| t.borrow_mut().submit(&session, job));
    if let Some((state, job)) = start {
        spawn_local(run_jobs(session, state, job));
    }
}

/// Runs a line the person typed in the side panel, in the person's own session
/// ([`lanes::PERSON`]); `resolve` receives the reply. No server and no tier is involved:
/// it is the person's own hand. Pages stay as guarded as for agents (browser pages are
/// never read).
pub(crate) fn run_for_person(line: String, resolve: js_sys::Function) {
    let id = format!("panel-{}", PERSON_JOBS.with(|n| n.replace(n.get() + 1)));
    let job = Job {
        id,
        command: line,
        ctx: person_context(),
        reply_to: ReplyTo::Panel(resolve),
    };
    submit(lanes::PERSON.to_string(), job);
}

/// The context of the person's commands and completions.
pub(crate) fn person_context() -> Context {
    Context::new(&[], None)
        .with_pages(PAGES.with(Clone::clone))
        .with_lanes(
            lane_keeper::book(),
            lanes::PERSON,
            LaneRequest::Keep { open: None },
            js_sys::Date::now() as u64,
        )
        .with_agent(lanes::PERSON_AGENT)
        .with_saved(SAVED.with(Clone::clone))
        .with_downloads(DOWNLOADS.with(Clone::clone))
}

/// Ctrl+C in the side panel: stops the person's running command.
pub(crate) fn cancel_for_person() -> bool {
    let tokens: Vec<CancelToken> = RUNNING.with(|r| {
        r.borrow()
            .iter()
            .filter(|(id, _)| id.starts_with("panel-"))
            .map(|(_, token)| token.clone())
            .collect()
    });
    for token in &tokens {
        token.cancel();
    }
    !tokens.is_empty()
}

/// The person's session as it is between commands (`None` while one runs).
pub(crate) fn person_state() -> Option<Session> {
    SESSIONS.with(|t| t.borrow().idle(lanes::PERSON).cloned())
}

/// Send a RESULT produced asynchronously, if its socket is still the current one.
fn reply_later(gen: u64, id: String, ok: bool, output: String, lane: Option<i64>) {
    WORKER.with(|cell| {
        if let Ok(guard) = cell.try_borrow() {
            if let Some(worker) = guard.as_ref() {
                if worker.link.current_gen() == Some(gen) {
                    match shell::bounds::result_frame_text(
                        id,
                        ok,
                        output,
                        lane.map(|l| l.to_string()),
                        shared_protocol::MAX_FRAME_BYTES,
                    ) {
                        Ok(text) => worker.send(gen, &text),
                        Err(e) => console_warn(&format!("domshell: cannot encode RESULT: {e}")),
                    }
                }
            }
        }
    });
}

/// Runs a session's commands one after another until none is waiting, persisting the
/// state after each so a stopped worker resumes where the session was.
async fn run_jobs(session: String, mut state: Session, mut job: Job) {
    loop {
        let token = CancelToken::default();
        RUNNING.with(|r| r.borrow_mut().insert(job.id.clone(), token.clone()));
        let reply = token
            .run(shell::execute_keeping_objects(
                &mut state,
                &ChromeBrowser,
                &job.ctx,
                &job.command,
            ))
            .await
            .unwrap_or_else(shell::Reply::cancelled);
        RUNNING.with(|r| r.borrow_mut().remove(&job.id));
        state.last_used_ms = js_sys::Date::now() as u64;
        publish_last_tree_read(&job.ctx.pages);
        // Saved before the reply: Chrome may stop the worker as soon as the link is quiet,
        // and a session (or a lane) the caller was told about must come back with it.
        if SESSIONS.with(|t| t.borrow().is_running(&session)) {
            persist_session(&session, &state).await;
        }
        // A command in a lane changed its last command: the book is saved and reported.
        lane_keeper::persist();
        persist_saved();
        let objects = job.ctx.objects.clone();
        job.answer(
            reply.ok,
            reply.output,
            reply.lane,
            Some(state.cwd.display()),
        );
        // Released once answered (see `shell::execute_keeping_objects`), cancelled or not,
        // through the same browser type as the kernel's releases (one copy of the code).
        let releasing = shell::deadline::DeadlineBrowser::new(&ChromeBrowser, RELEASE_BUDGET_MS);
        objects.release(&releasing).await;
        let (next, _) = SESSIONS.with(|t| t.borrow_mut().finish(&session, state));
        match next {
            Some((next_state, next_job)) => {
                state = next_state;
                job = next_job;
            }
            None => break,
        }
    }
}

/// `globalThis.domshell.lastTreeRead`: where the last tree read spent its time, for anyone
/// inspecting the worker in DevTools (and the shell benchmark).
fn publish_last_tree_read(pages: &PageCache) {
    let Some(read) = pages.last_read() else {
        return;
    };
    let global = js_sys::global();
    if let Ok(status) = js_sys::Reflect::get(&global, &"domshell".into()) {
        if status.is_object() {
            let _ = js_sys::Reflect::set(&status, &"lastTreeRead".into(), &to_js(&read));
        }
    }
}

/// At start-up: the bookmarks and scripts of this profile.
async fn restore_saved() {
    let key = JsValue::from_str(saved::STORAGE_KEY);
    match JsFuture::from(storage_get(&key)).await {
        Ok(items) => {
            let items: Value = chrome::from_js_value(&items);
            let book = Saved::from_storage(&items[saved::STORAGE_KEY]);
            SAVED_TEXT.with(|t| *t.borrow_mut() = book.to_storage().to_string());
            SAVED.with(|s| *s.borrow_mut() = book);
        }
        Err(e) => console_warn(&format!(
            "domshell: cannot read the bookmarks and scripts: {}",
            chrome::error_text(&e)
        )),
    }
}

/// Writes the bookmarks and scripts if a command changed them.
fn persist_saved() {
    let value = SAVED.with(|s| s.borrow().to_storage());
    let text = value.to_string();
    let changed = SAVED_TEXT.with(|t| {
        let mut saved = t.borrow_mut();
        let changed = *saved != text;
        if changed {
            saved.clone_from(&text);
        }
        changed
    });
    if !changed {
        return;
    }
    let promise = storage_set(&to_js(&json!({ saved::STORAGE_KEY: value })));
    spawn_local(async move {
        if let Err(e) = JsFuture::from(promise).await {
            console_warn(&format!(
                "domshell: cannot save the bookmarks and scripts: {}",
                chrome::error_text(&e)
            ));
        }
    });
}

async fn persist_session(session: &str, state: &Session) {
    let items = to_js(&json!({ storage_key(session): state.to_storage() }));
    if let Err(e) = JsFuture::from(session_storage_set(&items)).await {
        console_warn(&format!(
            "domshell: cannot save session {session}: {}",
            chrome::error_text(&e)
        ));
    }
}

fn forget_session(session: &str) {
    let promise = session_storage_remove(&storage_key(session));
    let session = session.to_string();
    spawn_local(async move {
        if let Err(e) = JsFuture::from(promise).await {
            console_warn(&format!(
                "domshell: cannot drop stored session {session}: {}",
                chrome::error_text(&e)
            ));
        }
    });
}

/// Reads every session state saved before the worker was last stopped.
async fn restore_sessions() {
    let items = match JsFuture::from(session_storage_get(&JsValue::NULL)).await {
        Ok(items) => items,
        Err(e) => {
            console_warn(&format!(
                "domshell: cannot read stored sessions: {}",
                chrome::error_text(&e)
            ));
            return;
        }
    };
    let items: Value = chrome::from_js_value(&items);
    lane_keeper::restore(&items);
    let Some(items) = items.as_object() else {
        return;
    };
    let mut stored = Vec::new();
    for (key, value) in items {
        let Some(name) = key.strip_prefix(STORAGE_PREFIX) else {
            continue;
        };
        match Session::from_storage(name, value.clone()) {
            Ok(state) => stored.push((name.to_string(), state)),
            Err(e) => {
                console_warn(&format!("domshell: {e}"));
                forget_session(name);
            }
        }
    }
    let (kept, dropped) = keep_recent(stored, MAX_STORED_SESSIONS);
    for name in &dropped {
        forget_session(name);
    }
    if !kept.is_empty() || !dropped.is_empty() {
        console_info(&format!(
            "domshell: restored {} shell session(s), dropped {} least recently used",
            kept.len(),
            dropped.len()
        ));
    }
    SESSIONS.with(|t| {
        let mut table = t.borrow_mut();
        for (name, state) in kept {
            table.restore(&name, state);
        }
    });
}

fn open_socket(gen: u64, url: &str) -> Result<Socket, JsValue> {
    let ws = WebSocket::new(url)?;
    let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        dispatch(Event::SocketOpen {
            gen,
            nonce: fresh_nonce(),
        })
    });
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        if let Some(text) = event.data().as_string() {
            dispatch(Event::SocketMessage { gen, text });
        }
    });
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
        dispatch(Event::SocketClosed {
            gen,
            code: event.code(),
            reason: event.reason(),
        })
    });
    // An error is always followed by a close event, which carries the code.
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {});
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    Ok(Socket {
        ws,
        _on_open: on_open,
        _on_message: on_message,
        _on_close: on_close,
        _on_error: on_error,
    })
}
