//! Lanes: the Chrome tab groups agents work in, so that an agent never lands in the user's
//! tabs or in another agent's.
//!
//! It owns the book of lanes this extension minted (who minted each, who joined it, the
//! title it was given, the popup tabs it opened that Chrome cannot group), the rule of
//! which tabs a session sees ([`View`]), the choice of a window to mint in, what closing a
//! lane closes ([`close_plan`]) and when a lane whose sessions are gone is reaped. It is
//! plain data and decisions: it must not call Chrome (the `group` command and the worker
//! do, through the kernel's browser port) and holds no clock (`now_ms` is a parameter).
//!
//! The rules, as documented in the README:
//! - A lane is a tab group this extension created. A session in a lane sees and acts on
//!   that lane's tabs only; a session in the shared lane sees every tab outside all lanes.
//! - A lane records the session that minted it and every session that joined it. When the
//!   last of them ends, the lane is closed: the tabs still in its group and the popups it
//!   opened. A tab the user dragged out of the group is the user's and stays open; a group
//!   the user renamed is the user's, and the lane is released without closing anything.
//! - After the link comes up (a new server, a restarted worker), the server announces every
//!   live session. A lane none of whose sessions is announced within the grace period is
//!   reaped the same way.

use serde_json::{json, Value};

use super::browser::{TabInfo, WindowInfo};
use super::cdp::{Decode, Fields};

/// The start of every lane's group title; the rest is its name.
pub const TITLE_PREFIX: &str = "🐚 ";
/// A lane's name when the agent gives none.
pub const DEFAULT_NAME: &str = "agent";
/// The longest name kept (characters); longer names are cut.
pub const MAX_NAME_CHARS: usize = 40;
/// Lanes open at once, at most: a loop minting lanes stops here with a clear error.
pub const MAX_LANES: usize = 32;
/// Sessions recorded per lane, at most.
pub const MAX_MEMBERS: usize = 16;
/// Popup tabs recorded per lane, at most (the oldest are forgotten, not closed).
pub const MAX_POPUPS: usize = 32;
/// The `chrome.storage.session` key of the book, so a restarted worker knows its lanes.
pub const STORAGE_KEY: &str = "domshell_lanes";
/// Chrome's `groupId` of a tab in no group.
pub const NO_GROUP: i64 = -1;
/// The session of the person at the browser: the side panel's. The server never announces
/// it, so it is never reaped; the worker refuses frames that name it, so no agent can act
/// as the person.
pub const PERSON: &str = "side-panel";
/// The agent label of a lane the person made.
pub const PERSON_AGENT: &str = "person";

/// One lane: a tab group and who works in it. Stored as JSON written and read member by
/// member ([`Lane::to_json`], [`Decode`]): serde's derives cost the WASM a deserializer
/// per type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    /// Chrome's tab group id.
    pub id: i64,
    pub name: String,
    /// The title this extension gave the group; another title means the user took it over.
    pub title: String,
    /// The session that minted it.
    pub owner: String,
    /// Who that session is for the person watching: the MCP client's label, or
    /// [`PERSON_AGENT`]. Empty when nobody said.
    pub agent: String,
    /// Every session that minted or joined it and has not ended, owner first.
    pub members: Vec<String>,
    pub created_ms: u64,
    pub last_used_ms: u64,
    /// The name of the last command a member ran in it (`click`), for the person watching.
    pub last_command: String,
    /// Tabs the lane opened in popup windows, which Chrome cannot put in a group.
    pub popups: Vec<i64>,
    /// Members not announced by the server since the link last came up.
    pub unconfirmed: Vec<String>,
    /// When the link came up with this lane's members unconfirmed.
    pub unconfirmed_since_ms: Option<u64>,
}

