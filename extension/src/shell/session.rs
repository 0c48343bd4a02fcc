//! One MCP session's shell state: where it is (`cwd`), its environment, its history and
//! the tab it works in, plus the serialised form kept in `chrome.storage.session` so a
//! session resumes where it was after Chrome stops and restarts the service worker.
//!
//! It owns the state and its invariants (history numbering, environment defaults, path
//! text). It must not talk to the browser: whether the attached tab still exists is for
//! the kernel to find out through its [`super::browser::Browser`] port.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// History entries kept per session; older ones are forgotten but keep their numbers.
pub const HISTORY_LIMIT: usize = 500;

/// Prefix of the `chrome.storage.session` key of every session's state.
pub const STORAGE_PREFIX: &str = "domshell_session:";

/// Stored sessions kept when the worker starts; the least recently used beyond this are
/// dropped. Sessions normally end with `SESSION_END`, but not when their server died, and
/// `chrome.storage.session` is small (10 MB) and lives until the browser quits.
pub const MAX_STORED_SESSIONS: usize = 64;

/// The storage key of `session`'s state.
pub fn storage_key(session: &str) -> String {
    format!("{STORAGE_PREFIX}{session}")
}

/// Where a session is in the browser-level filesystem. Stored as [`StoredCwd`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(try_from = "StoredCwd", into = "StoredCwd")]
pub enum Cwd {
    /// `~`
    #[default]
    Root,
    /// `~/tabs`
    Tabs,
    /// `~/windows`
    Windows,
    /// `~/windows/<id>`
    Window { window: i64 },
    /// `~/tabs/<id>` or, when entered through its window, `~/windows/<w>/<id>`. `dom` is the
    /// path inside the page (names of accessibility-tree directories), empty at the root.
    Tab {
        tab: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via_window: Option<i64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        dom: Vec<String>,
    },
}

/// The stored form of a [`Cwd`]: the variant under `at` and its fields beside it
/// (`{"at": "tab", "tab": 101}`), the shape of an internally tagged enum. Spelled out as
/// one flat struct because serde's internally tagged derive buffers the whole object before
/// it knows the variant, which cost the WASM 16 KB.
#[derive(Serialize, Deserialize)]
struct StoredCwd {
    at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tab: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    via_window: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dom: Vec<String>,
}

impl From<Cwd> for StoredCwd {
    fn from(cwd: Cwd) -> Self {
        let mut stored = StoredCwd {
            at: String::new(),
            window: None,
            tab: None,
            via_window: None,
            dom: Vec::new(),
        };
        stored.at = match cwd {
            Cwd::Root => "root",
            Cwd::Tabs => "tabs",
            Cwd::Windows => "windows",
            Cwd::Window { window } => {
                stored.window = Some(window);
                "window"
            }
            Cwd::Tab {
                tab,
                via_window,
                dom,
            } => {
                stored.tab = Some(tab);
                stored.via_window = via_window;
                stored.dom = dom;
                "tab"
            }
        }
        .to_string();
        stored
    }
}

impl TryFrom<StoredCwd> for Cwd {
    type Error = String;

    /// Fields of other variants are ignored, as the internally tagged form did.
    fn try_from(stored: StoredCwd) -> Result<Self, String> {
        let missing = |field: &str| format!("missing field `{field}`");
        Ok(match stored.at.as_str() {
            "root" => Cwd::Root,
            "tabs" => Cwd::Tabs,
            "windows" => Cwd::Windows,
            "window" => Cwd::Window {
                window: stored.window.ok_or_else(|| missing("window"))?,
            },
            "tab" => Cwd::Tab {
                tab: stored.tab.ok_or_else(|| missing("tab"))?,
                via_window: stored.via_window,
                dom: stored.dom,
            },
            other => {
                return Err(format!(
                    "unknown variant `{other}`, expected one of `root`, `tabs`, `windows`, \
                     `window`, `tab`"
                ))
            }
        })
    }
}

impl Cwd {
    /// The path as `pwd` prints it.
    pub fn display(&self) -> String {
        match self {
            Cwd::Root => "~".into(),
            Cwd::Tabs => "~/tabs".into(),
            Cwd::Windows => "~/windows".into(),
            Cwd::Window { window } => format!("~/windows/{window}"),
            Cwd::Tab {
                tab,
                via_window,
                dom,
            } => {
                let mut path = match via_window {
                    Some(w) => format!("~/windows/{w}/{tab}"),
                    None => format!("~/tabs/{tab}"),
                };
                for name in dom {
                    path.push('/');
                    path.push_str(name);
                }
                path
            }
        }
    }

