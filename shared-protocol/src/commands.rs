//! The command table: every command of the language, once.
//!
//! Per command it says its name, where `help` lists it, its usage and help text, the flags
//! it accepts (and which take a value), what it needs from the server's policy, whether its
//! arguments are raw (kept verbatim for an inner command or script), whether this build has
//! it, and which part of the extension runs it. The grammar reads its flags from here, the
//! classifier its tier rule, the extension its help text, flag check and dispatch, and the
//! server the tools it offers. A command this table does not know is not a command: the
//! classifier refuses it and the extension answers "command not found".
//!
//! It must not hold behaviour: what a command does lives in its handler, and the tiers of
//! commands whose needs depend on their arguments (navigation targets, `group`'s
//! subcommands, nested commands) are worked out by [`crate::tier`].

use crate::tier::Tier;

/// `help`'s sections, in order.
pub const SECTIONS: [&str; 6] = [
    "Browser",
    "Reading the page",
    "Interacting",
    "JavaScript",
    "Workflow",
    "Shell",
];

/// One flag a command accepts, as written (`-n`, `--offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagDef {
    pub name: &'static str,
    /// It takes the next word as its value (`-n 5`).
    pub takes_value: bool,
}

impl FlagDef {
    /// A one-letter flag (`-n`), which combines with others (`-la`) unless it takes a value.
    pub fn letter(&self) -> Option<char> {
        let rest = self.name.strip_prefix('-')?;
        let mut chars = rest.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c != '-' => Some(c),
            _ => None,
        }
    }
}

/// What a command needs from the server's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierRule {
    /// Nothing beyond reading.
    Read,
    /// `tier`, because the command does what the text says (it completes "`name` …").
    Needs(Tier, &'static str),
    /// Arbitrary JavaScript in the page (write and sensitive): what the text says.
    JavaScript(&'static str),
    /// Worked out from the arguments by [`crate::tier`]: navigation targets, `group`'s
    /// subcommands, an answered dialog, nested commands.
    ByArguments,
}

/// Which part of the extension runs a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// The shell itself, no browser: `pwd`, `env`, `history`, `help`, `echo` …
    Shell,
    /// Waits without the browser (`sleep`).
    Pause,
    /// Tabs, windows and navigation.
    Browser,
    /// `ls` and `cd`: the browser's directories or the page's.
    Directory,
    /// Reading the current page.
    Reading,
    /// Acting on the current page.
    Acting,
    /// The page's JavaScript dialog.
    Dialog,
    /// Lanes (`group`), the one family that sees every lane.
    Lanes,
    /// JavaScript in the page.
    Script,
    /// Commands that run other commands (`for`, `each`, `watch`, `script`).
    Loop,
    /// Bookmarks.
    Saved,
    /// The page's console and network activity.
    Activity,
    /// Not in this build.
    Missing,
}

/// One command of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandDef {
    pub name: &'static str,
    /// One of [`SECTIONS`].
    pub section: &'static str,
    pub usage: &'static str,
    /// One line for `help`.
    pub summary: &'static str,
    /// More lines for `<cmd> --help`.
    pub details: &'static str,
    pub flags: &'static [FlagDef],
    pub tier: TierRule,
    /// The arguments are kept verbatim (JavaScript, an inner command, a script).
    pub raw: bool,
    pub family: Family,
    /// The operands of its granular MCP tool, in command-line order; `None`: no tool
    /// (shell-only commands, aliases, lanes, which the lane parameters cover).
    pub tool: Option<&'static [Operand]>,
}

/// One positional argument of a command, as a granular tool's parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operand {
    /// The parameter's name (or, for [`OperandKind::Literal`], the word itself).
    pub name: &'static str,
    pub kind: OperandKind,
    pub required: bool,
    pub about: &'static str,
}

/// How a tool parameter becomes words of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperandKind {
    /// One word, quoted as needed.
    Word,
    /// A whole number, written as one word.
    Number,
    /// Several words (a JSON array of strings), each quoted as needed.
    Words,
    /// Text written as it is (JavaScript, an inner command line): one line.
    Verbatim,
    /// A fixed word between other operands (`for`'s `:`); not a parameter.
    Literal,
}

impl CommandDef {
    /// Whether this build runs it.
    pub fn available(&self) -> bool {
        self.family != Family::Missing
    }