impl Lane {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "title": self.title,
            "owner": self.owner,
            "agent": self.agent,
            "members": self.members,
            "created_ms": self.created_ms,
            "last_used_ms": self.last_used_ms,
            "last_command": self.last_command,
            "popups": self.popups,
            "unconfirmed": self.unconfirmed,
            "unconfirmed_since_ms": self.unconfirmed_since_ms,
        })
    }

    /// Whether `tab` belongs to this lane.
    pub fn holds(&self, tab: &TabInfo) -> bool {
        tab.group_id == Some(self.id) || tab.id.is_some_and(|id| self.popups.contains(&id))
    }
}

impl Decode for Lane {
    fn decode(f: &Fields<'_>) -> Result<Lane, String> {
        let ms = |key: &str| f.int(key).map(|n| n.max(0) as u64);
        Ok(Lane {
            id: f.int("id")?,
            name: f.string("name")?,
            title: f.string("title")?,
            owner: f.string("owner")?,
            agent: f.string_or_empty("agent")?,
            members: f.strings("members")?,
            created_ms: ms("created_ms")?,
            last_used_ms: ms("last_used_ms")?,
            last_command: f.string_or_empty("last_command")?,
            popups: f.list("popups")?.iter().filter_map(Value::as_i64).collect(),
            unconfirmed: f.strings("unconfirmed")?,
            unconfirmed_since_ms: f.get("unconfirmed_since_ms").and_then(Value::as_u64),
        })
    }
}

/// The group title of a lane named `name`.
pub fn title_for(name: &str) -> String {
    format!("{TITLE_PREFIX}{name}")
}

/// A lane name from what an agent asked for: trimmed, control characters dropped, cut to
/// [`MAX_NAME_CHARS`]; [`DEFAULT_NAME`] when nothing is left.
pub fn clean_name(asked: Option<&str>) -> String {
    let name: String = asked
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let name = name.trim();
    if name.is_empty() {
        DEFAULT_NAME.to_string()
    } else {
        name.to_string()
    }
}

/// Parses a lane id as agents write it (`17`); anything else is an error saying what is.
pub fn parse_id(text: &str) -> Result<i64, String> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id >= 0)
        .ok_or_else(|| {
            format!(
                "`{text}` is not a lane id: lane ids are numbers (see `group list`); \
                 use \"new\" to make a lane or \"shared\" for the user's tabs"
            )
        })
}

/// Which tabs a session sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// The user's tabs: every tab outside all lanes.
    Shared { lanes: Vec<Lane> },
    /// One lane's tabs.
    Lane(Box<Lane>),
}

impl View {
    pub fn shows(&self, tab: &TabInfo) -> bool {
        match self {
            View::Shared { lanes } => !lanes.iter().any(|lane| lane.holds(tab)),
            View::Lane(lane) => lane.holds(tab),
        }
    }

    /// The lane, when the view is one.
    pub fn lane(&self) -> Option<&Lane> {
        match self {
            View::Lane(lane) => Some(lane),
            View::Shared { .. } => None,
        }
    }

    /// Why a tab outside the view cannot be used, for the error a command returns.
    pub fn refusal(&self, tab: i64) -> String {
        match self {
            View::Lane(lane) => format!(
                "tab {tab} is not in lane {} (this session works in that lane's tabs only; \
                 `tabs` lists them, `group detach` returns to the user's tabs)",
                lane.id
            ),
            View::Shared { .. } => format!(
                "tab {tab} belongs to an agent's lane; join it with `group attach <id>` \
                 (`group list` shows the lanes)"
            ),
        }
    }
}

/// The window a new lane opens in: the asked one if it is a normal window, else the
/// focused window if it is normal, else the first normal one. Never a popup, app or
/// DevTools window, where Chrome cannot group tabs, and never a fallback to a tab the user
/// has open: without a normal window, minting fails and says so.
pub fn mint_window(windows: &[WindowInfo], asked: Option<i64>) -> Result<i64, String> {
    let normal = |w: &WindowInfo| w.kind.as_deref().unwrap_or("normal") == "normal";
    if let Some(asked) = asked {
        let window = windows
            .iter()
            .find(|w| w.id == Some(asked))
            .ok_or_else(|| format!("window {asked} not found (see `windows`)"))?;
        if !normal(window) {
            return Err(format!(
                "window {asked} is a '{}' window; tab groups need a normal browser window \
                 (see `windows`)",
                window.kind.as_deref().unwrap_or("unknown")
            ));
        }
        return Ok(asked);
    }
    windows
        .iter()
        .filter(|w| normal(w))
        .max_by_key(|w| w.focused)
        .and_then(|w| w.id)
        .ok_or_else(|| {
            "no normal browser window is open (only popup, app or DevTools windows); \
             open a browser window, or pass window_id"
                .to_string()
        })
}

