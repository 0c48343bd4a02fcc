//! The relay's decisions under a fake clock: listeners and claims are strings, time is a
//! number, and a "backend" is whatever the test says it answered.

use serde_json::{json, Value};

use super::*;
use crate::election::OwnerInfo;
use crate::relay::held::{Held, HOLD_MS, MAX_HELD};
use crate::relay::in_flight::{InFlight, CANCELLED_TTL_MS};

type TestAction = Action<&'static str, &'static str>;
type TestEvent = Event<&'static str, &'static str>;

const PORT: u16 = 9876;
const HEAL_MS: u64 = 2_000;

fn config() -> CoreConfig {
    CoreConfig {
        port: PORT,
        heal_interval_ms: HEAL_MS,
        audit: true,
        pid: 4242,
        client_id: "stdio-proxy/4242".into(),
        shell_session: "host:me".into(),
    }
}

fn owner() -> Holder {
    Holder::Owner(OwnerInfo {
        pid: Some(1),
        version: Some("1".into()),
        protocol: Some(1),
        state: Some("ready".into()),
    })
}

fn foreign() -> Holder {
    Holder::Foreign {
        detail: "it does not speak HTTP".into(),
    }
}

fn initialize(id: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "host", "version": "1"}}})
}

fn initialized() -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
}

fn call(id: u64, command: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "domshell_execute", "arguments": {"command": command}}})
}

fn status(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "domshell_status", "arguments": {}}})
}

fn cancel(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
           "params": {"requestId": id, "reason": "user"}})
}

fn ok(id: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": {"content": [], "isError": false}})
}

/// An owner's answer to `initialize`: its tool list never changes, so it declares no
/// `listChanged`.
fn init_answer(id: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": {"protocolVersion": "2025-06-18",
           "capabilities": {"tools": {}}, "serverInfo": {"name": "domshell", "version": "1"}}})
}

/// The same answer as the host gets it from the relay, which does change the tool list.
fn init_answer_to_host(id: Value) -> Value {
    let mut answer = init_answer(id);
    answer["result"]["capabilities"]["tools"]["listChanged"] = json!(true);
    answer
}

/// The relay under test and its clock.
struct Relay {
    core: RelayCore<&'static str, &'static str>,
    now: u64,
}

impl Relay {
    fn new() -> Self {
        Self {
            core: RelayCore::new(config()),
            now: 0,
        }
    }

    fn with_bounds(in_flight: InFlight, held: Held) -> Self {
        Self {
            core: RelayCore::with_bounds(config(), in_flight, held),
            now: 0,
        }
    }

    fn feed(&mut self, event: TestEvent) -> Vec<TestAction> {
        self.core.handle(event, self.now)
    }

    fn host(&mut self, message: Value) -> Vec<TestAction> {
        self.feed(Event::FromHost(message))
    }

    fn backend(&mut self, gen: Gen, message: Value) -> Vec<TestAction> {
        self.feed(Event::FromBackend(gen, message))
    }

    /// Move the clock on and tick.
    fn advance(&mut self, ms: u64) -> Vec<TestAction> {
        self.now += ms;
        self.feed(Event::Tick)
    }

    /// Started against a ready owner, which proved itself: the backend's generation.
    fn attached(&mut self) -> Gen {
        let actions = self.feed(Event::Start(owner()));
        let (id, how) = only_try(&actions);
        assert_eq!(how, TryHow::Attach(owner()));
        let actions = self.feed(Event::Tried(id, Found::Attached("claim")));
        connected(&actions).expect("a remote backend").0
    }

    /// Attached, with the host's session made on it: the backend's generation.
    fn in_session(&mut self) -> Gen {
        let gen = self.attached();
        self.host(initialize(json!(0)));
        self.backend(gen, init_answer(json!(0)));
        self.host(initialized());
        gen
    }

    /// The backend is lost; the election's try id.
    fn lose(&mut self, gen: Gen) -> (Vec<TestAction>, TryId) {
        let actions = self.feed(Event::BackendLost(gen, "the owner died".into()));
        let (id, how) = only_try(&actions);
        assert_eq!(how, TryHow::Elect);
        (actions, id)
    }
}

