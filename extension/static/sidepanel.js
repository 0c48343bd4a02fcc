// Side panel: a terminal for the person at the browser, and every lane with its agent.
// Lines run in the person's own shell session inside the extension's worker (no server in
// between); this page only renders. Everything shown is set as text, never as markup: page
// content and agents' names cannot inject anything here.
const $ = (id) => document.getElementById(id);
const STATUS_KEY = "bridge_status"; // extension/src/settings.rs
const HISTORY_KEY = "domshell_panel_history";
const MAX_HISTORY = 200;
const MAX_OUTPUT_CHARS = 400_000;
const LANES_EVERY_MS = 2000;

const history = JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]");
let historyAt = history.length;
let draft = "";
let running = false;
let outChars = 0;
const waiting = [];

function ask(message) {
  return chrome.runtime.sendMessage({ panel: message.kind, line: message.line }).then((answer) => {
    if (answer && answer.error) throw new Error(answer.error);
    return answer;
  });
}

function print(text, kind) {
  const out = $("out");
  const span = document.createElement("span");
  if (kind) span.className = kind;
  span.textContent = text.endsWith("\n") ? text : `${text}\n`;
  out.append(span);
  outChars += span.textContent.length;
  // Bounded: the oldest output goes first.
  while (outChars > MAX_OUTPUT_CHARS && out.firstChild !== span) {
    outChars -= out.firstChild.textContent.length;
    out.firstChild.remove();
  }
  out.scrollTop = out.scrollHeight;
}

function clearOutput() {
  $("out").replaceChildren();
  outChars = 0;
}

function setPrompt(cwd) {
  if (cwd) $("prompt").textContent = `${cwd}$`;
}

function remember(line) {
  if (line && history[history.length - 1] !== line) {
    history.push(line);
    history.splice(0, Math.max(0, history.length - MAX_HISTORY));
    localStorage.setItem(HISTORY_KEY, JSON.stringify(history));
  }
  historyAt = history.length;
  draft = "";
}

// Lines run one after another; pasted lines wait their turn.
async function run(line) {
  if (running) {
    waiting.push(line);
    return;
  }
  running = true;
  document.body.dataset.running = "true";
  print(`${$("prompt").textContent} ${line}`, "cmd");
  try {
    const reply = await ask({ kind: "run", line });
    if (line.trim() === "clear" && reply.ok) clearOutput();
    else if (reply.output) print(reply.output.replaceAll("\r\n", "\n"), reply.ok ? "" : "err");
    setPrompt(reply.cwd);
  } catch (error) {
    print(`domshell: the extension did not answer (${error.message}); try again`, "err");
  } finally {
    running = false;
    delete document.body.dataset.running;
    refreshLanes();
  }
  const next = waiting.shift();
  if (next !== undefined) run(next);
}

async function completeLine() {
  const input = $("line");
  const line = input.value.slice(0, input.selectionStart ?? input.value.length);
  const rest = input.value.slice(line.length);
  let answer;
  try {
    answer = await ask({ kind: "complete", line });
  } catch {
    return;
  }
  const { start, candidates, common } = answer;
  if (!candidates.length) return;
  const head = line.slice(0, start);
  const word = candidates.length === 1 ? candidates[0] + (candidates[0].endsWith("/") ? "" : " ") : common;
  if (candidates.length > 1) print(candidates.join("  "));
  if (word.length >= line.length - start) {
    input.value = head + word + rest;
    const at = (head + word).length;
    input.setSelectionRange(at, at);
  }
}

function ago(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 120 ? `${m} min` : `${Math.round(m / 60)} h`;
}

function renderLanes(view) {
  const list = $("lanes");
  const lanes = view.lanes || [];
  $("lane-count").textContent = `(${lanes.length})`;
  const items = lanes.map((lane) => {
    const li = document.createElement("li");
    li.dataset.lane = String(lane.id);
    const what = document.createElement("div");
    what.className = "what";
    const title = document.createElement("div");
    title.className = "title";
    title.textContent = `${lane.title} · ${lane.agent || "unknown agent"}${lane.current ? " (yours)" : ""}`;
    const facts = document.createElement("div");
    facts.className = "facts";
    facts.textContent = `lane ${lane.id} · ${lane.tabs} tab(s) · ${lane.sessions} session(s) · ${ago(lane.ageMs)} old · last: ${lane.lastCommand || "-"}`;
    what.append(title, facts);
    const stop = document.createElement("button");
    stop.type = "button";
    stop.textContent = "Close";
    stop.title = `Close lane ${lane.id} and its tabs`;
    stop.addEventListener("click", () => run(`group close ${lane.id}`));
    li.append(what, stop);
    return li;
  });
  if (!items.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "No lanes: agents work in your tabs only when they do not ask for one.";
    items.push(li);
  }
  list.replaceChildren(...items);
  if (!running) setPrompt(view.cwd);
}

async function refreshLanes() {
  try {
    renderLanes(await ask({ kind: "lanes" }));
  } catch {
    // The worker is starting; the next round shows them.
  }
}

function renderLink(status) {
  const header = $("link");
  header.dataset.state = status ? status.state : "connecting";
  $("link-text").textContent = status
    ? `${status.state}${status.detail ? ` — ${status.detail}` : ""}`
    : "The extension's worker has not reported yet.";
}

$("prompt-line").addEventListener("submit", (event) => {
  event.preventDefault();
  const line = $("line").value;
  $("line").value = "";
  remember(line.trim());
  run(line);
});

$("line").addEventListener("keydown", (event) => {
  const input = $("line");
  if (event.key === "Tab") {
    event.preventDefault();
    completeLine();
  } else if (event.key === "ArrowUp" && historyAt > 0) {
    event.preventDefault();
    if (historyAt === history.length) draft = input.value;
    input.value = history[--historyAt];
  } else if (event.key === "ArrowDown" && historyAt < history.length) {
    event.preventDefault();
    historyAt += 1;
    input.value = historyAt === history.length ? draft : history[historyAt];
  } else if (event.ctrlKey && event.key.toLowerCase() === "c" && input.selectionStart === input.selectionEnd) {
    event.preventDefault();
    waiting.length = 0;
    if (running) ask({ kind: "cancel" }).catch(() => {});
    else if (input.value) print(`${$("prompt").textContent} ${input.value}^C`, "cmd");
    input.value = "";
  } else if (event.ctrlKey && event.key.toLowerCase() === "l") {
    event.preventDefault();
    clearOutput();
  }
});

// A pasted block of lines runs line by line; a single line is pasted as text.
$("line").addEventListener("paste", (event) => {
  const text = event.clipboardData ? event.clipboardData.getData("text") : "";
  const lines = text.split(/\r?\n/);
  if (lines.length < 2) return;
  event.preventDefault();
  const input = $("line");
  lines[0] = input.value + lines[0];
  input.value = "";
  for (const line of lines.filter((l) => l.trim())) {
    remember(line.trim());
    run(line);
  }
});

chrome.storage.onChanged.addListener((changes, area) => {
  if (area === "local" && changes[STATUS_KEY]) renderLink(changes[STATUS_KEY].newValue);
  if (area === "session" && changes.domshell_lanes) refreshLanes();
});
chrome.storage.local.get(STATUS_KEY).then((items) => renderLink(items[STATUS_KEY]));
setInterval(refreshLanes, LANES_EVERY_MS);
refreshLanes();
$("line").focus();