/// What closing a lane does, decided from its group's current title (`None`: the group is
/// gone) and the tabs open now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClosePlan {
    /// Tabs to close: those still in the group and the lane's popups still open.
    pub tabs: Vec<i64>,
    /// The user renamed the group: it is theirs now, nothing is closed.
    pub released: bool,
}

pub fn close_plan(lane: &Lane, group_title: Option<&str>, tabs: &[TabInfo]) -> ClosePlan {
    if group_title.is_some_and(|title| title != lane.title) {
        return ClosePlan {
            tabs: Vec::new(),
            released: true,
        };
    }
    ClosePlan {
        tabs: tabs
            .iter()
            .filter(|t| lane.holds(t))
            .filter_map(|t| t.id)
            .collect(),
        released: false,
    }
}

/// Every lane this extension minted and has not closed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaneBook {
    /// In minting order; a few dozen at most ([`MAX_LANES`]).
    lanes: Vec<Lane>,
}

impl LaneBook {
    pub fn get(&self, id: i64) -> Option<&Lane> {
        self.lanes.iter().find(|l| l.id == id)
    }

    fn get_mut(&mut self, id: i64) -> Option<&mut Lane> {
        self.lanes.iter_mut().find(|l| l.id == id)
    }

    pub fn list(&self) -> impl Iterator<Item = &Lane> {
        self.lanes.iter()
    }

    pub fn len(&self) -> usize {
        self.lanes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }

    /// Whether another lane may be minted.
    pub fn has_room(&self) -> Result<(), String> {
        if self.lanes.len() >= MAX_LANES {
            return Err(format!(
                "{MAX_LANES} lanes are open already; close one with `group close <id>` \
                 (`group list` shows them)"
            ));
        }
        Ok(())
    }

    /// Records a lane just minted by `session`, which is `agent` to the person.
    pub fn mint(&mut self, id: i64, name: &str, session: &str, agent: &str, now_ms: u64) {
        let lane = Lane {
            id,
            name: name.to_string(),
            title: title_for(name),
            owner: session.to_string(),
            agent: agent.chars().take(2 * MAX_NAME_CHARS).collect(),
            members: vec![session.to_string()],
            created_ms: now_ms,
            last_used_ms: now_ms,
            last_command: String::new(),
            popups: Vec::new(),
            unconfirmed: Vec::new(),
            unconfirmed_since_ms: None,
        };
        if self.get(id).is_none() {
            self.lanes.push(lane);
        }
    }

    /// `session` joins lane `id`. Only lanes of this book can be joined: a tab group the
    /// user made is never an agent's lane.
    pub fn join(&mut self, id: i64, session: &str, now_ms: u64) -> Result<(), String> {
        let lane = self.get_mut(id).ok_or_else(|| {
            format!("lane {id} does not exist (it was closed, or it is not a domshell lane); `group list` shows the lanes")
        })?;
        if !lane.members.iter().any(|m| m == session) {
            if lane.members.len() >= MAX_MEMBERS {
                return Err(format!(
                    "lane {id} has {MAX_MEMBERS} sessions already; make a lane of your own with `group new`"
                ));
            }
            lane.members.push(session.to_string());
        }
        lane.unconfirmed.retain(|m| m != session);
        lane.last_used_ms = now_ms;
        Ok(())
    }

    /// Forgets a lane (closed, released or gone); returns it.
    pub fn remove(&mut self, id: i64) -> Option<Lane> {
        let at = self.lanes.iter().position(|l| l.id == id)?;
        Some(self.lanes.remove(at))
    }

