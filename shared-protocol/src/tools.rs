//! Granular MCP tools, generated from the command table: one tool per command that has a
//! tool operand list in [`crate::commands`], with its input schema, the tiers it needs to be
//! offered at all and the tiers a call may reach, and the command line a call's arguments
//! become.
//!
//! It owns how tool parameters are named and typed and how they turn into words (quoted so
//! the grammar reads back exactly the values given). It must not decide what a session may
//! run: every command line it builds goes through the same classifier and pipeline as
//! `domshell_execute`, so a tool's tiers here only choose what is listed and how it is
//! annotated.

use serde_json::{json, Map, Value};

use crate::commands::{CommandDef, FlagDef, OperandKind, TierRule, COMMANDS};
use crate::grammar::quote_word;
use crate::tier::Tier;

/// Every granular tool's name is this followed by its command's name.
pub const TOOL_PREFIX: &str = "domshell_";

/// The commands that have a granular tool in this build, in `help` order.
pub fn tool_commands() -> impl Iterator<Item = &'static CommandDef> {
    COMMANDS
        .iter()
        .filter(|c| c.available() && c.tool.is_some())
}

/// The tool's name for `def`.
pub fn tool_name(def: &CommandDef) -> String {
    format!("{TOOL_PREFIX}{}", def.name)
}

/// The command behind the tool called `name`, if it is a granular tool of this build.
pub fn find_tool(name: &str) -> Option<&'static CommandDef> {
    let command = name.strip_prefix(TOOL_PREFIX)?;
    tool_commands().find(|c| c.name == command)
}

/// The tiers a session must be allowed for the tool to be offered: without them every
/// call would be refused.
pub fn tiers_to_offer(def: &CommandDef) -> &'static [Tier] {
    match def.tier {
        TierRule::Read => &[],
        TierRule::Needs(Tier::Read, _) => &[],
        TierRule::Needs(Tier::Navigate, _) => &[Tier::Navigate],
        TierRule::Needs(Tier::Write, _) => &[Tier::Write],
        TierRule::Needs(Tier::Sensitive, _) => &[Tier::Sensitive],
        TierRule::JavaScript(_) => &[Tier::Write, Tier::Sensitive],
        TierRule::ByArguments => match def.name {
            "open" | "navigate" | "goto" => &[Tier::Navigate],
            "upload" => &[Tier::Write, Tier::Sensitive],
            // `dialog` alone shows the dialog; loops and scripts may run reading commands only.
            _ => &[],
        },
    }
}

/// Every tier a call of the tool may need, depending on its arguments.
pub fn tiers_reachable(def: &CommandDef) -> &'static [Tier] {
    match def.tier {
        TierRule::ByArguments => match def.name {
            // A scheme other than http(s) is sensitive.
            "open" | "navigate" | "goto" => &[Tier::Navigate, Tier::Sensitive],
            "dialog" => &[Tier::Write],
            "upload" => &[Tier::Write, Tier::Sensitive],
            // Its tool lists requests; the sensitive `network body` is `domshell_execute`'s.
            "network" => &[],
            _ => &[Tier::Navigate, Tier::Write, Tier::Sensitive],
        },
        _ => tiers_to_offer(def),
    }
}

/// How a session's rails make a tool look: whether it may change pages at all and whether
/// it may act in them (click, type, run JavaScript), given the tiers the rails allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolEffect {
    pub offered: bool,
    pub read_only: bool,
    pub destructive: bool,
}

/// What `def`'s tool is for a session whose rails allow `allowed` tiers.
pub fn effect(def: &CommandDef, allowed: impl Fn(Tier) -> bool) -> ToolEffect {
    let offered = tiers_to_offer(def).iter().all(|t| allowed(*t));
    let reach: Vec<Tier> = tiers_reachable(def)
        .iter()
        .copied()
        .filter(|t| allowed(*t))
        .collect();
    let changes = reach
        .iter()
        .any(|t| matches!(t, Tier::Navigate | Tier::Write));
    ToolEffect {
        offered,
        read_only: !changes,
        destructive: reach.contains(&Tier::Write),
    }
}