fn to_host(actions: &[TestAction]) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ToHost(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn to_backend(actions: &[TestAction]) -> Vec<(Gen, Value)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ToBackend(gen, m) => Some((*gen, m.clone())),
            _ => None,
        })
        .collect()
}

fn only_try(actions: &[TestAction]) -> (TryId, TryHow) {
    let tries: Vec<(TryId, TryHow)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Try(id, how) => Some((*id, how.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(tries.len(), 1, "{actions:?}");
    tries[0].clone()
}

fn connected(actions: &[TestAction]) -> Option<(Gen, &Link<&'static str>)> {
    actions.iter().find_map(|a| match a {
        Action::Connect(gen, link) => Some((*gen, link)),
        _ => None,
    })
}

/// The `data` of the relay's own log messages to the host.
fn relay_events(messages: &[Value]) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| m["params"]["logger"] == "domshell.relay")
        .map(|m| m["params"]["data"].clone())
        .collect()
}

fn states(messages: &[Value]) -> Vec<String> {
    relay_events(messages)
        .iter()
        .filter(|d| d["event"] == "session_state")
        .filter_map(|d| d["state"].as_str().map(str::to_string))
        .collect()
}

fn methods(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| m["method"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn in_flight_calls_are_answered_when_the_backend_goes_but_not_the_hosts_initialize() {
    let mut relay = Relay::new();
    let gen = relay.attached();
    // The host's initialize reaches the owner, which dies before answering it.
    let sent = to_backend(&relay.host(initialize(json!(0))));
    assert_eq!(sent, [(gen, initialize(json!(0)))]);
    let (actions, try_id) = relay.lose(gen);
    assert!(to_host(&actions).is_empty(), "{actions:?}");
    assert!(actions.iter().any(|a| matches!(a, Action::Disconnect)));
    // The next owner gets the host's own initialize, under the host's id, and nothing else
    // until it answers.
    let actions = relay.feed(Event::Tried(try_id, Found::Attached("claim")));
    let (next, _) = connected(&actions).unwrap();
    assert_eq!(to_backend(&actions), [(next, initialize(json!(0)))]);
    let answered = to_host(&relay.backend(next, init_answer(json!(0))));
    assert_eq!(
        answered,
        [init_answer_to_host(json!(0))],
        "the host is told the tool list may change"
    );

    // Calls in flight when a session's backend goes are answered at once, retryably.
    let mut relay = Relay::new();
    let gen = relay.in_session();
    relay.host(call(1, "sleep 20000"));
    relay.host(call(2, "sleep 20001"));
    relay.backend(gen, ok(json!(2)));
    let (actions, _) = relay.lose(gen);
    let answers = to_host(&actions);
    let lost: Vec<&Value> = answers.iter().filter(|m| m.get("id").is_some()).collect();
    assert_eq!(lost.len(), 1, "only the unanswered call: {answers:?}");
    assert_eq!(lost[0]["id"], 1);
    assert_eq!(lost[0]["result"]["isError"], true);
    let data = &lost[0]["result"]["structuredContent"];
    assert_eq!(data["reason"], "owner_lost");
    assert_eq!(data["retryable"], true);
    assert_eq!(data["detail"], "the owner died");
    // Told before the session state changes.
    assert_eq!(answers[0]["id"], 1);
    assert_eq!(states(&answers), ["reconnecting"]);
}

#[test]
fn a_new_backend_gets_the_initialize_replayed_and_host_messages_wait_for_its_answer() {
    let mut relay = Relay::new();
    let gen = relay.in_session();
    let (_, try_id) = relay.lose(gen);
    // Sent while electing: held.
    assert!(to_backend(&relay.host(call(7, "echo a"))).is_empty());
    let actions = relay.feed(Event::Tried(try_id, Found::Attached("claim-2")));
    let (next, link) = connected(&actions).unwrap();
    assert_eq!(*link, Link::Remote("claim-2"));
    let sent = to_backend(&actions);
    assert_eq!(sent.len(), 1, "only the replay: {sent:?}");
    let replay = &sent[0].1;
    assert_eq!(replay["method"], "initialize");
    assert_eq!(replay["id"], format!("domshell-relay-reinit-{next}"));
    assert_eq!(replay["params"], initialize(json!(0))["params"]);
    // Still held while the replay is unanswered.
    assert!(to_backend(&relay.host(call(8, "echo b"))).is_empty());
    assert_eq!(relay.core.session_state(), SessionState::Connecting);
    // The replay's answer is the relay's, not the host's; then everything goes, in order.
    let actions = relay.backend(next, init_answer(replay["id"].clone()));
    assert!(to_host(&actions).iter().all(|m| m.get("id").is_none()));
    let ids: Vec<Value> = to_backend(&actions)
        .into_iter()
        .map(|(g, m)| {
            assert_eq!(g, next);
            m.get("id").cloned().unwrap_or_else(|| m["method"].clone())
        })
        .collect();
    assert_eq!(
        ids,
        [json!("notifications/initialized"), json!(7), json!(8)]
    );
    assert_eq!(relay.core.session_state(), SessionState::Active);
    assert_eq!(
        to_host(&relay.backend(next, ok(json!(7)))),
        [ok(json!(7))],
        "the new owner's answers reach the host"
    );
}

#[test]
fn session_states_are_told_to_the_host_in_order() {
    let mut relay = Relay::new();
    let gen = relay.in_session();
    let mut told = Vec::new();
    let (actions, try_id) = relay.lose(gen);
    told.extend(to_host(&actions));
    let actions = relay.feed(Event::Tried(try_id, Found::Attached("c")));
    let (next, _) = connected(&actions).unwrap();
    told.extend(to_host(&actions));
    let replay_id = to_backend(&actions)[0].1["id"].clone();
    told.extend(to_host(&relay.backend(next, init_answer(replay_id))));
    assert_eq!(states(&told), ["reconnecting", "connecting", "active"]);

    // An owner that forgot the session: expired first, then made again.
    let actions = relay.feed(Event::SessionExpired(next));
    let told = to_host(&actions);
    assert_eq!(states(&told), ["expired", "reconnecting"]);
    assert_eq!(relay.core.session_state(), SessionState::Reconnecting);
    assert_eq!(only_try(&actions).1, TryHow::Elect);
}

#[test]
fn events_of_a_replaced_backend_are_ignored() {
    let mut relay = Relay::new();
    let gen = relay.in_session();
    relay.host(call(1, "pwd"));
    let (_, try_id) = relay.lose(gen);
    // The lost owner's late answer is not a second answer to the host.
    assert!(relay.backend(gen, ok(json!(1))).is_empty());
    assert!(relay
        .feed(Event::BackendLost(gen, "again".into()))
        .is_empty());
    let actions = relay.feed(Event::Tried(try_id, Found::Attached("c")));
    let (next, _) = connected(&actions).unwrap();
    assert!(relay.feed(Event::SessionExpired(gen)).is_empty());
    assert!(relay.backend(gen, ok(json!(1))).is_empty());
    assert_ne!(gen, next);
    // A stale try's result is dropped too.
    assert!(relay
        .feed(Event::Tried(try_id, Found::Bound("l")))
        .is_empty());
}

#[test]
fn degraded_replies_never_wait_for_a_try_for_the_port() {
    let mut relay = Relay::new();
    let actions = relay.feed(Event::Start(foreign()));
    let (id, how) = only_try(&actions);
    assert_eq!(how, TryHow::Attach(foreign()));
    let actions = relay.feed(Event::Tried(id, Found::Held(foreign())));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Explain(t) if t.contains("another program"))),
        "{actions:?}"
    );
    let answer = to_host(&relay.host(initialize(json!(0))));
    assert_eq!(answer[0]["result"]["protocolVersion"], "2025-06-18");
    let told = to_host(&relay.host(initialized()));
    assert_eq!(told[0]["params"]["data"]["reason"], "port_in_use_foreign");
    // The heal interval passes: a try starts, and while it runs, calls are answered at once.
    assert_eq!(relay.core.next_deadline(), Some(HEAL_MS));
    assert!(relay.advance(HEAL_MS - 1).is_empty());
    let (heal, how) = only_try(&relay.advance(1));
    assert_eq!(how, TryHow::Elect);
    assert_eq!(relay.core.next_deadline(), None, "no second try meanwhile");
    let answer = to_host(&relay.host(call(1, "tabs")));
    assert_eq!(answer[0]["result"]["isError"], true);
    assert_eq!(
        answer[0]["result"]["structuredContent"]["reason"],
        "port_in_use_foreign"
    );
    // Still held by the same program: degraded in place, not explained again, next try
    // one interval after the last one started.
    relay.now += 500;
    let actions = relay.feed(Event::Tried(heal, Found::Held(foreign())));
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(relay.core.next_deadline(), Some(2 * HEAL_MS));
}