    /// The tab this path is inside, if any.
    pub fn tab(&self) -> Option<i64> {
        match self {
            Cwd::Tab { tab, .. } => Some(*tab),
            _ => None,
        }
    }

    /// The root of `tab`, keeping the way it was entered.
    pub fn tab_root(tab: i64, via_window: Option<i64>) -> Cwd {
        Cwd::Tab {
            tab,
            via_window,
            dom: Vec::new(),
        }
    }
}

/// Shell state of one session. Serialised as-is into `chrome.storage.session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    #[serde(default)]
    pub cwd: Cwd,
    #[serde(default = "default_env")]
    pub env: BTreeMap<String, String>,
    /// The last [`HISTORY_LIMIT`] command lines, oldest first.
    #[serde(default)]
    pub history: Vec<String>,
    /// How many entries were forgotten before `history[0]`, so `!N` keeps meaning the same
    /// command after old entries are dropped.
    #[serde(default)]
    pub history_base: usize,
    /// Wall-clock time of the session's last command, only to choose which stored
    /// sessions to drop first.
    #[serde(default)]
    pub last_used_ms: u64,
    /// The lane (tab group id) the session works in; `None`: the user's tabs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<i64>,
    /// Where the session was in the other lanes it worked in (`None`: the user's tabs), so
    /// that coming back to a lane comes back to its place there: a host that runs several
    /// agents over one session (one per lane) keeps one cursor per agent. Stored with the
    /// rest, so a worker restart keeps every agent's place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lane_cwds: Vec<(Option<i64>, Cwd)>,
    /// What the session last saw of its directory, for `diff` and actions' accounts. Not
    /// stored: after a worker restart the first look starts again.
    #[serde(skip)]
    pub look: Option<super::effects::Look>,
}

/// Places kept for lanes a session is not in, at most.
pub const MAX_LANE_PLACES: usize = 16;

fn default_env() -> BTreeMap<String, String> {
    // Inserted one by one: collecting into a map sorts first, with an instance of the
    // standard sort of its own.
    let mut env = BTreeMap::new();
    for (key, value) in [
        ("SHELL", "/bin/domshell"),
        ("TERM", "xterm-256color"),
        ("PS1", "dom@shell:$PWD$ "),
    ] {
        env.insert(key.to_string(), value.to_string());
    }
    env
}

impl Default for Session {
    fn default() -> Self {
        Session {
            cwd: Cwd::Root,
            env: default_env(),
            history: Vec::new(),
            history_base: 0,
            last_used_ms: 0,
            lane: None,
            lane_cwds: Vec::new(),
            look: None,
        }
    }
}

/// A session state that could not be read back; the session starts fresh instead.
#[derive(Debug, thiserror::Error)]
#[error("stored shell state of session {session} is unreadable ({source}); starting it fresh")]
pub struct RestoreError {
    pub session: String,
    #[source]
    pub source: serde_json::Error,
}

impl Session {
    /// The tab the session works in, if it is inside one.
    pub fn tab(&self) -> Option<i64> {
        self.cwd.tab()
    }

    /// Moves the session into `lane` (`None`: the user's tabs), back to where it was there.
    pub fn switch_lane(&mut self, lane: Option<i64>) {
        if self.lane == lane {
            return;
        }
        let here = std::mem::take(&mut self.cwd);
        self.lane_cwds.retain(|(l, _)| *l != self.lane);
        self.lane_cwds.push((self.lane, here));
        if let Some(at) = self.lane_cwds.iter().position(|(l, _)| *l == lane) {
            self.cwd = self.lane_cwds.remove(at).1;
        }
        self.lane = lane;
        if self.lane_cwds.len() > MAX_LANE_PLACES {
            // The least recently left first.
            self.lane_cwds.remove(0);
        }
    }

    /// A lane closed: its place is forgotten, and a session in it goes back to the user's
    /// tabs at `~` (never to a tab it was in before: the next command must not act there
    /// unasked).
    pub fn leave_closed_lane(&mut self, lane: i64) {
        self.lane_cwds.retain(|(l, _)| *l != Some(lane));
        if self.lane == Some(lane) {
            self.lane = None;
            self.cwd = Cwd::Root;
        }
    }

    /// Appends a command line to the history, forgetting the oldest beyond the limit.
    pub fn record(&mut self, line: &str) {
        self.history.push(line.to_string());
        if self.history.len() > HISTORY_LIMIT {
            let excess = self.history.len() - HISTORY_LIMIT;
            self.history.drain(..excess);
            self.history_base += excess;
        }
    }