/// The value a flag's parameter holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueType {
    Boolean,
    Integer,
    Number,
    Text,
}

fn flag_type(flag: &FlagDef) -> ValueType {
    if !flag.takes_value {
        return ValueType::Boolean;
    }
    match flag.name {
        "-n" | "-d" | "--offset" | "--textlen" | "--limit" | "--times" | "--port" => {
            ValueType::Integer
        }
        "--timeout" | "--interval" => ValueType::Number,
        _ => ValueType::Text,
    }
}

/// A flag's parameter name; `None` for a one-letter spelling of a long flag the row also
/// has (`-l` of `--long`), which would be the same parameter twice.
fn flag_property(flag: &FlagDef) -> Option<String> {
    match flag.letter() {
        Some('n') => Some("limit".into()),
        Some('d') => Some("depth".into()),
        Some('r') => Some("recursive".into()),
        Some('l' | 'a') => None,
        Some(other) => Some(other.to_string()),
        None => Some(flag.name.trim_start_matches('-').replace('-', "_")),
    }
}

/// The flags of `def` that are tool parameters, with their names. A flag named like one of
/// the operands (`open --url` beside the `url` operand) is another spelling of it: left out.
fn flag_properties(def: &CommandDef) -> impl Iterator<Item = (String, &'static FlagDef)> + '_ {
    let operands = def.tool.unwrap_or_default();
    def.flags
        .iter()
        .filter_map(|f| flag_property(f).map(|name| (name, f)))
        .filter(move |(name, _)| operands.iter().all(|o| o.name != name))
}

/// The tool's description: what the command does, its usage and its help.
pub fn description(def: &CommandDef) -> String {
    let mut text = format!("{}. Runs `{}`.", capitalized(def.summary), def.usage);
    if !def.details.is_empty() {
        text.push(' ');
        text.push_str(def.details);
    }
    text
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The tool's input schema: its operands and flags (the caller adds the lane parameters).
pub fn input_schema(def: &CommandDef) -> Map<String, Value> {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for operand in def.tool.unwrap_or_default() {
        let schema = match operand.kind {
            OperandKind::Literal => continue,
            OperandKind::Word | OperandKind::Verbatim => json!({"type": "string"}),
            OperandKind::Number => json!({"type": "integer"}),
            OperandKind::Words => json!({"type": "array", "items": {"type": "string"}}),
        };
        let mut schema = schema;
        schema["description"] = Value::String(operand.about.to_string());
        properties.insert(operand.name.to_string(), schema);
        if operand.required {
            required.push(Value::String(operand.name.to_string()));
        }
    }
    for (name, flag) in flag_properties(def) {
        let kind = match flag_type(flag) {
            ValueType::Boolean => "boolean",
            ValueType::Integer => "integer",
            ValueType::Number => "number",
            ValueType::Text => "string",
        };
        let about = format!("`{}` (see `{} --help`)", flag.name, def.name);
        properties.insert(name, json!({"type": kind, "description": about}));
    }
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        schema.insert("required".into(), Value::Array(required));
    }
    schema.insert("additionalProperties".into(), json!(false));
    schema
}

/// Arguments a granular tool cannot turn into a command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolArgsError {
    #[error("{tool}: missing required argument `{param}`")]
    Missing { tool: String, param: String },
    #[error("{tool}: argument `{param}` must be {expected}")]
    WrongType {
        tool: String,
        param: String,
        expected: &'static str,
    },
    #[error("{tool}: unknown argument `{param}`; it takes {known}")]
    Unknown {
        tool: String,
        param: String,
        known: String,
    },
    #[error("{tool}: argument `{param}` must be one line (join statements with `;`)")]
    Multiline { tool: String, param: String },
    #[error("{tool}: argument `{param}` must not contain ` : ` (it separates the source from the template)")]
    Separator { tool: String, param: String },
}

