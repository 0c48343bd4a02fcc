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

pub(super) const INSTRUCTIONS: &str =
    "domshell lets you drive the user's real Chrome browser as if it were a filesystem.\n\
Windows and tabs are directories (~/tabs/<id>); inside a tab, the accessibility tree is a tree of \
directories (landmarks, lists, forms) and files (links, buttons, inputs).\n\n\
Use the one tool `domshell_execute` with shell commands, one per line; they run in order in your \
own session, which keeps its current directory between calls. Start with `tabs`, then \
`cd ~/tabs/<id>`, `ls`, `find --type link`, `text main`, `click <name>`. Run `help` for the full \
command list and `<command> --help` for details. Pipes `| grep <pattern>` and `| head -n N` filter \
output.\n\n\
Commands that navigate, click/type or read cookies need the server to be started with \
--allow-write / --allow-sensitive; a refused command says which flag enables it.\n\n\
Every reply ends with `[lane: <id>]`. Failures come back as errors with a reason and a hint; \
`retryable: true` means the same command may simply be sent again. `domshell_status` reports \
whether the browser is connected, without touching it.";

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
    let schema = json!({
        "type": "object",
        "properties": {
            "command": {
                "type": "string",
                "description": "One shell command, or several separated by newlines (run in order; a failing line does not stop the next). Examples: `tabs`, `cd ~/tabs/123`, `ls`, `find --type link`, `text main`, `click submit_btn`. Run `help` for all commands."
            },
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
        },
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
            budget: self.shared.config.call_budget,
        };
        let total = shared_protocol::grammar::split_lines(&call.input).len();
        let progress = Arc::new(ProgressReporter::start(
            context,
            total,
            self.shared.config.progress_interval,
        ));
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
    fn instructions_stay_short() {
        assert!(INSTRUCTIONS.len() < 4_000, "{} chars", INSTRUCTIONS.len());
        assert!(INSTRUCTIONS.contains("help"));
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
