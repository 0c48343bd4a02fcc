//! Typed DevTools Protocol calls: each method the DOM layer uses, its parameters and the
//! part of its reply that is read, so a reply of another shape is an error naming the
//! method instead of a silent `null` further on.
//!
//! It owns the shapes and [`call`], one call in the tab or in a child session through the
//! [`Browser`] port. It must not decide which session a node lives in (that is
//! [`super::dom`]) nor format command output.

use std::future::Future;
use std::pin::Pin;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::browser::Browser;

/// A protocol method: its name, its parameters (the implementing type) and its reply.
pub trait Method: Serialize {
    const NAME: &'static str;
    type Reply: DeserializeOwned;
}

/// One call of `M` in the tab (`session` `None`) or in a child session; an error says which
/// method failed or answered in an unexpected shape.
pub async fn call<B: Browser, M: Method>(
    browser: &B,
    tab: i64,
    session: Option<&str>,
    params: &M,
) -> Result<M::Reply, String> {
    let params = serde_json::to_value(params).map_err(|e| format!("{}: {e}", M::NAME))?;
    let reply = send(browser, tab, session, M::NAME, params).await?;
    decode::<M>(reply)
}

/// The untyped round trip of [`call`], boxed: the calls of every method share it instead of
/// each carrying its own copy of the port's state machine.
fn send<'a, B: Browser>(
    browser: &'a B,
    tab: i64,
    session: Option<&'a str>,
    method: &'static str,
    params: Value,
) -> Pin<Box<dyn Future<Output = Result<Value, String>> + 'a>> {
    Box::pin(async move {
        browser
            .cdp_at(tab, session, method, params)
            .await
            .map_err(|e| format!("{method}: {e}"))
    })
}

/// `reply` as `M`'s reply type.
pub fn decode<M: Method>(reply: Value) -> Result<M::Reply, String> {
    serde_json::from_value(reply)
        .map_err(|e| format!("{} answered in an unexpected shape: {e}", M::NAME))
}

/// A JavaScript value or a handle to one (`Runtime.RemoteObject`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteObject {
    #[serde(default)]
    pub object_id: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Why a script threw (`Runtime.ExceptionDetails`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionDetails {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub exception: Option<RemoteObject>,
}

impl ExceptionDetails {
    /// The thrown error's description, else the protocol's summary.
    pub fn message(&self) -> String {
        self.exception
            .as_ref()
            .and_then(|e| e.description.clone())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| {
                if self.text.is_empty() {
                    "script error".to_string()
                } else {
                    self.text.clone()
                }
            })
    }
}

/// What `Runtime.evaluate` and `Runtime.callFunctionOn` answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluated {
    pub result: RemoteObject,
    #[serde(default)]
    pub exception_details: Option<ExceptionDetails>,
}

impl Evaluated {
    /// The value returned, or the exception as an error.
    pub fn value(self) -> Result<Value, String> {
        match self.exception_details {
            Some(details) => Err(details.message()),
            None => Ok(self.result.value.unwrap_or(Value::Null)),
        }
    }
}

/// An argument of `Runtime.callFunctionOn`: a value or a remote object.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallArgument {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolveNode {
    pub backend_node_id: i64,
    pub object_group: String,
    pub execution_context_id: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Resolved {
    pub object: RemoteObject,
}

impl Method for ResolveNode {
    const NAME: &'static str = "DOM.resolveNode";
    type Reply = Resolved;
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallFunctionOn {
    pub function_declaration: String,
    pub object_id: String,
    pub arguments: Vec<CallArgument>,
    pub return_by_value: bool,
    pub await_promise: bool,
    pub silent: bool,
}

impl Method for CallFunctionOn {
    const NAME: &'static str = "Runtime.callFunctionOn";
    type Reply = Evaluated;
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluate {
    pub expression: String,
    pub context_id: i64,
    pub return_by_value: bool,
    pub await_promise: bool,
    pub silent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_group: Option<String>,
}

impl Method for Evaluate {
    const NAME: &'static str = "Runtime.evaluate";
    type Reply = Evaluated;
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateIsolatedWorld {
    pub frame_id: String,
    pub world_name: String,
    /// The protocol's spelling.
    pub grant_univeral_access: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IsolatedWorld {
    pub execution_context_id: i64,
}

impl Method for CreateIsolatedWorld {
    const NAME: &'static str = "Page.createIsolatedWorld";
    type Reply = IsolatedWorld;
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseObjectGroup {
    pub object_group: String,
}

impl Method for ReleaseObjectGroup {
    const NAME: &'static str = "Runtime.releaseObjectGroup";
    type Reply = IgnoredAny;
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetFrameOwner {
    pub frame_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrameOwner {
    pub backend_node_id: i64,
}

impl Method for GetFrameOwner {
    const NAME: &'static str = "DOM.getFrameOwner";
    type Reply = FrameOwner;
}

#[derive(Debug, Clone, Serialize)]
pub struct GetFrameTree {}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrameTreeReply {
    pub frame_tree: FrameTree,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrameTree {
    pub frame: Frame,
    #[serde(default)]
    pub child_frames: Vec<FrameTree>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Frame {
    pub id: String,
    #[serde(default)]
    pub url: String,
}

impl Method for GetFrameTree {
    const NAME: &'static str = "Page.getFrameTree";
    type Reply = FrameTreeReply;
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeNode {
    pub object_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Described {
    pub node: DescribedNode,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribedNode {
    pub backend_node_id: i64,
}

impl Method for DescribeNode {
    const NAME: &'static str = "DOM.describeNode";
    type Reply = Described;
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetProperties {
    pub object_id: String,
    pub own_properties: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Properties {
    #[serde(default)]
    pub result: Vec<Property>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Property {
    pub name: String,
    #[serde(default)]
    pub value: Option<RemoteObject>,
}

impl Method for GetProperties {
    const NAME: &'static str = "Runtime.getProperties";
    type Reply = Properties;
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetAutoAttach {
    pub auto_attach: bool,
    pub wait_for_debugger_on_start: bool,
    pub flatten: bool,
}

impl Method for SetAutoAttach {
    const NAME: &'static str = "Target.setAutoAttach";
    type Reply = IgnoredAny;
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetDocument {
    pub depth: i64,
}

impl Method for GetDocument {
    const NAME: &'static str = "DOM.getDocument";
    type Reply = IgnoredAny;
}
