//! The shell kernel: runs one command line of a session and returns its output.
//!
//! Lines are parsed only by [`shared_protocol::grammar`], the parser the server classifies
//! with, so a command runs exactly as it was judged. The kernel owns dispatch, pipes
//! (`| grep`, `| head`), `!N` replay and history recording; the commands live in
//! [`builtins`] (no browser needed) and [`navigation`] (tabs, windows, navigation).
//!
//! It is sans-IO: everything Chrome does goes through the [`Browser`] port, which the
//! service-worker glue implements over `chrome.*` and tests implement in memory. It must
//! not touch `chrome.*`, storage, sockets or clocks itself; session state comes in as a
//! `&mut Session` and the glue persists it afterwards.
//!
//! Page commands (`ls` inside a tab, `cd` into page directories, `find`, `text`, `click`…)
//! plug in here: add the dispatch arm, call [`navigation::require_page`] first (it checks
//! the tab still exists, reports a lost debugger connection once, refuses internal pages
//! and tabs outside the domain allowlist, and attaches), then work on the returned tab.

/// A page-side script of `js/` as the build copied it (without its comment lines, see the
/// crate's build script).
macro_rules! page_js {
    ($file:literal) => {
        include_str!(concat!(env!("OUT_DIR"), "/js/", $file))
    };
}

pub mod access;
pub mod account;
pub mod activity;
pub mod bounds;
pub mod browser;
pub mod builtins;
pub mod capture;
pub mod cdp;
pub mod commands;
pub mod complete;
pub mod confined;
pub mod deadline;
pub mod debug;
pub mod dialog;
pub mod dom;
pub mod downloads;
pub mod effects;
pub mod format;
pub mod group;
pub mod interact;
pub mod javascript;
pub mod keys;
pub mod lanes;
pub mod navigation;
pub mod observe;
pub mod page;
pub mod reading;
pub mod saved;
pub mod session;
pub mod sort;
pub mod workflow;

#[cfg(test)]
mod bounds_tests;
#[cfg(test)]
mod dialog_tests;
#[cfg(test)]
mod dom_tests;
#[cfg(test)]
mod fake;
#[cfg(test)]
mod lane_tests;
#[cfg(test)]
mod lazy_tests;
#[cfg(test)]
mod page_tests;
#[cfg(test)]
mod reader_tests;
#[cfg(test)]
mod slice_tests;
#[cfg(test)]
mod tests;

use shared_protocol::commands::Family;
use shared_protocol::grammar::{parse_line, Command, Consumer, Line, Pipeline};

use self::access::DomainList;
pub use self::browser::Browser;
pub use self::session::Session;

/// How long navigation commands wait for a page by default.
pub const DEFAULT_LOAD_TIMEOUT_MS: u64 = 15_000;
/// The most a `--timeout` may ask for.
pub const MAX_LOAD_TIMEOUT_MS: u64 = 60_000;
/// What is kept back from the server's deadline so a reply still arrives in time.
const DEADLINE_MARGIN_MS: u64 = 2_000;
/// The shortest wait the kernel will plan, however close the deadline.
const MIN_WAIT_MS: u64 = 500;

/// What one command may do and how long it may wait, from its `EXECUTE` frame.
#[derive(Debug, Clone)]
pub struct Context {
    pub domains: DomainList,
    /// The default and the cap for page-load waits.
    pub load_timeout_ms: u64,
    /// The longest wait the server's deadline allows.
    pub wait_cap_ms: u64,
    /// The page trees of attached tabs; the glue passes the worker's shared cache.
    pub pages: page::PageCache,
    /// The remote objects and isolated worlds page commands create, released after each
    /// command line.
    pub objects: dom::Objects,
    /// The lanes of the worker, shared by all sessions; the glue passes the worker's book.
    pub lanes: group::LaneCell,
    /// The session's name (its MCP session key), recorded as a lane's owner or member.
    pub session_name: String,
    /// Who the session is to the person watching (the MCP client's label), recorded on the
    /// lanes it mints.
    pub agent: String,
    /// The lane parameters of the `EXECUTE`, applied before the line runs.
    pub lane_request: group::LaneRequest,
    /// Wall-clock time as the command started (lane ages), from the glue.
    pub now_ms: u64,
    /// How many loops (`for`, `each`, `watch`) the running line is inside.
    pub depth: std::cell::Cell<usize>,
    /// Bookmarks and scripts, one book per profile; the glue passes the worker's.
    pub saved: saved::SavedCell,
    /// Where loops report how far they are; the glue sends it on as `PROGRESS`.
    pub progress: ProgressHook,
    /// The downloads sessions' actions started; the glue passes the worker's book.
    pub downloads: downloads::DownloadCell,
    /// For `upload`: the files the server read and sent with the line.
    pub files: Vec<shared_protocol::frame::UploadFile>,
}