    /// A member ran `command` in lane `id`.
    pub fn touch(&mut self, id: i64, command: &str, now_ms: u64) {
        if let Some(lane) = self.get_mut(id) {
            lane.last_used_ms = now_ms;
            // Its name only: what an agent typed, or the URLs it opened, are not for
            // everyone who reads the status.
            lane.last_command = command
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .chars()
                .take(MAX_NAME_CHARS)
                .collect();
        }
    }

    /// `session` ended: it leaves every lane. The lanes it was the last member of are
    /// taken out of the book and returned, to be closed.
    pub fn end_session(&mut self, session: &str) -> Vec<Lane> {
        for lane in self.lanes.iter_mut() {
            lane.members.retain(|m| m != session);
            lane.unconfirmed.retain(|m| m != session);
        }
        self.take_empty()
    }

    fn take_empty(&mut self) -> Vec<Lane> {
        let (empty, kept) = std::mem::take(&mut self.lanes)
            .into_iter()
            .partition(|l| l.members.is_empty());
        self.lanes = kept;
        empty
    }

    /// The lane holding `tab` as a popup or through its group, if any.
    pub fn lane_of(&self, tab: &TabInfo) -> Option<i64> {
        self.lanes.iter().find(|l| l.holds(tab)).map(|l| l.id)
    }

    /// A tab opened from lane `id` in a window Chrome cannot group.
    pub fn add_popup(&mut self, id: i64, tab: i64) {
        if let Some(lane) = self.get_mut(id) {
            if !lane.popups.contains(&tab) {
                if lane.popups.len() >= MAX_POPUPS {
                    lane.popups.remove(0);
                }
                lane.popups.push(tab);
            }
        }
    }

    /// A tab closed: it is no lane's popup any more.
    pub fn forget_tab(&mut self, tab: i64) -> bool {
        let mut changed = false;
        for lane in self.lanes.iter_mut() {
            let before = lane.popups.len();
            lane.popups.retain(|t| *t != tab);
            changed |= lane.popups.len() != before;
        }
        changed
    }

    /// The link came up: every member must be announced again by the server, except the
    /// person, whom no server knows.
    pub fn link_up(&mut self, now_ms: u64) {
        for lane in self.lanes.iter_mut() {
            lane.unconfirmed = lane
                .members
                .iter()
                .filter(|m| *m != PERSON)
                .cloned()
                .collect();
            lane.unconfirmed_since_ms = (!lane.unconfirmed.is_empty()).then_some(now_ms);
        }
    }

    /// The server announced (or used) `session`: it is alive. Whether that changed
    /// anything (most commands come from sessions confirmed long ago).
    pub fn confirm(&mut self, session: &str) -> bool {
        let mut changed = false;
        for lane in self.lanes.iter_mut() {
            let before = lane.unconfirmed.len();
            lane.unconfirmed.retain(|m| m != session);
            changed |= lane.unconfirmed.len() != before;
            if lane.unconfirmed.is_empty() && lane.unconfirmed_since_ms.is_some() {
                lane.unconfirmed_since_ms = None;
                changed = true;
            }
        }
        changed
    }

    /// Members still unannounced `grace_ms` after the link came up are taken to be gone;
    /// the lanes left without members are taken out and returned, to be closed.
    pub fn reap(&mut self, now_ms: u64, grace_ms: u64) -> Vec<Lane> {
        for lane in self.lanes.iter_mut() {
            let Some(since) = lane.unconfirmed_since_ms else {
                continue;
            };
            if now_ms.saturating_sub(since) < grace_ms {
                continue;
            }
            let gone = std::mem::take(&mut lane.unconfirmed);
            lane.members.retain(|m| !gone.contains(m));
            lane.unconfirmed_since_ms = None;
        }
        self.take_empty()
    }

    /// What `session` in `lane` (`None`: shared) sees.
    pub fn view(&self, lane: Option<i64>) -> View {
        match lane.and_then(|id| self.get(id)) {
            Some(lane) => View::Lane(Box::new(lane.clone())),
            None => View::Shared {
                lanes: self.lanes.to_vec(),
            },
        }
    }

