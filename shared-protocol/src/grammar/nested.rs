//! The inner structure of the commands that run other commands: `for`, `each`, `watch`
//! and `script`.
//!
//! It owns how their verbatim argument is cut into flags and inner command text. It must
//! not parse the inner commands themselves (that is [`super::parse_line`]'s job, called
//! from [`super::Command::nested`]) nor run anything.

use super::{next_token, tokenize, ParseError, Token};

/// A command that runs other commands, as read from its verbatim argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Nested {
    For(ForLoop),
    Each(Each),
    Watch(Watch),
    Script(Script),
}

/// `for <source> : <template>`: run `source`, then `template` once per output line with
/// every `{}` replaced by that line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForLoop {
    pub source: String,
    pub template: String,
}

impl ForLoop {
    /// The placeholder replaced by each item.
    pub const PLACEHOLDER: &'static str = "{}";

    /// The command line run for one item: plain text replacement, as in the original
    /// shell. The classifier assumes exactly this (see [`crate::tier`]).
    pub fn substitute(&self, item: &str) -> String {
        self.template.replace(Self::PLACEHOLDER, item)
    }
}

/// `each [--pattern F] [--limit N] <command>`: run `command` in every tab whose title or URL
/// contains `F`. Flags are read only before the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Each {
    pub pattern: Option<String>,
    pub limit: Option<usize>,
    pub command: String,
    /// The command was given as one quoted word (`each "click x"`) and unquoted.
    pub command_was_quoted: bool,
}

/// `watch <command> [--interval S] [--times N] [--until-change]`: rerun `command`. Flags
/// may appear anywhere; `--` makes the rest part of the command. The command may be one
/// quoted word (`watch "ls -l"`); otherwise its words are rejoined as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    pub command: String,
    pub interval_s: Option<f64>,
    pub times: Option<u32>,
    pub until_change: bool,
    pub command_was_quoted: bool,
}

/// `script list | save <name> <c1 ; c2> | show <name> | run <name> [args] | delete <name>`.
/// A bare `script` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    List,
    Show {
        name: String,
    },
    Delete {
        name: String,
    },
    /// Inner commands separated by ` ; `. A body that is one quoted word is unquoted first.
    Save {
        name: String,
        commands: Vec<String>,
    },
    /// Arguments are words (quote them with `"…"`) substituted for `$1…$N` at run time.
    Run {
        name: String,
        args: Vec<String>,
    },
}

const FOR_USAGE: &str = "for <command> : <template using {}>";
const EACH_USAGE: &str = "each [--pattern TEXT] [--limit N] <command>";
const WATCH_USAGE: &str = "watch <command> [--interval SECONDS] [--times N] [--until-change]";
const SCRIPT_USAGE: &str =
    "script list | save <name> <cmd1> ; <cmd2> | show <name> | run <name> [args] | delete <name>";

/// Splits on the last ` : `, as the original shell does, so a source may itself contain
/// ` : ` (a nested `for`) but a template may not.
pub(crate) fn parse_for(rest: &str) -> Result<ForLoop, ParseError> {
    let usage = |problem: &str| ParseError::Usage {
        command: "for",
        problem: problem.to_string(),
        usage: FOR_USAGE,
    };
    let Some(at) = rest.rfind(" : ") else {
        return Err(usage(
            "missing ' : ' between the source command and the template",
        ));
    };
    let source = rest[..at].trim();
    let template = rest[at + 3..].trim();
    if source.is_empty() {
        return Err(usage("missing source command before ' : '"));
    }
    if template.is_empty() {
        return Err(usage("missing template after ' : '"));
    }
    Ok(ForLoop {
        source: source.to_string(),
        template: template.to_string(),
    })
}

/// The word is written plainly (no quotes or escapes), so it may be read as a flag.
fn is_plain(text: &str, token: &Token) -> bool {
    text.get(token.start..token.end) == Some(token.value.as_str())
}

fn flag_value(
    command: &str,
    flag: &str,
    inline: Option<&str>,
    text: &str,
    after: &mut usize,
) -> Result<String, ParseError> {
    if let Some(value) = inline {
        return Ok(value.to_string());
    }
    match next_token(text, *after)? {
        Some(token) => {
            *after = token.end;
            Ok(token.value)
        }
        None => Err(ParseError::MissingFlagValue {
            command: command.to_string(),
            flag: flag.to_string(),
        }),
    }
}

fn split_inline(word: &str) -> (&str, Option<&str>) {
    match word.split_once('=') {
        Some((name, value)) if name.starts_with("--") => (name, Some(value)),
        _ => (word, None),
    }
}

fn bad_value(command: &str, flag: &str, expected: &'static str, value: &str) -> ParseError {
    ParseError::BadFlagValue {
        command: command.to_string(),
        flag: flag.to_string(),
        expected,
        value: value.to_string(),
    }
}

/// The inner command from `start` to the end: one quoted word is unquoted, anything else
/// is kept verbatim (which keeps JavaScript intact: it is never tokenised here).
fn inner_command(text: &str, start: usize) -> Result<(String, bool), ParseError> {
    let inner = text[start..].trim();
    if let Some(token) = next_token(inner, 0)? {
        if token.fully_quoted && token.end == inner.len() {
            return Ok((token.value, true));
        }
    }
    Ok((inner.to_string(), false))
}