/// The names of the parameters `def`'s tool takes, for error messages.
fn known_parameters(def: &CommandDef) -> String {
    let mut names: Vec<String> = def
        .tool
        .unwrap_or_default()
        .iter()
        .filter(|o| o.kind != OperandKind::Literal)
        .map(|o| o.name.to_string())
        .collect();
    names.extend(flag_properties(def).map(|(name, _)| name));
    if names.is_empty() {
        "no arguments".into()
    } else {
        names.join(", ")
    }
}

/// The text of a scalar value: strings as they are, numbers as written.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The command line a call of `def`'s tool with `args` runs: the command, its flags, then
/// its operands, each word quoted so the grammar reads back exactly the value given (a
/// value that looks like a flag comes after `--`).
pub fn command_line(def: &CommandDef, args: &Map<String, Value>) -> Result<String, ToolArgsError> {
    let tool = tool_name(def);
    let operands = def.tool.unwrap_or_default();
    let flags: Vec<(String, &FlagDef)> = flag_properties(def).collect();
    for key in args.keys() {
        let known = operands
            .iter()
            .any(|o| o.kind != OperandKind::Literal && o.name == key)
            || flags.iter().any(|(name, _)| name == key);
        if !known {
            return Err(ToolArgsError::Unknown {
                tool,
                param: key.clone(),
                known: known_parameters(def),
            });
        }
    }
    let wrong = |param: &str, expected: &'static str| ToolArgsError::WrongType {
        tool: tool.clone(),
        param: param.to_string(),
        expected,
    };
    let mut words = vec![def.name.to_string()];
    for (name, flag) in &flags {
        let Some(value) = args.get(name).filter(|v| !v.is_null()) else {
            continue;
        };
        match flag_type(flag) {
            ValueType::Boolean => match value {
                Value::Bool(true) => words.push(flag.name.to_string()),
                Value::Bool(false) => {}
                _ => return Err(wrong(name, "true or false")),
            },
            ValueType::Integer | ValueType::Number => match value {
                Value::Number(n) => {
                    words.push(flag.name.to_string());
                    words.push(n.to_string());
                }
                _ => return Err(wrong(name, "a number")),
            },
            ValueType::Text => {
                let text = scalar(value).ok_or_else(|| wrong(name, "a string"))?;
                words.push(flag.name.to_string());
                words.push(quote_word(&text));
            }
        }
    }
    let mut tail: Vec<String> = Vec::new();
    let mut looks_like_flag = false;
    for operand in operands {
        if operand.kind == OperandKind::Literal {
            tail.push(operand.name.to_string());
            continue;
        }
        let Some(value) = args.get(operand.name).filter(|v| !v.is_null()) else {
            if operand.required {
                return Err(ToolArgsError::Missing {
                    tool,
                    param: operand.name.to_string(),
                });
            }
            continue;
        };
        match operand.kind {
            OperandKind::Literal => {}
            OperandKind::Word => {
                let text = scalar(value).ok_or_else(|| wrong(operand.name, "a string"))?;
                looks_like_flag |= text.starts_with('-');
                tail.push(quote_word(&text));
            }
            OperandKind::Number => match value {
                Value::Number(n) if n.is_i64() || n.is_u64() => tail.push(n.to_string()),
                _ => return Err(wrong(operand.name, "a whole number")),
            },
            OperandKind::Words => {
                let items = value
                    .as_array()
                    .ok_or_else(|| wrong(operand.name, "an array of strings"))?;
                for item in items {
                    let text =
                        scalar(item).ok_or_else(|| wrong(operand.name, "an array of strings"))?;
                    looks_like_flag |= text.starts_with('-');
                    tail.push(quote_word(&text));
                }
            }
            OperandKind::Verbatim => {
                let text = value
                    .as_str()
                    .ok_or_else(|| wrong(operand.name, "a string"))?;
                if text.contains(['\n', '\r']) {
                    return Err(ToolArgsError::Multiline {
                        tool,
                        param: operand.name.to_string(),
                    });
                }
                if def.name == "for" && operand.name == "template" && text.contains(" : ") {
                    return Err(ToolArgsError::Separator {
                        tool,
                        param: operand.name.to_string(),
                    });
                }
                if operand.required && text.trim().is_empty() {
                    return Err(ToolArgsError::Missing {
                        tool,
                        param: operand.name.to_string(),
                    });
                }
                tail.push(text.trim().to_string());
            }
        }
    }
    // Raw commands read their own arguments; for the rest `--` ends the flags.
    if looks_like_flag && !def.raw {
        words.push("--".into());
    }
    words.extend(tail);
    Ok(words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::{parse_line, Line};
    use crate::tier::classify;

    fn args(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// A value of the right type for every parameter of `def`'s tool.
    fn sample_arguments(def: &CommandDef) -> Map<String, Value> {
        let mut map = Map::new();
        for operand in def.tool.unwrap_or_default() {
            let value = match operand.kind {
                OperandKind::Literal => continue,
                // Words the command reads as a subcommand or an address must be one.
                OperandKind::Word if operand.name == "action" => json!("run"),
                OperandKind::Word if operand.name == "url" => json!("https://example.com/a b"),
                OperandKind::Word => json!("main links"),
                OperandKind::Number => json!(3),
                OperandKind::Words => json!(["a b", "-1"]),
                OperandKind::Verbatim => json!("ls -l"),
            };
            map.insert(operand.name.to_string(), value);
        }
        for (name, flag) in flag_properties(def) {
            let value = match flag_type(flag) {
                ValueType::Boolean => json!(true),
                ValueType::Integer => json!(2),
                ValueType::Number => json!(1.5),
                ValueType::Text => json!("link"),
            };
            map.insert(name, value);
        }
        map
    }

    #[test]
    fn every_tool_builds_a_line_of_its_own_command_with_every_parameter() {
        let mut count = 0;
        for def in tool_commands() {
            count += 1;
            let line = command_line(def, &sample_arguments(def)).unwrap();
            let parsed = parse_line(&line).unwrap();
            let Line::Pipeline(pipeline) = &parsed else {
                panic!("{line}");
            };
            let command = &pipeline.command;
            assert_eq!(command.name, def.name, "{line}");
            if !def.raw {
                // Every flag given is one the command accepts, with the value given.
                let parsed = command.parse_args().unwrap();
                for flag in &parsed.flags {
                    assert!(def.flag(&flag.name).is_some(), "{line}: {}", flag.name);
                }
                for (name, flag) in flag_properties(def) {
                    assert!(parsed.has(flag.name), "{line}: {name} lost");
                }
            }
        }
        assert!(count >= 37, "{count} tools");
    }

    #[test]
    fn parameter_names_are_unique_and_apart_from_the_lane_parameters() {
        for def in tool_commands() {
            let schema = input_schema(def);
            let properties = schema["properties"].as_object().unwrap();
            let count = def
                .tool
                .unwrap_or_default()
                .iter()
                .filter(|o| o.kind != OperandKind::Literal)
                .count()
                + flag_properties(def).count();
            assert_eq!(properties.len(), count, "{}: a name twice", def.name);
            for lane in ["group_id", "initial_url", "group_name", "window_id"] {
                assert!(!properties.contains_key(lane), "{}: {lane}", def.name);
            }
        }
    }

    #[test]
    fn a_dropped_letter_flag_has_its_long_spelling_on_the_same_row() {
        for def in COMMANDS {
            for flag in def.flags {
                if flag_property(flag).is_none() {
                    let letter = flag.letter().unwrap();
                    assert!(
                        def.flags.iter().any(|f| f.letter().is_none()
                            && f.name[2..].starts_with(letter)
                            && f.takes_value == flag.takes_value),
                        "{}: {} has no long spelling",
                        def.name,
                        flag.name
                    );
                }
            }
        }
    }

    #[test]
    fn values_are_quoted_so_they_stay_one_word() {
        let click = crate::commands::find("click").unwrap();
        assert_eq!(
            command_line(click, &args(json!({"name": "say \"hi\" | x"}))).unwrap(),
            r#"click "say \"hi\" | x""#
        );
        assert_eq!(
            command_line(click, &args(json!({"name": "--help"}))).unwrap(),
            "click -- --help"
        );
        let typing = crate::commands::find("type").unwrap();
        let line = command_line(typing, &args(json!({"text": "two\nlines"}))).unwrap();
        assert_eq!(crate::grammar::split_lines(&line).len(), 1, "{line}");
        let find = crate::commands::find("find").unwrap();
        assert_eq!(
            command_line(
                find,
                &args(json!({"pattern": "x", "type": "link", "limit": 5, "meta": false}))
            )
            .unwrap(),
            "find --type link -n 5 x"
        );
    }

    #[test]
    fn verbatim_operands_stay_as_written_and_one_line() {
        let js = crate::commands::find("js").unwrap();
        assert_eq!(
            command_line(js, &args(json!({"code": "1 | 2"}))).unwrap(),
            "js 1 | 2"
        );
        assert!(matches!(
            command_line(js, &args(json!({"code": "1\n2"}))),
            Err(ToolArgsError::Multiline { .. })
        ));
        let each = crate::commands::find("for").unwrap();
        assert_eq!(
            command_line(
                each,
                &args(json!({"source": "tabs", "template": "echo {}"}))
            )
            .unwrap(),
            "for tabs : echo {}"
        );
        assert!(matches!(
            command_line(each, &args(json!({"source": "tabs", "template": "a : b"}))),
            Err(ToolArgsError::Separator { .. })
        ));
    }

    #[test]
    fn bad_arguments_say_what_the_tool_takes() {
        let cat = crate::commands::find("cat").unwrap();
        let missing = command_line(cat, &Map::new()).unwrap_err().to_string();
        assert_eq!(missing, "domshell_cat: missing required argument `name`");
        let unknown = command_line(cat, &args(json!({"name": "x", "color": 1})))
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("takes name, json"), "{unknown}");
        let wrong = command_line(cat, &args(json!({"name": "x", "json": "yes"})))
            .unwrap_err()
            .to_string();
        assert!(wrong.contains("true or false"), "{wrong}");
    }

    #[test]
    fn tiers_decide_what_is_offered_and_how_it_is_annotated() {
        let read_only = |t: Tier| t == Tier::Read;
        for def in tool_commands() {
            let effect = effect(def, read_only);
            if effect.offered {
                assert!(effect.read_only && !effect.destructive, "{}", def.name);
            }
        }
        let offered = |name: &str, allowed: &dyn Fn(Tier) -> bool| {
            effect(crate::commands::find(name).unwrap(), allowed).offered
        };
        assert!(!offered("click", &read_only));
        assert!(!offered("open", &read_only));
        assert!(!offered("js", &read_only));
        assert!(offered("for", &read_only));
        let write = |t: Tier| t != Tier::Sensitive;
        assert!(offered("click", &write) && !offered("js", &write) && !offered("whoami", &write));
        let open = effect(crate::commands::find("open").unwrap(), write);
        assert!(!open.read_only && !open.destructive);
        let each = effect(crate::commands::find("each").unwrap(), write);
        assert!(!each.read_only && each.destructive);
        let whoami = effect(crate::commands::find("whoami").unwrap(), |_| true);
        assert!(whoami.offered && whoami.read_only);
    }

    #[test]
    fn the_classifier_reads_a_tool_line_within_the_tiers_the_tool_declares() {
        for def in tool_commands() {
            let line = command_line(def, &sample_arguments(def)).unwrap();
            let Ok(classified) = classify(&line) else {
                continue;
            };
            for tier in [Tier::Navigate, Tier::Write, Tier::Sensitive] {
                assert!(
                    !classified.requires(tier) || tiers_reachable(def).contains(&tier),
                    "{}: `{line}` needs {tier}",
                    def.name
                );
            }
        }
    }
}
