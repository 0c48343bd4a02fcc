//! What an attached tab's page did while domshell watched it: console messages and uncaught
//! exceptions, and network requests, kept in bounded rings per tab from the DevTools events
//! the glue passes on (`Runtime.consoleAPICalled`, `Runtime.exceptionThrown`, `Network.*`).
//!
//! It owns turning those events into entries and keeping them bounded (entries, text per
//! entry, requests in flight). It is sans-IO: the glue feeds it events with a monotonic
//! time and the kernel reads snapshots. It must not decide what an agent may see (the
//! domain allowlist is applied by the commands that show entries) and must not keep
//! request or response bodies (they are fetched on demand, a tier above).

use std::collections::VecDeque;

use serde_json::Value;

/// Console entries kept per tab; older ones are dropped first.
pub const MAX_CONSOLE: usize = 200;
/// Requests kept per tab; older ones are dropped first.
pub const MAX_REQUESTS: usize = 300;
/// Characters kept of one console message or URL.
const MAX_TEXT: usize = 500;

/// How serious a console entry is, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    /// The level a `--level` word names (`warning` for `warn` too).
    pub fn parse(word: &str) -> Option<Level> {
        match word.to_ascii_lowercase().as_str() {
            "debug" | "verbose" => Some(Level::Debug),
            "info" | "log" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }

    /// `console.*`'s kind as DevTools names it.
    fn of_console_call(kind: &str) -> Level {
        match kind {
            "error" | "assert" => Level::Error,
            "warning" => Level::Warn,
            "debug" | "trace" => Level::Debug,
            _ => Level::Info,
        }
    }
}

/// One console message or uncaught exception.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleEntry {
    pub level: Level,
    pub text: String,
    /// Where it came from (`script.js:12`), when DevTools said.
    pub source: Option<String>,
}

/// One network request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestEntry {
    /// Shown to agents (`network body <n>`): numbered from 1 per tab.
    pub number: u64,
    /// DevTools' id, for `Network.getResponseBody`.
    pub request_id: String,
    pub method: String,
    pub url: String,
    /// `document`, `xhr`, `fetch`, `script` … (DevTools' resource type, lower case).
    pub kind: String,
    pub status: Option<u64>,
    pub mime_type: Option<String>,
    /// Bytes received (encoded), when it finished.
    pub size: Option<u64>,
    /// From the request to its end.
    pub duration_ms: Option<f64>,
    /// Why it failed (`net::ERR_CONNECTION_REFUSED`, `canceled`).
    pub failure: Option<String>,
    started_ms: f64,
}

impl RequestEntry {
    /// Still waiting for its response or its end.
    pub fn in_flight(&self) -> bool {
        self.duration_ms.is_none() && self.failure.is_none()
    }

    /// Failed at the network level, or answered with an HTTP error status.
    pub fn failed(&self) -> bool {
        self.failure.is_some() || self.status.is_some_and(|s| s >= 400)
    }
}

/// One tab's console and network rings.
#[derive(Debug, Clone, Default)]
pub struct TabActivity {
    console: VecDeque<ConsoleEntry>,
    requests: VecDeque<RequestEntry>,
    next_number: u64,
    /// Entries that fell out of the rings, for the "older entries dropped" line.
    pub console_dropped: u64,
    pub requests_dropped: u64,
    /// When a request last started or ended (monotonic ms); `None` before the first.
    last_network_ms: Option<f64>,
}