pub(crate) fn parse_each(rest: &str) -> Result<Each, ParseError> {
    let mut pattern = None;
    let mut limit = None;
    let mut pos = 0;
    let start = loop {
        let Some(token) = next_token(rest, pos)? else {
            break rest.len();
        };
        if !is_plain(rest, &token) {
            break token.start;
        }
        let (name, inline) = split_inline(&token.value);
        let mut after = token.end;
        match name {
            "--" if inline.is_none() => break token.end,
            "--pattern" => {
                pattern = Some(flag_value("each", name, inline, rest, &mut after)?);
            }
            "--limit" => {
                let value = flag_value("each", name, inline, rest, &mut after)?;
                limit = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| bad_value("each", name, "a whole number", &value))?,
                );
            }
            _ => break token.start,
        }
        pos = after;
    };
    let (command, command_was_quoted) = inner_command(rest, start)?;
    if command.trim().is_empty() {
        return Err(ParseError::Usage {
            command: "each",
            problem: "missing the command to run in each tab".into(),
            usage: EACH_USAGE,
        });
    }
    Ok(Each {
        pattern,
        limit,
        command,
        command_was_quoted,
    })
}

pub(crate) fn parse_watch(rest: &str) -> Result<Watch, ParseError> {
    let tokens = tokenize(rest).map_err(|inner| ParseError::Inside {
        context: "`watch` arguments (quote the whole command: watch \"<command>\")".into(),
        inner: Box::new(inner),
    })?;
    let mut watch = Watch {
        command: String::new(),
        interval_s: None,
        times: None,
        until_change: false,
        command_was_quoted: false,
    };
    let mut kept: Vec<&Token> = Vec::new();
    let mut it = tokens.iter();
    while let Some(token) = it.next() {
        if !is_plain(rest, token) {
            kept.push(token);
            continue;
        }
        let (name, inline) = split_inline(&token.value);
        let mut value =
            |flag: &str| -> Result<String, ParseError> {
                match inline {
                    Some(v) => Ok(v.to_string()),
                    None => it.next().map(|t| t.value.clone()).ok_or_else(|| {
                        ParseError::MissingFlagValue {
                            command: "watch".into(),
                            flag: flag.to_string(),
                        }
                    }),
                }
            };
        match name {
            "--" if inline.is_none() => {
                kept.extend(it.by_ref());
                break;
            }
            "--interval" => {
                let v = value(name)?;
                let seconds = crate::decimal::parse_f64(&v)
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| bad_value("watch", name, "a positive number of seconds", &v))?;
                watch.interval_s = Some(seconds);
            }
            "--times" => {
                let v = value(name)?;
                watch.times = Some(
                    v.parse::<u32>()
                        .map_err(|_| bad_value("watch", name, "a whole number", &v))?,
                );
            }
            "--until-change" if inline.is_none() => watch.until_change = true,
            _ => kept.push(token),
        }
    }
    match kept.as_slice() {
        [] => {
            return Err(ParseError::Usage {
                command: "watch",
                problem: "missing the command to repeat".into(),
                usage: WATCH_USAGE,
            })
        }
        [only] if only.fully_quoted => {
            watch.command = only.value.clone();
            watch.command_was_quoted = true;
        }
        words => {
            watch.command = words
                .iter()
                .map(|t| &rest[t.start..t.end])
                .collect::<Vec<_>>()
                .join(" ");
        }
    }
    if watch.command.trim().is_empty() {
        return Err(ParseError::Usage {
            command: "watch",
            problem: "missing the command to repeat".into(),
            usage: WATCH_USAGE,
        });
    }
    Ok(watch)
}

pub(crate) fn parse_script(rest: &str) -> Result<Script, ParseError> {
    let usage = |problem: String| ParseError::Usage {
        command: "script",
        problem,
        usage: SCRIPT_USAGE,
    };
    let Some(sub) = next_token(rest, 0)? else {
        return Ok(Script::List);
    };
    let subcommand = sub.value.to_ascii_lowercase();
    if subcommand == "list" {
        return Ok(Script::List);
    }
    if !matches!(subcommand.as_str(), "show" | "delete" | "save" | "run") {
        return Err(usage(format!("unknown subcommand '{}'", sub.value)));
    }
    let Some(name) = next_token(rest, sub.end)? else {
        return Err(usage(format!("`script {subcommand}` needs a script name")));
    };
    let after = &rest[name.end..];
    Ok(match subcommand.as_str() {
        "show" => Script::Show { name: name.value },
        "delete" => Script::Delete { name: name.value },
        "run" => Script::Run {
            name: name.value,
            args: tokenize(after)?.into_iter().map(|t| t.value).collect(),
        },
        _ => {
            let (body, _) = inner_command(after, 0)?;
            let commands: Vec<String> = body
                .split(" ; ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            if commands.is_empty() {
                return Err(usage("`script save` needs at least one command".into()));
            }
            Script::Save {
                name: name.value,
                commands,
            }
        }
    })
}