    /// The stored form: the lanes as a JSON array.
    pub fn to_storage(&self) -> Value {
        Value::Array(self.lanes.iter().map(Lane::to_json).collect())
    }

    /// Reads the stored form back; an unreadable one is an error (the book starts empty).
    pub fn from_storage(stored: &Value) -> Result<LaneBook, String> {
        let unreadable =
            |e: String| format!("the stored lanes are unreadable ({e}); starting with none");
        let Value::Array(items) = stored else {
            return Err(unreadable("not a list".into()));
        };
        let mut book = LaneBook::default();
        for item in items {
            let lane = Lane::from_reply("the stored lanes", item).map_err(unreadable)?;
            if book.get(lane.id).is_none() && book.lanes.len() < MAX_LANES {
                book.lanes.push(lane);
            }
        }
        Ok(book)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tab(id: i64, group: i64) -> TabInfo {
        TabInfo {
            id: Some(id),
            group_id: Some(group),
            ..Default::default()
        }
    }

    fn window(id: i64, kind: &str, focused: bool) -> WindowInfo {
        WindowInfo {
            id: Some(id),
            focused,
            kind: Some(kind.into()),
            tabs: vec![],
        }
    }

    #[test]
    fn a_lane_session_sees_its_tabs_and_a_shared_one_every_other() {
        let mut book = LaneBook::default();
        book.mint(7, "a", "s1", "t/1", 0);
        book.mint(8, "b", "s2", "t/1", 0);
        book.add_popup(7, 55);
        let tabs = [
            tab(1, NO_GROUP),
            tab(2, 7),
            tab(3, 8),
            tab(55, NO_GROUP),
            tab(4, 99),
        ];
        let seen = |view: View| -> Vec<i64> {
            tabs.iter()
                .filter(|t| view.shows(t))
                .filter_map(|t| t.id)
                .collect()
        };
        assert_eq!(seen(book.view(Some(7))), vec![2, 55]);
        assert_eq!(seen(book.view(Some(8))), vec![3]);
        // The user's own group 99 is the user's: shared sessions see it.
        assert_eq!(seen(book.view(None)), vec![1, 4]);
        // A lane id the book does not hold is the shared view, never "everything".
        assert_eq!(seen(book.view(Some(99))), vec![1, 4]);
    }

    #[test]
    fn only_minted_lanes_can_be_joined() {
        let mut book = LaneBook::default();
        let err = book.join(99, "s1", 0).unwrap_err();
        assert!(err.contains("lane 99 does not exist"), "{err}");
        book.mint(7, "a", "s1", "t/1", 0);
        book.join(7, "s2", 5).unwrap();
        book.join(7, "s2", 6).unwrap();
        assert_eq!(book.get(7).unwrap().members, vec!["s1", "s2"]);
        assert_eq!(book.get(7).unwrap().owner, "s1");
    }

    #[test]
    fn a_lane_closes_when_its_last_session_ends() {
        let mut book = LaneBook::default();
        book.mint(7, "a", "s1", "t/1", 0);
        book.join(7, "s2", 0).unwrap();
        book.mint(8, "b", "s1", "t/1", 0);
        let closed: Vec<i64> = book.end_session("s1").iter().map(|l| l.id).collect();
        assert_eq!(closed, vec![8]);
        assert_eq!(book.get(7).unwrap().members, vec!["s2"]);
        let closed: Vec<i64> = book.end_session("s2").iter().map(|l| l.id).collect();
        assert_eq!(closed, vec![7]);
        assert!(book.is_empty());
    }

    #[test]
    fn lanes_whose_sessions_are_not_announced_after_the_link_comes_up_are_reaped() {
        let mut book = LaneBook::default();
        book.mint(7, "a", "alive", "t/1", 0);
        book.mint(8, "b", "gone", "t/1", 0);
        book.join(8, "alive-too", 0).unwrap();
        book.mint(9, "c", "gone", "t/1", 0);
        book.link_up(1_000);
        book.confirm("alive");
        book.confirm("alive-too");
        assert!(
            book.reap(1_400, 500).is_empty(),
            "not before the grace ends"
        );
        let reaped: Vec<i64> = book.reap(1_500, 500).iter().map(|l| l.id).collect();
        assert_eq!(reaped, vec![9]);
        assert_eq!(book.get(8).unwrap().members, vec!["alive-too"]);
        // Confirmed lanes are not reaped by a later call either.
        assert!(book.reap(10_000, 500).is_empty());
        assert_eq!(book.len(), 2);
    }

    #[test]
    fn closing_closes_the_group_and_popups_but_not_what_the_user_took() {
        let mut book = LaneBook::default();
        book.mint(7, "research", "s1", "t/1", 0);
        let lane = book.get(7).unwrap().clone();
        assert_eq!(lane.title, "🐚 research");
        let mut lane = lane;
        lane.popups.push(55);
        let tabs = [tab(1, NO_GROUP), tab(2, 7), tab(3, 7), tab(55, NO_GROUP)];
        let plan = close_plan(&lane, Some("🐚 research"), &tabs);
        assert_eq!(plan.tabs, vec![2, 3, 55]);
        assert!(!plan.released);
        // The group is gone: its tabs were closed or moved out; only popups remain.
        assert_eq!(close_plan(&lane, None, &tabs[..1]).tabs, Vec::<i64>::new());
        // Renamed by the user: theirs now.
        let plan = close_plan(&lane, Some("my research"), &tabs);
        assert!(plan.released && plan.tabs.is_empty());
    }

    #[test]
    fn minting_picks_a_normal_window_or_says_why_not() {
        let windows = [
            window(1, "popup", true),
            window(2, "normal", false),
            window(3, "devtools", false),
        ];
        assert_eq!(mint_window(&windows, None), Ok(2));
        assert_eq!(mint_window(&windows, Some(2)), Ok(2));
        let err = mint_window(&windows, Some(1)).unwrap_err();
        assert!(err.contains("window 1 is a 'popup' window"), "{err}");
        let err = mint_window(&windows, Some(4)).unwrap_err();
        assert!(err.contains("window 4 not found"), "{err}");
        let err = mint_window(&windows[..1], None).unwrap_err();
        assert!(err.contains("no normal browser window"), "{err}");
        let focused = [window(1, "normal", false), window(2, "normal", true)];
        assert_eq!(mint_window(&focused, None), Ok(2));
    }

    #[test]
    fn names_are_cleaned_and_ids_checked() {
        assert_eq!(clean_name(None), "agent");
        assert_eq!(clean_name(Some("  \u{7}\n ")), "agent");
        assert_eq!(
            clean_name(Some("x".repeat(99).as_str())).len(),
            MAX_NAME_CHARS
        );
        assert_eq!(parse_id(" 17 "), Ok(17));
        assert!(parse_id("abc").unwrap_err().contains("not a lane id"));
        assert!(parse_id("-3").is_err());
    }

    #[test]
    fn the_book_survives_storage_and_bounds_itself() {
        let mut book = LaneBook::default();
        for id in 0..MAX_LANES as i64 {
            book.has_room().unwrap();
            book.mint(id, "a", "s", "t/1", 0);
        }
        assert!(book
            .has_room()
            .unwrap_err()
            .contains("lanes are open already"));
        book.add_popup(3, 9);
        let stored: Value = serde_json::from_str(&book.to_storage().to_string()).unwrap();
        assert_eq!(LaneBook::from_storage(&stored).unwrap(), book);
        assert!(LaneBook::from_storage(&json!({})).is_err());
        assert!(LaneBook::from_storage(&json!([{"id": 1}])).is_err());
        for t in 0..(MAX_POPUPS as i64 + 5) {
            book.add_popup(4, 100 + t);
        }
        assert_eq!(book.get(4).unwrap().popups.len(), MAX_POPUPS);
        assert!(book.forget_tab(9));
        assert!(!book.forget_tab(9));
    }
}
