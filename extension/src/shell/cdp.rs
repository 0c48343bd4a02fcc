//! Typed DevTools Protocol calls: each method the DOM layer uses, its parameters and the
//! part of its reply that is read, so a reply of another shape is an error naming the
//! method instead of a silent `null` further on.
//!
//! It owns the shapes and [`call`], one call in the tab or in a child session through the
//! [`Browser`] port. Replies are read field by field through [`Fields`] rather than by
//! serde's derive, whose code per reply type and deserializer was a tenth of the
//! extension's WASM. It must not decide which session a node lives in (that is
//! [`super::dom`]) nor format command output.

use std::future::Future;
use std::pin::Pin;

use serde_json::{json, Map, Value};

use super::browser::Browser;

/// A protocol method: its name, its parameters (the implementing type) and its reply.
pub trait Method {
    const NAME: &'static str;
    type Reply: Decode;

    /// The call's parameters as the protocol spells them.
    fn params(&self) -> Value;
}

/// A reply type read from JSON: what it needs must be there with the right type, what is
/// optional may be missing or `null`, and anything else is ignored.
pub trait Decode: Sized {
    fn decode(fields: &Fields<'_>) -> Result<Self, String>;

    /// `value` as this type; `of` names who answered, for the error.
    fn from_reply(of: &str, value: &Value) -> Result<Self, String> {
        Self::decode(&Fields::of(of, value)?)
    }
}

/// A reply whose content is not read: any answer will do.
impl Decode for () {
    fn decode(_: &Fields<'_>) -> Result<(), String> {
        Ok(())
    }

    fn from_reply(_: &str, _: &Value) -> Result<(), String> {
        Ok(())
    }
}

/// The members of one JSON object of a reply, read with errors that name who answered and
/// which member had an unexpected shape.
pub struct Fields<'a> {
    of: &'a str,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// `value`, which must be an object.
    pub fn of(of: &'a str, value: &'a Value) -> Result<Fields<'a>, String> {
        match value {
            Value::Object(map) => Ok(Fields { of, map }),
            other => Err(format!(
                "{of} answered in an unexpected shape: {} instead of an object",
                kind(other)
            )),
        }
    }

    fn wrong(&self, key: &str, wanted: &str, found: Option<&Value>) -> String {
        let found = found.map_or("missing", kind);
        format!(
            "{} answered in an unexpected shape: `{key}` is {found}, not {wanted}",
            self.of
        )
    }

    /// The member, `None` when it is missing or `null`.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn opt_string(&self, key: &str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            other => Err(self.wrong(key, "a string", other)),
        }
    }

    pub fn string(&self, key: &str) -> Result<String, String> {
        self.opt_string(key)?
            .ok_or_else(|| self.wrong(key, "a string", None))
    }

    /// A string member that may be missing (then empty).
    pub fn string_or_empty(&self, key: &str) -> Result<String, String> {
        Ok(self.opt_string(key)?.unwrap_or_default())
    }

    pub fn int(&self, key: &str) -> Result<i64, String> {
        let value = self.get(key);
        value
            .and_then(Value::as_i64)
            .ok_or_else(|| self.wrong(key, "an integer", value))
    }

    /// A count or length: a non-negative integer.
    pub fn count(&self, key: &str) -> Result<usize, String> {
        let value = self.get(key);
        value
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| self.wrong(key, "a count", value))
    }

    pub fn opt_object(&self, key: &str) -> Result<Option<Fields<'a>>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Fields { of: self.of, map })),
            other => Err(self.wrong(key, "an object", other)),
        }
    }

    pub fn object(&self, key: &str) -> Result<Fields<'a>, String> {
        self.opt_object(key)?
            .ok_or_else(|| self.wrong(key, "an object", None))
    }

    /// An object member read as `T`.
    pub fn decoded<T: Decode>(&self, key: &str) -> Result<T, String> {
        T::decode(&self.object(key)?)
    }

    /// An object member read as `T`, `None` when it is missing or `null`.
    pub fn opt_decoded<T: Decode>(&self, key: &str) -> Result<Option<T>, String> {
        self.opt_object(key)?.map(|f| T::decode(&f)).transpose()
    }

    /// A list member (missing: empty).
    pub fn list(&self, key: &str) -> Result<&'a [Value], String> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            other => Err(self.wrong(key, "a list", other)),
        }
    }

    /// A list of objects, each read as `T`.
    pub fn objects<T: Decode>(&self, key: &str) -> Result<Vec<T>, String> {
        self.list(key)?
            .iter()
            .map(|item| T::decode(&Fields::of(self.of, item)?))
            .collect()
    }

    /// A list of strings (missing: empty).
    pub fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        self.get(key)
            .map_or(Ok(Vec::new()), |list| strings(self.of, key, list))
    }
}

