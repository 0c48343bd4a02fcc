//! JavaScript in the page: `js <code>` / `eval <code>`, `functions [pattern] [--json]`
//! and `call <fn> [args…]`, in the page's own (main) world, in the frame of the current
//! directory.
//!
//! At the page's top frame a line runs as the DevTools console runs it (`Runtime.evaluate`
//! in REPL mode: statements, `let`, top-level `await`, the last value is the answer). In a
//! child frame it runs as an expression through the frame's element (`callFunctionOn` in
//! the frame's main world): statements go in an arrow function, `(() => { …; return x })()`.
//! A promise is awaited. Every run has a timeout that really stops the script
//! (`Runtime.terminateExecution`), so an endless loop leaves the tab usable. Values come
//! back as text: strings as they are, everything else as JSON (cycles and functions
//! named), cut in the page to what a reply may hold.
//!
//! It owns those commands only. It must not decide tiers (the command table does) nor
//! read the page's accessibility tree beyond finding the current directory's frame.

use serde_json::{json, Value};
use shared_protocol::grammar::{Args, Command};

use super::browser::Browser;
use super::cdp::{self, Decode, Evaluated, ExceptionDetails, RemoteObject};
use super::deadline::DeadlineBrowser;
use super::dom::NodeHandle;
use super::session::{Cwd, Session};
use super::{navigation, reading, Context};

/// How long a script may run before it is stopped.
pub const SCRIPT_TIMEOUT_MS: u64 = 10_000;
/// Kept back from the command's deadline to stop a script and answer.
const STOP_MARGIN_MS: u64 = 500;
/// The shortest time a script is given, however close the deadline.
const MIN_SCRIPT_MS: u64 = 100;
const SERIALIZE: &str = page_js!("serialize.js");
const FUNCTIONS: &str = page_js!("functions.js");

/// Where a script runs: the tab's top frame, or a child frame through one of its elements.
struct Place {
    tab: i64,
    frame_node: Option<NodeHandle>,
}

pub async fn run<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let name = cmd.name.as_str();
    match name {
        "js" | "eval" => {
            let code = cmd.rest();
            if code.trim().is_empty() {
                return Err(format!("{name}: usage: {name} <code>"));
            }
            let place = place(session, browser, ctx, name).await?;
            let value = evaluate(browser, ctx, &place, name, code.trim()).await?;
            Ok(value)
        }
        "call" => {
            let Some((function, rest)) = args.positional.split_first() else {
                return Err("call: usage: call <fn> [args…] (`functions` lists them)".into());
            };
            let arguments: Vec<Value> = rest
                .iter()
                .map(|a| serde_json::from_str(a).unwrap_or_else(|_| json!(a)))
                .collect();
            let expression = format!(
                "(async () => {{ const f = window[{name}]; if (typeof f !== 'function') throw new TypeError({name} + ' is not a function of the page (`functions` lists them)'); return await f(...{args}); }})()",
                name = json!(function),
                args = Value::from(arguments),
            );
            let place = place(session, browser, ctx, "call").await?;
            evaluate(browser, ctx, &place, "call", &expression).await
        }
        "functions" => {
            let place = place(session, browser, ctx, "functions").await?;
            let expression = format!("({FUNCTIONS})()");
            let text = evaluate(browser, ctx, &place, "functions", &expression).await?;
            functions_listing(&text, args.positional.first(), args.has("--json"))
        }
        other => Err(format!("{other}: not a JavaScript command")),
    }
}

