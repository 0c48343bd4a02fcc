// Service-worker bootstrap. Chrome only delivers events to listeners registered synchronously
// on the first turn of the script, but WebAssembly loads asynchronously: so the listeners are
// registered here, and events are queued (never dropped — the alarm that woke the worker is
// the event that matters) until the Rust side has booted.
import init, {
  boot,
  handle_event,
  panel_run,
  panel_cancel,
  panel_complete,
  panel_lanes,
} from "../pkg/domshell_extension.js";

const queued = [];
let ready = false;
// Boot state, readable from the worker's DevTools console (and by tests over CDP).
globalThis.domshell = { ready: false, error: null };

function deliver(kind, payload) {
  if (!ready) {
    queued.push([kind, payload]);
    return;
  }
  try {
    handle_event(kind, payload);
  } catch (error) {
    console.error(`domshell: ${kind} handler failed`, error);
  }
}

chrome.alarms.onAlarm.addListener((alarm) => deliver("alarm", alarm.name));
chrome.runtime.onInstalled.addListener((details) => deliver("installed", details.reason));
chrome.runtime.onStartup.addListener(() => deliver("startup", null));
chrome.storage.onChanged.addListener((changes, area) => {
  if (area === "local") deliver("storage", changes);
});
// Page access: Chrome ending a debugger session (tab closed, DevTools opened, renderer
// gone), protocol events of attached tabs, and tab loads that navigation commands wait for.
chrome.debugger.onDetach.addListener((source, reason) =>
  deliver("debugger_detach", { tabId: source.tabId, reason }),
);
chrome.debugger.onEvent.addListener((source, method, params) =>
  deliver("debugger_event", { tabId: source.tabId, sessionId: source.sessionId, method, params }),
);
chrome.tabs.onUpdated.addListener((tabId, change) => {
  if (change.status) deliver("tab_updated", { tabId, status: change.status });
});
chrome.tabs.onRemoved.addListener((tabId) => deliver("tab_removed", tabId));
// Lanes: a tab a lane's page opens joins the lane; a lane whose group is gone is over.
chrome.tabs.onCreated.addListener((tab) => deliver("tab_created", tab));
chrome.tabs.onActivated.addListener((info) => deliver("tab_activated", info));
chrome.tabGroups.onRemoved.addListener((group) => deliver("group_removed", group.id));
// Downloads a session's click started; a finished one is looked up once for its size.
chrome.downloads.onCreated.addListener((item) => deliver("download_created", item));
chrome.downloads.onChanged.addListener((delta) => {
  deliver("download_changed", delta);
  if (delta.state && delta.state.current !== "in_progress") {
    chrome.downloads.search({ id: delta.id }).then(
      (items) => items.forEach((item) => deliver("download_changed", item)),
      () => {},
    );
  }
});

// The side panel (and nothing else: no page can message this extension) speaks for the
// person at the browser. Its requests wait for the worker to boot.
const PANEL_PATH = "/extension/static/sidepanel.html";
let started;
const booted = new Promise((resolve) => (started = resolve));
function fromPanel(sender) {
  try {
    return sender.id === chrome.runtime.id && new URL(sender.url).pathname === PANEL_PATH &&
      new URL(sender.url).origin === self.location.origin;
  } catch {
    return false;
  }
}
chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  if (!fromPanel(sender) || !message || typeof message.panel !== "string") return false;
  const line = String(message.line ?? "");
  booted
    .then(() => {
      switch (message.panel) {
        case "run": return panel_run(line);
        case "cancel": return { cancelled: panel_cancel() };
        case "complete": return panel_complete(line);
        case "lanes": return panel_lanes();
        default: throw new Error(`unknown side-panel request ${message.panel}`);
      }
    })
    .then(sendResponse, (error) => sendResponse({ error: String(error) }));
  return true;
});
// The toolbar button opens the side panel.
if (chrome.sidePanel) {
  chrome.sidePanel.setPanelBehavior({ openPanelOnActionClick: true }).catch((error) =>
    console.warn("domshell: cannot set the side panel to open from the toolbar", error),
  );
}

init()
  .then(() => boot())
  .then(() => {
    ready = true;
    globalThis.domshell.ready = true;
    for (const [kind, payload] of queued.splice(0)) deliver(kind, payload);
    started();
  })
  .catch((error) => {
    globalThis.domshell.error = String(error && error.stack ? error.stack : error);
    console.error("domshell: the worker failed to start", error);
  });
