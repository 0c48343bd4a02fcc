// Options page: edits the settings the service worker reads from chrome.storage.local and shows
// the link status it writes there. Key names match extension/src/settings.rs.
const KEYS = {
  enabled: "bridge_enabled",
  token: "bridge_token",
  port: "bridge_port",
  status: "bridge_status",
  savedAt: "bridge_saved_at",
};
const $ = (id) => document.getElementById(id);
let lastStatus = null;
// Agents' lanes (tab groups) the worker keeps in chrome.storage.session (see
// extension/src/shell/lanes.rs); the side panel lists them one by one.
const LANES_KEY = "domshell_lanes";
let laneCount = 0;

function ago(ms) {
  if (ms < 1500) return "just now";
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s ago`;
  const m = Math.round(s / 60);
  return m < 120 ? `${m} min ago` : `${Math.round(m / 60)} h ago`;
}

function render() {
  const status = lastStatus;
  const box = $("status");
  if (!status) {
    box.dataset.state = "connecting";
    $("state").textContent = "Starting…";
    $("detail").textContent = "The extension's worker has not reported yet.";
    $("figures").textContent = "";
    return;
  }
  box.dataset.state = status.state;
  $("state").textContent = status.state.charAt(0).toUpperCase() + status.state.slice(1);
  $("detail").textContent = status.detail;
  const figures = [`port ${status.port}`];
  if (status.last_inbound_at) figures.push(`last heard ${ago(Date.now() - status.last_inbound_at)}`);
  if (status.last_rtt_ms != null) figures.push(`round trip ${status.last_rtt_ms} ms`);
  if (status.reconnects) figures.push(`${status.reconnects} reconnects`);
  figures.push(laneCount === 1 ? "1 lane open" : `${laneCount} lanes open`);
  $("figures").textContent = figures.join(" · ");
}

async function load() {
  const items = await chrome.storage.local.get(null);
  $("enabled").checked = items[KEYS.enabled] !== false;
  $("token").value = items[KEYS.token] || "";
  $("port").value = items[KEYS.port] || 9876;
  lastStatus = items[KEYS.status] || null;
  const lanes = (await chrome.storage.session.get(LANES_KEY))[LANES_KEY];
  laneCount = Array.isArray(lanes) ? lanes.length : 0;
  render();
}

$("settings").addEventListener("submit", async (event) => {
  event.preventDefault();
  const enabled = $("enabled").checked;
  const token = $("token").value.trim();
  const port = Number($("port").value);
  $("token").classList.toggle("invalid", enabled && !token);
  $("port").classList.toggle("invalid", !(port >= 1 && port <= 65535));
  if ((enabled && !token) || !(port >= 1 && port <= 65535)) {
    $("saved").textContent = enabled && !token ? "A token is required while the bridge is enabled." : "Port must be 1–65535.";
    return;
  }
  // The save time changes on every save, so saving the same token retries a refused one.
  await chrome.storage.local.set({
    [KEYS.enabled]: enabled,
    [KEYS.token]: token,
    [KEYS.port]: port,
    [KEYS.savedAt]: Date.now(),
  });
  $("saved").textContent = "Saved";
  setTimeout(() => ($("saved").textContent = ""), 2000);
});

chrome.storage.onChanged.addListener((changes, area) => {
  if (area === "local" && changes[KEYS.status]) {
    lastStatus = changes[KEYS.status].newValue || null;
    render();
  }
  if (area === "session" && changes[LANES_KEY]) {
    const lanes = changes[LANES_KEY].newValue;
    laneCount = Array.isArray(lanes) ? lanes.length : 0;
    render();
  }
});
setInterval(render, 1000);
load();