/// The frame of the current directory. At a tab's root no tree is read.
async fn place<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    command: &str,
) -> Result<Place, String> {
    let at_root = matches!(&session.cwd, Cwd::Tab { dom, .. } if dom.is_empty());
    if at_root {
        let tab = navigation::require_page(session, browser, ctx, command).await?;
        return Ok(Place {
            tab: tab.id.unwrap_or_default(),
            frame_node: None,
        });
    }
    let mut page = reading::open(session, browser, ctx, command).await?;
    page.prepare(session, browser, ctx, None, false)
        .await
        .map_err(|e| format!("{command}: {e}"))?;
    let (id, _) = page.entry_at(session, command, None)?;
    let mut entry = page.entry(id)?.clone();
    // An iframe's directory is its element, in the parent's document; what is listed in it
    // is the frame's own document, where the code is meant to run.
    if let Some(inner) = page
        .vfs()
        .children(id)
        .iter()
        .filter_map(|child| page.vfs().entry(*child))
        .find(|child| child.frame_id != entry.frame_id && child.backend_node_id.is_some())
    {
        entry = inner.clone();
    }
    if entry.frame_id == page.main_frame || entry.frame_id.is_empty() {
        return Ok(Place {
            tab: page.id,
            frame_node: None,
        });
    }
    let node = page
        .dom(browser)
        .handle(&entry)
        .map_err(|e| format!("{command}: {e}"))?;
    Ok(Place {
        tab: page.id,
        frame_node: Some(node),
    })
}

/// Runs `code` where `place` says and returns its value as text.
async fn evaluate<B: Browser>(
    browser: &B,
    ctx: &Context,
    place: &Place,
    command: &str,
    code: &str,
) -> Result<String, String> {
    // Within what the command has left, keeping time to stop the script and answer.
    let left = browser.remaining_ms().unwrap_or(ctx.wait_cap_ms);
    let timeout_ms = SCRIPT_TIMEOUT_MS
        .min(ctx.wait_cap_ms)
        .min(left.saturating_sub(STOP_MARGIN_MS))
        .max(MIN_SCRIPT_MS);
    let group = ctx.objects.group();
    let session = place.frame_node.as_ref().and_then(|n| n.session.clone());
    let session = session.as_deref();
    ctx.objects.note(place.tab, session);
    let script = Script {
        browser,
        timed: DeadlineBrowser::new(browser, timeout_ms),
        tab: place.tab,
        session,
        command,
        timeout_ms,
    };
    let (method, params) = match &place.frame_node {
        None => (
            "Runtime.evaluate",
            json!({
                "expression": code,
                "replMode": true,
                "awaitPromise": true,
                "userGesture": true,
                "timeout": timeout_ms,
                "objectGroup": group,
            }),
        ),
        Some(node) => {
            // `DOM.resolveNode` without a context gives the node in its frame's main world.
            let resolved = browser
                .cdp_at(
                    place.tab,
                    session,
                    "DOM.resolveNode",
                    json!({"backendNodeId": node.backend_node_id, "objectGroup": group}),
                )
                .await
                .map_err(|e| {
                    format!("{command}: the current directory's element is gone ({e}); run `ls`")
                })?;
            let object = resolved["object"]["objectId"].as_str().unwrap_or_default();
            (
                "Runtime.callFunctionOn",
                json!({
                    "functionDeclaration": format!("async function () {{ return (\n{code}\n); }}"),
                    "objectId": object,
                    "awaitPromise": true,
                    "userGesture": true,
                }),
            )
        }
    };
    let (mut reply, mut evaluated) = script.call(method, params).await?;
    // The console's way of running a line answers a promise the line made as the promise
    // itself; the agent wants what it settles to.
    if evaluated.exception_details.is_none()
        && evaluated.result.subtype.as_deref() == Some("promise")
    {
        if let Some(promise) = evaluated.result.object_id.clone() {
            (reply, evaluated) = script
                .call("Runtime.awaitPromise", json!({"promiseObjectId": promise}))
                .await?;
        }
    }
    if let Some(details) = &evaluated.exception_details {
        return Err(format!("{command}: {}", thrown(details, &reply)));
    }
    text_of(browser, place.tab, session, command, &evaluated.result).await
}

/// One protocol call of a running script, stopped when it runs past its time.
struct Script<'a, B: Browser> {
    browser: &'a B,
    timed: DeadlineBrowser<'a, B>,
    tab: i64,
    session: Option<&'a str>,
    command: &'a str,
    timeout_ms: u64,
}