/// Where a running command says how far it is: items done, of how many, and what (`each:
/// tab 3 of 5`). Reports are hints for a person or an agent waiting; nothing depends on
/// them, and the glue may drop some (it sends at most a few a second).
#[derive(Clone, Default)]
pub struct ProgressHook(Option<std::rc::Rc<ReportFn>>);

/// Items done (from 0), of how many, and what.
type ReportFn = dyn Fn(u64, Option<u64>, &str);

impl ProgressHook {
    pub fn new(report: impl Fn(u64, Option<u64>, &str) + 'static) -> Self {
        Self(Some(std::rc::Rc::new(report)))
    }

    pub fn report(&self, done: u64, total: Option<u64>, message: &str) {
        if let Some(report) = &self.0 {
            report(done, total, message);
        }
    }
}

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ProgressHook(on)"
        } else {
            "ProgressHook(off)"
        })
    }
}

impl Context {
    /// A context for a command with the server's allowlist and its deadline (if any).
    pub fn new(allowed_domains: &[String], deadline_ms: Option<u64>) -> Context {
        let wait_cap_ms = deadline_ms
            .map(|d| d.saturating_sub(DEADLINE_MARGIN_MS).max(MIN_WAIT_MS))
            .unwrap_or(MAX_LOAD_TIMEOUT_MS)
            .min(MAX_LOAD_TIMEOUT_MS);
        Context {
            domains: DomainList::new(allowed_domains),
            load_timeout_ms: DEFAULT_LOAD_TIMEOUT_MS.min(wait_cap_ms),
            wait_cap_ms,
            pages: page::PageCache::default(),
            objects: dom::Objects::default(),
            lanes: Default::default(),
            session_name: String::new(),
            agent: String::new(),
            lane_request: group::LaneRequest::Keep { open: None },
            now_ms: 0,
            depth: Default::default(),
            saved: Default::default(),
            progress: Default::default(),
            downloads: Default::default(),
            files: Vec::new(),
        }
    }

    /// The same context in `session`'s name, keeping lanes in `lanes`, with the `EXECUTE`'s
    /// lane parameters, at wall-clock `now_ms`.
    pub fn with_lanes(
        mut self,
        lanes: group::LaneCell,
        session_name: &str,
        lane_request: group::LaneRequest,
        now_ms: u64,
    ) -> Context {
        self.lanes = lanes;
        self.session_name = session_name.to_string();
        self.lane_request = lane_request;
        self.now_ms = now_ms;
        self
    }

    /// The same context for a session that is `agent` to the person watching its lanes.
    pub fn with_agent(mut self, agent: &str) -> Context {
        self.agent = agent.to_string();
        self
    }

    /// The same context keeping bookmarks and scripts in `saved`.
    pub fn with_saved(mut self, saved: saved::SavedCell) -> Context {
        self.saved = saved;
        self
    }

    /// The same context carrying the files of an `upload` line.
    pub fn with_files(mut self, files: Vec<shared_protocol::frame::UploadFile>) -> Context {
        self.files = files;
        self
    }

    /// The same context keeping downloads in `downloads`.
    pub fn with_downloads(mut self, downloads: downloads::DownloadCell) -> Context {
        self.downloads = downloads;
        self
    }

    /// The same context reporting loops' progress to `progress`.
    pub fn with_progress(mut self, progress: ProgressHook) -> Context {
        self.progress = progress;
        self
    }

    /// A loop's report that it starts `unit` `done + 1` of `total` (`for: item 2 of 5`),
    /// when it is the outermost loop (inner loops' items would make the count jump back and
    /// forth).
    pub(crate) fn report_item(&self, loop_name: &str, unit: &str, done: usize, total: usize) {
        if self.depth.get() == 1 {
            let message = format!("{loop_name}: {unit} {} of {total}", done + 1);
            self.progress
                .report(done as u64, Some(total as u64), &message);
        }
    }

