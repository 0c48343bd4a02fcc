//! Real headless Chromium with an unpacked extension, driven over the Chrome DevTools
//! Protocol: find the extension's service worker, evaluate code in it, read and write its
//! storage, and stop it the way Chrome's idle suspension does.
//!
//! It owns the browser process group and its throwaway profile. It must not skip when
//! Chromium is missing (it fails, saying what to install), must not talk to anything but the
//! DevTools endpoint on 127.0.0.1, and must not outlive its handle: drop kills the group.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::fake_extension::WsStream;

/// Message of the error when no browser is found; tests fail with it, never skip.
pub const CHROMIUM_REQUIRED: &str =
    "Chromium is required for end-to-end tests: apt-get install -y chromium (or set CHROMIUM_BIN)";

const DEVTOOLS_PORT_TIMEOUT: Duration = Duration::from_secs(15);
/// Default bound of one CDP call.
pub const CDP_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `evaluate_in_worker` waits for the worker target to (re)appear.
const WORKER_APPEAR_TIMEOUT: Duration = Duration::from_secs(5);

/// One DevTools target as listed by `/json/list`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Target {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    pub url: String,
    #[serde(rename = "webSocketDebuggerUrl", default)]
    pub ws_url: String,
}

impl Target {
    /// The extension id of a `chrome-extension://<id>/...` target.
    pub fn extension_id(&self) -> Option<&str> {
        self.url
            .strip_prefix("chrome-extension://")
            .and_then(|rest| rest.split('/').next())
            .filter(|id| !id.is_empty())
    }

    fn is_extension_worker(&self, extension_id: Option<&str>) -> bool {
        self.kind == "service_worker"
            && match extension_id {
                Some(id) => self.extension_id() == Some(id),
                None => self.extension_id().is_some(),
            }
    }
}

