//! The two tools and what they promise: their names, descriptions, input schemas and
//! annotations, the server instructions, and `domshell_execute` itself — arguments in, a
//! pipeline call, a composed result out.
//!
//! It must not check policy or talk to the bridge directly: the pipeline does both.

use std::sync::Arc;

use rmcp::model::{CallToolResult, Tool, ToolAnnotations};
use rmcp::service::RequestContext;
use rmcp::RoleServer;
use serde::Deserialize;
use serde_json::{json, Value};

use super::progress::ProgressReporter;
use super::results::{compose, error_result};
use super::status::status_schema;
use super::DomshellMcp;
use crate::pipeline::Call;
use shared_protocol::commands::CommandDef;
use shared_protocol::tools::{self as granular, ToolEffect};

pub(super) const INSTRUCTIONS: &str =
    "domshell drives the user's real Chrome as a filesystem: tabs are directories (~/tabs/<id>), \
and inside a tab the accessibility tree is directories (landmarks, lists, forms) and files \
(links, buttons, inputs).\n\n\
Call `domshell_execute` with shell commands, several lines per call (run in order, in your own \
session, which keeps its directory). The cheap path: `tabs` or `open <url>`, then read with \
`find <text>` or `find --type link`, `text main`, `extract_links`, `extract_table <name>` rather \
than walking with `ls`; act with `click <name>`, `type`, `submit <field> <value>`. An action's \
reply already says what changed (a new page, entries added, removed or changed), so do not list \
again; `diff` shows what the page changed since your last look. Long output ends with the exact \
command for the next part (`--offset K`); `| grep <pattern>` and `| head -n N` narrow it. \
`help` lists every command, `<command> --help` explains one.\n\n\
Navigating, clicking or typing and reading secrets need the server's --allow-write / \
--allow-sensitive; a refused command names the flag. Failures are errors with a reason and a \
hint (`retryable: true`: send it again). Replies end with `[lane: <id>]`; `domshell_status` \
says whether the browser is connected.";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExecuteArgs {
    command: String,
    #[serde(default)]
    group_id: Option<String>,
    #[serde(default)]
    initial_url: Option<String>,
    #[serde(default)]
    group_name: Option<String>,
    #[serde(default)]
    window_id: Option<i64>,
}

/// A JSON Schema object for a tool's input (the literals passed here are always objects).
fn object_schema(schema: Value) -> Arc<rmcp::model::JsonObject> {
    match schema {
        Value::Object(map) => Arc::new(map),
        _ => Arc::default(),
    }
}

/// `domshell_execute` as a session sees it. `read_only`: its rails allow neither the write
/// (or navigate) nor the sensitive tier, so no call can change anything and the annotations
/// say so; otherwise a call may click, type or navigate.
pub(super) fn execute_tool(read_only: bool) -> Tool {
    let mut properties = serde_json::Map::new();
    properties.insert(
        "command".into(),
        json!({
            "type": "string",
            "description": "One shell command, or several separated by newlines (run in order; a failing line does not stop the next). Examples: `tabs`, `cd ~/tabs/123`, `ls`, `find --type link`, `text main`, `click submit_btn`. Run `help` for all commands."
        }),
    );
    properties.extend(lane_properties());
    let schema = json!({
        "type": "object",
        "properties": properties,
        "required": ["command"],
        "additionalProperties": false
    });
    Tool::new(
        "domshell_execute",
        "Run domshell commands in the user's browser, which behaves like a filesystem built from each tab's accessibility tree. Replies end with `[lane: <id>]`; failures are errors with a reason and a hint.",
        object_schema(schema),
    )
    .with_title("Run browser shell commands")
    .annotate(
        ToolAnnotations::with_title("Run browser shell commands")
            .read_only(read_only)
            .destructive(!read_only)
            .idempotent(false)
            .open_world(true),
    )
}