    /// The same context reading and keeping trees in `pages`.
    pub fn with_pages(mut self, pages: page::PageCache) -> Context {
        self.pages = pages;
        self
    }
}

/// A command's outcome as it goes into `RESULT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub ok: bool,
    pub output: String,
    /// The lane the session is in after the line (`None`: the user's tabs).
    pub lane: Option<i64>,
}

impl Reply {
    /// The reply of a command `CANCEL` stopped while it ran (the server no longer waits for
    /// it; it is sent so the exchange stays complete).
    pub fn cancelled() -> Reply {
        Reply {
            ok: false,
            output: "cancelled: the command was stopped before it finished".into(),
            lane: None,
        }
    }

    fn from_result(result: Result<String, String>) -> Reply {
        match result {
            Ok(output) => Reply {
                ok: true,
                output,
                lane: None,
            },
            Err(output) => Reply {
                ok: false,
                output,
                lane: None,
            },
        }
    }
}

/// Commands that are not written into the history.
const UNRECORDED: [&str; 2] = ["history", "clear"];

/// Runs one command line (as the server split it) in `session`, then releases the remote
/// objects it made.
pub async fn execute<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    line: &str,
) -> Reply {
    let reply = execute_keeping_objects(session, browser, ctx, line).await;
    ctx.objects.release(browser).await;
    reply
}

/// [`execute`] without the release: the caller releases `ctx.objects` once it has sent the
/// reply. After an action the renderer is busy with the page's own work (a 50k-node page
/// lays itself out again for tens of milliseconds), and a reply that waited for the release
/// would wait for that. A command cancelled or out of time is released the same way, with
/// no deadline of its own to miss.
pub async fn execute_keeping_objects<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    line: &str,
) -> Reply {
    // The deadline is fixed here, as the command starts; everything below takes what is
    // left of it.
    let browser = &deadline::DeadlineBrowser::new(browser, ctx.wait_cap_ms);
    // The lane comes first: a line sent with `group_id: "new"` runs in the new lane, and
    // the reply names the lane really used, whatever the line did.
    let mut reply = match group::prepare(session, browser, ctx).await {
        // A mint that failed names no lane: the line ran nowhere.
        Err(refusal) if matches!(ctx.lane_request, group::LaneRequest::New { .. }) => {
            return Reply::from_result(Err(refusal));
        }
        Err(refusal) => Reply::from_result(Err(refusal)),
        Ok(minted) => {
            let mut reply = run_line(session, browser, ctx, line).await;
            if let Some(minted) = minted {
                reply.output = if reply.output.is_empty() {
                    minted
                } else {
                    format!("{minted}\r\n{}", reply.output)
                };
            }
            reply
        }
    };
    reply.lane = session.lane;
    if let Some(lane) = session.lane {
        ctx.lanes.borrow_mut().touch(lane, line.trim(), ctx.now_ms);
    }
    reply
}

async fn run_line<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    line: &str,
) -> Reply {
    let line = line.trim();
    if line.is_empty() {
        return Reply::from_result(Ok(String::new()));
    }
    let pipeline = match parse_line(line) {
        Err(e) => return Reply::from_result(Err(e.to_string())),
        Ok(Line::HistoryReplay(n)) => {
            let Some(entry) = session.history_entry(n).map(str::to_string) else {
                return Reply::from_result(Err(format!("history: !{n}: event not found")));
            };
            // The history holds only lines that parsed as pipelines (never `!N`), so a
            // replay cannot recurse.
            match parse_line(&entry) {
                Ok(Line::Pipeline(p)) => {
                    session.record(&entry);
                    p
                }
                Ok(Line::HistoryReplay(_)) => {
                    return Reply::from_result(Err(format!(
                        "history: !{n}: refers to another replay"
                    )))
                }
                Err(e) => return Reply::from_result(Err(e.to_string())),
            }
        }
        Ok(Line::Pipeline(p)) => {
            if !UNRECORDED.contains(&p.command.name.as_str()) {
                session.record(line);
            }
            p
        }
    };
    Reply::from_result(run_pipeline(session, browser, ctx, &pipeline).await)
}