#[test]
fn the_tool_list_changes_when_degraded_and_working_swap() {
    let mut relay = Relay::new();
    let id = only_try(&relay.feed(Event::Start(foreign()))).0;
    relay.feed(Event::Tried(id, Found::Held(foreign())));
    relay.host(initialize(json!(0)));
    relay.host(initialized());
    let heal = only_try(&relay.advance(HEAL_MS)).0;
    // The port freed up: this process becomes the owner.
    let actions = relay.feed(Event::Tried(heal, Found::Bound("listener")));
    let gen = match actions.as_slice() {
        [Action::StartOwner(gen, "listener")] => *gen,
        other => panic!("{other:?}"),
    };
    // Degraded answers go on while the owner's services start.
    assert_eq!(
        to_host(&relay.host(json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}))),
        [json!({"jsonrpc": "2.0", "id": 3, "result": {}})]
    );
    let actions = relay.feed(Event::OwnerStarted(gen, Ok(())));
    assert_eq!(connected(&actions), Some((gen, &Link::Local)));
    let told = to_host(&actions);
    assert!(methods(&told).contains(&"notifications/tools/list_changed".to_string()));
    let events = relay_events(&told);
    assert!(
        events
            .iter()
            .any(|d| d["event"] == "role_changed" && d["from"] == "degraded" && d["to"] == "owner"),
        "{events:?}"
    );
    let replay = to_backend(&actions);
    assert_eq!(replay[0].1["method"], "initialize");
    relay.backend(gen, init_answer(replay[0].1["id"].clone()));

    // Lost, and the port is held by something else now: degraded again, told so.
    let (_, elect) = relay.lose(gen);
    let actions = relay.feed(Event::Tried(elect, Found::Held(foreign())));
    let told = to_host(&actions);
    assert!(methods(&told).contains(&"notifications/tools/list_changed".to_string()));
    assert!(told
        .iter()
        .any(|m| m["params"]["data"]["reason"] == "port_in_use_foreign"));

    // One working backend for another: the tools are the same.
    let mut relay = Relay::new();
    let gen = relay.in_session();
    let (_, elect) = relay.lose(gen);
    let actions = relay.feed(Event::Tried(elect, Found::Attached("c")));
    assert!(!methods(&to_host(&actions)).contains(&"notifications/tools/list_changed".to_string()));
}