/// Find the browser: `$CHROMIUM_BIN`, `/usr/bin/chromium`, then `chromium`,
/// `chromium-browser`, `google-chrome` on `PATH`.
pub fn chromium_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM_BIN").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        anyhow::ensure!(
            path.is_file(),
            "CHROMIUM_BIN={} does not exist. {CHROMIUM_REQUIRED}",
            path.display()
        );
        return Ok(path);
    }
    let fixed = Path::new("/usr/bin/chromium");
    if fixed.is_file() {
        return Ok(fixed.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!("{CHROMIUM_REQUIRED}")
}

/// A running headless Chromium. Dropping it kills the whole process group and deletes the
/// profile.
pub struct Chromium {
    child: Child,
    port: u16,
    log_path: PathBuf,
    http: reqwest::Client,
    /// The extension whose worker `evaluate_in_worker` and friends address; set by the
    /// `wait_for_*` calls.
    extension_id: Mutex<Option<String>>,
    // Removed after the browser is dead (Drop kills first).
    profile: tempfile::TempDir,
}

impl Chromium {
    /// Launch with `extension_dir` loaded as an unpacked extension and wait for DevTools.
    pub async fn launch(extension_dir: &Path) -> anyhow::Result<Chromium> {
        Self::launch_with_args(extension_dir, &[]).await
    }

    /// [`Self::launch`] with extra command-line switches.
    pub async fn launch_with_args(
        extension_dir: &Path,
        extra: &[&str],
    ) -> anyhow::Result<Chromium> {
        let binary = chromium_binary()?;
        let extension_dir = extension_dir
            .canonicalize()
            .with_context(|| format!("extension dir {}", extension_dir.display()))?;
        anyhow::ensure!(
            extension_dir.join("manifest.json").is_file(),
            "{} has no manifest.json: build the extension first",
            extension_dir.display()
        );
        let profile = tempfile::Builder::new()
            .prefix("domshell-chromium-")
            .tempdir()
            .context("creating the Chromium profile dir")?;
        let user_data = profile.path().join("profile");
        std::fs::create_dir_all(&user_data).context("creating the user data dir")?;
        let log_path = profile.path().join("chromium.log");
        let log = File::create(&log_path).context("creating the Chromium log")?;
        let log2 = log.try_clone().context("duplicating the log handle")?;

        let mut load = OsString::from("--load-extension=");
        load.push(&extension_dir);
        let mut except = OsString::from("--disable-extensions-except=");
        except.push(&extension_dir);
        let mut data_dir = OsString::from("--user-data-dir=");
        data_dir.push(&user_data);

        let mut cmd = Command::new(&binary);
        cmd.args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--remote-debugging-port=0",
        ])
        .arg(data_dir)
        .arg(load)
        .arg(except)
        .args(extra)
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2));
        // Its own process group, so Drop can kill the renderers and zygotes with it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}. {CHROMIUM_REQUIRED}", binary.display()))?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("building the HTTP client")?;
        let mut browser = Chromium {
            child,
            port: 0,
            log_path,
            http,
            extension_id: Mutex::new(None),
            profile,
        };
        browser.port = browser.wait_devtools_port(&user_data).await?;
        Ok(browser)
    }

    async fn wait_devtools_port(&mut self, user_data: &Path) -> anyhow::Result<u16> {
        let file = user_data.join("DevToolsActivePort");
        let deadline = Instant::now() + DEVTOOLS_PORT_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&file) {
                if let Some(Ok(port)) = text.lines().next().map(|l| l.trim().parse::<u16>()) {
                    return Ok(port);
                }
            }
            if let Some(status) = self.child.try_wait().context("polling Chromium")? {
                bail!(
                    "Chromium exited ({status}) before DevTools was up; log tail:\n{}",
                    self.log_tail(40)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "Chromium did not write {} within {DEVTOOLS_PORT_TIMEOUT:?}; log tail:\n{}",
                    file.display(),
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn devtools_port(&self) -> u16 {
        self.port
    }

    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }

    /// The last `lines` lines of Chromium's stdout/stderr.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `GET /json/list`.
    pub async fn targets(&self) -> anyhow::Result<Vec<Target>> {
        let url = format!("http://127.0.0.1:{}/json/list", self.port);
        let response = self
            .http
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        response.json().await.context("parsing /json/list")
    }

    /// The browser-level DevTools WebSocket URL (`/json/version`).
    pub async fn browser_ws_url(&self) -> anyhow::Result<String> {
        let url = format!("http://127.0.0.1:{}/json/version", self.port);
        let doc: Value = self
            .http
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .with_context(|| format!("GET {url}"))?
            .json()
            .await
            .context("parsing /json/version")?;
        doc["webSocketDebuggerUrl"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("/json/version without webSocketDebuggerUrl: {doc}"))
    }

    /// Connect a CDP client to the browser endpoint.
    pub async fn browser_cdp(&self) -> anyhow::Result<CdpClient> {
        CdpClient::connect(&self.browser_ws_url().await?).await
    }

    async fn find_worker(&self, extension_id: Option<&str>) -> anyhow::Result<Option<Target>> {
        Ok(self
            .targets()
            .await?
            .into_iter()
            .find(|t| t.is_extension_worker(extension_id)))
    }

    async fn poll_worker(
        &self,
        extension_id: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<Target> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(target) = self.find_worker(extension_id).await? {
                return Ok(target);
            }
            if Instant::now() >= deadline {
                let seen: Vec<String> = self
                    .targets()
                    .await
                    .map(|ts| ts.iter().map(|t| format!("{} {}", t.kind, t.url)).collect())
                    .unwrap_or_default();
                bail!(
                    "no service worker of extension {} within {timeout:?}; targets: {seen:?}; Chromium log tail:\n{}",
                    extension_id.unwrap_or("<any>"),
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Chromium with this repository's built extension loaded, its worker booted (WASM
    /// initialised, `chrome.*` bound) and addressed. Fails, never skips, when the extension is
    /// not built or Chromium is missing, saying which command fixes it.
    pub async fn launch_built_extension() -> anyhow::Result<Chromium> {
        let root = crate::workspace_root();
        let wasm = root.join("extension/pkg/domshell_extension_bg.wasm");
        if !wasm.is_file() {
            bail!(
                "the extension is not built ({} missing): run `cargo xtask build-extension`",
                wasm.display()
            );
        }
        Chromium::launch_extension_dir(&root).await
    }

    /// Chromium with the unpacked extension in `dir` loaded (it must carry the pinned `key`),
    /// its worker booted (WASM initialised, `chrome.*` bound) and addressed.
    pub async fn launch_extension_dir(dir: &Path) -> anyhow::Result<Chromium> {
        let chromium = Chromium::launch(dir).await?;
        chromium
            .wait_for_service_worker(shared_protocol::EXTENSION_ID, Duration::from_secs(20))
            .await?;
        // A worker that just started may not have its extension APIs bound when the first
        // evaluation arrives; wait for the bootstrap's own "ready".
        let state = crate::eventually(
            Duration::from_secs(15),
            Duration::from_millis(100),
            || async {
                let v = chromium
                    .evaluate_in_worker(
                        "typeof chrome === 'object' && chrome.storage ? globalThis.domshell : null",
                    )
                    .await?;
                if v["ready"] == true || !v["error"].is_null() {
                    Ok(v)
                } else {
                    bail!("not booted yet: {v}")
                }
            },
        )
        .await?;
        if !state["error"].is_null() {
            bail!("the extension's worker failed to boot: {}", state["error"]);
        }
        Ok(chromium)
    }

    /// Wait for the service worker of `extension_id` and address it from now on.
    pub async fn wait_for_service_worker(
        &self,
        extension_id: &str,
        timeout: Duration,
    ) -> anyhow::Result<Target> {
        let target = self.poll_worker(Some(extension_id), timeout).await?;
        *self.lock_extension_id() = Some(extension_id.to_string());
        Ok(target)
    }

    /// Wait for any extension's service worker (for extensions without a pinned id) and
    /// address that extension from now on.
    pub async fn wait_for_any_extension_worker(&self, timeout: Duration) -> anyhow::Result<Target> {
        let target = self.poll_worker(None, timeout).await?;
        *self.lock_extension_id() = target.extension_id().map(str::to_string);
        Ok(target)
    }

    /// Whether the addressed extension's worker is currently running (listed as a target).
    pub async fn service_worker_running(&self) -> anyhow::Result<bool> {
        let id = self.lock_extension_id().clone();
        Ok(self.find_worker(id.as_deref()).await?.is_some())
    }

    fn lock_extension_id(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.extension_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The extension id picked by the last `wait_for_*` call.
    pub fn extension_id(&self) -> Option<String> {
        self.lock_extension_id().clone()
    }

    /// Evaluate `js` in the extension's service worker and return its value (promises are
    /// awaited). The worker is re-discovered on every call, so a restarted worker is found.
    pub async fn evaluate_in_worker(&self, js: &str) -> anyhow::Result<Value> {
        let id = self.lock_extension_id().clone();
        let target = self
            .poll_worker(id.as_deref(), WORKER_APPEAR_TIMEOUT)
            .await?;
        evaluate_in_target(&target, js).await
    }

    /// `chrome.storage.local.set(values)` in the worker.
    pub async fn set_storage(&self, values: Value) -> anyhow::Result<()> {
        self.evaluate_in_worker(&format!(
            "chrome.storage.local.set({values}).then(() => true)"
        ))
        .await
        .map(|_| ())
    }

    /// `chrome.storage.local.get(null)` in the worker.
    pub async fn get_storage(&self) -> anyhow::Result<Value> {
        self.evaluate_in_worker("chrome.storage.local.get(null)")
            .await
    }

    /// Stop the extension's service worker via `Target.closeTarget`, as idle suspension
    /// would, and wait until it is gone from `/json/list`.
    pub async fn stop_service_worker(&self) -> anyhow::Result<()> {
        let id = self.lock_extension_id().clone();
        let Some(target) = self.find_worker(id.as_deref()).await? else {
            bail!("no running service worker to stop");
        };
        let mut browser = self.browser_cdp().await?;
        let result = browser
            .send("Target.closeTarget", json!({ "targetId": target.id }))
            .await?;
        tracing::debug!(%result, "Target.closeTarget");
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.targets().await?.iter().any(|t| t.id == target.id) {
            if Instant::now() >= deadline {
                bail!(
                    "the service worker target {} is still listed 5 s after closeTarget",
                    target.id
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Open a new tab at `url` (e.g. an extension page) and return its target once the
    /// document has loaded, so code evaluated in it sees the page, not `about:blank`.
    pub async fn open_page(&self, url: &str) -> anyhow::Result<Target> {
        let mut browser = self.browser_cdp().await?;
        let result = browser
            .send("Target.createTarget", json!({ "url": url }))
            .await?;
        let id = result["targetId"]
            .as_str()
            .ok_or_else(|| anyhow!("Target.createTarget without targetId: {result}"))?
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        let probe = "[document.readyState, location.href]";
        loop {
            let last = match self.targets().await?.into_iter().find(|t| t.id == id) {
                None => "not listed yet".to_string(),
                Some(target) => match evaluate_in_target(&target, probe).await {
                    Ok(state)
                        if state[0] == "complete"
                            && (state[1] != "about:blank" || url == "about:blank") =>
                    {
                        return Ok(target);
                    }
                    Ok(state) => state.to_string(),
                    Err(e) => format!("{e:#}"),
                },
            };
            if Instant::now() >= deadline {
                bail!("the new page {url} ({id}) did not finish loading within 10 s; last: {last}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Close a page target (a tab this test opened).
    pub async fn close_target(&self, target_id: &str) -> anyhow::Result<()> {
        let mut browser = self.browser_cdp().await?;
        browser
            .send("Target.closeTarget", json!({ "targetId": target_id }))
            .await?;
        Ok(())
    }

    /// Whether the browser process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl std::fmt::Debug for Chromium {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chromium")
            .field("pid", &self.child.id())
            .field("devtools_port", &self.port)
            .field("profile", &self.profile.path())
            .finish_non_exhaustive()
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if let Ok(pgid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on the process group we created (process_group(0) made the
            // child's pid its pgid). Even if the leader died early, the kernel does not hand
            // out a pgid that still has members, so this reaches only our stragglers.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
        let _ = self.child.wait();
    }
}

/// Evaluate `js` in any target (worker or page) through its own WebSocket.
pub async fn evaluate_in_target(target: &Target, js: &str) -> anyhow::Result<Value> {
    anyhow::ensure!(
        !target.ws_url.is_empty(),
        "target {} has no webSocketDebuggerUrl (another client attached?)",
        target.id
    );
    let mut cdp = CdpClient::connect(&target.ws_url).await?;
    cdp.evaluate(js).await
}

/// Events kept for [`CdpClient::take_events`]; older ones are dropped beyond this.
const MAX_BUFFERED_EVENTS: usize = 1024;

/// A minimal CDP client: one request at a time. Events that arrive while waiting for a reply
/// are kept (the most recent [`MAX_BUFFERED_EVENTS`]) for [`CdpClient::take_events`].
#[derive(Debug)]
pub struct CdpClient {
    ws: WsStream,
    next_id: u64,
    events: std::collections::VecDeque<Value>,
    pub call_timeout: Duration,
}

impl CdpClient {
    pub async fn connect(ws_url: &str) -> anyhow::Result<CdpClient> {
        let (ws, _) =
            tokio::time::timeout(CDP_CALL_TIMEOUT, tokio_tungstenite::connect_async(ws_url))
                .await
                .with_context(|| format!("connecting to {ws_url} timed out"))?
                .with_context(|| format!("connecting to {ws_url}"))?;
        Ok(CdpClient {
            ws,
            next_id: 1,
            events: std::collections::VecDeque::new(),
            call_timeout: CDP_CALL_TIMEOUT,
        })
    }

    /// Call `method` and return its `result`; a CDP `error` becomes an `Err`.
    pub async fn send(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let timeout = self.call_timeout;
        tokio::time::timeout(timeout, self.call(None, method, params))
            .await
            .with_context(|| format!("CDP {method} did not answer within {timeout:?}"))?
    }

    /// [`Self::send`] to a flattened target session (`Target.attachToTarget {flatten: true}`
    /// or `Target.setAutoAttach {flatten: true}` on this socket).
    pub async fn send_in_session(
        &mut self,
        session_id: &str,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Value> {
        let timeout = self.call_timeout;
        tokio::time::timeout(timeout, self.call(Some(session_id), method, params))
            .await
            .with_context(|| {
                format!("CDP {method} (session {session_id}) did not answer within {timeout:?}")
            })?
    }

    /// The events received so far (oldest first), emptying the buffer.
    pub fn take_events(&mut self) -> Vec<Value> {
        self.events.drain(..).collect()
    }

    async fn call(
        &mut self,
        session_id: Option<&str>,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = json!({ "id": id, "method": method, "params": params });
        if let Some(session_id) = session_id {
            request["sessionId"] = json!(session_id);
        }
        self.ws
            .send(Message::Text(request.to_string().into()))
            .await
            .with_context(|| format!("sending CDP {method}"))?;
        while let Some(message) = self.ws.next().await {
            let text =
                match message.with_context(|| format!("reading the reply to CDP {method}"))? {
                    Message::Text(text) => text,
                    Message::Close(frame) => {
                        bail!("DevTools closed the socket during {method}: {frame:?}")
                    }
                    _ => continue,
                };
            let reply: Value =
                serde_json::from_str(text.as_str()).context("parsing a CDP message")?;
            if reply["id"].as_u64() != Some(id) {
                if reply.get("method").is_some() {
                    if self.events.len() >= MAX_BUFFERED_EVENTS {
                        self.events.pop_front();
                    }
                    self.events.push_back(reply);
                }
                continue;
            }
            if let Some(error) = reply.get("error") {
                bail!("CDP {method} failed: {error}");
            }
            return Ok(reply.get("result").cloned().unwrap_or(Value::Null));
        }
        bail!("DevTools closed the socket during {method}")
    }

    /// `Runtime.evaluate` with `awaitPromise` and `returnByValue`; a thrown exception or
    /// rejected promise becomes an `Err` with its description.
    pub async fn evaluate(&mut self, js: &str) -> anyhow::Result<Value> {
        let result = self
            .send(
                "Runtime.evaluate",
                json!({ "expression": js, "awaitPromise": true, "returnByValue": true }),
            )
            .await?;
        if let Some(details) = result.get("exceptionDetails") {
            let description = details["exception"]["description"]
                .as_str()
                .or_else(|| details["text"].as_str())
                .unwrap_or("exception");
            bail!("evaluating {js:?} threw: {description}");
        }
        Ok(result["result"]
            .get("value")
            .cloned()
            .unwrap_or(Value::Null))
    }
}