/// The lane parameters every tool that runs commands takes.
fn lane_properties() -> serde_json::Map<String, Value> {
    let lanes = json!({
        "group_id": {
            "type": "string",
            "description": "Lane (tab group) to run in: \"new\" creates one (a background tab in its own tab group; from then on your commands see only its tabs, and it closes when your session ends), a lane id joins that lane, \"shared\" works in the user's own tabs. Omitted: wherever your session last was (the user's tabs at first). Pass your lane id on every call; agents sharing one session keep apart by their lane ids."
        },
        "initial_url": {
            "type": "string",
            "description": "With group_id \"new\": the URL the new lane opens (needs navigation permission)."
        },
        "group_name": {
            "type": "string",
            "description": "With group_id \"new\": a name for the new lane (its tab group shows it)."
        },
        "window_id": {
            "type": "integer",
            "description": "With group_id \"new\": the browser window to open the lane in (a normal window; `windows` lists them). Default: the focused normal window."
        }
    });
    match lanes {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// The names of the lane parameters, which a granular call passes on as they are.
const LANE_PARAMETERS: [&str; 4] = ["group_id", "initial_url", "group_name", "window_id"];

/// The granular tool of `def` as a session with `effect` sees it: its command's parameters
/// and the lane parameters, annotated for what the session's rails let it do.
pub(super) fn granular_tool(def: &CommandDef, effect: ToolEffect) -> Tool {
    let mut schema = granular::input_schema(def);
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        properties.extend(lane_properties());
    }
    let title = format!("domshell {}", def.name);
    Tool::new(
        granular::tool_name(def),
        granular::description(def),
        Arc::new(schema),
    )
    .with_title(title.clone())
    .annotate(
        ToolAnnotations::with_title(title)
            .read_only(effect.read_only)
            .destructive(effect.destructive)
            .idempotent(effect.read_only)
            .open_world(true),
    )
}

/// A granular call's arguments as a `domshell_execute` call: the command line its own
/// parameters make, with the lane parameters beside it.
pub(super) fn granular_arguments(
    def: &CommandDef,
    arguments: Value,
) -> Result<ExecuteArgs, String> {
    let Value::Object(mut own) = arguments else {
        return Err(format!(
            "{}: arguments must be an object",
            granular::tool_name(def)
        ));
    };
    let mut execute = serde_json::Map::new();
    for name in LANE_PARAMETERS {
        if let Some(value) = own.remove(name) {
            execute.insert(name.into(), value);
        }
    }
    let command = granular::command_line(def, &own).map_err(|e| e.to_string())?;
    execute.insert("command".into(), Value::String(command));
    serde_json::from_value(Value::Object(execute))
        .map_err(|e| format!("{}: lane arguments: {e}", granular::tool_name(def)))
}

pub(super) fn status_tool() -> Tool {
    Tool::new(
        "domshell_status",
        "Report whether the browser extension is connected and healthy (link state, last heard, heartbeat round trip, reconnects, pending commands, sessions, versions) and what to do when it is not. Never touches the browser.",
        object_schema(json!({"type": "object", "properties": {}, "additionalProperties": false})),
    )
    .with_raw_output_schema(object_schema(status_schema()))
    .with_title("domshell status")
    .annotate(
        ToolAnnotations::with_title("domshell status")
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
    )
}

impl DomshellMcp {
    pub(super) async fn run_execute(
        &self,
        args: ExecuteArgs,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let session = self.call_session(context);
        let call = Call {
            rails: self.rails.lock().ok().and_then(|r| r.clone()),
            session: session.key.clone(),
            input: args.command,
            group_id: args.group_id,
            initial_url: args.initial_url,
            group_name: args.group_name,
            window_id: args.window_id,
            agent: self.shared.sessions.client(&session.key),
            progress: None,
            budget: self.shared.config.call_budget,
        };
        let total = shared_protocol::grammar::split_lines(&call.input).len();
        let progress = Arc::new(ProgressReporter::start(
            context,
            total,
            self.shared.config.progress_interval,
        ));
        let call = Call {
            progress: progress.sink(),
            ..call
        };
        let reporter = progress.clone();
        let on_line = move |index: usize, line: &str| reporter.line(index, line);
        let outcome = self.shared.pipeline.run(call, &context.ct, &on_line).await;
        progress.finish();
        if session.ephemeral {
            self.shared
                .pipeline
                .bridge
                .close_session(&session.key, std::time::Duration::ZERO)
                .await;
        }
        match outcome {
            Ok(outcome) => compose(outcome),
            Err(failure) => error_result(
                "Error: empty command. Send one command per line, e.g. `tabs`; run `help` for the list.",
                failure,
                None,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::InitializeRequestParams;
    use rmcp::ServerHandler;

    use super::*;
    use crate::election::Holder;
    use crate::mcp::status::tests::test_shared;
    use crate::policy::{Policy, PolicyConfig};
    use crate::relay::Conflict;

    #[test]
    fn instructions_and_the_tool_description_stay_under_2000_characters() {
        let tool = execute_tool(false);
        let described = tool
            .description
            .as_deref()
            .unwrap_or_default()
            .chars()
            .count();
        let together = INSTRUCTIONS.chars().count() + described;
        assert!(together < 2_000, "{together} characters");
        // They teach the cheap path: reading by search, actions that tell their effect.
        for taught in ["find", "text main", "diff", "help", "--offset"] {
            assert!(INSTRUCTIONS.contains(taught), "{taught}");
        }
    }

    #[test]
    fn execute_is_read_only_exactly_when_the_rails_allow_reading_only() {
        for (allow_write, allow_sensitive, read_only) in [
            (false, false, true),
            (true, false, false),
            (false, true, false),
            (true, true, false),
        ] {
            let policy = Policy::new(PolicyConfig {
                allow_write,
                allow_sensitive,
                domains: vec!["example.com".into()],
                ..Default::default()
            });
            assert_eq!(policy.reads_only(), read_only);
            let tool = execute_tool(policy.reads_only());
            let annotations = tool.annotations.clone().unwrap();
            assert_eq!(annotations.read_only_hint, Some(read_only), "{tool:?}");
            assert_eq!(annotations.destructive_hint, Some(!read_only), "{tool:?}");
            assert_eq!(annotations.open_world_hint, Some(true));
            assert_eq!(annotations.idempotent_hint, Some(false));
        }
    }

    fn offered(config: PolicyConfig) -> Vec<Tool> {
        DomshellMcp::new(test_shared(config)).offered_tools()
    }

    #[test]
    fn granular_tools_are_offered_by_the_rails_and_annotated_for_them() {
        let names = |tools: &[Tool]| tools.iter().map(|t| t.name.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(&offered(PolicyConfig::default())),
            ["domshell_execute", "domshell_status"]
        );
        let read_only = offered(PolicyConfig {
            granular: true,
            ..Default::default()
        });
        let listed = names(&read_only);
        assert!(listed.contains(&"domshell_find".to_string()), "{listed:?}");
        assert!(
            !listed.contains(&"domshell_click".to_string()),
            "{listed:?}"
        );
        for tool in &read_only[2..] {
            let annotations = tool.annotations.clone().unwrap();
            assert_eq!(annotations.read_only_hint, Some(true), "{}", tool.name);
            assert!(
                tool.input_schema.contains_key("properties"),
                "{}",
                tool.name
            );
        }
        let all = offered(PolicyConfig {
            granular: true,
            allow_write: true,
            allow_sensitive: true,
            ..Default::default()
        });
        assert_eq!(
            all.len(),
            2 + shared_protocol::tools::tool_commands().count()
        );
        let click = all.iter().find(|t| t.name == "domshell_click").unwrap();
        assert_eq!(
            click.annotations.clone().unwrap().destructive_hint,
            Some(true)
        );
    }

    #[test]
    fn a_granular_call_becomes_an_execute_call_with_its_lane_parameters() {
        let find = shared_protocol::commands::find("find").unwrap();
        let args = granular_arguments(
            find,
            json!({"pattern": "sign in", "limit": 3, "group_id": "new", "initial_url": "https://example.com/"}),
        )
        .unwrap();
        assert_eq!(args.command, "find -n 3 \"sign in\"");
        assert_eq!(args.group_id.as_deref(), Some("new"));
        assert_eq!(args.initial_url.as_deref(), Some("https://example.com/"));
        let bad = granular_arguments(find, json!({"window_id": "x"})).unwrap_err();
        assert!(bad.contains("lane arguments"), "{bad}");
        let bad = granular_arguments(find, json!([1])).unwrap_err();
        assert!(bad.contains("must be an object"), "{bad}");
    }

    #[test]
    fn status_declares_its_document_as_output_schema() {
        let tool = status_tool();
        let schema = Value::Object((*tool.output_schema.unwrap()).clone());
        assert_eq!(schema, status_schema());
        assert_eq!(schema["type"], "object");
    }

    fn degraded() -> Conflict {
        Conflict::from_holder(&Holder::Unresponsive, 9876)
    }

    fn initialize(protocol: &str) -> Value {
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": protocol, "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}})
    }

    #[tokio::test]
    async fn the_degraded_responder_declares_the_owners_capabilities_as_a_relay_shows_them() {
        let owner = DomshellMcp::new(test_shared(PolicyConfig::default()));
        let mut owners = serde_json::to_value(owner.get_info().capabilities).unwrap();
        // The owner's tool list never changes (an HTTP client would wait on a subscription
        // stream for nothing); a relay adds `listChanged` for its host, whoever answered.
        assert!(owners["tools"].get("listChanged").is_none(), "{owners}");
        owners["tools"]["listChanged"] = json!(true);
        let reply = degraded().answer(&initialize("2025-11-25"));
        assert_eq!(reply[0]["result"]["capabilities"], owners);
    }

    #[tokio::test]
    async fn the_degraded_responder_negotiates_the_protocol_like_the_owner() {
        let owner = DomshellMcp::new(test_shared(PolicyConfig::default()));
        let asked = rmcp::model::ProtocolVersion::KNOWN_VERSIONS
            .iter()
            .map(|v| v.as_str().to_string())
            .chain(["2099-01-01", "2023-01-01", "draft"].map(String::from));
        for protocol in asked {
            let message = initialize(&protocol);
            let params: InitializeRequestParams =
                serde_json::from_value(message["params"].clone()).unwrap();
            let owners = owner
                .negotiate_initialize(&params)
                .unwrap()
                .protocol_version;
            let reply = degraded().answer(&message);
            assert_eq!(
                reply[0]["result"]["protocolVersion"],
                owners.as_str(),
                "{protocol}"
            );
        }
    }
}
