//! The accessibility tree as Chromium's DevTools protocol delivers it: `Accessibility.AXNode`
//! and the page snapshot (main frame plus child frames) the mapping takes as input.
//!
//! Only the fields the mapping reads are declared; everything else in a CDP reply is ignored
//! and every declared field may be missing. This module describes data; it must not decide
//! how a node is shown (that is `roles`, `naming` and `vfs`).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// One `Accessibility.AXNode`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AxNode {
    #[serde(default, deserialize_with = "id_string")]
    pub node_id: String,
    #[serde(default)]
    pub ignored: bool,
    #[serde(default)]
    pub role: Option<AxValue>,
    #[serde(default)]
    pub name: Option<AxValue>,
    #[serde(default)]
    pub description: Option<AxValue>,
    #[serde(default)]
    pub value: Option<AxValue>,
    #[serde(default)]
    pub properties: Vec<AxProperty>,
    #[serde(default, deserialize_with = "id_strings")]
    pub child_ids: Vec<String>,
    #[serde(default, deserialize_with = "optional_id_string")]
    pub parent_id: Option<String>,
    #[serde(default, rename = "backendDOMNodeId")]
    pub backend_dom_node_id: Option<i64>,
    #[serde(default)]
    pub frame_id: Option<String>,
}

impl AxNode {
    /// The role string (`"button"`, `"RootWebArea"`…), empty when absent.
    pub fn role(&self) -> &str {
        self.role
            .as_ref()
            .and_then(|v| v.value.as_ref())
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The accessible name, trimmed; empty when absent.
    pub fn name(&self) -> String {
        text_of(self.name.as_ref())
    }

    pub fn description(&self) -> String {
        text_of(self.description.as_ref())
    }

    /// The AX value (a text field's content, a slider's number) as text.
    pub fn value(&self) -> Option<String> {
        let text = text_of(self.value.as_ref());
        (!text.is_empty()).then_some(text)
    }

    /// A property's value as text (`checked` → `"true"`, `level` → `"2"`).
    pub fn property(&self, name: &str) -> Option<String> {
        self.properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| text_of(Some(&p.value)))
            .filter(|t| !t.is_empty())
    }
}

fn text_of(value: Option<&AxValue>) -> String {
    value.map(AxValue::as_text).unwrap_or_default()
}

/// A CDP `AXValue`: a type tag and a JSON value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AxValue {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub value: Option<Value>,
}

impl AxValue {
    /// Strings as they are (trimmed), numbers and booleans printed, anything else empty.
    pub fn as_text(&self) -> String {
        match &self.value {
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => String::new(),
        }
    }
}

/// One entry of `AXNode.properties`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AxProperty {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: AxValue,
}

/// Everything read from one tab: the main frame's nodes and any child frames' nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageSnapshot {
    #[serde(default)]
    pub url: String,
    pub main: FrameNodes,
    #[serde(default)]
    pub frames: Vec<ChildFrame>,
}

/// The main frame's `Accessibility.getFullAXTree` (or the part fetched so far).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrameNodes {
    #[serde(default)]
    pub frame_id: String,
    #[serde(default)]
    pub nodes: Vec<AxNode>,
}

/// A child frame's nodes and where they hang: under the `Iframe` node whose
/// `backendDOMNodeId` is `owner_backend_node_id` (what `DOM.getFrameOwner` answers), in the
/// frame `parent_frame_id` (the main frame when absent). Backend ids are only unique within a
/// renderer process, hence the parent frame. Out-of-process frames are read through their own
/// CDP session, same-process ones with `getFullAXTree {frameId}`; both attach the same way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildFrame {
    #[serde(default)]
    pub frame_id: String,
    #[serde(default)]
    pub parent_frame_id: Option<String>,
    #[serde(default)]
    pub owner_backend_node_id: Option<i64>,
    #[serde(default)]
    pub out_of_process: bool,
    #[serde(default)]
    pub nodes: Vec<AxNode>,
}

/// CDP sends node ids as strings; accept numbers too rather than failing a whole tree.
fn id_text(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(id_text(Value::deserialize(d)?).unwrap_or_default())
}

fn optional_id_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(id_text(Value::deserialize(d)?))
}

fn id_strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items.into_iter().filter_map(id_text).collect(),
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_odd_fields_are_tolerated() {
        let node: AxNode = serde_json::from_str(
            r#"{"nodeId": 7, "childIds": ["8", 9, null], "role": {"type": "role", "value": "button"},
                "name": {"type": "computedString", "value": "  Go  "}, "extra": [1, 2],
                "value": {"type": "integer", "value": 3}, "parentId": null}"#,
        )
        .unwrap();
        assert_eq!(node.node_id, "7");
        assert_eq!(node.child_ids, ["8", "9"]);
        assert_eq!(node.role(), "button");
        assert_eq!(node.name(), "Go");
        assert_eq!(node.value().as_deref(), Some("3"));
        assert_eq!(node.parent_id, None);
        let empty: AxNode = serde_json::from_str("{}").unwrap();
        assert_eq!(empty.role(), "");
        assert_eq!(empty.name(), "");
    }

    #[test]
    fn properties_read_as_text() {
        let node: AxNode = serde_json::from_str(
            r#"{"nodeId": "1", "properties": [{"name": "checked", "value": {"type": "tristate", "value": "true"}},
                {"name": "level", "value": {"type": "integer", "value": 2}}]}"#,
        )
        .unwrap();
        assert_eq!(node.property("checked").as_deref(), Some("true"));
        assert_eq!(node.property("level").as_deref(), Some("2"));
        assert_eq!(node.property("expanded"), None);
    }
}