#[test]
fn log_messages_below_the_hosts_level_are_dropped_whoever_sends_them() {
    let mut relay = Relay::new();
    let gen = relay.in_session();
    relay.host(
        json!({"jsonrpc": "2.0", "id": 5, "method": "logging/setLevel",
                      "params": {"level": "warning"}}),
    );
    let log = |level: &str| {
        json!({"jsonrpc": "2.0", "method": "notifications/message",
               "params": {"level": level, "logger": "domshell", "data": "x"}})
    };
    assert!(relay.backend(gen, log("info")).is_empty());
    assert_eq!(to_host(&relay.backend(gen, log("error"))), [log("error")]);
    assert_eq!(
        to_host(&relay.backend(gen, log("warning"))),
        [log("warning")]
    );
    // The relay's own: a warning (reconnecting) passes, info (connecting, active) does not.
    let (actions, elect) = relay.lose(gen);
    let mut told = to_host(&actions);
    let actions = relay.feed(Event::Tried(elect, Found::Attached("c")));
    let (next, _) = connected(&actions).unwrap();
    told.extend(to_host(&actions));
    let replay_id = to_backend(&actions)[0].1["id"].clone();
    told.extend(to_host(&relay.backend(next, init_answer(replay_id))));
    assert_eq!(states(&told), ["reconnecting"]);
    // A new owner never heard the host's level: still filtered.
    assert!(relay.backend(next, log("debug")).is_empty());
}

