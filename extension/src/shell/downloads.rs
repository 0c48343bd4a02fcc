//! Downloads the browser started, and which session caused each: the book `downloads` reads
//! and `click` consults, fed by the glue from `chrome.downloads` events.
//!
//! It owns attributing a download to the session whose page action came just before it
//! (a download nobody's action explains is the person's own, and no agent sees it), and
//! keeping the book bounded. It is sans-IO: times are passed in; it must not open, move or
//! delete files.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use serde_json::Value;

/// Downloads kept; older ones are forgotten first.
pub const MAX_DOWNLOADS: usize = 100;
/// How long after a page action a download that starts is taken for its effect.
pub const ATTRIBUTION_MS: f64 = 10_000.0;

/// One download, as `chrome.downloads` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    pub id: i64,
    pub url: String,
    /// The file's absolute path once Chrome chose it (empty before).
    pub path: String,
    /// `in_progress`, `interrupted` or `complete`.
    pub state: String,
    pub bytes: u64,
    pub total: Option<u64>,
    pub error: Option<String>,
    /// The session whose action started it.
    pub session: String,
    /// When it was seen (monotonic ms).
    pub started_ms: f64,
}

impl Download {
    /// The file's name, else the URL's last part.
    pub fn name(&self) -> &str {
        let from = if self.path.is_empty() {
            &self.url
        } else {
            &self.path
        };
        from.rsplit(['/', '\\'])
            .find(|p| !p.is_empty())
            .unwrap_or(from)
    }

    pub fn finished(&self) -> bool {
        self.state != "in_progress"
    }
}

/// The worker's downloads, shared by its sessions.
#[derive(Debug, Default)]
pub struct DownloadBook {
    items: VecDeque<Download>,
    /// The session that last acted on a page, and when.
    last_action: Option<(String, f64)>,
}

pub type DownloadCell = Rc<RefCell<DownloadBook>>;

fn text(value: &Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

impl DownloadBook {
    /// `session` acted on a page at `now_ms` (clicked, pressed a key, submitted a form).
    pub fn acted(&mut self, session: &str, now_ms: f64) {
        self.last_action = Some((session.to_string(), now_ms));
    }

    /// `chrome.downloads.onCreated`. Returns whether a session's action explains it (else
    /// it is not kept: it is the person's).
    pub fn created(&mut self, item: &Value, now_ms: f64) -> bool {
        let Some(session) = self
            .last_action
            .as_ref()
            .filter(|(_, at)| now_ms - at <= ATTRIBUTION_MS)
            .map(|(s, _)| s.clone())
        else {
            return false;
        };
        let Some(id) = item["id"].as_i64() else {
            return false;
        };
        if self.items.len() == MAX_DOWNLOADS {
            self.items.pop_front();
        }
        self.items.push_back(Download {
            id,
            url: text(&item["finalUrl"])
                .or_else(|| text(&item["url"]))
                .unwrap_or_default(),
            path: text(&item["filename"]).unwrap_or_default(),
            state: text(&item["state"]).unwrap_or_else(|| "in_progress".into()),
            bytes: item["bytesReceived"].as_u64().unwrap_or(0),
            total: item["totalBytes"].as_u64().filter(|t| *t > 0),
            error: text(&item["error"]),
            session,
            started_ms: now_ms,
        });
        true
    }

    /// `chrome.downloads.onChanged` (each field as `{current, previous}`), or a fresh
    /// `chrome.downloads.search` item (plain fields).
    pub fn changed(&mut self, delta: &Value) {
        let Some(item) = delta["id"]
            .as_i64()
            .and_then(|id| self.items.iter_mut().find(|d| d.id == id))
        else {
            return;
        };
        let field = |key: &str| {
            let v = &delta[key];
            if v.is_object() {
                v["current"].clone()
            } else {
                v.clone()
            }
        };
        if let Some(path) = text(&field("filename")) {
            item.path = path;
        }
        if let Some(state) = text(&field("state")) {
            item.state = state;
        }
        if let Some(error) = text(&field("error")) {
            item.error = Some(error);
        }
        if let Some(total) = field("totalBytes").as_u64().filter(|t| *t > 0) {
            item.total = Some(total);
        }
        if let Some(bytes) = field("bytesReceived").as_u64() {
            item.bytes = bytes;
        }
        if let Some(size) = field("fileSize").as_u64().filter(|s| *s > 0) {
            item.bytes = size;
        }
    }

    /// `session`'s downloads, oldest first.
    pub fn of(&self, session: &str) -> Vec<Download> {
        self.items
            .iter()
            .filter(|d| d.session == session)
            .cloned()
            .collect()
    }

    /// `session`'s downloads seen at `since_ms` or later.
    pub fn since(&self, session: &str, since_ms: f64) -> Vec<Download> {
        self.items
            .iter()
            .filter(|d| d.session == session && d.started_ms >= since_ms)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_download_belongs_to_the_session_that_acted_just_before() {
        let mut book = DownloadBook::default();
        // Nobody acted: the person's own download, not kept.
        assert!(!book.created(&json!({"id": 1, "url": "https://x/a.pdf"}), 0.0));
        book.acted("agent-1", 100.0);
        assert!(book.created(
            &json!({"id": 2, "url": "https://x/report.csv", "state": "in_progress", "totalBytes": 10}),
            300.0
        ));
        // Long after the action: the person's again.
        assert!(!book.created(
            &json!({"id": 3, "url": "https://x/b"}),
            100.0 + ATTRIBUTION_MS + 1.0
        ));
        assert_eq!(book.of("agent-1").len(), 1);
        assert!(book.of("agent-2").is_empty());
        book.changed(
            &json!({"id": 2, "filename": {"current": "/home/u/Downloads/report.csv"},
                             "state": {"current": "complete", "previous": "in_progress"}}),
        );
        book.changed(&json!({"id": 2, "fileSize": 10}));
        let done = &book.of("agent-1")[0];
        assert_eq!(
            (done.name(), done.state.as_str(), done.bytes),
            ("report.csv", "complete", 10)
        );
        assert!(done.finished());
        assert_eq!(book.since("agent-1", 300.0).len(), 1);
        assert!(book.since("agent-1", 301.0).is_empty());
    }

    #[test]
    fn the_book_is_bounded() {
        let mut book = DownloadBook::default();
        book.acted("s", 0.0);
        for id in 0..(MAX_DOWNLOADS as i64 + 3) {
            book.created(&json!({"id": id, "url": "https://x/f"}), 1.0);
        }
        let kept = book.of("s");
        assert_eq!(kept.len(), MAX_DOWNLOADS);
        assert_eq!(kept[0].id, 3);
    }
}