/// Runs the command, caps its output ([`bounds::bound`], the one place every output passes)
/// and hands it to the pipe consumers, which keep its "left out" line: a filtered page still
/// says that the command had more.
async fn run_pipeline<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    pipeline: &Pipeline,
) -> Result<String, String> {
    let cmd = &pipeline.command;
    // A dialog pauses the page: answer at once instead of waiting on it.
    if let Some(refusal) = dialog::refusal(session, browser, cmd) {
        return Err(refusal);
    }
    let open_before = session
        .tab()
        .is_some_and(|tab| browser.open_dialog(tab).is_some());
    let result = run_command(session, browser, ctx, cmd).await;
    let result = dialog::after(session, browser, cmd, open_before, result);
    let output = bounds::bound(cmd, result)?;
    if pipeline.consumers.is_empty() {
        return Ok(output);
    }
    let (body, footer) = bounds::split_footer(&output);
    let filtered = pipeline
        .consumers
        .iter()
        .fold(body.to_string(), |text, consumer| filter(&text, consumer));
    Ok(match footer {
        Some(footer) => format!("{filtered}\r\n{footer}"),
        None => filtered,
    })
}

/// Applies one pipe consumer to a command's output.
pub fn filter(text: &str, consumer: &Consumer) -> String {
    let lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    match consumer {
        Consumer::Grep { pattern, limit } => {
            let needle = pattern.to_lowercase();
            let kept: Vec<&str> = lines
                .filter(|l| l.to_lowercase().contains(&needle))
                .take(limit.unwrap_or(usize::MAX))
                .collect();
            if kept.is_empty() {
                "(no matches)".into()
            } else {
                kept.join("\r\n")
            }
        }
        Consumer::Head { lines: n } => lines.take(*n).collect::<Vec<_>>().join("\r\n"),
    }
}

async fn run_command<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
) -> Result<String, String> {
    let Some(spec) = commands::find(&cmd.name) else {
        return Err(format!(
            "domshell: {}: command not found. Run `help` for the list of commands.",
            cmd.name
        ));
    };
    dispatch(session, browser, ctx, cmd, spec)
        .await
        .map_err(|message| named(&cmd.name, message))
}

/// A failure as the agent reads it: the command's name in front, once. Handlers say what
/// went wrong; dispatch says which command it was.
pub(crate) fn named(command: &str, message: String) -> String {
    let said = message
        .strip_prefix(command)
        .is_some_and(|rest| rest.starts_with([':', ' ']));
    if said {
        message
    } else {
        format!("{command}: {message}")
    }
}

/// What a handler's `map_err` passes on: the error's own words, named at dispatch.
pub(crate) fn plain(error: impl std::fmt::Display) -> String {
    error.to_string()
}