    /// The flag spelled `name`, if the command accepts it.
    pub fn flag(&self, name: &str) -> Option<&'static FlagDef> {
        self.flags.iter().find(|f| f.name == name)
    }

    /// Its one-letter flags.
    pub fn letters(&self) -> impl Iterator<Item = (char, bool)> + '_ {
        self.flags
            .iter()
            .filter_map(|f| f.letter().map(|c| (c, f.takes_value)))
    }
}

const fn on(name: &'static str) -> FlagDef {
    FlagDef {
        name,
        takes_value: false,
    }
}

const fn val(name: &'static str) -> FlagDef {
    FlagDef {
        name,
        takes_value: true,
    }
}

const JSON: FlagDef = on("--json");
const N: FlagDef = val("-n");
const OFFSET: FlagDef = val("--offset");
const TIMEOUT: FlagDef = val("--timeout");
/// An action's reply without its account of what changed.
const QUIET: FlagDef = on("--quiet");
const URL: FlagDef = val("--url");

const B: &str = SECTIONS[0];
const R: &str = SECTIONS[1];
const I: &str = SECTIONS[2];
const J: &str = SECTIONS[3];
const W: &str = SECTIONS[4];
const S: &str = SECTIONS[5];

#[allow(clippy::too_many_arguments)]
const fn row(
    name: &'static str,
    section: &'static str,
    family: Family,
    tier: TierRule,
    flags: &'static [FlagDef],
    usage: &'static str,
    summary: &'static str,
    details: &'static str,
) -> CommandDef {
    CommandDef {
        name,
        section,
        usage,
        summary,
        details,
        flags,
        tier,
        raw: false,
        family,
        tool: None,
    }
}

/// The same row with a granular tool taking `operands`.
const fn tool(mut def: CommandDef, operands: &'static [Operand]) -> CommandDef {
    def.tool = Some(operands);
    def
}

const fn arg(name: &'static str, kind: OperandKind, about: &'static str) -> Operand {
    Operand {
        name,
        kind,
        required: false,
        about,
    }
}

const fn must(name: &'static str, kind: OperandKind, about: &'static str) -> Operand {
    Operand {
        name,
        kind,
        required: true,
        about,
    }
}

const NAME: Operand = must("name", OperandKind::Word, "an entry's name or path");
const NAME_OPT: Operand = arg(
    "name",
    OperandKind::Word,
    "an entry's name or path (default: here)",
);
const PATTERN: Operand = must("pattern", OperandKind::Word, "text or a regex");
const PATTERN_OPT: Operand = arg("pattern", OperandKind::Word, "text or a regex");
const URL_ARG: Operand = must("url", OperandKind::Word, "the address");
const NONE: &[Operand] = &[];

/// The same row with raw arguments.
const fn raw(mut def: CommandDef) -> CommandDef {
    def.raw = true;
    def
}

const fn write(what: &'static str) -> TierRule {
    TierRule::Needs(Tier::Write, what)
}

use Family::{
    Acting, Activity, Browser, Dialog, Directory, Lanes, Loop, Missing, Pause, Reading, Saved,
    Script, Shell,
};
use OperandKind::{Number, Verbatim, Word, Words};
use TierRule::{ByArguments, JavaScript, Read};

