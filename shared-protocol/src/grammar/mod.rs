//! The command language of `domshell_execute`: the one parser. The server classifies
//! commands with it ([`crate::tier`]) and the extension executes what it returns, so both
//! sides always agree on what a command means. A command that runs differently from how it
//! was classified is a security hole; the extension must therefore execute the structures
//! returned here ([`Line`], [`Command::parse_args`], [`Command::nested_form`],
//! [`navigation_url`]) and never re-parse command text by other rules.
//!
//! It also owns [`redact_command`], which hides typed text and tokens in command text
//! before it is logged or quoted back. It must not execute anything, do I/O or know about
//! the page: it turns text into structure and reports input it cannot understand as a
//! [`ParseError`]. It never panics.
//!
//! # Input → lines ([`split_lines`])
//!
//! MCP input holds one or more commands separated by newlines (`\r\n` counts as `\n`). Each
//! command is trimmed and blank ones are dropped. A newline does not end a command when
//!
//! * it is escaped: a backslash right before the newline joins the two lines (both the
//!   backslash and the newline disappear, as in `sh`), except inside single quotes;
//! * it is inside a quote that opened at the start of a word (`type "two\nlines"`,
//!   `type 'a\nb'`). A quote in the middle of a word, as in `don't`, never spans lines,
//!   because it is almost always an apostrophe;
//! * the command starts with `js` or `eval` and the newline is inside a JavaScript string
//!   (`'`, `"` or `` ` ``, with backslash escapes), a `/* */` comment, or unclosed
//!   brackets `( [ {`. `//` comments hide quotes and brackets up to the end of their line.
//!   So `js (() => {⏎ return 1;⏎})()` is one command.
//!
//! If what is open is never closed before the end of the input, the command ends at its
//! own newline instead of swallowing the rest of the input; parsing it then reports the
//! unclosed quote. Multi-line JavaScript outside brackets, strings or comments cannot be
//! told apart from separate commands: wrap it in `(() => { … })()` or a string.
//!
//! # Line → structure ([`parse_line`])
//!
//! 1. `!N` (digits only) is [`Line::HistoryReplay`].
//! 2. If the first word is a raw-argument command (`js eval watch for each script`), the
//!    rest of the line is its single argument, verbatim: no pipes, no quote removal.
//!    `for`/`each`/`watch`/`script` structure is read from it by [`Command::nested_form`].
//! 3. Otherwise the line is split on unquoted `|`; the first segment is the command and
//!    every later one must be `grep [-n N] <pattern>` or `head [-n N]`.
//! 4. Words: split on whitespace; `'…'` is literal; `"…"` removes the quotes and
//!    understands `\"`, `\\` and `\n` (newline), keeping any other backslash pair as
//!    written; outside quotes a backslash makes the next character literal (`\ `, `\|`,
//!    `\"`, `\\`; `\n` outside quotes is just `n`). Adjacent pieces join: `a"b c"` is
//!    `ab c`. An unterminated quote is an error that names its column.
//! 5. Command names are matched case-insensitively ([`Command::name`] is lower-cased).
//!
//! Flags: see [`Args`]. `--` ends flags, so `grep -- -x` searches for `-x`, and a negative
//! number such as `-5` is always an argument. One-letter flags are each command's own
//! (the command table, [`crate::commands`]) and combine as in `sh` (`ls -la`), except those that take a
//! value. `type` takes no flags at all: everything after it is text.

mod args;
mod flags;
mod lex;
mod nested;
mod redact;

pub use args::{is_negative_number, Args, Flag};
pub use flags::{short_flags, takes_value, ShortFlag};
pub use lex::{quote_word, split_lines, tokenize, Token};
pub use nested::{Each, ForLoop, Nested, Script, Watch};
pub use redact::redact_command;

pub(crate) use lex::next_token;

/// Deepest nesting of `for`/`each`/`watch`/`script save` inside each other.
pub const MAX_NESTING: usize = 8;

/// Lines `head` keeps when no `-n` is given.
pub const DEFAULT_HEAD_LINES: usize = 10;