#[test]
fn status_answers_say_what_this_process_is() {
    let mut relay = Relay::new();
    let gen = relay.in_session();
    relay.host(status(9));
    let answer = json!({"jsonrpc": "2.0", "id": 9, "result": {"content": [],
                        "structuredContent": {"role": "owner", "pid": 1}}});
    let told = to_host(&relay.backend(gen, answer));
    let this = &told[0]["result"]["structuredContent"]["this_process"];
    assert_eq!(this["role"], "proxy");
    assert_eq!(this["pid"], 4242);
    assert_eq!(this["client_id"], "stdio-proxy/4242");
    assert_eq!(this["shell_session"], "host:me");
    assert_eq!(this["owner_changes"], 0);
    assert_eq!(this["session_state"], "active");
    assert_eq!(
        told[0]["result"]["structuredContent"]["pid"], 1,
        "the owner's own stays"
    );
    // Other tools' answers are left alone.
    relay.host(call(10, "pwd"));
    assert_eq!(to_host(&relay.backend(gen, ok(json!(10)))), [ok(json!(10))]);
}

#[test]
fn while_electing_requests_are_held_then_answered_before_the_hosts_timeout() {
    let mut relay = Relay::new();
    let gen = relay.in_session();
    let (_, elect) = relay.lose(gen);
    relay.now += 1_000;
    // The election runs (a holder that says it is starting can take ~30 s): nothing is
    // sent anywhere, nothing is answered yet.
    let actions = relay.host(call(1, "echo a"));
    assert!(actions.is_empty(), "{actions:?}");
    relay.now += 4_000;
    relay.host(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    assert_eq!(relay.core.next_deadline(), Some(1_000 + HOLD_MS));
    assert!(relay.advance(HOLD_MS - 4_001).is_empty());
    let told = to_host(&relay.advance(1));
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["id"], 1);
    assert_eq!(told[0]["result"]["isError"], true);
    let data = &told[0]["result"]["structuredContent"];
    assert_eq!(data["reason"], "owner_lost");
    assert_eq!(data["retryable"], true);
    assert!(data["hint"].as_str().unwrap().contains("Nothing was run"));
    let told = to_host(&relay.advance(4_000));
    assert_eq!(told[0]["id"], 2);
    assert_eq!(told[0]["error"]["data"]["retryable"], true);
    // The election ends later; nothing answered is sent again.
    let actions = relay.feed(Event::Tried(elect, Found::Attached("c")));
    let sent = to_backend(&actions);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1["method"], "initialize");
    let (next, _) = connected(&actions).unwrap();
    let actions = relay.backend(next, init_answer(sent[0].1["id"].clone()));
    assert_eq!(
        to_backend(&actions).len(),
        1,
        "only the relay's initialized"
    );
}

#[test]
fn a_hosts_initialize_held_too_long_gets_a_session_and_later_the_real_tools() {
    let mut relay = Relay::new();
    let elect = only_try(&relay.feed(Event::Start(Holder::Gone))).0;
    relay.host(initialize(json!(0)));
    let told = to_host(&relay.advance(HOLD_MS));
    assert_eq!(told.len(), 1);
    let result = &told[0]["result"];
    assert_eq!(result["protocolVersion"], "2025-06-18");
    assert!(result["instructions"]
        .as_str()
        .unwrap()
        .contains("still connecting"));
    relay.host(initialized());
    // The election ends: the answered initialize is replayed; the host hears the tools
    // changed, and its own `initialized` is not sent twice.
    let actions = relay.feed(Event::Tried(elect, Found::Attached("c")));
    let (gen, _) = connected(&actions).unwrap();
    assert!(methods(&to_host(&actions)).contains(&"notifications/tools/list_changed".to_string()));
    let replay = to_backend(&actions);
    assert_eq!(replay.len(), 1);
    let actions = relay.backend(gen, init_answer(replay[0].1["id"].clone()));
    let sent: Vec<Value> = to_backend(&actions).into_iter().map(|(_, m)| m).collect();
    assert_eq!(sent, [initialized()]);
}