    /// History entry `number` (1-based, as `history` prints it).
    pub fn history_entry(&self, number: usize) -> Option<&str> {
        number
            .checked_sub(self.history_base + 1)
            .and_then(|i| self.history.get(i))
            .map(String::as_str)
    }

    /// The last `count` entries with their numbers, oldest first.
    pub fn history_tail(&self, count: usize) -> impl Iterator<Item = (usize, &str)> {
        let skip = self.history.len().saturating_sub(count);
        self.history
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(i, line)| (self.history_base + i + 1, line.as_str()))
    }

    pub fn clear_history(&mut self) {
        self.history_base += self.history.len();
        self.history.clear();
    }

    /// The JSON stored under [`storage_key`].
    pub fn to_storage(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Reads a stored state back. Through its JSON text: the text reader's code is in the
    /// WASM for frames and trees already, and this is the one state read from a `Value`.
    pub fn from_storage(session: &str, value: serde_json::Value) -> Result<Session, RestoreError> {
        serde_json::from_str(&value.to_string()).map_err(|source| RestoreError {
            session: session.to_string(),
            source,
        })
    }
}

/// Splits stored sessions into the [`MAX_STORED_SESSIONS`] most recently used (to restore)
/// and the rest (to delete from storage).
pub fn keep_recent(
    mut stored: Vec<(String, Session)>,
    max: usize,
) -> (Vec<(String, Session)>, Vec<String>) {
    super::sort::sort_by_key(&mut stored, |(_, s)| std::cmp::Reverse(s.last_used_ms));
    let dropped = stored.split_off(max.min(stored.len()));
    (stored, dropped.into_iter().map(|(name, _)| name).collect())
}

/// All sessions' states plus who is running: commands of one session run one at a time,
/// in arrival order; different sessions do not wait for each other. A running session's
/// state is lent out to its command and given back when it finishes.
#[derive(Debug)]
pub struct SessionTable<J> {
    idle: std::collections::HashMap<String, Session>,
    running: std::collections::HashSet<String>,
    waiting: std::collections::HashMap<String, std::collections::VecDeque<J>>,
}

impl<J> Default for SessionTable<J> {
    fn default() -> Self {
        SessionTable {
            idle: Default::default(),
            running: Default::default(),
            waiting: Default::default(),
        }
    }
}

impl<J> SessionTable<J> {
    /// A state read back from storage at start-up (a live state is never overwritten).
    pub fn restore(&mut self, name: &str, session: Session) {
        if !self.running.contains(name) {
            self.idle.entry(name.to_string()).or_insert(session);
        }
    }

    /// `SESSION_START`: make sure the session exists.
    pub fn start(&mut self, name: &str) {
        if !self.running.contains(name) {
            self.idle.entry(name.to_string()).or_default();
        }
    }

    /// `SESSION_END`: forget the session and its waiting commands (a running command
    /// finishes, but its state is not kept).
    pub fn end(&mut self, name: &str) -> Vec<J> {
        self.idle.remove(name);
        self.running.remove(name);
        self.waiting.remove(name).map(Vec::from).unwrap_or_default()
    }

    /// A command arrived. Returns it with the session's state when it may start now;
    /// otherwise it waits for the session's running command.
    pub fn submit(&mut self, name: &str, job: J) -> Option<(Session, J)> {
        if self.running.contains(name) {
            self.waiting
                .entry(name.to_string())
                .or_default()
                .push_back(job);
            return None;
        }
        let state = self.idle.remove(name).unwrap_or_default();
        self.running.insert(name.to_string());
        Some((state, job))
    }

    /// `name`'s state while no command of it runs.
    pub fn idle(&self, name: &str) -> Option<&Session> {
        self.idle.get(name)
    }

    /// Whether `name` has a command running (it was not ended meanwhile).
    pub fn is_running(&self, name: &str) -> bool {
        self.running.contains(name)
    }

    /// A command finished with `state`. Returns the next waiting command, which takes the
    /// state over, if any. `false` in the second place: the session ended meanwhile, so
    /// the state was dropped and must not be persisted.
    pub fn finish(&mut self, name: &str, state: Session) -> (Option<(Session, J)>, bool) {
        if !self.running.contains(name) {
            return (None, false);
        }
        let next = self.waiting.get_mut(name).and_then(|q| q.pop_front());
        match next {
            Some(job) => (Some((state, job)), true),
            None => {
                self.waiting.remove(name);
                self.running.remove(name);
                self.idle.insert(name.to_string(), state);
                (None, true)
            }
        }
    }