/// Why a command could not be understood. Messages tell the user what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty command")]
    Empty,
    #[error(
        "unterminated {quote} quote at column {column} (near `{near}`): close it, or write a literal quote as \\{quote}"
    )]
    UnterminatedQuote {
        quote: char,
        column: usize,
        near: String,
    },
    #[error("Pipe: empty command {position} '|'; write `<command> | grep <pattern>` or `<command> | head -n N`")]
    EmptyPipeSegment { position: &'static str },
    #[error("Pipe: '{0}' not supported as pipe consumer. Use grep or head.")]
    UnsupportedConsumer(String),
    #[error("{consumer} (in a pipe): {problem}; usage: `… | grep [-n N] <pattern>` or `… | head [-n N]`")]
    BadConsumer {
        consumer: &'static str,
        problem: String,
    },
    #[error("{command}: {flag} needs a value")]
    MissingFlagValue { command: String, flag: String },
    #[error("{command}: unknown option -{letter}{} ({known}); see `{command} --help`", word.as_ref().map(|w| format!(" in {w}")).unwrap_or_default())]
    UnknownShortFlag {
        command: String,
        letter: char,
        /// The combined word the letter came in (`-lz`), when it was not alone.
        word: Option<String>,
        /// The letters the command does know, for the message.
        known: String,
    },
    #[error("{command}: -{letter} takes a value, so it cannot share a dash with other letters ({word}); write it on its own: -{letter} N")]
    CombinedValueFlag {
        command: String,
        letter: char,
        word: String,
    },
    #[error("{command}: {flag} expects {expected}, got '{value}'")]
    BadFlagValue {
        command: String,
        flag: String,
        expected: &'static str,
        value: String,
    },
    #[error("history: !{0}: event number too large")]
    HistoryNumber(String),
    #[error("{command}: {problem}; usage: {usage}")]
    Usage {
        command: &'static str,
        problem: String,
        usage: &'static str,
    },
    #[error("`{0}` is not a domshell command; `help` lists the commands")]
    UnknownCommand(String),
    #[error("in the {context}: {inner}")]
    Inside {
        context: String,
        inner: Box<ParseError>,
    },
    #[error("commands are nested more than {max} levels deep (for/each/watch/script inside each other); split the work into separate commands")]
    TooDeep { max: usize },
    #[error("a line break outside quotes at column {column} would start a second command inside this one; send each command as its own line, or quote the text that contains the line break")]
    UnquotedNewline { column: usize },
}

/// One parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `!N`: re-run history entry N (1-based). Its content is known only to the extension.
    HistoryReplay(usize),
    Pipeline(Pipeline),
}

/// A command and the filters its output is piped through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    pub command: Command,
    pub consumers: Vec<Consumer>,
}

/// A filter after `|`. Both match on lines of the command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumer {
    /// Case-insensitive substring match; keep at most `limit` matching lines.
    Grep {
        pattern: String,
        limit: Option<usize>,
    },
    /// Keep the first `lines` lines.
    Head { lines: usize },
}

/// One command: its lower-cased name, its words and the text it was parsed from.
///
/// For raw-argument commands ([`crate::commands::CommandDef::raw`]) `args` holds at most one element: the rest
/// of the line verbatim (see [`Command::rest`]). For all others it holds the words after
/// the name with quotes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub name: String,
    pub args: Vec<String>,
    /// The command as written (trimmed), without any pipe consumers.
    pub raw: String,
}

/// Parses one command line (as returned by [`split_lines`]), including everything nested
/// in it, so an `Ok` line has no hidden parse error further down.
pub fn parse_line(line: &str) -> Result<Line, ParseError> {
    parse_line_at(line, 0)
}

fn parse_line_at(line: &str, depth: usize) -> Result<Line, ParseError> {
    let line = line.trim();
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    if let Some(digits) = line.strip_prefix('!') {
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            let n = digits
                .parse::<usize>()
                .map_err(|_| ParseError::HistoryNumber(digits.to_string()))?;
            return Ok(Line::HistoryReplay(n));
        }
    }
    let pipeline = parse_pipeline(line)?;
    if !pipeline.command.is_raw() {
        reject_unquoted_newline(line)?;
    }
    pipeline.command.children_at(depth)?;
    Ok(Line::Pipeline(pipeline))
}

