//! The catalogue of every command of the shell language: its usage, what it does, its
//! section in `help`, and whether this build runs it.
//!
//! It owns the texts of `help` and `<cmd> --help`. It must not run anything; dispatch
//! lives in [`super`]. A command the language defines but this build cannot run yet is
//! listed here as unavailable, so it fails with a clear message instead of misbehaving.

/// Groups in `help`, in order.
pub const SECTIONS: [&str; 6] = [
    "Browser",
    "Reading the page",
    "Interacting",
    "JavaScript",
    "Workflow",
    "Shell",
];

/// One command of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    pub name: &'static str,
    pub section: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
    /// Extra lines for `<cmd> --help`.
    pub details: &'static str,
    pub available: bool,
}

const fn cmd(
    name: &'static str,
    section: &'static str,
    usage: &'static str,
    summary: &'static str,
    details: &'static str,
    available: bool,
) -> CommandSpec {
    CommandSpec {
        name,
        section,
        usage,
        summary,
        details,
        available,
    }
}

const B: &str = "Browser";
const R: &str = "Reading the page";
const I: &str = "Interacting";
const J: &str = "JavaScript";
const W: &str = "Workflow";
const S: &str = "Shell";

/// Every command, in `help` order.
pub const COMMANDS: &[CommandSpec] = &[
    cmd("tabs", B, "tabs [--json]", "list all tabs of all windows", "Columns: ID, title, URL, window. `*` marks the active tab of its window, `*current` the tab this session is in, `[outside allowlist]` a tab the domain allowlist keeps you from reading, `[browser page]` one domshell never reads (chrome://, devtools://, other extensions).", true),
    cmd("windows", B, "windows [--json]", "list windows with their tabs", "`(focused)` marks the focused window.", true),
    cmd("here", B, "here", "enter the active tab of the focused window", "Attaches the debugger to it, like `cd ~/tabs/<id>`.", true),
    cmd("cd", B, "cd [~ | .. | ~/tabs | ~/windows | ~/tabs/<id|pattern> | ~/windows/<id>[/<tab>] | %here%]", "change directory; entering a tab attaches to it", "A pattern matches tab titles and URLs (case-insensitive); when several tabs match, they are listed and you pick one by id.", true),
    cmd("pwd", B, "pwd", "print the current path", "", true),
    cmd("ls", B, "ls [path] [-l] [-a] [-r] [--meta] [--text] [--textlen N] [-n N] [--offset K] [--type ROLE] [--count] [--after NAME] [--before NAME] [--json]", "list a directory", "At browser level (`~`, `~/tabs`, `~/windows`) lists windows and tabs; inside a tab lists the page: `name/` directories, `[x]` interactive and `[-]` other files in long form (-l). -r adds one level below each directory. Every entry is always listed (-a changes nothing). One-letter flags combine: `ls -la`, `ls -lr`. The tree is re-read only when the page changed; `ls` says so. -n N entries from entry --offset K; a listing longer than a reply may be ends with a `[left out: …; next: ls … --offset K]` line.", true),
    cmd("open", B, "open <url> [--timeout S]  (or --url <url>)", "open a URL in a new tab and enter it", "A URL without a scheme gets https://. Only http(s) and about:blank are allowed. Waits for the page to load (default 15 s, --timeout S).", true),
    cmd("navigate", B, "navigate <url> [--timeout S]  (or --url <url>)", "load a URL in the current tab", "Same rules as `open`; the final URL after redirects must be allowed too.", true),
    cmd("goto", B, "goto <url> [--timeout S]", "same as navigate", "", true),
    cmd("back", B, "back [--timeout S]", "go back in the current tab's history", "", true),
    cmd("forward", B, "forward [--timeout S]", "go forward in the current tab's history", "", true),
    cmd("close", B, "close [tabId]", "close the current tab or the given one", "Closing the current tab moves you to ~.", true),
    cmd("refresh", B, "refresh", "re-read the current tab and return to its root", "Re-attaches the debugger if Chrome dropped it; does not reload the page.", true),
    cmd("group", B, "group [new [name] [--url URL] | attach <id> | detach | close [id] | list [--json]]", "lanes: tab groups an agent works in, apart from the user's tabs", "`group new` opens a background tab in a normal window, in a new tab group titled `🐚 <name>`, and moves this session into it: from then on `tabs`, `windows`, `cd`, `open` and every page command see and act on that lane's tabs only, and tabs the lane's pages open join it. `group attach <id>` joins a lane (each lane keeps its own place), `group detach` returns to the user's tabs, `group close` closes the lane's tabs. A lane closes by itself when the last session in it ends; a group the user renamed is the user's and stays. MCP callers pass `group_id` (\"new\", a lane id or \"shared\") instead.", true),
    cmd("cat", R, "cat <name|path> [--json]", "show an element's properties", "", true),
    cmd("text", R, "text [name|path] [-n N] [--offset K] [--links]", "the text of an element or the page", "-n N characters from character --offset K. A text longer than a reply may be is cut in the page and ends with `[left out: C more characters, L more lines …; next: text … --offset K]`.", true),
    cmd("read", R, "read [name|path] [-d N] [-n N] [--offset K] [--meta] [--text]", "an indented subtree", "-n N entries (lines) from entry --offset K; a longer subtree ends with a `[left out: …; next: …]` line.", true),
    cmd("tree", R, "tree [depth] [-n N] [--offset K]", "a box-drawing tree", "-n N entries (lines) from entry --offset K; a longer tree ends with a `[left out: …; next: …]` line.", true),
    cmd("grep", R, "grep [-r] [--content] [-n N] [--offset K] <pattern>", "find children by name, role or value", "As a pipe consumer (`cmd | grep [-n N] <pattern>`) it filters lines (and keeps the command's `[left out: …]` line). -n N matches from match --offset K.", true),
    cmd("find", R, "find [pattern] [--type ROLE] [--meta] [--text] [--content] [-n N] [--offset K] [--json]", "search the page recursively", "-n N matches from match --offset K; more than a reply may hold ends with a `[left out: …; next: …]` line (`--json`: `next_offset`, `left_out`).", true),
    cmd("extract_links", R, "extract_links [name|path] [-n N] [--offset K]", "list links as markdown", "-n N links (200 by default) from link --offset K.", true),
    cmd("extract_table", R, "extract_table <name|path> [--format markdown|csv] [-n rows] [--offset K]", "a table as markdown or CSV", "The header row, then -n N data rows from data row --offset K.", true),
    cmd("screenshot", R, "screenshot", "capture the viewport", "", true),
    cmd("diff", R, "diff [--json]", "what changed since the last action", "", false),
    cmd("wait", R, "wait <pattern> [--type ROLE] [--timeout S]", "wait for an element to appear", "", true),
    cmd("whoami", R, "whoami", "is this site logged in (cookie names only)", "", true),
    cmd("click", I, "click <name|path>", "click an element", "", true),
    cmd("focus", I, "focus <name|path>", "focus an element", "", true),
    cmd("type", I, "type <text…>", "type text into the focused element", "", true),
    cmd("key", I, "key <KeyName|char> [--modifiers ctrl,shift,alt,meta] [--activate]", "press a key", "Named keys: Enter Tab Space Escape Backspace Delete ArrowUp ArrowDown ArrowLeft ArrowRight Home End PageUp PageDown F1–F12; or one character (`key k`, `key ?`), pressed as on a US keyboard so the page's shortcuts (keydown listeners) fire. Chrome delivers trusted key events only to the tab in front: on a background tab `key` sends a synthetic event instead (default actions emulated), and --activate brings this session's tab and its window forward for the keys, then makes the tab you had before active again. The reply says which ran.", true),
    cmd("select", I, "select <name> <value…>", "choose an option of a <select>", "", true),
    cmd("scroll", I, "scroll [down|up] [N] [--window] | scroll <name>", "scroll the page or an element into view", "By N viewports (default 1): the nearest scrollable container of the current directory, else the page's main scrollable area, else the window; --window scrolls the window itself whatever containers there are. `scroll <name>` brings an element into view.", true),
    cmd("dialog", I, "dialog [accept [text] | dismiss]", "show or answer the page's JavaScript dialog", "An open alert, confirm, prompt or beforeunload dialog pauses the page: page commands then answer at once that it is open (type and message) instead of running. `dialog` shows it; `dialog accept` presses OK (a prompt gets the text, else its default text; a beforeunload lets the page go and waits for the next one); `dialog dismiss` presses Cancel (a beforeunload keeps the page).", true),
    cmd("submit", I, "submit <input> <value…> [--submit <button>]", "fill in and submit a form", "", true),
    cmd("js", J, "js <code>", "run JavaScript in the page", "", false),
    cmd("eval", J, "eval <expr>", "same as js", "", false),
    cmd("functions", J, "functions [pattern] [--json]", "list the page's global functions", "", false),
    cmd("call", J, "call <fn> [args…]", "call a global function of the page", "", false),
    cmd("watch", W, "watch <cmd> [--interval S] [--times N] [--until-change]", "repeat a command", "", false),
    cmd("for", W, "for <source-cmd> : <template with {}>", "run a template for each output line", "", false),
    cmd("each", W, "each [--pattern F] [--limit N] <cmd>", "run a command in every tab", "", false),
    cmd("script", W, "script list | save <name> <c1 ; c2> | show <name> | run <name> [args] | delete <name>", "stored command sequences", "", false),
    cmd("bookmark", W, "bookmark [name [path]] | bookmark -d <name>", "named paths for `cd @name`", "", false),
    cmd("history", S, "history [-n N] | history clear", "numbered command history (re-run one with !N)", "`!N` runs entry N again. `history` and `clear` are not recorded.", true),
    cmd("env", S, "env", "print the environment", "Variables are never expanded in commands.", true),
    cmd("export", S, "export NAME=value", "set an environment variable", "", true),
    cmd("clear", S, "clear", "clear the screen (prints nothing)", "", true),
    cmd("help", S, "help [command]", "this list, or one command's help", "", true),
    cmd("debug", S, "debug stats | raw | node <id>", "internals of the page mapping", "", false),
    cmd("connect", S, "connect <token> [--port N]", "re-point the bridge", "Not available from the shell: the bridge is configured on the extension's options page.", false),
    cmd("disconnect", S, "disconnect", "cut the bridge", "Not available from the shell: the bridge is configured on the extension's options page.", false),
];