/// `value` as a list of strings; `what` names it in the error, `of` who answered.
pub fn strings(of: &str, what: &str, value: &Value) -> Result<Vec<String>, String> {
    let wrong = |found: &Value| {
        format!(
            "{of} answered in an unexpected shape: `{what}` holds {}, not only strings",
            kind(found)
        )
    };
    let Value::Array(items) = value else {
        return Err(wrong(value));
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            other => Err(wrong(other)),
        })
        .collect()
}

/// What a JSON value is, for errors.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// One call of `M` in the tab (`session` `None`) or in a child session; an error says which
/// method failed or answered in an unexpected shape.
pub async fn call<B: Browser, M: Method>(
    browser: &B,
    tab: i64,
    session: Option<&str>,
    params: &M,
) -> Result<M::Reply, String> {
    let reply = send(browser, tab, session, M::NAME, params.params()).await?;
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
    M::Reply::from_reply(M::NAME, &reply)
}

/// A JavaScript value or a handle to one (`Runtime.RemoteObject`).
#[derive(Debug, Clone, Default)]
pub struct RemoteObject {
    pub object_id: Option<String>,
    pub value: Option<Value>,
    pub description: Option<String>,
    /// `promise`, `node`, `array` …, for objects.
    pub subtype: Option<String>,
}

impl Decode for RemoteObject {
    fn decode(f: &Fields<'_>) -> Result<Self, String> {
        Ok(RemoteObject {
            object_id: f.opt_string("objectId")?,
            value: f.get("value").cloned(),
            description: f.opt_string("description")?,
            subtype: f.opt_string("subtype")?,
        })
    }
}

/// Why a script threw (`Runtime.ExceptionDetails`).
#[derive(Debug, Clone, Default)]
pub struct ExceptionDetails {
    pub text: String,
    pub exception: Option<RemoteObject>,
}

