// Service-worker bootstrap. Chrome only delivers events to listeners registered synchronously
// on the first turn of the script, but WebAssembly loads asynchronously: so the listeners are
// registered here, and events are queued (never dropped — the alarm that woke the worker is
// the event that matters) until the Rust side has booted.
import init, { boot, handle_event } from "../pkg/domshell_extension.js";

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
chrome.tabGroups.onRemoved.addListener((group) => deliver("group_removed", group.id));

init()
  .then(() => boot())
  .then(() => {
    ready = true;
    globalThis.domshell.ready = true;
    for (const [kind, payload] of queued.splice(0)) deliver(kind, payload);
  })
  .catch((error) => {
    globalThis.domshell.error = String(error && error.stack ? error.stack : error);
    console.error("domshell: the worker failed to start", error);
  });