async fn dispatch<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    spec: &'static shared_protocol::commands::CommandDef,
) -> Result<String, String> {
    if cmd.wants_help() {
        return Ok(commands::command_help(spec));
    }
    if !spec.available() {
        return Err(commands::unavailable(spec));
    }
    // `cd @name` is `cd` to the bookmarked path.
    let bookmarked;
    let cmd = match cmd.args.first().and_then(|a| a.strip_prefix('@')) {
        Some(name) if cmd.name == "cd" => {
            let path = ctx
                .saved
                .borrow()
                .bookmark(name)
                .map(str::to_string)
                .ok_or_else(|| format!("cd: no bookmark named @{name} (`bookmark` lists them)"))?;
            bookmarked = bookmark_cd(&path)?;
            &bookmarked
        }
        _ => cmd,
    };
    // The row's flags are the command's: one it does not list is refused here, once.
    let args = parse_args(cmd)?;
    if let Some(flag) = args.flags.iter().find(|f| spec.flag(&f.name).is_none()) {
        return Err(format!(
            "{}: unknown option {}; see `{} --help`",
            cmd.name, flag.name, cmd.name
        ));
    }
    // `group` sees every lane; every other command only the session's own tabs.
    if spec.family == Family::Lanes {
        return group::run(session, browser, ctx, cmd).await;
    }
    // A loop's inner commands come back through here, and are confined then.
    if spec.family == Family::Loop {
        return workflow::run(session, browser, ctx, cmd).await;
    }
    let view = ctx.lanes.borrow().view(session.lane);
    let browser = &confined::Confined::new(browser, view);
    let result = match spec.family {
        Family::Shell => builtins::run(session, cmd),
        Family::Pause => builtins::pause(browser, ctx, &args).await,
        Family::Directory if reading::is_page_path(session, &args) => {
            reading::run(session, browser, ctx, cmd, &args).await
        }
        Family::Reading => reading::run(session, browser, ctx, cmd, &args).await,
        Family::Dialog => dialog::run(session, browser, ctx, &args).await,
        Family::Saved => ctx.saved.borrow_mut().bookmark_command(
            &args.positional,
            args.value("-d"),
            &session.cwd.display(),
        ),
        Family::Script => javascript::run(session, browser, ctx, cmd, &args).await,
        Family::Acting => interact::run(session, browser, ctx, cmd, &args).await,
        Family::Activity => observe::run(session, browser, ctx, cmd, &args).await,
        Family::Directory | Family::Browser => {
            let output = navigation::run(session, browser, ctx, cmd).await?;
            Ok(with_tree_counts(session, browser, ctx, cmd, output).await)
        }
        Family::Lanes | Family::Loop | Family::Missing => Err(commands::unavailable(spec)),
    };
    // What the session saw, for `diff` and the next action's account (these two take their
    // own looks).
    if matches!(
        spec.family,
        Family::Directory | Family::Reading | Family::Acting | Family::Script
    ) && cmd.name != "diff"
        && !interact::accounts_for(&cmd.name)
    {
        account::remember(session, browser, ctx);
    }
    result
}

/// The `cd` a bookmark stands for.
fn bookmark_cd(path: &str) -> Result<Command, String> {
    match parse_line(&format!(
        "cd {}",
        shared_protocol::grammar::quote_word(path)
    )) {
        Ok(Line::Pipeline(p)) => Ok(p.command),
        _ => Err(format!("cd: the bookmarked path {path} is not a path")),
    }
}

/// After a command that entered or (re)loaded a tab, reads its tree and adds the
/// `AX Nodes:` line (and `Iframes:` when there are frames) to the `✓` block, so the next page command starts warm.
async fn with_tree_counts<B: Browser>(
    session: &Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    output: String,
) -> String {
    const ENTERING: [&str; 8] = [
        "cd", "here", "open", "navigate", "goto", "back", "forward", "refresh",
    ];
    let Some(tab) = session.tab() else {
        return output;
    };
    if !ENTERING.contains(&cmd.name.as_str()) || !output.starts_with('✓') {
        return output;
    }
    let tree = if matches!(cmd.name.as_str(), "cd" | "here") {
        ctx.pages.tree(browser, tab).await
    } else {
        ctx.pages.reload(browser, tab).await
    };
    match tree {
        Ok(tree) => {
            // Read by parts, the page holds more than was read so far.
            let so_far = if tree.vfs.has_unread(tree.vfs.root()) {
                " read so far (the rest as it is visited)"
            } else {
                ""
            };
            // Frames are worth a line only when there are some.
            let frames = match tree.frames {
                0 => String::new(),
                n => format!("\r\n  Iframes: {n}"),
            };
            format!(
                "{output}\r\n  AX Nodes: {}{so_far}{frames}",
                tree.vfs.node_count(),
            )
        }
        Err(e) => format!("{output}\r\n  AX Nodes: not read yet ({e})"),
    }
}

/// Rejects flags a command does not know, instead of silently ignoring them.
pub(crate) fn expect_flags(
    cmd: &Command,
    args: &shared_protocol::grammar::Args,
    known: &[&str],
) -> Result<(), String> {
    match args
        .flags
        .iter()
        .find(|f| !known.contains(&f.name.as_str()))
    {
        None => Ok(()),
        Some(flag) => Err(format!(
            "{}: unknown option {}; see `{} --help`",
            cmd.name, flag.name, cmd.name
        )),
    }
}

/// A command's arguments parsed by the grammar's generic rules, errors as text.
pub(crate) fn parse_args(cmd: &Command) -> Result<shared_protocol::grammar::Args, String> {
    cmd.parse_args().map_err(|e| e.to_string())
}