/// Every command, in `help` order.
pub const COMMANDS: &[CommandDef] = &[
    tool(row("tabs", B, Browser, Read, &[JSON], "tabs [--json]", "list all tabs of all windows", "Columns: ID, title, URL, window. `*` marks the active tab of its window, `*current` the tab this session is in, `[outside allowlist]` a tab the domain allowlist keeps you from reading, `[browser page]` one domshell never reads (chrome://, devtools://, other extensions)."), NONE),
    tool(row("windows", B, Browser, Read, &[JSON], "windows [--json]", "list windows with their tabs", "`(focused)` marks the focused window."), NONE),
    tool(row("here", B, Browser, Read, &[], "here", "enter the active tab of the focused window", "Attaches the debugger to it, like `cd ~/tabs/<id>`."), NONE),
    tool(row("cd", B, Directory, Read, &[], "cd [~ | .. | ~/tabs | ~/windows | ~/tabs/<id|pattern> | ~/windows/<id>[/<tab>] | %here%]", "change directory; entering a tab attaches to it", "A pattern matches tab titles and URLs (case-insensitive); when several tabs match, they are listed and you pick one by id."), &[arg("path", Word, "where to go (default: ~)")]),
    tool(row("pwd", B, Shell, Read, &[], "pwd", "print the current path", ""), NONE),
    tool(row("ls", B, Directory, Read, &[on("-l"), on("--long"), on("-a"), on("--all"), on("-r"), on("--meta"), on("--text"), val("--textlen"), N, OFFSET, val("--type"), on("--count"), val("--after"), val("--before"), JSON], "ls [path] [-l|--long] [-a|--all] [-r] [--meta] [--text] [--textlen N] [-n N] [--offset K] [--type ROLE] [--count] [--after NAME] [--before NAME] [--json]", "list a directory", "At browser level (`~`, `~/tabs`, `~/windows`) lists windows and tabs; inside a tab lists the page: `name/` directories, `[x]` interactive and `[-]` other files in long form (-l). -r adds one level below each directory. Every entry is always listed (-a changes nothing). One-letter flags combine: `ls -la`, `ls -lr`. --textlen N caps each entry's --text at N characters. The tree is re-read only when the page changed; `ls` says so. -n N entries from entry --offset K; a listing longer than a reply may be ends with a `[left out: …; next: ls … --offset K]` line."), &[arg("path", Word, "the directory (default: here)")]),
    tool(row("open", B, Browser, ByArguments, &[TIMEOUT, URL], "open <url> [--timeout S]  (or --url <url>)", "open a URL in a new tab and enter it", "A URL without a scheme gets https://. Only http(s) and about:blank are allowed. Waits for the page to load (default 15 s, --timeout S)."), &[URL_ARG]),
    tool(row("navigate", B, Browser, ByArguments, &[TIMEOUT, URL], "navigate <url> [--timeout S]  (or --url <url>)", "load a URL in the current tab", "Same rules as `open`; the final URL after redirects must be allowed too."), &[URL_ARG]),
    row("goto", B, Browser, ByArguments, &[TIMEOUT, URL], "goto <url> [--timeout S]  (or --url <url>)", "same as navigate", ""),
    tool(row("back", B, Browser, TierRule::Needs(Tier::Navigate, "navigates the tab through its history"), &[TIMEOUT], "back [--timeout S]", "go back in the current tab's history", ""), NONE),
    tool(row("forward", B, Browser, TierRule::Needs(Tier::Navigate, "navigates the tab through its history"), &[TIMEOUT], "forward [--timeout S]", "go forward in the current tab's history", ""), NONE),
    tool(row("close", B, Browser, write("closes a tab"), &[], "close [tabId]", "close the current tab or the given one", "Closing the current tab moves you to ~."), &[arg("tab_id", Number, "the tab (default: the current one)")]),
    tool(row("refresh", B, Browser, Read, &[], "refresh", "re-read the current tab and return to its root", "Re-attaches the debugger if Chrome dropped it; does not reload the page."), NONE),
    row("group", B, Lanes, ByArguments, &[URL, JSON], "group [new [name] [--url URL] | attach <id> | detach | close [id] | list [--json]]", "lanes: tab groups an agent works in, apart from the user's tabs", "`group new` opens a background tab in a normal window, in a new tab group titled `🐚 <name>`, and moves this session into it: from then on `tabs`, `windows`, `cd`, `open` and every page command see and act on that lane's tabs only, and tabs the lane's pages open join it. `group attach <id>` joins a lane (each lane keeps its own place), `group detach` returns to the user's tabs, `group close` closes the lane's tabs. A lane closes by itself when the last session in it ends; a group the user renamed is the user's and stays. MCP callers pass `group_id` (\"new\", a lane id or \"shared\") instead."),
    tool(row("cat", R, Reading, Read, &[JSON], "cat <name|path> [--json]", "show an element's properties", ""), &[NAME]),
    tool(row("text", R, Reading, Read, &[N, OFFSET, on("--links")], "text [name|path] [-n N] [--offset K] [--links]", "the text of an element or the page", "-n N characters from character --offset K. A text longer than a reply may be is cut in the page and ends with `[left out: C more characters, L more lines …; next: text … --offset K]`."), &[NAME_OPT]),
    tool(row("read", R, Reading, Read, &[val("-d"), N, OFFSET, on("--meta"), on("--text"), val("--textlen")], "read [name|path] [-d N] [-n N] [--offset K] [--meta] [--text] [--textlen N]", "an indented subtree", "-d N levels deep. -n N entries (lines) from entry --offset K; a longer subtree ends with a `[left out: …; next: …]` line."), &[NAME_OPT]),
    tool(row("tree", R, Reading, Read, &[N, OFFSET], "tree [depth] [-n N] [--offset K]", "a box-drawing tree", "-n N entries (lines) from entry --offset K; a longer tree ends with a `[left out: …; next: …]` line."), &[arg("depth", Number, "levels (default 2)")]),
    tool(row("grep", R, Reading, Read, &[on("-r"), on("--content"), N, OFFSET], "grep [-r] [--content] [-n N] [--offset K] <pattern>", "find children by name, role or value", "As a pipe consumer (`cmd | grep [-n N] <pattern>`) it filters lines (and keeps the command's `[left out: …]` line). -n N matches from match --offset K."), &[PATTERN]),
    tool(row("find", R, Reading, Read, &[val("--type"), on("--meta"), on("--text"), val("--textlen"), on("--content"), N, OFFSET, JSON], "find [pattern] [--type ROLE] [--meta] [--text] [--textlen N] [--content] [-n N] [--offset K] [--json]", "search the page recursively", "-n N matches from match --offset K; more than a reply may hold ends with a `[left out: …; next: …]` line (`--json`: `next_offset`, `left_out`)."), &[PATTERN_OPT]),
    tool(row("diff", R, Reading, Read, &[JSON], "diff [--json]", "what changed here since your last look", "The entries of the current directory (four levels, as far as they were read) added (+), removed (-) or changed (~: label, value, checked) since this session last listed, read or acted here, keyed by their names; across a reload or navigation it says the document is new instead. Actions (click, type, key, select, scroll, submit) end their reply with the same account, so `diff` is for changes the page made on its own. --json: one object with added, removed and changed entries."), NONE),
    tool(row("extract_links", R, Reading, Read, &[N, OFFSET], "extract_links [name|path] [-n N] [--offset K]", "list links as markdown", "-n N links (200 by default) from link --offset K."), &[NAME_OPT]),
    tool(row("extract_table", R, Reading, Read, &[val("--format"), N, OFFSET], "extract_table <name|path> [--format markdown|csv] [-n N] [--offset K]", "a table as markdown or CSV", "The header row, then -n N data rows from data row --offset K."), &[must("name", Word, "the table's name or path")]),
    tool(row("screenshot", R, Acting, Read, &[on("--full"), val("--max-width")], "screenshot [name] [--full] [--max-width N]", "capture the viewport, the whole page or one element", "A JPEG at most --max-width pixels wide (1280 by default; never enlarged), re-encoded and then scaled down until it is under 400 KB; --full is the whole page (16,000 CSS pixels tall at most), a name one element's box (scrolled into view). The reply says its size."), &[NAME_OPT]),
    tool(row("pdf", R, Acting, Read, &[on("--landscape"), on("--background")], "pdf [--landscape] [--background]", "print the page to PDF", "The whole page as Chrome prints it (--background with background colours and images), returned as an embedded PDF resource (8 MB at most)."), NONE),
    tool(row("wait", R, Acting, Read, &[val("--type"), on("--gone"), on("--idle"), URL, TIMEOUT], "wait <pattern> [--type ROLE] [--gone] [--timeout S] | wait --idle [--timeout S] | wait --url <pattern> [--timeout S]", "wait for an element to appear (or go), the network to rest, or the URL", "`wait <pattern>` until an element matches (--gone: until none does); --idle until no request has been in flight for 500 ms (a request open for 10 s, a long poll, no longer counts); --url until the tab's URL contains the pattern. 5 s by default (--timeout S, 30 at most), within the call's budget."), &[PATTERN_OPT]),
    tool(row("console", R, Activity, Read, &[N, val("--level"), on("--clear"), JSON], "console [-n N] [--level error|warn|info|debug] [--clear] [--json]", "the page's console messages and uncaught errors", "What the current tab logged since domshell attached to it (200 kept per tab): the last -n N (50 by default), --level and more serious only; --clear empties the list after showing it."), NONE),
    tool(row("network", R, Activity, ByArguments, &[N, on("--failed"), val("--type"), JSON], "network [-n N] [--failed] [--type TYPE] [--json] | network body <n>", "the page's requests: method, status, type, URL, size, time", "The current tab's requests since domshell attached to it (300 kept per tab), numbered; --failed only those that failed or got an HTTP error, --type document|xhr|fetch|script|stylesheet|image… only that type. Requests to hosts outside the domain allowlist are counted, not shown. `network body <n>` shows request n's response body (sensitive tier: a body can hold credentials)."), NONE),
    tool(row("downloads", R, Activity, Read, &[N, TIMEOUT, JSON], "downloads [-n N] [--json] | downloads wait [--timeout S]", "files this session's actions downloaded", "Downloads a click (or another action) of this session started within 10 s, with their state, size and where Chrome put them (downloads the person started are not listed); `downloads wait` waits for the last one to finish (30 s by default). Nothing is opened."), NONE),
    tool(row("whoami", R, Acting, TierRule::Needs(Tier::Sensitive, "reads the page's cookies"), &[], "whoami", "is this site logged in (cookie names only)", ""), NONE),
    tool(row("click", I, Acting, write("clicks in the page"), &[QUIET], "click <name|path> [--quiet]", "click an element", "A trusted mouse click at the element's centre once it is scrolled into view and not covered (else the DOM's click()); a navigation it starts is waited for. The reply ends with what changed: a new page (its title and address), else the entries of the current directory added (+), removed (-) or changed (~), at most 10 lines (`diff` lists them all); --quiet leaves it out."), &[NAME]),
    tool(row("focus", I, Acting, write("moves keyboard focus in the page"), &[], "focus <name|path>", "focus an element", ""), &[NAME]),
    tool(row("type", I, Acting, write("types into the page"), &[], "type <text…>", "type text into the focused element", "The reply ends with what changed: a new page (its title and address), else the entries of the current directory added (+), removed (-) or changed (~), at most 10 lines (`diff` lists them all). Every word is text, so `type` has no --quiet."), &[must("text", Word, "what to type")]),
    tool(row("key", I, Acting, write("presses keys in the page"), &[val("--modifiers"), on("--activate"), QUIET], "key <KeyName|char> [--modifiers ctrl,shift,alt,meta] [--activate] [--quiet]", "press a key", "Named keys: Enter Tab Space Escape Backspace Delete ArrowUp ArrowDown ArrowLeft ArrowRight Home End PageUp PageDown F1–F12; or one character (`key k`, `key ?`), pressed as on a US keyboard so the page's shortcuts (keydown listeners) fire. Chrome delivers trusted key events only to the tab in front: on a background tab `key` sends a synthetic event instead (default actions emulated), and --activate brings this session's tab and its window forward for the keys, then makes the tab you had before active again. The reply says which ran, and ends with what changed, as `click`'s does (--quiet: not)."), &[must("key", Word, "a key name (Enter, Tab, ArrowDown …) or one character")]),
    tool(row("select", I, Acting, write("changes a form field"), &[QUIET], "select <name> <value…> [--quiet]", "choose an option of a <select>", "The reply ends with what changed: a new page (its title and address), else the entries of the current directory added (+), removed (-) or changed (~), at most 10 lines (`diff` lists them all); --quiet leaves it out."), &[NAME, must("value", Word, "the option's label or value")]),
    tool(row("scroll", I, Acting, write("scrolls the page"), &[on("--window"), QUIET], "scroll [down|up] [N] [--window] | scroll <name> [--quiet]", "scroll the page or an element into view", "By N viewports (default 1): the nearest scrollable container of the current directory, else the page's main scrollable area, else the window; --window scrolls the window itself whatever containers there are. `scroll <name>` brings an element into view. The reply ends with what changed, as `click`'s does (--quiet: not)."), &[arg("target", Word, "down, up or an element to bring into view"), arg("amount", Number, "viewports (default 1)")]),
    tool(row("upload", I, Acting, ByArguments, &[], "upload <input> <file…>", "attach local files to a file input", "The input is a file input, or the button or label that opens one (the input in the same form or container is used, hidden ones too). Files are read by the server from the directories its --upload-dir names (paths relative to the first; symlinks resolved; 10 MB in all) and given to the page as the user's choice would be: the input's files are set and it gets input and change events. Its own line only (not inside loops or scripts)."), &[must("input", Word, "the file input, or the button that opens it"), must("files", Words, "paths in an --upload-dir")]),
    tool(row("dialog", I, Dialog, ByArguments, &[], "dialog [accept [text] | dismiss]", "show or answer the page's JavaScript dialog", "An open alert, confirm, prompt or beforeunload dialog pauses the page: page commands then answer at once that it is open (type and message) instead of running. `dialog` shows it; `dialog accept` presses OK (a prompt gets the text, else its default text; a beforeunload lets the page go and waits for the next one); `dialog dismiss` presses Cancel (a beforeunload keeps the page)."), &[arg("action", Word, "accept or dismiss (omitted: show the dialog)"), arg("text", Word, "a prompt's answer")]),
    tool(row("submit", I, Acting, write("fills in and submits a form"), &[val("--submit"), QUIET], "submit <input> <value…> [--submit <button>] [--quiet]", "fill in and submit a form", "The reply ends with what changed: a new page (its title and address), else the entries of the current directory added (+), removed (-) or changed (~), at most 10 lines (`diff` lists them all); --quiet leaves it out."), &[must("input", Word, "the field's name"), must("value", Word, "what to fill in")]),
    tool(raw(row("js", J, Script, JavaScript("runs arbitrary JavaScript"), &[], "js <code>", "run JavaScript in the page", "In the page's own world, in the frame of the current directory. At the top frame it runs as the DevTools console runs it (statements, `let`, top-level `await`; the last value is the answer); in a child frame the code is an expression (statements go in `(() => { …; return x })()`). A promise is awaited. Strings come back as they are, other values as JSON. Stopped after 10 s (an endless loop too): the page stays usable. The rest of the line is the code, verbatim (no pipes, no quoting).")), &[must("code", Verbatim, "JavaScript, one line")]),
    tool(raw(row("eval", J, Script, JavaScript("runs arbitrary JavaScript"), &[], "eval <code>", "same as js", "")), &[must("expression", Verbatim, "JavaScript, one line")]),
    tool(row("functions", J, Script, Read, &[JSON], "functions [pattern] [--json]", "list the page's global functions", "The page's own functions (the browser's built-ins left out), with their parameters; --json gives `[{name, arity, params}]`."), &[PATTERN_OPT]),
    tool(row("call", J, Script, JavaScript("calls a page function"), &[], "call <fn> [args…]", "call a global function of the page", "Each argument is read as JSON when it is JSON (`3`, `true`, `{\"a\":1}`), else passed as a string. The answer is shown like `js`'s."), &[must("function", Word, "a global function's name"), arg("args", Words, "its arguments (JSON words or strings)")]),
    tool(raw(row("watch", W, Loop, ByArguments, &[val("--interval"), val("--times"), on("--until-change")], "watch <cmd> [--interval S] [--times N] [--until-change]", "repeat a command", "Runs it --times N times (5 by default, 100 at most), --interval S apart (2 s by default, 0.5 at least), within the call's budget; --until-change stops at the first output that differs from the first run's. Quote a command with flags of its own: watch \"ls -l\".")), &[must("command", Word, "the command to repeat")]),
    tool(raw(row("for", W, Loop, ByArguments, &[], "for <source-cmd> : <template with {}>", "run a template for each output line", "Runs the source, then the template once per line of its output with `{}` replaced by the line (100 lines at most), in order; one failing run does not stop the others, and the reply says how many failed.")), &[must("source", Verbatim, "the command whose output lines are the items"), must(":", OperandKind::Literal, ""), must("template", Verbatim, "the command run per item, {} replaced by it")]),
    tool(raw(row("each", W, Loop, ByArguments, &[val("--pattern"), val("--limit")], "each [--pattern P] [--limit N] <cmd>", "run a command in every tab", "Every tab this session may see (its lane's, or yours outside every lane) whose title or URL contains P, --limit N of them (20 by default, 100 at most); it enters each, runs the command and comes back to where you were.")), &[must("command", Word, "the command run in each tab")]),
    tool(raw(row("script", W, Loop, ByArguments, &[], "script list | save <name> <c1 ; c2> | show <name> | run <name> [args] | delete <name>", "stored command sequences", "Commands are separated by ` ; `. In them `$1`…`$N` are run's arguments, `$0` the script's name and `$#` how many arguments there are. `run` stops at the first command that fails. Scripts are kept in the browser profile: they survive restarts and every session shares them (50 scripts of 50 commands at most).")), &[must("action", Word, "list, save, show, run or delete"), arg("name", Word, "the script"), arg("commands", Word, "for save: commands separated by ' ; '"), arg("args", Words, "for run: its arguments")]),
    row("bookmark", W, Saved, Read, &[val("-d")], "bookmark [name [path]] | bookmark -d <name>", "named paths for `cd @name`", "`bookmark name` saves where you are, `bookmark name path` a path; `cd @name` goes there. Kept in the browser profile (100 at most)."),
    row("history", S, Shell, Read, &[N], "history [-n N] | history clear", "numbered command history (re-run one with !N)", "`!N` runs entry N again. `history` and `clear` are not recorded."),
    row("env", S, Shell, Read, &[], "env", "print the environment", "Variables are never expanded in commands."),
    row("export", S, Shell, Read, &[], "export NAME=value", "set an environment variable", ""),
    row("echo", S, Shell, Read, &[], "echo [text…]", "print its words", "Words are printed as parsed (quotes removed), separated by one space."),
    row("sleep", S, Pause, Read, &[], "sleep <seconds>", "wait, doing nothing", "At most the call's budget allows; a cancelled call stops it."),
    row("clear", S, Shell, Read, &[], "clear", "clear the screen (prints nothing)", ""),
    row("help", S, Shell, Read, &[], "help [command]", "this list, or one command's help", ""),
    row("debug", S, Reading, Read, &[JSON, N, OFFSET], "debug stats [--json] | raw [name] [-n N] [--offset K] | node <name|path|AX id>", "internals of the page mapping", "`stats`: entries, AX nodes and frames kept for this tab, whether this command's tree was kept or read again, and the last tree read's DevTools calls, bytes and timings. `raw`: the AX record behind each entry of a directory (JSON, one per line). `node`: one entry's record."),
    row("connect", S, Missing, ByArguments, &[val("--port")], "connect <token> [--port N]", "re-point the bridge", "Not available from the shell: the bridge is configured on the extension's options page."),
    row("disconnect", S, Missing, write("cuts the extension's bridge to this server"), &[], "disconnect", "cut the bridge", "Not available from the shell: the bridge is configured on the extension's options page."),
];