#[test]
fn the_held_queue_is_bounded() {
    let mut relay = Relay::with_bounds(InFlight::default(), Held::new(3, HOLD_MS));
    let gen = relay.in_session();
    relay.lose(gen);
    for id in 1..=3 {
        assert!(relay.host(call(id, "pwd")).is_empty());
    }
    let told = to_host(&relay.host(call(4, "pwd")));
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["id"], 4);
    assert_eq!(
        told[0]["result"]["structuredContent"]["reason"],
        "relay_overloaded"
    );
    // A notification that does not fit is dropped, not answered.
    assert!(relay
        .host(json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}))
        .is_empty());
    // The production bound.
    assert_eq!(MAX_HELD, 64);
}

#[test]
fn a_cancelled_request_is_dropped_while_held_and_forgotten_once_answered() {
    let mut relay = Relay::new();
    let gen = relay.in_session();
    // In flight: the cancellation goes on; the owner's late answer still reaches the host,
    // and the entry is gone with it.
    relay.host(call(1, "sleep 5000"));
    let sent = to_backend(&relay.host(cancel(1)));
    assert_eq!(sent, [(gen, cancel(1))]);
    assert_eq!(to_host(&relay.backend(gen, ok(json!(1)))), [ok(json!(1))]);
    // Cancelled and never answered: no owner_lost for it when the owner goes.
    relay.host(call(2, "sleep 5000"));
    relay.host(cancel(2));
    let (actions, elect) = relay.lose(gen);
    assert!(to_host(&actions).iter().all(|m| m.get("id").is_none()));
    // Held: the request is dropped, and neither it nor its cancellation is ever sent.
    relay.host(call(3, "sleep 5000"));
    assert!(relay.host(cancel(3)).is_empty());
    let actions = relay.feed(Event::Tried(elect, Found::Attached("c")));
    let (next, _) = connected(&actions).unwrap();
    let replay_id = to_backend(&actions)[0].1["id"].clone();
    let sent = to_backend(&relay.backend(next, init_answer(replay_id)));
    assert_eq!(sent, [(next, initialized())]);
    assert_eq!(relay.core.next_deadline(), None, "nothing left to time out");
}

#[test]
fn a_cancelled_request_never_answered_is_forgotten_after_a_while() {
    let mut relay = Relay::with_bounds(InFlight::new(2, CANCELLED_TTL_MS), Held::default());
    let gen = relay.in_session();
    relay.host(call(1, "sleep 5000"));
    relay.host(cancel(1));
    assert_eq!(relay.core.next_deadline(), Some(CANCELLED_TTL_MS));
    assert!(relay.advance(CANCELLED_TTL_MS).is_empty());
    // The table has room for two again: no eviction on the next two calls.
    relay.host(call(2, "pwd"));
    let actions = relay.host(call(3, "pwd"));
    assert!(to_host(&actions).is_empty(), "{actions:?}");
    assert_eq!(to_backend(&actions), [(gen, call(3, "pwd"))]);
}

#[test]
fn past_the_in_flight_cap_the_oldest_request_is_answered() {
    let mut relay = Relay::with_bounds(InFlight::new(3, CANCELLED_TTL_MS), Held::default());
    let gen = relay.in_session();
    for id in 1..=3 {
        relay.host(call(id, "sleep 9000"));
    }
    let actions = relay.host(call(4, "pwd"));
    let told = to_host(&actions);
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["id"], 1);
    assert_eq!(
        told[0]["result"]["structuredContent"]["reason"],
        "relay_overloaded"
    );
    assert_eq!(to_backend(&actions), [(gen, call(4, "pwd"))]);
    assert_eq!(crate::relay::in_flight::MAX_IN_FLIGHT, 1024);
}