impl<B: Browser> Script<'_, B> {
    async fn call(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<(Value, Evaluated), String> {
        let command = self.command;
        let reply = match self
            .timed
            .cdp_at(self.tab, self.session, method, params)
            .await
        {
            Ok(reply) => reply,
            Err(_) if self.timed.remaining_ms() == Some(0) => {
                // Still running in the page: stop it, or the tab stays frozen.
                let _ = self
                    .browser
                    .cdp_at(
                        self.tab,
                        self.session,
                        "Runtime.terminateExecution",
                        json!({}),
                    )
                    .await;
                return Err(format!(
                    "{command}: stopped after {} s: the script did not finish in time (an endless loop, or a promise that never settles); the page is usable again",
                    (self.timeout_ms + 500) / 1000
                ));
            }
            Err(e) => return Err(format!("{command}: {e}")),
        };
        let evaluated =
            Evaluated::from_reply(method, &reply).map_err(|e| format!("{command}: {e}"))?;
        Ok((reply, evaluated))
    }
}

/// A thrown error with where it was thrown.
fn thrown(details: &ExceptionDetails, reply: &Value) -> String {
    let message = details.message();
    if message.contains("Execution was terminated") {
        return "stopped: the script ran past its time".into();
    }
    match reply["exceptionDetails"]["lineNumber"].as_u64() {
        Some(line) => format!("{message} (line {})", line + 1),
        None => message,
    }
}

/// The text of a script's value.
async fn text_of<B: Browser>(
    browser: &B,
    tab: i64,
    session: Option<&str>,
    command: &str,
    result: &RemoteObject,
) -> Result<String, String> {
    let Some(object) = &result.object_id else {
        return Ok(match &result.value {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            // `undefined`, NaN, Infinity, -0 and big integers come only as descriptions.
            None => result
                .description
                .clone()
                .unwrap_or_else(|| "undefined".into()),
        });
    };
    let limit = shared_protocol::MAX_OUTPUT_CHARS + 1;
    let serialized = cdp::call(
        browser,
        tab,
        session,
        &cdp::CallFunctionOn {
            function_declaration: SERIALIZE.to_string(),
            object_id: object.clone(),
            arguments: vec![cdp::CallArgument {
                value: Some(json!(limit)),
                object_id: None,
            }],
            return_by_value: true,
            await_promise: false,
            silent: true,
        },
    )
    .await
    .map_err(|e| format!("{command}: {e}"))?;
    match serialized.value() {
        Ok(Value::String(text)) => Ok(text),
        Ok(other) => Ok(other.to_string()),
        Err(_) => Ok(result
            .description
            .clone()
            .unwrap_or_else(|| "[object]".into())),
    }
}

/// `functions`' listing from the page's answer (JSON text of `[{name, arity, params}]`).
fn functions_listing(text: &str, pattern: Option<&String>, json: bool) -> Result<String, String> {
    let all: Value = serde_json::from_str(text)
        .map_err(|e| format!("functions: the page answered in an unexpected shape ({e})"))?;
    let needle = pattern.map(|p| p.to_lowercase());
    let kept: Vec<Value> = all
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|f| {
            needle.as_ref().is_none_or(|n| {
                f["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase()
                    .contains(n)
            })
        })
        .cloned()
        .collect();
    if json {
        return Ok(Value::from(kept).to_string());
    }
    if kept.is_empty() {
        return Ok("No functions of the page's own (built-ins are left out).".into());
    }
    let mut lines = vec![format!("Functions ({}):", kept.len())];
    for f in &kept {
        lines.push(format!(
            "  {}({})",
            f["name"].as_str().unwrap_or_default(),
            f["params"].as_str().unwrap_or_default()
        ));
    }
    Ok(lines.join("\r\n"))
}

#[cfg(test)]
mod tests {
    use super::functions_listing;

    #[test]
    fn functions_are_listed_filtered_and_as_json() {
        let page = r#"[{"name":"addItem","arity":2,"params":"name, count"},{"name":"reset","arity":0,"params":""}]"#;
        assert_eq!(
            functions_listing(page, None, false).unwrap(),
            "Functions (2):\r\n  addItem(name, count)\r\n  reset()"
        );
        let only = functions_listing(page, Some(&"ADD".to_string()), true).unwrap();
        assert_eq!(
            only,
            r#"[{"arity":2,"name":"addItem","params":"name, count"}]"#
        );
        assert!(functions_listing("[]", None, false)
            .unwrap()
            .starts_with("No functions"));
        assert!(functions_listing("{", None, false).is_err());
    }
}