/// The command called `name` (lower case, as the grammar gives it).
pub fn find(name: &str) -> Option<&'static CommandDef> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Whether `name` (any case) is a raw-argument command.
pub fn is_raw(name: &str) -> bool {
    COMMANDS
        .iter()
        .any(|c| c.raw && c.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_lower_case_and_sections_known() {
        for (i, c) in COMMANDS.iter().enumerate() {
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(
                COMMANDS[..i].iter().all(|o| o.name != c.name),
                "{} twice",
                c.name
            );
            assert!(SECTIONS.contains(&c.section), "{}", c.name);
            assert!(c.usage.starts_with(c.name), "{}: {}", c.name, c.usage);
        }
    }

    #[test]
    fn every_flag_is_in_its_usage_and_every_usage_flag_in_the_row() {
        for c in COMMANDS {
            for f in c.flags {
                // `-l` may be documented as `-l|--long`, so the flag must stand as a word.
                let documented = c
                    .usage
                    .split(|ch: char| ch.is_whitespace() || "[]|()".contains(ch))
                    .any(|w| w == f.name);
                assert!(
                    documented,
                    "{}: {} is missing from `{}`",
                    c.name, f.name, c.usage
                );
            }
            for word in c
                .usage
                .split(|ch: char| ch.is_whitespace() || "[]|()".contains(ch))
                .filter(|w| w.starts_with('-') && w.len() > 1)
            {
                assert!(
                    c.flag(word).is_some(),
                    "{}: usage shows {word}, which the row lacks",
                    c.name
                );
            }
        }
    }

    #[test]
    fn one_letter_flags_are_told_apart_from_long_ones() {
        assert_eq!(N.letter(), Some('n'));
        assert_eq!(JSON.letter(), None);
        assert_eq!(on("--").letter(), None);
        let ls = find("ls").unwrap();
        let letters: Vec<char> = ls.letters().map(|(c, _)| c).collect();
        assert_eq!(letters, ['l', 'a', 'r', 'n']);
        assert!(is_raw("JS") && is_raw("for") && !is_raw("ls"));
    }
}