    /// Drops waiting commands that `matches` picks (a `CANCEL` for a command that has not
    /// started). A running command is stopped by the glue through its cancel token.
    pub fn drop_waiting(&mut self, mut matches: impl FnMut(&J) -> bool) -> usize {
        let mut dropped = 0;
        for queue in self.waiting.values_mut() {
            let before = queue.len();
            queue.retain(|job| !matches(job));
            dropped += before - queue.len();
        }
        dropped
    }

    pub fn len(&self) -> usize {
        self.idle.len() + self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn each_lanes_place_survives_storing_and_reading_back() {
        let mut session = Session {
            cwd: Cwd::Tabs,
            ..Session::default()
        };
        session.switch_lane(Some(7));
        session.cwd = Cwd::tab_root(42, None);
        session.switch_lane(Some(9));
        let stored = serde_json::to_string(&session).unwrap();
        let mut back: Session = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, session);
        back.switch_lane(Some(7));
        assert_eq!(back.cwd, Cwd::tab_root(42, None));
        back.switch_lane(None);
        assert_eq!(back.cwd, Cwd::Tabs);
        // A state stored before places were kept reads back without them.
        let old: Session = serde_json::from_str(r#"{"cwd": {"at": "root"}}"#).unwrap();
        assert!(old.lane_cwds.is_empty());
    }

    #[test]
    fn one_command_per_session_at_a_time_in_order() {
        let mut table: SessionTable<&str> = SessionTable::default();
        table.start("a");
        let (mut state, job) = table.submit("a", "cd ~/tabs").unwrap();
        assert_eq!(job, "cd ~/tabs");
        assert!(table.submit("a", "pwd").is_none());
        assert!(table.submit("a", "tabs").is_none());
        // Another session is not held up.
        assert!(table.submit("b", "pwd").is_some());
        state.cwd = Cwd::Tabs;
        let (next, keep) = table.finish("a", state);
        assert!(keep);
        let (state, job) = next.unwrap();
        assert_eq!((job, &state.cwd), ("pwd", &Cwd::Tabs));
        let (next, _) = table.finish("a", state);
        let (state, job) = next.unwrap();
        assert_eq!(job, "tabs");
        assert_eq!(table.finish("a", state), (None, true));
        let (state, _) = table.submit("a", "pwd").unwrap();
        assert_eq!(state.cwd, Cwd::Tabs, "state kept between commands");
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn a_cancelled_command_that_has_not_started_never_runs() {
        let mut table: SessionTable<u32> = SessionTable::default();
        let (state, _) = table.submit("a", 1).unwrap();
        assert!(table.submit("a", 2).is_none());
        assert!(table.submit("a", 3).is_none());
        assert_eq!(table.drop_waiting(|j| *j == 2), 1);
        assert_eq!(
            table.drop_waiting(|j| *j == 1),
            0,
            "running commands are not dropped"
        );
        let (next, _) = table.finish("a", state);
        assert_eq!(next.map(|(_, j)| j), Some(3));
    }

    #[test]
    fn ending_a_session_drops_its_state_and_queue() {
        let mut table: SessionTable<u32> = SessionTable::default();
        let (state, _) = table.submit("a", 1).unwrap();
        assert!(table.submit("a", 2).is_none());
        assert_eq!(table.end("a"), vec![2]);
        assert_eq!(table.finish("a", state), (None, false));
        assert!(table.is_empty());
    }

    #[test]
    fn only_the_most_recently_used_stored_sessions_are_kept() {
        let stored: Vec<(String, Session)> = (0..5u64)
            .map(|i| {
                (
                    format!("s{i}"),
                    Session {
                        last_used_ms: i * 10,
                        ..Session::default()
                    },
                )
            })
            .collect();
        let (kept, dropped) = keep_recent(stored.clone(), 3);
        let kept: Vec<&str> = kept.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(kept, ["s4", "s3", "s2"]);
        assert_eq!(dropped, ["s1", "s0"]);
        assert_eq!(keep_recent(stored, 10).1, Vec::<String>::new());
    }

    #[test]
    fn restore_never_overwrites_a_live_state() {
        let mut table: SessionTable<u32> = SessionTable::default();
        let restored = Session {
            cwd: Cwd::Tab {
                tab: 7,
                via_window: None,
                dom: vec![],
            },
            ..Session::default()
        };
        table.restore("a", restored.clone());
        table.restore("a", Session::default());
        let (state, _) = table.submit("a", 1).unwrap();
        assert_eq!(state, restored);
    }
}