impl Decode for ExceptionDetails {
    fn decode(f: &Fields<'_>) -> Result<Self, String> {
        Ok(ExceptionDetails {
            text: f.string_or_empty("text")?,
            exception: f.opt_decoded("exception")?,
        })
    }
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
#[derive(Debug, Clone)]
pub struct Evaluated {
    pub result: RemoteObject,
    pub exception_details: Option<ExceptionDetails>,
}

impl Decode for Evaluated {
    fn decode(f: &Fields<'_>) -> Result<Self, String> {
        Ok(Evaluated {
            result: f.decoded("result")?,
            exception_details: f.opt_decoded("exceptionDetails")?,
        })
    }
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
#[derive(Debug, Clone)]
pub struct CallArgument {
    pub value: Option<Value>,
    pub object_id: Option<String>,
}

impl CallArgument {
    fn to_value(&self) -> Value {
        match (&self.value, &self.object_id) {
            (_, Some(id)) => json!({ "objectId": id }),
            (Some(value), None) => json!({ "value": value }),
            (None, None) => json!({}),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ResolveNode {
    pub backend_node_id: i64,
    pub object_group: String,
    pub execution_context_id: i64,
}

#[derive(Debug, Clone)]
pub struct Resolved {
    pub object: RemoteObject,
}

impl Decode for Resolved {
    fn decode(f: &Fields<'_>) -> Result<Self, String> {
        Ok(Resolved {
            object: f.decoded("object")?,
        })
    }
}

impl Method for ResolveNode {
    const NAME: &'static str = "DOM.resolveNode";
    type Reply = Resolved;

    fn params(&self) -> Value {
        json!({"backendNodeId": self.backend_node_id, "objectGroup": self.object_group, "executionContextId": self.execution_context_id})
    }
}

#[derive(Debug, Clone)]
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

    fn params(&self) -> Value {
        json!({"functionDeclaration": self.function_declaration, "objectId": self.object_id, "arguments": self.arguments.iter().map(CallArgument::to_value).collect::<Vec<_>>(), "returnByValue": self.return_by_value, "awaitPromise": self.await_promise, "silent": self.silent})
    }
}

#[derive(Debug, Clone)]
pub struct Evaluate {
    pub expression: String,
    pub context_id: i64,
    pub return_by_value: bool,
    pub await_promise: bool,
    pub silent: bool,
    pub object_group: Option<String>,
}

impl Method for Evaluate {
    const NAME: &'static str = "Runtime.evaluate";
    type Reply = Evaluated;

    fn params(&self) -> Value {
        let mut params = json!({"expression": self.expression, "contextId": self.context_id, "returnByValue": self.return_by_value, "awaitPromise": self.await_promise, "silent": self.silent});
        if let Some(group) = &self.object_group {
            params["objectGroup"] = json!(group);
        }
        params
    }
}

#[derive(Debug, Clone)]
pub struct CreateIsolatedWorld {
    pub frame_id: String,
    pub world_name: String,
    /// The protocol's spelling.
    pub grant_univeral_access: bool,
}

#[derive(Debug, Clone)]
pub struct IsolatedWorld {
    pub execution_context_id: i64,
}

impl Decode for IsolatedWorld {
    fn decode(f: &Fields<'_>) -> Result<Self, String> {
        Ok(IsolatedWorld {
            execution_context_id: f.int("executionContextId")?,
        })
    }
}

impl Method for CreateIsolatedWorld {
    const NAME: &'static str = "Page.createIsolatedWorld";
    type Reply = IsolatedWorld;

    fn params(&self) -> Value {
        json!({"frameId": self.frame_id, "worldName": self.world_name, "grantUniveralAccess": self.grant_univeral_access})
    }
}

#[derive(Debug, Clone)]
pub struct ReleaseObjectGroup {
    pub object_group: String,
}

impl Method for ReleaseObjectGroup {
    const NAME: &'static str = "Runtime.releaseObjectGroup";
    type Reply = ();

    fn params(&self) -> Value {
        json!({"objectGroup": self.object_group})
    }
}

/// Drops every entry of the tab's session history but the current one.
#[derive(Debug, Clone)]
pub struct ResetNavigationHistory;

impl Method for ResetNavigationHistory {
    const NAME: &'static str = "Page.resetNavigationHistory";
    type Reply = ();

    fn params(&self) -> Value {
        json!({})
    }
}

#[derive(Debug, Clone)]
pub struct GetFrameOwner {
    pub frame_id: String,
}

#[derive(Debug, Clone)]
pub struct FrameOwner {
    pub backend_node_id: i64,
}

impl Decode for FrameOwner {
    fn decode(f: &Fields<'_>) -> Result<Self, String> {
        Ok(FrameOwner {
            backend_node_id: f.int("backendNodeId")?,
        })
    }
}

impl Method for GetFrameOwner {
    const NAME: &'static str = "DOM.getFrameOwner";
    type Reply = FrameOwner;

    fn params(&self) -> Value {
        json!({"frameId": self.frame_id})
    }
}

#[derive(Debug, Clone)]
pub struct GetFrameTree {}

#[derive(Debug, Clone)]
pub struct FrameTreeReply {
    pub frame_tree: FrameTree,
}

impl Decode for FrameTreeReply {
    fn decode(f: &Fields<'_>) -> Result<Self, String> {
        Ok(FrameTreeReply {
            frame_tree: f.decoded("frameTree")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct FrameTree {
    pub frame: Frame,
    pub child_frames: Vec<FrameTree>,
}

impl Decode for FrameTree {
    fn decode(f: &Fields<'_>) -> Result<Self, String> {
        Ok(FrameTree {
            frame: f.decoded("frame")?,
            child_frames: f.objects("childFrames")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Frame {
    pub id: String,
    pub url: String,
}

impl Decode for Frame {
    fn decode(f: &Fields<'_>) -> Result<Self, String> {
        Ok(Frame {
            id: f.string("id")?,
            url: f.string_or_empty("url")?,
        })
    }
}

impl Method for GetFrameTree {
    const NAME: &'static str = "Page.getFrameTree";
    type Reply = FrameTreeReply;

    fn params(&self) -> Value {
        json!({})
    }
}

#[derive(Debug, Clone)]
pub struct DescribeNode {
    pub object_id: String,
}

#[derive(Debug, Clone)]
pub struct Described {
    pub node: DescribedNode,
}

impl Decode for Described {
    fn decode(f: &Fields<'_>) -> Result<Self, String> {
        Ok(Described {
            node: f.decoded("node")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct DescribedNode {
    pub backend_node_id: i64,
}

impl Decode for DescribedNode {
    fn decode(f: &Fields<'_>) -> Result<Self, String> {
        Ok(DescribedNode {
            backend_node_id: f.int("backendNodeId")?,
        })
    }
}

impl Method for DescribeNode {
    const NAME: &'static str = "DOM.describeNode";
    type Reply = Described;

    fn params(&self) -> Value {
        json!({"objectId": self.object_id})
    }
}

#[derive(Debug, Clone)]
pub struct GetProperties {
    pub object_id: String,
    pub own_properties: bool,
}

#[derive(Debug, Clone)]
pub struct Properties {
    pub result: Vec<Property>,
}

impl Decode for Properties {
    fn decode(f: &Fields<'_>) -> Result<Self, String> {
        Ok(Properties {
            result: f.objects("result")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Property {
    pub name: String,
    pub value: Option<RemoteObject>,
}

impl Decode for Property {
    fn decode(f: &Fields<'_>) -> Result<Self, String> {
        Ok(Property {
            name: f.string("name")?,
            value: f.opt_decoded("value")?,
        })
    }
}

impl Method for GetProperties {
    const NAME: &'static str = "Runtime.getProperties";
    type Reply = Properties;

    fn params(&self) -> Value {
        json!({"objectId": self.object_id, "ownProperties": self.own_properties})
    }
}

#[derive(Debug, Clone)]
pub struct SetAutoAttach {
    pub auto_attach: bool,
    pub wait_for_debugger_on_start: bool,
    pub flatten: bool,
}

impl Method for SetAutoAttach {
    const NAME: &'static str = "Target.setAutoAttach";
    type Reply = ();

    fn params(&self) -> Value {
        json!({"autoAttach": self.auto_attach, "waitForDebuggerOnStart": self.wait_for_debugger_on_start, "flatten": self.flatten})
    }
}

#[derive(Debug, Clone)]
pub struct GetDocument {
    pub depth: i64,
}

impl Method for GetDocument {
    const NAME: &'static str = "DOM.getDocument";
    type Reply = ();

    fn params(&self) -> Value {
        json!({"depth": self.depth})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_of_the_expected_shape_reads_as_its_type() {
        let reply = json!({
            "result": {"type": "object", "objectId": "o1", "value": {"a": 1}},
            "exceptionDetails": {"text": "Uncaught", "exception": {"description": "Error: no"}},
        });
        let evaluated = decode::<Evaluate>(reply).unwrap();
        assert_eq!(evaluated.result.object_id.as_deref(), Some("o1"));
        assert_eq!(evaluated.result.value, Some(json!({"a": 1})));
        assert_eq!(evaluated.value().unwrap_err(), "Error: no");

        let tree = decode::<GetFrameTree>(json!({"frameTree": {
            "frame": {"id": "F1", "url": "http://127.0.0.1/"},
            "childFrames": [{"frame": {"id": "F2"}}],
        }}))
        .unwrap();
        assert_eq!(tree.frame_tree.frame.id, "F1");
        assert_eq!(tree.frame_tree.child_frames[0].frame.id, "F2");
        assert_eq!(tree.frame_tree.child_frames[0].frame.url, "");
        assert!(tree.frame_tree.child_frames[0].child_frames.is_empty());
    }

    #[test]
    fn optional_members_may_be_missing_or_null_and_unknown_ones_are_ignored() {
        let resolved =
            decode::<ResolveNode>(json!({"object": {"objectId": null, "extra": [1, 2]}})).unwrap();
        assert_eq!(resolved.object.object_id, None);
        assert_eq!(resolved.object.value, None);
        let properties = decode::<GetProperties>(json!({})).unwrap();
        assert!(properties.result.is_empty());
    }

    #[test]
    fn a_reply_of_another_shape_is_an_error_naming_the_method_and_the_member() {
        let missing = decode::<CreateIsolatedWorld>(json!({})).unwrap_err();
        assert_eq!(
            missing,
            "Page.createIsolatedWorld answered in an unexpected shape: `executionContextId` is missing, not an integer"
        );
        let mistyped = decode::<DescribeNode>(json!({"node": {"backendNodeId": "7"}})).unwrap_err();
        assert!(mistyped.contains("DOM.describeNode"), "{mistyped}");
        assert!(
            mistyped.contains("`backendNodeId` is a string"),
            "{mistyped}"
        );
        let not_object = decode::<ResolveNode>(json!([1])).unwrap_err();
        assert!(
            not_object.contains("a list instead of an object"),
            "{not_object}"
        );
        let nested =
            decode::<GetFrameTree>(json!({"frameTree": {"frame": {"id": 3}}})).unwrap_err();
        assert!(
            nested.contains("`id` is a number, not a string"),
            "{nested}"
        );
        // A reply that is not read accepts anything.
        decode::<ReleaseObjectGroup>(json!(null)).unwrap();
    }

    #[test]
    fn counts_and_string_lists_are_checked_member_by_member() {
        let value = json!({"n": 3, "neg": -1, "words": ["a", "b"], "mixed": ["a", 1]});
        let f = Fields::of("the page", &value).unwrap();
        assert_eq!(f.count("n").unwrap(), 3);
        assert!(f
            .count("neg")
            .unwrap_err()
            .contains("`neg` is a number, not a count"));
        assert_eq!(f.strings("words").unwrap(), ["a", "b"]);
        assert!(f.strings("missing").unwrap().is_empty());
        let mixed = f.strings("mixed").unwrap_err();
        assert_eq!(
            mixed,
            "the page answered in an unexpected shape: `mixed` holds a number, not only strings"
        );
    }
}