#[test]
fn a_full_backend_queue_answers_the_request_at_once() {
    let mut relay = Relay::new();
    let gen = relay.in_session();
    relay.host(call(1, "pwd"));
    let told = to_host(&relay.feed(Event::Undelivered(gen, call(1, "pwd"))));
    assert_eq!(told[0]["id"], 1);
    assert_eq!(
        told[0]["result"]["structuredContent"]["reason"],
        "relay_overloaded"
    );
    // Not again when the backend goes.
    let (actions, _) = relay.lose(gen);
    assert!(to_host(&actions).iter().all(|m| m.get("id").is_none()));
}

#[test]
fn a_remote_owners_calls_are_audited_here_its_own_are_not() {
    let mut relay = Relay::new();
    let gen = relay.in_session();
    let actions = relay.host(call(1, "ls"));
    assert!(matches!(
        actions.as_slice(),
        [Action::Audit(Audit::Call(m)), Action::ToBackend(g, _)] if *m == call(1, "ls") && *g == gen
    ));
    let actions = relay.backend(gen, ok(json!(1)));
    assert!(matches!(
        actions.as_slice(),
        [Action::Audit(Audit::Answer(m)), Action::ToHost(_)] if *m == ok(json!(1))
    ));
    // An answer the relay makes up is recorded too.
    relay.host(call(2, "ls"));
    let (actions, elect) = relay.lose(gen);
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Audit(Audit::Answer(m)) if m["id"] == 2)));
    // Its own owner audits its own calls.
    relay.feed(Event::Tried(elect, Found::Bound("l")));
    let actions = relay.feed(Event::OwnerStarted(gen + 1, Ok(())));
    let replay_id = to_backend(&actions)[0].1["id"].clone();
    relay.backend(gen + 1, init_answer(replay_id));
    let actions = relay.host(call(3, "ls"));
    assert!(!actions.iter().any(|a| matches!(a, Action::Audit(_))));
}

#[test]
fn a_replayed_initialize_left_unanswered_counts_as_a_lost_backend() {
    let mut relay = Relay::new();
    let gen = relay.in_session();
    let (_, elect) = relay.lose(gen);
    let actions = relay.feed(Event::Tried(elect, Found::Attached("c")));
    let (next, _) = connected(&actions).unwrap();
    relay.now += 1;
    relay.host(call(1, "pwd"));
    assert_eq!(relay.core.next_deadline(), Some(relay.now - 1 + HOLD_MS));
    let actions = relay.advance(HOLD_MS - 1);
    assert!(actions.iter().any(|a| matches!(a, Action::Disconnect)));
    assert_eq!(only_try(&actions).1, TryHow::Elect);
    // The held call was never sent: it waits on, until its own deadline.
    assert!(to_host(&actions).iter().all(|m| m.get("id").is_none()));
    assert!(relay.backend(next, ok(json!(1))).is_empty());
    let told = to_host(&relay.advance(1));
    assert_eq!(told[0]["id"], 1);
}

#[test]
fn an_owner_that_does_not_start_leaves_the_relay_degraded_and_healing() {
    let mut relay = Relay::new();
    let elect = only_try(&relay.feed(Event::Start(Holder::Gone))).0;
    let actions = relay.feed(Event::Tried(elect, Found::Bound("l")));
    assert!(matches!(actions.as_slice(), [Action::StartOwner(1, "l")]));
    relay.host(initialize(json!(0)));
    let actions = relay.feed(Event::OwnerStarted(
        1,
        Err("bind --mcp-port: in use".into()),
    ));
    assert!(actions.iter().any(|a| matches!(a, Action::Explain(_))));
    let told = to_host(&actions);
    assert_eq!(
        told[0]["id"], 0,
        "the held initialize is answered by the degraded responder"
    );
    assert!(told[0]["result"]["instructions"]
        .as_str()
        .unwrap()
        .contains("does not answer"));
    assert_eq!(relay.core.next_deadline(), Some(HEAL_MS));
}

#[test]
fn the_host_closing_stops_everything() {
    let mut relay = Relay::new();
    let gen = relay.in_session();
    let actions = relay.feed(Event::HostClosed);
    assert!(matches!(actions.as_slice(), [Action::Stop]));
    assert!(relay.backend(gen, ok(json!(1))).is_empty());
    assert!(relay.host(call(1, "pwd")).is_empty());
}