/// A command line never contains an unquoted line break. At the top level
/// [`split_lines`] already cut there, so one can only arrive inside another command
/// (`watch "ls⏎click x"`, `each "…"`, a `script save` body) or through an entry point that
/// skipped splitting; either way, the text after it must not ride along unchecked.
/// Raw-argument commands are exempt: `js`/`eval` hold JavaScript, and the inner commands
/// of `for`/`each`/`watch`/`script` are checked when they are parsed themselves.
fn reject_unquoted_newline(line: &str) -> Result<(), ParseError> {
    let mut pos = 0;
    loop {
        let next = next_token(line, pos)?;
        let gap_end = next.as_ref().map_or(line.len(), |t| t.start);
        if let Some(offset) = line[pos..gap_end].find('\n') {
            return Err(ParseError::UnquotedNewline {
                column: line[..pos + offset].chars().count() + 1,
            });
        }
        match next {
            Some(token) => pos = token.end,
            None => return Ok(()),
        }
    }
}

fn parse_pipeline(line: &str) -> Result<Pipeline, ParseError> {
    if let Some(first) = next_token(line, 0)? {
        if is_raw_name(&first.value) {
            return Ok(Pipeline {
                command: raw_command(line, &first),
                consumers: Vec::new(),
            });
        }
    }
    let segments = lex::split_pipes(line)?;
    let mut texts = segments.iter().map(|&(s, e)| line[s..e].trim());
    let first = texts.next().unwrap_or("");
    if first.is_empty() {
        return Err(ParseError::EmptyPipeSegment { position: "before" });
    }
    let command = command_from_segment(first)?;
    let consumers = texts
        .map(|text| {
            if text.is_empty() {
                Err(ParseError::EmptyPipeSegment { position: "after" })
            } else {
                parse_consumer(text)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Pipeline { command, consumers })
}

fn is_raw_name(word: &str) -> bool {
    crate::commands::is_raw(word)
}

fn raw_command(text: &str, first: &Token) -> Command {
    let rest = text[first.end..].trim();
    Command {
        name: first.value.to_ascii_lowercase(),
        args: if rest.is_empty() {
            Vec::new()
        } else {
            vec![rest.to_string()]
        },
        raw: text.to_string(),
    }
}

fn command_from_segment(text: &str) -> Result<Command, ParseError> {
    let Some(first) = next_token(text, 0)? else {
        return Err(ParseError::Empty);
    };
    if is_raw_name(&first.value) {
        return Ok(raw_command(text, &first));
    }
    if let Some(offset) = first.value.find('\n') {
        // A quoted "name" spanning lines is no command; refuse it rather than let a later
        // reader split it.
        return Err(ParseError::UnquotedNewline {
            column: first.value[..offset].chars().count() + 1,
        });
    }
    let args = tokenize(&text[first.end..])?
        .into_iter()
        .map(|t| t.value)
        .collect();
    Ok(Command {
        name: first.value.to_ascii_lowercase(),
        args,
        raw: text.to_string(),
    })
}

fn parse_count(command: &str, flag: &str, value: &str) -> Result<usize, ParseError> {
    value
        .parse::<usize>()
        .map_err(|_| ParseError::BadFlagValue {
            command: command.to_string(),
            flag: flag.to_string(),
            expected: "a whole number",
            value: value.to_string(),
        })
}

fn parse_consumer(text: &str) -> Result<Consumer, ParseError> {
    let words: Vec<String> = tokenize(text)?.into_iter().map(|t| t.value).collect();
    let Some((name, args)) = words.split_first() else {
        return Err(ParseError::EmptyPipeSegment { position: "after" });
    };
    match name.to_ascii_lowercase().as_str() {
        "grep" => {
            let mut limit = None;
            let mut pattern: Vec<&str> = Vec::new();
            let mut it = args.iter();
            while let Some(arg) = it.next() {
                match arg.as_str() {
                    "--" => {
                        pattern.extend(it.by_ref().map(String::as_str));
                    }
                    "-n" => {
                        let value = it.next().ok_or_else(|| ParseError::MissingFlagValue {
                            command: "grep".into(),
                            flag: "-n".into(),
                        })?;
                        limit = Some(parse_count("grep", "-n", value)?);
                    }
                    // Matching is always case-insensitive, so -i is accepted and changes nothing.
                    "-i" => {}
                    flag if flag.len() > 1
                        && flag.starts_with('-')
                        && !is_negative_number(flag) =>
                    {
                        return Err(ParseError::BadConsumer {
                            consumer: "grep",
                            problem: format!(
                                "unknown option '{flag}' (write `grep -- {flag}` to search for it)"
                            ),
                        });
                    }
                    word => pattern.push(word),
                }
            }
            if pattern.is_empty() {
                return Err(ParseError::BadConsumer {
                    consumer: "grep",
                    problem: "missing pattern".into(),
                });
            }
            Ok(Consumer::Grep {
                pattern: pattern.join(" "),
                limit,
            })
        }
        "head" => {
            let mut lines = DEFAULT_HEAD_LINES;
            let mut it = args.iter();
            while let Some(arg) = it.next() {
                if arg == "-n" {
                    let value = it.next().ok_or_else(|| ParseError::MissingFlagValue {
                        command: "head".into(),
                        flag: "-n".into(),
                    })?;
                    lines = parse_count("head", "-n", value)?;
                } else if let Some(n) = arg.strip_prefix('-').filter(|n| !n.is_empty()) {
                    lines = parse_count("head", "-N", n)?;
                } else {
                    return Err(ParseError::BadConsumer {
                        consumer: "head",
                        problem: format!("unexpected argument '{arg}'"),
                    });
                }
            }
            Ok(Consumer::Head { lines })
        }
        _ => Err(ParseError::UnsupportedConsumer(name.clone())),
    }
}

impl ParseError {
    /// The error inside every `Inside` wrapping.
    pub fn innermost(&self) -> &ParseError {
        match self {
            ParseError::Inside { inner, .. } => inner.innermost(),
            other => other,
        }
    }
}

impl Command {
    /// Takes the rest of the line verbatim instead of words.
    pub fn is_raw(&self) -> bool {
        crate::commands::find(&self.name).is_some_and(|def| def.raw)
    }

    /// The verbatim argument of a raw-argument command (`""` when there is none); for other
    /// commands, the argument words joined with single spaces.
    pub fn rest(&self) -> String {
        self.args.join(" ")
    }

    /// The command asks for its help text instead of running. The extension must print help
    /// and do nothing else whenever this is true: the classifier treats such commands as
    /// read-only.
    pub fn wants_help(&self) -> bool {
        if self.is_raw() {
            return self.rest().trim() == "--help";
        }
        if self.name == "type" {
            return self.args.len() == 1 && self.args[0] == "--help";
        }
        self.args
            .iter()
            .take_while(|a| a.as_str() != "--")
            .any(|a| a == "--help")
    }

    /// Positional arguments and flags by the generic rules of [`Args`]. `type` has no flags:
    /// all its words are text (a leading `--` is dropped). Raw-argument commands return
    /// their verbatim argument as the only positional.
    pub fn parse_args(&self) -> Result<Args, ParseError> {
        if self.is_raw() {
            return Ok(Args {
                positional_index: (0..self.args.len()).collect(),
                positional: self.args.clone(),
                flags: Vec::new(),
            });
        }
        if self.name == "type" {
            let skip = usize::from(self.args.first().is_some_and(|a| a == "--"));
            return Ok(Args {
                positional: self.args[skip..].to_vec(),
                positional_index: (skip..self.args.len()).collect(),
                flags: Vec::new(),
            });
        }
        Args::parse(&self.name, &self.args)
    }

    /// The URL this command navigates to, as written: the one URL of
    /// `open`/`navigate`/`goto` (positional, or `--url URL`), or `--url` of `group new`.
    /// The extension must open [`navigation_url`] of exactly this value.
    ///
    /// `open`/`navigate`/`goto` accept nothing else: a second URL or any other flag is an
    /// error, so no word can be read as a destination by one side and not the other.
    pub fn navigation_target(&self) -> Result<Option<String>, ParseError> {
        if self.wants_help() {
            return Ok(None);
        }
        match self.name.as_str() {
            "open" | "navigate" | "goto" => {
                let args = self.parse_args()?;
                let usage = |problem: String| ParseError::Usage {
                    command: match self.name.as_str() {
                        "open" => "open",
                        "navigate" => "navigate",
                        _ => "goto",
                    },
                    problem,
                    usage: "open|navigate|goto <url> [--timeout SECONDS]  (or --url <url>)",
                };
                // `--timeout` bounds the load wait; it names no destination.
                if let Some(flag) = args
                    .flags
                    .iter()
                    .find(|f| f.name != "--url" && f.name != "--timeout")
                {
                    return Err(usage(format!("unknown option '{}'", flag.name)));
                }
                let mut urls: Vec<String> = args.positional;
                urls.extend(
                    args.flags
                        .iter()
                        .filter(|f| f.name == "--url")
                        .filter_map(|f| f.value.clone()),
                );
                match urls.len() {
                    0 => Err(usage("missing the URL to open".into())),
                    1 => Ok(urls.pop()),
                    n => Err(usage(format!("expects one URL, got {n}"))),
                }
            }
            "group" => {
                let args = self.parse_args()?;
                let is_new = args
                    .positional
                    .first()
                    .is_some_and(|s| s.eq_ignore_ascii_case("new"));
                Ok(if is_new {
                    args.value("--url").map(str::to_string)
                } else {
                    None
                })
            }
            _ => Ok(None),
        }
    }

    /// The structure of `for`, `each`, `watch` and `script`; `None` for every other command
    /// and for `<cmd> --help`.
    pub fn nested_form(&self) -> Result<Option<Nested>, ParseError> {
        if self.wants_help() {
            return Ok(None);
        }
        let rest = self.rest();
        match self.name.as_str() {
            "for" => nested::parse_for(&rest).map(|f| Some(Nested::For(f))),
            "each" => nested::parse_each(&rest).map(|e| Some(Nested::Each(e))),
            "watch" => nested::parse_watch(&rest).map(|w| Some(Nested::Watch(w))),
            "script" => nested::parse_script(&rest).map(|s| Some(Nested::Script(s))),
            _ => Ok(None),
        }
    }

    /// The command lines this command runs, parsed: a `for` loop's source and template
    /// (with `{}` left in place), the inner command of `each`/`watch`, the commands of
    /// `script save`. Empty for everything else, including `script run`, whose commands are
    /// stored in the extension.
    pub fn nested(&self) -> Result<Vec<Line>, ParseError> {
        self.children_at(0)
    }

    fn children_at(&self, depth: usize) -> Result<Vec<Line>, ParseError> {
        let Some(form) = self.nested_form()? else {
            return Ok(Vec::new());
        };
        let children: Vec<(String, &str)> = match &form {
            Nested::For(f) => vec![
                ("`for` source".to_string(), f.source.as_str()),
                ("`for` template".to_string(), f.template.as_str()),
            ],
            Nested::Each(e) => vec![("`each` command".to_string(), e.command.as_str())],
            Nested::Watch(w) => vec![("`watch` command".to_string(), w.command.as_str())],
            Nested::Script(Script::Save { commands, .. }) => commands
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("`script save` command {}", i + 1), c.as_str()))
                .collect(),
            Nested::Script(_) => Vec::new(),
        };
        if children.is_empty() {
            return Ok(Vec::new());
        }
        if depth >= MAX_NESTING {
            return Err(ParseError::TooDeep { max: MAX_NESTING });
        }
        children
            .into_iter()
            .map(|(context, text)| {
                parse_line_at(text, depth + 1).map_err(|inner| match inner {
                    ParseError::TooDeep { .. } => inner,
                    inner => ParseError::Inside {
                        context,
                        inner: Box::new(inner),
                    },
                })
            })
            .collect()
    }
}

/// URL schemes that are complete without `//` (so `about:blank` is not prefixed).
const OPAQUE_SCHEMES: [&str; 12] = [
    "about",
    "data",
    "javascript",
    "blob",
    "mailto",
    "tel",
    "view-source",
    "filesystem",
    "chrome",
    "http",
    "https",
    "file",
];

/// The URL a navigation target stands for. `open example.com/x` means
/// `https://example.com/x`: anything that does not start with a scheme followed by `//`
/// (or with a scheme that needs no `//`, such as `about:`, `data:`, `javascript:`) gets
/// `https://` in front, so `localhost:3000` is `https://localhost:3000`. Like a browser's
/// URL parser, tabs and newlines are removed and surrounding spaces and control
/// characters trimmed, so the string checked is the string opened.
pub fn navigation_url(target: &str) -> String {
    let cleaned: String = target
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| c <= ' ');
    if has_explicit_scheme(cleaned) {
        cleaned.to_string()
    } else {
        format!("https://{cleaned}")
    }
}

fn has_explicit_scheme(url: &str) -> bool {
    let Some((scheme, after)) = url.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid
        && (after.starts_with("//")
            || OPAQUE_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
}

#[cfg(test)]
mod tests;