/// The command called `name` (already lower-cased by the grammar).
pub fn find(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// `help`: every command, grouped, with the unavailable ones marked.
pub fn help_text() -> String {
    let mut lines = vec![
        "domshell: the browser as a filesystem. `<command> --help` for details; `cmd | grep x`, `cmd | head -n N` filter output.".to_string(),
        format!("A reply holds at most {} characters: a longer one ends with a `[left out: …]` line naming the next page (`-n N`, `--offset K`: characters for text, rows for extract_table, entries for the listings).", shared_protocol::MAX_OUTPUT_CHARS),
    ];
    for section in SECTIONS {
        lines.push(String::new());
        lines.push(format!("{section}:"));
        for c in COMMANDS.iter().filter(|c| c.section == section) {
            let mark = if c.available {
                ""
            } else {
                " (not available yet)"
            };
            lines.push(format!("  {:<14} {}{mark}", c.name, c.summary));
        }
    }
    lines.join("\r\n")
}

/// `<cmd> --help`.
pub fn command_help(spec: &CommandSpec) -> String {
    let mut lines = vec![
        format!("usage: {}", spec.usage),
        format!("  {}", spec.summary),
    ];
    if !spec.details.is_empty() {
        lines.push(format!("  {}", spec.details));
    }
    if !spec.available {
        lines.push("  Not available yet in this build.".into());
    }
    lines.join("\r\n")
}

/// The error for running a command this build does not have.
pub fn unavailable(spec: &CommandSpec) -> String {
    format!(
        "{}: not available yet in this build. Available now: {}.",
        spec.name,
        COMMANDS
            .iter()
            .filter(|c| c.available)
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    )
}