fn clipped(text: &str) -> String {
    if text.chars().count() <= MAX_TEXT {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(MAX_TEXT).collect();
    cut.push('…');
    cut
}

/// A `Runtime.RemoteObject` as the console shows it: a primitive's value, else its
/// description.
fn shown(object: &Value) -> String {
    match &object["value"] {
        Value::String(s) => s.clone(),
        Value::Null | Value::Object(_) | Value::Array(_) => object["description"]
            .as_str()
            .or_else(|| object["unserializableValue"].as_str())
            .or_else(|| object["type"].as_str())
            .unwrap_or_default()
            .to_string(),
        other => other.to_string(),
    }
}

/// `script.js:12` from a URL and a zero-based line number.
fn place(url: &str, line: Option<u64>) -> Option<String> {
    if url.is_empty() {
        return None;
    }
    let file = url
        .rsplit('/')
        .next()
        .filter(|f| !f.is_empty())
        .unwrap_or(url);
    Some(match line {
        Some(line) => format!("{}:{}", clipped(file), line + 1),
        None => clipped(file),
    })
}

impl TabActivity {
    /// Take one DevTools event of the tab's own target; `false` when it is none of ours.
    pub fn on_event(&mut self, method: &str, params: &Value, now_ms: f64) -> bool {
        match method {
            "Runtime.consoleAPICalled" => {
                let text = params["args"]
                    .as_array()
                    .map(|args| args.iter().map(shown).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default();
                let frame = &params["stackTrace"]["callFrames"][0];
                self.add_console(ConsoleEntry {
                    level: Level::of_console_call(params["type"].as_str().unwrap_or_default()),
                    text: clipped(&text),
                    source: place(
                        frame["url"].as_str().unwrap_or_default(),
                        frame["lineNumber"].as_u64(),
                    ),
                });
            }
            "Runtime.exceptionThrown" => {
                let details = &params["exceptionDetails"];
                let text = details["exception"]["description"]
                    .as_str()
                    .or_else(|| details["text"].as_str())
                    .unwrap_or("exception");
                // A description starts with the error's stack; its first line says it.
                let first = text.lines().next().unwrap_or(text);
                self.add_console(ConsoleEntry {
                    level: Level::Error,
                    text: clipped(&format!("Uncaught {first}")),
                    source: place(
                        details["url"].as_str().unwrap_or_default(),
                        details["lineNumber"].as_u64(),
                    ),
                });
            }
            "Network.requestWillBeSent" => {
                let Some(id) = params["requestId"].as_str() else {
                    return true;
                };
                // A redirect reuses the id: the hop before it ends here.
                if let Some(previous) = self.request_mut(id).filter(|r| r.in_flight()) {
                    previous.status = params["redirectResponse"]["status"].as_u64();
                    previous.duration_ms = Some(now_ms - previous.started_ms);
                }
                self.next_number += 1;
                let request = &params["request"];
                self.add_request(RequestEntry {
                    number: self.next_number,
                    request_id: id.to_string(),
                    method: request["method"].as_str().unwrap_or("GET").to_string(),
                    url: clipped(request["url"].as_str().unwrap_or_default()),
                    kind: params["type"]
                        .as_str()
                        .unwrap_or("other")
                        .to_ascii_lowercase(),
                    status: None,
                    mime_type: None,
                    size: None,
                    duration_ms: None,
                    failure: None,
                    started_ms: now_ms,
                });
                self.last_network_ms = Some(now_ms);
            }
            "Network.responseReceived" => {
                if let Some(request) = params["requestId"]
                    .as_str()
                    .and_then(|id| self.request_mut(id))
                {
                    let response = &params["response"];
                    request.status = response["status"].as_u64();
                    request.mime_type = response["mimeType"].as_str().map(str::to_string);
                    if let Some(kind) = params["type"].as_str() {
                        request.kind = kind.to_ascii_lowercase();
                    }
                }
            }
            "Network.loadingFinished" | "Network.loadingFailed" => {
                if let Some(request) = params["requestId"]
                    .as_str()
                    .and_then(|id| self.request_mut(id))
                {
                    request.duration_ms = Some(now_ms - request.started_ms);
                    if method == "Network.loadingFinished" {
                        request.size = params["encodedDataLength"].as_f64().map(|b| b as u64);
                    } else {
                        let canceled = params["canceled"].as_bool() == Some(true);
                        let text = params["errorText"].as_str().unwrap_or("failed");
                        request.failure = Some(if canceled {
                            "canceled".to_string()
                        } else {
                            clipped(text)
                        });
                    }
                }
                self.last_network_ms = Some(now_ms);
            }
            _ => return false,
        }
        true
    }

    fn request_mut(&mut self, id: &str) -> Option<&mut RequestEntry> {
        self.requests.iter_mut().rev().find(|r| r.request_id == id)
    }

    fn add_console(&mut self, entry: ConsoleEntry) {
        if self.console.len() == MAX_CONSOLE {
            self.console.pop_front();
            self.console_dropped += 1;
        }
        self.console.push_back(entry);
    }

    fn add_request(&mut self, entry: RequestEntry) {
        if self.requests.len() == MAX_REQUESTS {
            self.requests.pop_front();
            self.requests_dropped += 1;
        }
        self.requests.push_back(entry);
    }

    pub fn console(&self) -> impl DoubleEndedIterator<Item = &ConsoleEntry> {
        self.console.iter()
    }

    pub fn requests(&self) -> impl DoubleEndedIterator<Item = &RequestEntry> {
        self.requests.iter()
    }

    /// The request shown as number `number`, if it is still kept.
    pub fn request(&self, number: u64) -> Option<&RequestEntry> {
        self.requests.iter().find(|r| r.number == number)
    }

    pub fn clear_console(&mut self) {
        self.console.clear();
        self.console_dropped = 0;
    }

    /// How long the network has been quiet at `now_ms` (no request in flight, none started
    /// or ended since); `None` while a request is in flight. A request that never ends
    /// (a long poll, a stream) counts as in flight only for `stale_after_ms`.
    pub fn quiet_for_ms(&self, now_ms: f64, stale_after_ms: f64) -> Option<f64> {
        let busy = self
            .requests
            .iter()
            .any(|r| r.in_flight() && now_ms - r.started_ms < stale_after_ms);
        if busy {
            return None;
        }
        Some(self.last_network_ms.map_or(f64::INFINITY, |at| now_ms - at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn console_calls_and_exceptions_become_entries_with_their_level_and_place() {
        let mut tab = TabActivity::default();
        assert!(tab.on_event(
            "Runtime.consoleAPICalled",
            &json!({"type": "warning", "args": [{"type": "string", "value": "low"}, {"type": "number", "value": 3}, {"type": "object", "description": "Object"}],
                    "stackTrace": {"callFrames": [{"url": "http://x/app/main.js", "lineNumber": 11}]}}),
            0.0
        ));
        tab.on_event(
            "Runtime.exceptionThrown",
            &json!({"exceptionDetails": {"text": "Uncaught", "url": "http://x/a.js", "lineNumber": 0,
                    "exception": {"description": "TypeError: boom\n    at f (a.js:1)"}}}),
            1.0,
        );
        let entries: Vec<&ConsoleEntry> = tab.console().collect();
        assert_eq!(entries[0].level, Level::Warn);
        assert_eq!(entries[0].text, "low 3 Object");
        assert_eq!(entries[0].source.as_deref(), Some("main.js:12"));
        assert_eq!(entries[1].level, Level::Error);
        assert_eq!(entries[1].text, "Uncaught TypeError: boom");
        assert!(!tab.on_event("Page.frameNavigated", &json!({}), 2.0));
        tab.clear_console();
        assert_eq!(tab.console().count(), 0);
    }

    #[test]
    fn requests_are_followed_to_their_end_or_failure() {
        let mut tab = TabActivity::default();
        tab.on_event(
            "Network.requestWillBeSent",
            &json!({"requestId": "1", "type": "Fetch", "request": {"method": "POST", "url": "http://x/api"}}),
            10.0,
        );
        assert_eq!(tab.quiet_for_ms(20.0, 10_000.0), None);
        tab.on_event(
            "Network.responseReceived",
            &json!({"requestId": "1", "type": "Fetch", "response": {"status": 404, "mimeType": "application/json"}}),
            30.0,
        );
        tab.on_event(
            "Network.loadingFinished",
            &json!({"requestId": "1", "encodedDataLength": 120.0}),
            40.0,
        );
        tab.on_event(
            "Network.requestWillBeSent",
            &json!({"requestId": "2", "type": "XHR", "request": {"method": "GET", "url": "http://x/down"}}),
            50.0,
        );
        tab.on_event(
            "Network.loadingFailed",
            &json!({"requestId": "2", "errorText": "net::ERR_CONNECTION_REFUSED"}),
            60.0,
        );
        let all: Vec<&RequestEntry> = tab.requests().collect();
        assert_eq!((all[0].number, all[0].kind.as_str()), (1, "fetch"));
        assert_eq!((all[0].status, all[0].size), (Some(404), Some(120)));
        assert_eq!(all[0].duration_ms, Some(30.0));
        assert!(all[0].failed() && all[1].failed());
        assert_eq!(
            all[1].failure.as_deref(),
            Some("net::ERR_CONNECTION_REFUSED")
        );
        assert_eq!(tab.quiet_for_ms(560.0, 10_000.0), Some(500.0));
        assert_eq!(
            tab.request(2).map(|r| r.url.as_str()),
            Some("http://x/down")
        );
    }

    #[test]
    fn a_request_that_never_ends_stops_counting_as_activity() {
        let mut tab = TabActivity::default();
        tab.on_event(
            "Network.requestWillBeSent",
            &json!({"requestId": "poll", "type": "Fetch", "request": {"url": "http://x/poll"}}),
            0.0,
        );
        assert_eq!(tab.quiet_for_ms(1_000.0, 5_000.0), None);
        assert_eq!(tab.quiet_for_ms(6_000.0, 5_000.0), Some(6_000.0));
    }

    #[test]
    fn the_rings_are_bounded_and_count_what_fell_out() {
        let mut tab = TabActivity::default();
        for i in 0..(MAX_CONSOLE + 5) {
            tab.on_event(
                "Runtime.consoleAPICalled",
                &json!({"type": "log", "args": [{"type": "string", "value": "x".repeat(i % 3 + MAX_TEXT)}]}),
                i as f64,
            );
        }
        assert_eq!(tab.console().count(), MAX_CONSOLE);
        assert_eq!(tab.console_dropped, 5);
        assert!(tab
            .console()
            .all(|e| e.text.chars().count() <= MAX_TEXT + 1));
        for i in 0..(MAX_REQUESTS + 2) {
            tab.on_event(
                "Network.requestWillBeSent",
                &json!({"requestId": i.to_string(), "request": {"url": "http://x/"}}),
                i as f64,
            );
        }
        assert_eq!(tab.requests().count(), MAX_REQUESTS);
        assert_eq!(tab.requests_dropped, 2);
        assert_eq!(tab.requests().next().map(|r| r.number), Some(3));
    }
}
