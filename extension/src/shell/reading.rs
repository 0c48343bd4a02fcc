//! Commands that read a page: `ls` and `cd` inside a tab, `cat`, `text`, `read`, `tree`,
//! `find`, `grep`, `extract_links`, `extract_table`, and [`open`], the step every page
//! command starts with (gate, current tree, notices, path reset).
//!
//! It owns their flags and output shapes (the compatibility contract of the command
//! language). It must not change the page; interacting lives in [`super::interact`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};
use shared_protocol::grammar::{Args, Command};

use super::bounds::{self, Pager, BODY_BUDGET};
use super::browser::{Browser, LoadOutcome, TabInfo};
use super::cdp::{self, Decode, Fields};
use super::dom::{Dom, Objects};
use super::page::{Fresh, PageTree};
use super::session::{Cwd, Session};
use super::{navigation, Context};
use crate::ax::{
    Counts, Entry, EntryId, FindQuery, ListOptions, PathContext, PathError, Resolved, TypeFilter,
    Vfs,
};

/// Directories read on the way to one path, at most.
const MAX_PREPARE_STEPS: usize = 64;
/// Default width of `--text` previews.
const DEFAULT_TEXTLEN: usize = 80;
/// Links `extract_links` lists unless `-n` says otherwise.
const DEFAULT_LINKS: usize = 200;
/// Listed groups whose `--meta`/`--text` are read in one batch.
const LISTING_CHUNK: usize = 50;
/// Entries whose text `--content` reads, at most, per search.
const MAX_CONTENT_READS: usize = 300;

/// JS: the element's visible text (`innerText`, which leaves out hidden nodes, scripts and
/// styles), or its `value` for fields.
pub(crate) const VISIBLE_TEXT: &str = page_js!("visible_text.js");

/// The session's tab, its current tree and the notice `ls` shows about it.
pub(crate) struct OpenPage {
    /// The tab as Chrome reported it when the command started.
    pub tab: TabInfo,
    pub id: i64,
    pub tree: PageTree,
    /// `(tree auto-refreshed, …)` / `(page changed — …)`, or nothing.
    pub notice: Option<String>,
    pub prefix: String,
    /// The command's remote objects and isolated worlds.
    pub objects: Objects,
    /// The main frame's id.
    pub main_frame: String,
}

impl OpenPage {
    pub fn vfs(&self) -> &Vfs {
        &self.tree.vfs
    }

    /// The page's DOM for this command: every element through its frame's target.
    pub fn dom<'a, B: Browser>(&'a self, browser: &'a B) -> Dom<'a, B> {
        Dom::new(
            browser,
            self.id,
            &self.tree.targets,
            &self.main_frame,
            &self.objects,
        )
    }

    /// Resolve a path the user gave, relative to the session's directory in this page.
    pub fn resolve(
        &self,
        session: &Session,
        input: &str,
        want_dir: bool,
    ) -> Result<Resolved, PathError> {
        let bookmarks = BTreeMap::new();
        let ctx = PathContext {
            cwd: dom_of(session),
            page_prefix: &self.prefix,
            bookmarks: &bookmarks,
        };
        if want_dir {
            self.vfs().resolve_dir(&ctx, input)
        } else {
            self.vfs().resolve(&ctx, input)
        }
    }

    /// The entry at `input` (or the current directory when `None`), with its path.
    pub fn entry_at(
        &self,
        session: &Session,
        command: &str,
        input: Option<&str>,
    ) -> Result<(EntryId, Vec<String>), String> {
        match self.resolve(session, input.unwrap_or("."), false) {
            Ok(Resolved::Entry { id, path }) => Ok((id, path)),
            Ok(Resolved::Browser { path }) => Err(format!(
                "{command}: {path} is outside the page; give a path inside it"
            )),
            Err(e) => Err(format!("{command}: {e}").replace('\n', "\r\n")),
        }
    }

    /// Read what `input` (the current directory when `None`) needs that is not read yet:
    /// each directory on the way and, when it is a directory, its listing; with `whole`,
    /// everything below it (then the page is read whole, in one call). Entry ids resolved
    /// before are void afterwards: resolve again.
    pub async fn prepare<B: Browser>(
        &mut self,
        session: &Session,
        browser: &B,
        ctx: &Context,
        input: Option<&str>,
        whole: bool,
    ) -> Result<(), String> {
        let input = input.unwrap_or(".");
        // Each step reads one more directory on the way down.
        for _ in 0..MAX_PREPARE_STEPS {
            let dir = match self.resolve(session, input, false) {
                Err(PathError::NotLoaded { pending, .. }) => pending.first().and_then(|n| {
                    self.vfs()
                        .nearest_entry_for_node(&n.frame_id, &n.ax_node_id)
                }),
                Ok(Resolved::Entry { id, .. }) if whole => {
                    if self.vfs().has_unread(id) {
                        ctx.pages
                            .read_whole(browser, self.id, &mut self.tree)
                            .await?;
                    }
                    return Ok(());
                }
                Ok(Resolved::Entry { id, .. })
                    if self.vfs().entry(id).is_some_and(Entry::is_dir) =>
                {
                    Some(id)
                }
                _ => None,
            };
            let Some(dir) = dir else { return Ok(()) };
            match ctx
                .pages
                .read_directory(browser, self.id, &mut self.tree, dir)
                .await
            {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(_) => {
                    // The page changed between the reads (an app re-rendering: the
                    // accessibility node ids asked for are gone): read it whole instead.
                    ctx.pages
                        .read_whole(browser, self.id, &mut self.tree)
                        .await?;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    pub fn entry(&self, id: EntryId) -> Result<&Entry, String> {
        self.vfs()
            .entry(id)
            .ok_or_else(|| "the page changed under the command; run it again".to_string())
    }
}

fn dom_of(session: &Session) -> &[String] {
    match &session.cwd {
        Cwd::Tab { dom, .. } => dom,
        _ => &[],
    }
}

/// The gate and the current tree for a page command: the tab must be readable and attached;
/// the tree is refetched only when the page changed. When it was refetched and the session's
/// directory is gone, the session moves to the page root.
pub(crate) async fn open<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    command: &str,
) -> Result<OpenPage, String> {
    let mut tab = navigation::require_page(session, browser, ctx, command).await?;
    if tab.status.as_deref() == Some("loading") {
        // A page still loading (e.g. after a click that navigated): read the new one.
        if let Ok(LoadOutcome::Complete(t) | LoadOutcome::TimedOut(t)) = browser
            .wait_for_load(tab.id.unwrap_or_default(), None, ctx.load_timeout_ms)
            .await
        {
            tab = t;
        }
    }
    let Cwd::Tab {
        tab: id,
        via_window,
        ..
    } = session.cwd.clone()
    else {
        return Err(format!("{command}: not in a tab"));
    };
    let tree = ctx
        .pages
        .tree_with(browser, id, &ctx.objects)
        .await
        .map_err(|e| format!("{command}: {e}"))?;
    let prefix = Cwd::tab_root(id, via_window).display();
    let main_frame = tree
        .vfs
        .entry(tree.vfs.root())
        .map(|e| e.frame_id.clone())
        .unwrap_or_default();
    let mut page = OpenPage {
        tab,
        id,
        tree,
        notice: None,
        prefix,
        objects: ctx.objects.clone(),
        main_frame,
    };
    // The session's directory is listed by most commands: read it if it is not yet.
    page.prepare(session, browser, ctx, None, false)
        .await
        .map_err(|e| format!("{command}: {e}"))?;
    if page.tree.fresh == Fresh::Refreshed {
        let nodes = page.vfs().node_count();
        let lost = !dom_of(session).is_empty()
            && !matches!(page.resolve(session, ".", true), Ok(Resolved::Entry { .. }));
        page.notice = Some(if lost {
            if let Cwd::Tab { dom, .. } = &mut session.cwd {
                dom.clear();
            }
            format!("(page changed — tree refreshed, {nodes} nodes, path reset to tab root)")
        } else {
            format!("(tree auto-refreshed, {nodes} nodes)")
        });
    }
    Ok(page)
}

/// Whether `ls`/`cd` with these arguments act inside the session's page (else they are
/// browser-level and [`navigation`] runs them).
pub(crate) fn is_page_path(session: &Session, args: &Args) -> bool {
    let Cwd::Tab {
        tab, via_window, ..
    } = &session.cwd
    else {
        return false;
    };
    let Some(path) = args.positional.first() else {
        return true;
    };
    if path.starts_with('%') {
        return false;
    }
    if path.starts_with('~') {
        let prefix = Cwd::tab_root(*tab, *via_window).display();
        // The tab itself (`cd ~/tabs/<id>`) is entered at browser level, which prints the
        // `✓ Entered tab` block; paths below it are inside the page.
        return path.len() > prefix.len() + 1 && path.starts_with(&format!("{prefix}/"));
    }
    true
}

pub(crate) async fn run<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let result = run_once(session, browser, ctx, cmd, args).await;
    match (&result, session.tab()) {
        // The document went away under the read: a navigation (a form's submission) that
        // started after the last action had returned. Reads change nothing, so the page,
        // once loaded, is read again and the command runs once more.
        (Err(e), Some(tab)) if e.contains(super::dom::NODE_GONE) => {
            ctx.pages.invalidate(tab);
            let _ = browser.wait_for_load(tab, None, ctx.load_timeout_ms).await;
            run_once(session, browser, ctx, cmd, args).await
        }
        _ => result,
    }
}

async fn run_once<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    match cmd.name.as_str() {
        "ls" => ls(session, browser, ctx, cmd, args).await,
        "cd" => cd(session, browser, ctx, cmd, args).await,
        "cat" => cat(session, browser, ctx, cmd, args).await,
        "text" => text(session, browser, ctx, cmd, args).await,
        "read" => read(session, browser, ctx, cmd, args).await,
        "tree" => tree(session, browser, ctx, cmd, args).await,
        "find" => find(session, browser, ctx, cmd, args).await,
        "grep" => grep(session, browser, ctx, cmd, args).await,
        "extract_links" => extract_links(session, browser, ctx, cmd, args).await,
        "extract_table" => extract_table(session, browser, ctx, cmd, args).await,
        "debug" => super::debug::run(session, browser, ctx, cmd, args).await,
        "diff" => super::account::diff(session, browser, ctx, cmd, args).await,
        other => Err(format!("{other}: not a reading command")),
    }
}

/// A numeric flag value, with a message naming the flag when it is not a number.
pub(crate) fn number(cmd: &Command, args: &Args, flag: &str) -> Result<Option<usize>, String> {
    args.value(flag)
        .map(|v| {
            v.parse::<usize>()
                .map_err(|_| format!("{}: {flag} expects a number, got '{v}'", cmd.name))
        })
        .transpose()
}

fn at_most_one(cmd: &Command, args: &Args) -> Result<Option<String>, String> {
    match args.positional.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        _ => Err(format!(
            "{}: too many arguments; quote a name with spaces",
            cmd.name
        )),
    }
}

fn join_lines(lines: Vec<String>) -> String {
    lines.join("\r\n")
}

/// `name/` for directories.
fn shown_name(entry: &Entry) -> String {
    if entry.is_dir() {
        format!("{}/", entry.name)
    } else {
        entry.name.clone()
    }
}

/// `"Home page"  href=/home` — what long listings show after the name: the label only when
/// the name does not already say it, an `href` on the page's own site from its path on.
fn details(entry: &Entry, label_said: bool, page_url: &str) -> String {
    let mut out = String::new();
    let label = entry.accessible_name.trim();
    if !label.is_empty() && !label_said {
        let _ = write!(out, "  \"{}\"", super::format::clip(label, 60).trim_end());
    }
    if let Some(value) = entry.value.as_deref().filter(|v| !v.is_empty()) {
        let _ = write!(
            out,
            "  value=\"{}\"",
            super::format::clip(value, 60).trim_end()
        );
    }
    if let Some(checked) = &entry.checked {
        let _ = write!(out, "  checked={checked}");
    }
    if let Some(url) = entry.url.as_deref().filter(|u| !u.is_empty()) {
        let _ = write!(
            out,
            "  href={}",
            super::format::relative_href(url, page_url)
        );
    }
    out
}

/// What `--meta` adds: DOM facts of an entry (tag, id, src, href).
const META: &str = page_js!("meta.js");

async fn meta_of<B: Browser>(dom: &Dom<'_, B>, entry: &Entry) -> Option<Value> {
    entry.backend_node_id?;
    dom.call_on(entry, META, &[]).await.ok()
}

fn meta_text(meta: &Value) -> String {
    let mut out = String::new();
    for key in ["href", "src", "id"] {
        if let Some(v) = meta[key].as_str().filter(|v| !v.is_empty()) {
            let _ = write!(out, "  {key}={v}");
        }
    }
    if let Some(tag) = meta["tag"].as_str().filter(|t| !t.is_empty()) {
        let _ = write!(out, " <{tag}>");
    }
    out
}

/// Page-side windows over an element's text (see each file): only what is shown crosses CDP.
const TEXT_WINDOW: &str = page_js!("text_window.js");
const TEXT_PREVIEW: &str = page_js!("text_preview.js");
const TEXT_CONTAINS: &str = page_js!("text_contains.js");

/// `template` (one of the files above) reading its text with `source`, comments left out.
fn text_function(template: &str, source: &str) -> String {
    template
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("SOURCE", source)
}

/// Who answers the page-side scripts, in errors.
const THE_PAGE: &str = "the page";

/// What `text_window.js` answers.
#[derive(Debug)]
struct TextWindow {
    text: String,
    /// Code points in `text`.
    shown: usize,
    total: usize,
    /// Lines after the window (a line it cuts counts).
    more_lines: usize,
}

impl Decode for TextWindow {
    fn decode(f: &Fields<'_>) -> Result<Self, String> {
        Ok(TextWindow {
            text: f.string("text")?,
            shown: f.count("shown")?,
            total: f.count("total")?,
            more_lines: f.count("moreLines")?,
        })
    }
}

/// What `text_preview.js` answers.
#[derive(Debug)]
struct TextPreview {
    text: String,
    length: usize,
}

impl Decode for TextPreview {
    fn decode(f: &Fields<'_>) -> Result<Self, String> {
        Ok(TextPreview {
            text: f.string("text")?,
            length: f.count("length")?,
        })
    }
}

/// An element's visible text for `--json` listings, at most a page's worth of it.
async fn text_of<B: Browser>(dom: &Dom<'_, B>, entry: &Entry) -> String {
    if entry.backend_node_id.is_none() {
        return bounds::prefix_chars(&entry.accessible_name, BODY_BUDGET).to_string();
    }
    let function = text_function(TEXT_WINDOW, VISIBLE_TEXT);
    let args = [
        json!(0),
        json!(BODY_BUDGET),
        json!(BODY_BUDGET),
        json!(false),
    ];
    dom.call_on(entry, &function, &args)
        .await
        .ok()
        .and_then(|v| TextWindow::from_reply(THE_PAGE, &v).ok())
        .map(|w| w.text)
        .unwrap_or_default()
}

/// Whether an element's visible text contains `needle` (lower-cased), asked in the page.
async fn text_contains<B: Browser>(dom: &Dom<'_, B>, entry: &Entry, needle: &str) -> bool {
    if entry.backend_node_id.is_none() {
        return entry.accessible_name.to_lowercase().contains(needle);
    }
    let function = text_function(TEXT_CONTAINS, VISIBLE_TEXT);
    dom.call_on(entry, &function, &[json!(needle)])
        .await
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// `  "first words…" (len)` for `--text`: the preview is cut in the page, so a huge text
/// costs no more than a short one.
async fn preview_of<B: Browser>(dom: &Dom<'_, B>, entry: &Entry, width: usize) -> String {
    if entry.backend_node_id.is_none() {
        return preview(&entry.accessible_name, width);
    }
    let function = text_function(TEXT_PREVIEW, VISIBLE_TEXT);
    let answer = dom
        .call_on(entry, &function, &[json!(width)])
        .await
        .ok()
        .and_then(|v| TextPreview::from_reply(THE_PAGE, &v).ok());
    match answer {
        Some(p) => preview_line(&p.text, p.length, width),
        None => preview("", width),
    }
}

/// [`preview_of`] for many entries at once: one batched call per frame.
async fn previews_of<B: Browser>(
    dom: &Dom<'_, B>,
    entries: &[&Entry],
    width: usize,
) -> Vec<String> {
    let function = text_function(TEXT_PREVIEW, VISIBLE_TEXT);
    let answers = dom.call_on_each(entries, &function, &[json!(width)]).await;
    entries
        .iter()
        .zip(answers)
        .map(|(entry, answer)| {
            if entry.backend_node_id.is_none() {
                return preview(&entry.accessible_name, width);
            }
            match answer.and_then(|v| TextPreview::from_reply(THE_PAGE, &v).ok()) {
                Some(p) => preview_line(&p.text, p.length, width),
                None => preview("", width),
            }
        })
        .collect()
}

fn preview(text: &str, width: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    preview_line(&flat, flat.chars().count(), width)
}

fn preview_line(flat: &str, len: usize, width: usize) -> String {
    let shown: String = flat.chars().take(width).collect();
    let more = if len > width { "…" } else { "" };
    format!("  \"{shown}{more}\" ({len})")
}

fn counts_line(c: &Counts) -> String {
    format!(
        "{} total ({} [d], {} [x], {} [-])",
        c.total, c.directories, c.interactive, c.other
    )
}

fn entry_json(entry: &Entry) -> Value {
    let mut obj = json!({
        "name": entry.name,
        "role": entry.role,
        "type": entry.kind.json_name(),
    });
    if let Some(v) = &entry.value {
        obj["value"] = json!(v);
    }
    if let Some(u) = &entry.url {
        obj["href"] = json!(u);
    }
    obj
}

async fn ls<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let path = at_most_one(cmd, args)?;
    let limit = number(cmd, args, "-n")?;
    let offset = number(cmd, args, "--offset")?.unwrap_or(0);
    let textlen = number(cmd, args, "--textlen")?
        .unwrap_or(DEFAULT_TEXTLEN)
        .min(BODY_BUDGET);
    let mut page = open(session, browser, ctx, "ls").await?;
    page.prepare(session, browser, ctx, path.as_deref(), args.has("-r"))
        .await
        .map_err(super::plain)?;
    let (dir, _) = page.entry_at(session, "ls", path.as_deref())?;
    let vfs = page.vfs();
    let options = ListOptions {
        after: args.value("--after").map(str::to_string),
        before: args.value("--before").map(str::to_string),
        type_filter: args.value("--type").map(TypeFilter::exact),
        offset,
        limit,
    };
    let listing = vfs
        .list(dir, &options)
        .map_err(|e| format!("ls: {}: {e}", path.as_deref().unwrap_or(".")))?;
    let mut out: Vec<String> = page.notice.iter().cloned().collect();
    if args.has("--count") {
        let all = vfs
            .list(
                dir,
                &ListOptions {
                    offset: 0,
                    limit: None,
                    ..options.clone()
                },
            )
            .map_err(super::plain)?;
        out.push(counts_line(&vfs.count(&all.entries)));
        return Ok(join_lines(out));
    }
    let recursive = args.has("-r");
    // One group per listed entry: the entry and, with -r, its children. A page ends between
    // groups, so `--offset` (which counts listed entries) resumes exactly where it stopped.
    let mut groups: Vec<Vec<(EntryId, String)>> = Vec::new();
    for &id in &listing.entries {
        let entry = page.entry(id)?;
        let mut rows = vec![(id, shown_name(entry))];
        if recursive && entry.is_dir() {
            for &child in vfs.children(id) {
                if let Some(c) = vfs.entry(child) {
                    rows.push((child, format!("{}/{}", entry.name, shown_name(c))));
                }
            }
        }
        groups.push(rows);
    }
    let meta = args.has("--meta");
    let with_text = args.has("--text");
    if args.has("--json") {
        let mut children = JsonPage::default();
        'groups: for rows in &groups {
            let mut objs = Vec::new();
            for (id, _) in rows {
                let entry = page.entry(*id)?;
                let mut obj = entry_json(entry);
                if meta {
                    if let Some(m) = meta_of(&page.dom(browser), entry).await {
                        for key in ["src", "id", "tag"] {
                            if let Some(v) = m[key].as_str().filter(|v| !v.is_empty()) {
                                obj[key] = json!(v);
                            }
                        }
                    }
                }
                if with_text {
                    obj["text"] = json!(text_of(&page.dom(browser), entry).await);
                }
                objs.push(obj);
            }
            if !children.push_group(objs) {
                break 'groups;
            }
        }
        let shown = children.groups;
        let mut body =
            json!({ "children": children.items, "total": listing.total, "offset": listing.offset });
        if let Some(l) = limit {
            body["limit"] = json!(l);
        }
        let next = listing.offset + shown;
        if next < listing.total {
            body["next_offset"] = json!(next);
            body["left_out"] = json!(listing.total - next);
        }
        if let Some(notice) = &page.notice {
            body["notice"] = json!(notice);
        }
        return Ok(body.to_string());
    }
    if groups.is_empty() {
        out.push("(empty directory)".into());
        return Ok(join_lines(out));
    }
    let long = args.has_any(&["-l", "--long"]) || meta || with_text;
    let mut pager = Pager::new(out);
    let dom = page.dom(browser);
    // `--meta` and `--text` are read a chunk of groups at a time, each with one batched
    // call per frame (not one per row), and only until the page is full.
    'chunks: for chunk in groups.chunks(LISTING_CHUNK) {
        let ids: Vec<EntryId> = chunk.iter().flatten().map(|(id, _)| *id).collect();
        let entries = ids
            .iter()
            .map(|id| page.entry(*id))
            .collect::<Result<Vec<&Entry>, String>>()?;
        let metas = if meta {
            dom.call_on_each(&entries, META, &[]).await
        } else {
            Vec::new()
        };
        let previews = if with_text {
            previews_of(&dom, &entries, textlen).await
        } else {
            Vec::new()
        };
        let mut at = 0usize;
        for rows in chunk {
            let mut lines = Vec::with_capacity(rows.len());
            for (id, name) in rows {
                let entry = page.entry(*id)?;
                let index = at;
                at += 1;
                if !long {
                    lines.push(name.clone());
                    continue;
                }
                let mut line = format!(
                    "{} {:<14} {name}{}",
                    entry.kind.marker(),
                    entry.role,
                    details(entry, vfs.says_label(*id), &page.tab.url)
                );
                if let Some(Some(m)) = metas.get(index) {
                    line.push_str(&meta_text(m));
                }
                if let Some(p) = previews.get(index) {
                    line.push_str(p);
                }
                lines.push(line);
            }
            if !pager.push_group(lines) {
                break 'chunks;
            }
        }
    }
    let shown = pager.entries();
    let next = listing.offset + shown;
    let footer = if shown < listing.entries.len() {
        // The cap ended the page before the entries asked for.
        Some(bounds::left_out_entries(
            cmd,
            listing.total - next,
            listing.total,
            next,
        ))
    } else if next < listing.total {
        // The page `-n` asked for; ls has always said where the next one starts.
        Some(format!(
            "... {}-{} of {} (--offset {} for next page)",
            listing.offset + 1,
            next,
            listing.total,
            next
        ))
    } else {
        None
    };
    Ok(pager.finish(footer))
}

/// The items of a `--json` listing, filled while their encoding fits a page.
#[derive(Default)]
struct JsonPage {
    items: Vec<Value>,
    chars: usize,
    /// Groups (listed entries) taken.
    groups: usize,
}

impl JsonPage {
    /// Adds one entry's objects; `false` (nothing added) when they would pass the budget,
    /// unless nothing was added yet.
    fn push_group(&mut self, objs: Vec<Value>) -> bool {
        let len: usize = objs.iter().map(|o| o.to_string().chars().count() + 1).sum();
        if self.groups > 0 && self.chars + len > BODY_BUDGET {
            return false;
        }
        self.chars += len;
        self.items.extend(objs);
        self.groups += 1;
        true
    }
}

async fn cd<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let path = at_most_one(cmd, args)?.unwrap_or_else(|| "~".into());
    let mut page = open(session, browser, ctx, "cd").await?;
    page.prepare(session, browser, ctx, Some(&path), false)
        .await
        .map_err(super::plain)?;
    match page.resolve(session, &path, true) {
        Ok(Resolved::Entry { path, .. }) => {
            if let Cwd::Tab { dom, .. } = &mut session.cwd {
                *dom = path;
            }
            Ok(page.notice.unwrap_or_default())
        }
        Ok(Resolved::Browser { path }) => {
            let browser_cmd = Command {
                name: "cd".into(),
                args: vec![path.clone()],
                raw: format!("cd {path}"),
            };
            Box::pin(navigation::run(session, browser, ctx, &browser_cmd)).await
        }
        Err(e) => Err(format!("cd: {e}").replace('\n', "\r\n")),
    }
}

async fn cat<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let target =
        at_most_one(cmd, args)?.ok_or("cat: which entry? usage: cat <name|path> (see `ls`)")?;
    let mut page = open(session, browser, ctx, "cat").await?;
    page.prepare(session, browser, ctx, Some(&target), false)
        .await
        .map_err(super::plain)?;
    let (id, _) = page.entry_at(session, "cat", Some(&target))?;
    let entry = page.entry(id)?;
    const PROPS: &str = page_js!("props.js");
    let props = if entry.backend_node_id.is_some() {
        page.dom(browser)
            .call_on(entry, PROPS, &[])
            .await
            .unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let child_count = page.vfs().children(id).len();
    if args.has("--json") {
        let mut obj = entry_json(entry);
        obj["axNodeId"] = json!(entry.ax_node_id);
        obj["childCount"] = json!(child_count);
        if let Some(b) = entry.backend_node_id {
            obj["backendDOMNodeId"] = json!(b);
        }
        if let Some(map) = props.as_object() {
            for (k, v) in map {
                if v.as_str().is_some_and(|s| !s.is_empty()) {
                    obj[k] = v.clone();
                }
            }
        }
        return Ok(obj.to_string());
    }
    let mut lines = vec![format!("--- {} ---", entry.name)];
    let mut field = |label: &str, value: &str| {
        if !value.is_empty() {
            lines.push(format!("  {:<12} {value}", format!("{label}:")));
        }
    };
    field("Role", &entry.role);
    field("Type", entry.kind.json_name());
    field("Name", &entry.accessible_name);
    field("AXID", &entry.ax_node_id);
    if let Some(b) = entry.backend_node_id {
        field("DOM", &format!("backend#{b}"));
    }
    field("Value", entry.value.as_deref().unwrap_or(""));
    field("Checked", entry.checked.as_deref().unwrap_or(""));
    if entry.is_dir() {
        field("Children", &child_count.to_string());
    }
    field("URL", entry.url.as_deref().unwrap_or(""));
    let p = |k: &str| props[k].as_str().unwrap_or("").to_string();
    let tag = p("tag");
    if !tag.is_empty() {
        field("Tag", &format!("<{tag}>"));
    }
    for (label, key) in [
        ("Src", "src"),
        ("Action", "action"),
        ("ID", "id"),
        ("Class", "class"),
        ("Alt", "alt"),
        ("Title", "title"),
        ("Placeholder", "placeholder"),
        ("Target", "target"),
        ("DOM name", "domName"),
        ("Text", "visibleText"),
        ("HTML", "html"),
    ] {
        field(label, &p(key));
    }
    Ok(join_lines(lines))
}

/// JS: `[text](href)` for every link below the element, in document order.
const LINKS_TEXT: &str = page_js!("links_text.js");

async fn text<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let target = at_most_one(cmd, args)?;
    let limit = number(cmd, args, "-n")?;
    let offset = number(cmd, args, "--offset")?.unwrap_or(0);
    let mut page = open(session, browser, ctx, "text").await?;
    page.prepare(session, browser, ctx, target.as_deref(), true)
        .await
        .map_err(super::plain)?;
    let (id, path) = page.entry_at(session, "text", target.as_deref())?;
    let entry = page.entry(id)?;
    let links = args.has("--links");
    // No header: the call already names the path, and the footer says how much there is.
    // The window is cut in the page: a text of any size costs one page of CDP traffic.
    let budget = BODY_BUDGET;
    let count = limit.unwrap_or(budget);
    let function = text_function(TEXT_WINDOW, if links { LINKS_TEXT } else { VISIBLE_TEXT });
    let value = if entry.backend_node_id.is_some() && !path.is_empty() {
        let window_args = [json!(offset), json!(count), json!(budget), json!(links)];
        page.dom(browser)
            .call_on(entry, &function, &window_args)
            .await
            .map_err(super::plain)?
    } else {
        // The page root: the document's body, as the visible page shows it.
        let expression = format!(
            "({function}).call(document.body || document.documentElement, {offset}, {count}, {budget}, {links})"
        );
        page.dom(browser)
            .evaluate(&expression)
            .await
            .map_err(super::plain)?
    };
    let window =
        TextWindow::from_reply(THE_PAGE, &value).map_err(|e| format!("text: {e}; run it again"))?;
    let next = offset + window.shown;
    let footer = if limit.is_some_and(|n| window.shown == n) && next < window.total {
        // The characters `-n` asked for are all there.
        if offset == 0 {
            format!(
                "... ({} chars total, showing first {})",
                window.total, window.shown
            )
        } else {
            format!("(characters {}-{next} of {})", offset + 1, window.total)
        }
    } else if next < window.total {
        bounds::left_out_chars(
            cmd,
            window.total - next,
            window.more_lines,
            window.total,
            next,
        )
    } else if offset == 0 {
        format!("({} chars)", window.total)
    } else if window.shown == 0 {
        format!(
            "(nothing at --offset {offset}: the text has {} characters)",
            window.total
        )
    } else {
        format!("(characters {}-{} of {})", offset + 1, next, window.total)
    };
    // Lines end like every other output's.
    let body = window.text.replace('\n', "\r\n");
    if body.is_empty() {
        return Ok(footer);
    }
    Ok(join_lines(vec![body, footer]))
}

async fn read<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let target = at_most_one(cmd, args)?;
    let depth = number(cmd, args, "-d")?.unwrap_or(5);
    let limit = number(cmd, args, "-n")?.unwrap_or(usize::MAX);
    let offset = number(cmd, args, "--offset")?.unwrap_or(0);
    let textlen = number(cmd, args, "--textlen")?
        .unwrap_or(120)
        .min(BODY_BUDGET);
    let mut page = open(session, browser, ctx, "read").await?;
    page.prepare(session, browser, ctx, target.as_deref(), true)
        .await
        .map_err(super::plain)?;
    let (id, _) = page.entry_at(session, "read", target.as_deref())?;
    let vfs = page.vfs();
    let mut items = vec![(id, 0usize)];
    items.extend(vfs.descendants(id, depth));
    let total = items.len();
    let mut lines = Pager::new(Vec::new());
    for (at, level) in items.into_iter().skip(offset).take(limit) {
        let entry = page.entry(at)?;
        let name = if entry.name.is_empty() {
            "/"
        } else {
            &entry.name
        };
        let mut line = format!("{}{name} [{}]", "  ".repeat(level), entry.role);
        if let Some(v) = entry.value.as_deref().filter(|v| !v.is_empty()) {
            let _ = write!(line, " \"{v}\"");
        } else if !entry.is_dir()
            && !entry.accessible_name.is_empty()
            && entry.accessible_name != entry.name
        {
            let _ = write!(line, " \"{}\"", entry.accessible_name);
        }
        let mut extra = Vec::new();
        if let Some(u) = entry.url.as_deref().filter(|u| !u.is_empty()) {
            extra.push(format!("href={u}"));
        }
        if args.has("--meta") {
            if let Some(m) = meta_of(&page.dom(browser), entry).await {
                for key in ["id", "src"] {
                    if let Some(v) = m[key].as_str().filter(|v| !v.is_empty()) {
                        extra.push(format!("{key}={v}"));
                    }
                }
            }
        }
        if !extra.is_empty() {
            let _ = write!(line, " {{{}}}", extra.join(", "));
        }
        if args.has("--text") && !entry.is_dir() {
            line.push_str(&preview_of(&page.dom(browser), entry, textlen).await);
        }
        if !lines.push(line) {
            break;
        }
    }
    Ok(finish_entries(
        cmd,
        lines,
        number(cmd, args, "-n")?,
        offset,
        total,
    ))
}

/// A listing's lines and, when the cap or a default limit left entries out, the "left out"
/// line naming the next page. Entries left out because `-n N` asked for no more are not
/// announced: the N asked for are all there.
fn finish_entries(
    cmd: &Command,
    pager: Pager,
    limit: Option<usize>,
    offset: usize,
    total: usize,
) -> String {
    let shown = pager.entries();
    let next = offset + shown;
    let cut = next < total && limit.is_none_or(|n| shown < n);
    let footer = cut.then(|| bounds::left_out_entries(cmd, total - next, total, next));
    pager.finish(footer)
}

async fn tree<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let depth = match at_most_one(cmd, args)? {
        None => 2,
        Some(d) => d
            .parse::<usize>()
            .map_err(|_| format!("tree: depth must be a number, got '{d}'"))?,
    };
    let limit = number(cmd, args, "-n")?.unwrap_or(usize::MAX);
    let offset = number(cmd, args, "--offset")?.unwrap_or(0);
    let mut page = open(session, browser, ctx, "tree").await?;
    page.prepare(session, browser, ctx, None, true)
        .await
        .map_err(super::plain)?;
    let (id, path) = page.entry_at(session, "tree", None)?;
    let vfs = page.vfs();
    let mut drawn = Vec::new();
    draw(vfs, id, depth, "", &mut drawn);
    let total = drawn.len();
    let mut lines = Pager::new(vec![match path.last() {
        Some(name) => format!("{name}/"),
        None => "/".into(),
    }]);
    for line in drawn.into_iter().skip(offset).take(limit) {
        if !lines.push(line) {
            break;
        }
    }
    Ok(finish_entries(
        cmd,
        lines,
        number(cmd, args, "-n")?,
        offset,
        total,
    ))
}

/// Box-drawing lines for the children of `dir`, `depth` levels down.
fn draw(vfs: &Vfs, dir: EntryId, depth: usize, indent: &str, lines: &mut Vec<String>) {
    if depth == 0 {
        return;
    }
    let children = vfs.children(dir);
    for (i, &child) in children.iter().enumerate() {
        let Some(entry) = vfs.entry(child) else {
            continue;
        };
        let last = i + 1 == children.len();
        let branch = if last { "└── " } else { "├── " };
        lines.push(format!(
            "{indent}{branch}{} {}",
            entry.kind.marker(),
            shown_name(entry)
        ));
        if entry.is_dir() {
            let next = format!("{indent}{}", if last { "    " } else { "│   " });
            draw(vfs, child, depth - 1, &next, lines);
        }
    }
}

/// Entries below `from` whose visible text contains `pattern` (lower-cased), among the
/// first [`MAX_CONTENT_READS`] files with a DOM node.
async fn content_matches<B: Browser>(
    browser: &B,
    page: &OpenPage,
    from: EntryId,
    pattern: &str,
    type_filter: Option<&TypeFilter>,
) -> Vec<EntryId> {
    let mut out = Vec::new();
    let candidates = page
        .vfs()
        .descendants(from, usize::MAX)
        .into_iter()
        .filter(|(id, _)| {
            page.vfs().entry(*id).is_some_and(|e| {
                !e.is_dir()
                    && e.backend_node_id.is_some()
                    && type_filter.is_none_or(|f| f.matches(e))
            })
        })
        .take(MAX_CONTENT_READS);
    for (id, _) in candidates {
        if let Some(entry) = page.vfs().entry(id) {
            if text_contains(&page.dom(browser), entry, pattern).await {
                out.push(id);
            }
        }
    }
    out
}

async fn find<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let pattern = at_most_one(cmd, args)?;
    let type_filter = args.value("--type").map(TypeFilter::with_aliases);
    if pattern.is_none() && type_filter.is_none() {
        return Err(
            "find: give a pattern or --type ROLE (e.g. find login, find --type link)".into(),
        );
    }
    let limit = number(cmd, args, "-n")?;
    let offset = number(cmd, args, "--offset")?.unwrap_or(0);
    let textlen = number(cmd, args, "--textlen")?
        .unwrap_or(DEFAULT_TEXTLEN)
        .min(BODY_BUDGET);
    let mut page = open(session, browser, ctx, "find").await?;
    page.prepare(session, browser, ctx, None, true)
        .await
        .map_err(super::plain)?;
    let (from, _) = page.entry_at(session, "find", None)?;
    let vfs = page.vfs();
    let mut found: Vec<(EntryId, Vec<String>)> = vfs
        .find(
            from,
            &FindQuery {
                pattern: pattern.clone(),
                type_filter: type_filter.clone(),
                limit: None,
            },
        )
        .into_iter()
        .map(|f| (f.id, f.relative_path))
        .collect();
    let with_text = args.has("--text");
    if let Some(p) = pattern
        .as_deref()
        .filter(|_| args.has("--content") || with_text)
    {
        let lower = p.to_lowercase();
        for id in content_matches(browser, &page, from, &lower, type_filter.as_ref()).await {
            if !found.iter().any(|(f, _)| *f == id) {
                let base = vfs.path_of(from).len();
                found.push((id, vfs.path_of(id).split_off(base)));
            }
        }
    }
    let total = found.len();
    let found: Vec<(EntryId, Vec<String>)> = found
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    let meta = args.has("--meta");
    if args.has("--json") {
        let mut results = JsonPage::default();
        for (id, path) in &found {
            let entry = page.entry(*id)?;
            let mut obj = entry_json(entry);
            obj["path"] = json!(path.join("/"));
            if meta {
                if let Some(m) = meta_of(&page.dom(browser), entry).await {
                    for key in ["src", "id", "tag"] {
                        if let Some(v) = m[key].as_str().filter(|v| !v.is_empty()) {
                            obj[key] = json!(v);
                        }
                    }
                }
            }
            if with_text {
                obj["text"] = json!(text_of(&page.dom(browser), entry).await);
            }
            if !results.push_group(vec![obj]) {
                break;
            }
        }
        let mut body = json!({ "results": results.items, "total": total });
        let next = offset + results.groups;
        if next < total {
            body["next_offset"] = json!(next);
            body["left_out"] = json!(total - next);
        }
        return Ok(body.to_string());
    }
    if total == 0 {
        return Ok(format!(
            "No matches for '{}'",
            pattern
                .or(args.value("--type").map(str::to_string))
                .unwrap_or_default()
        ));
    }
    let mut lines = Pager::new(Vec::new());
    for (id, path) in &found {
        let entry = page.entry(*id)?;
        let slash = if entry.is_dir() { "/" } else { "" };
        let mut line = format!(
            "{} {}{slash} ({}){}",
            entry.kind.marker(),
            path.join("/"),
            entry.role,
            details(entry, vfs.says_label(*id), &page.tab.url)
        );
        if meta {
            if let Some(m) = meta_of(&page.dom(browser), entry).await {
                line.push_str(&meta_text(&m));
            }
        }
        if with_text {
            line.push_str(&preview_of(&page.dom(browser), entry, textlen).await);
        }
        if !lines.push(line) {
            break;
        }
    }
    Ok(finish_entries(
        cmd,
        lines,
        number(cmd, args, "-n")?,
        offset,
        total,
    ))
}

async fn grep<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let pattern = at_most_one(cmd, args)?
        .ok_or("grep: give a pattern: grep [-r] [--content] [-n N] [--offset K] <pattern>")?;
    let limit = number(cmd, args, "-n")?.unwrap_or(usize::MAX);
    let offset = number(cmd, args, "--offset")?.unwrap_or(0);
    let mut page = open(session, browser, ctx, "grep").await?;
    page.prepare(session, browser, ctx, None, args.has("-r"))
        .await
        .map_err(super::plain)?;
    let (from, _) = page.entry_at(session, "grep", None)?;
    let vfs = page.vfs();
    let lower = pattern.to_lowercase();
    let recursive = args.has("-r");
    let scope: Vec<EntryId> = if recursive {
        vfs.descendants(from, usize::MAX)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    } else {
        vfs.children(from).to_vec()
    };
    let mut hits: Vec<EntryId> = scope
        .iter()
        .copied()
        .filter(|id| {
            vfs.entry(*id).is_some_and(|e| {
                e.name.to_lowercase().contains(&lower)
                    || e.role.to_lowercase().contains(&lower)
                    || e.accessible_name.to_lowercase().contains(&lower)
                    || e.value
                        .as_ref()
                        .is_some_and(|v| v.to_lowercase().contains(&lower))
            })
        })
        .collect();
    if args.has("--content") {
        for id in scope.iter().take(MAX_CONTENT_READS) {
            if hits.contains(id) {
                continue;
            }
            if let Some(entry) = vfs.entry(*id).filter(|e| e.backend_node_id.is_some()) {
                if text_contains(&page.dom(browser), entry, &lower).await {
                    hits.push(*id);
                }
            }
        }
        super::sort::sort_by_key(&mut hits, |id| scope.iter().position(|s| s == id));
    }
    if hits.is_empty() {
        return Ok(format!("No matches for '{pattern}'"));
    }
    let base = vfs.path_of(from).len();
    let total = hits.len();
    let mut lines = Pager::new(Vec::new());
    for id in hits.into_iter().skip(offset).take(limit) {
        let Some(entry) = vfs.entry(id) else {
            continue;
        };
        let name = if recursive {
            vfs.path_of(id).split_off(base).join("/")
        } else {
            entry.name.clone()
        };
        let slash = if entry.is_dir() { "/" } else { "" };
        let line = format!("{} {name}{slash} ({})", entry.kind.marker(), entry.role);
        if !lines.push(line) {
            break;
        }
    }
    Ok(finish_entries(
        cmd,
        lines,
        number(cmd, args, "-n")?,
        offset,
        total,
    ))
}

async fn extract_links<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let target = at_most_one(cmd, args)?;
    let limit = number(cmd, args, "-n")?.unwrap_or(DEFAULT_LINKS);
    let offset = number(cmd, args, "--offset")?.unwrap_or(0);
    let mut page = open(session, browser, ctx, "extract_links").await?;
    page.prepare(session, browser, ctx, target.as_deref(), true)
        .await
        .map_err(super::plain)?;
    let (from, _) = page.entry_at(session, "extract_links", target.as_deref())?;
    let links = page.vfs().find(
        from,
        &FindQuery {
            pattern: None,
            type_filter: Some(TypeFilter::with_aliases("link")),
            limit: None,
        },
    );
    if links.is_empty() {
        return Ok("(no links found)".into());
    }
    let total = links.len();
    let mut lines = Pager::new(Vec::new());
    for (i, found) in links.iter().enumerate().skip(offset).take(limit) {
        let entry = page.entry(found.id)?;
        let label = if entry.accessible_name.is_empty() {
            entry.name.clone()
        } else {
            entry.accessible_name.clone()
        };
        let line = match entry.url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => format!("{}. [{label}]({url})", i + 1),
            None => format!("{}. {label} (no href)", i + 1),
        };
        if !lines.push(line) {
            break;
        }
    }
    Ok(finish_entries(
        cmd,
        lines,
        number(cmd, args, "-n")?,
        offset,
        total,
    ))
}

/// JS: a page of a table's rows (see the file).
const TABLE_ROWS: &str = page_js!("table_rows.js");

/// What `table_rows.js` answers.
#[derive(Debug)]
struct TableRows {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    total: usize,
}

impl Decode for TableRows {
    fn decode(f: &Fields<'_>) -> Result<Self, String> {
        let rows = f
            .list("rows")?
            .iter()
            .map(|row| cdp::strings(THE_PAGE, "rows", row))
            .collect::<Result<_, String>>()?;
        Ok(TableRows {
            header: f.strings("header")?,
            rows,
            total: f.count("total")?,
        })
    }
}

async fn extract_table<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let target = at_most_one(cmd, args)?
        .ok_or("extract_table: which table? usage: extract_table <name|path> [--format markdown|csv] [-n rows] [--offset K] (find --type table lists them)")?;
    let format = args.value("--format").unwrap_or("markdown");
    if !matches!(format, "markdown" | "md" | "csv") {
        return Err(format!(
            "extract_table: unknown --format '{format}'; use markdown or csv"
        ));
    }
    let limit = number(cmd, args, "-n")?;
    let offset = number(cmd, args, "--offset")?.unwrap_or(0);
    let mut page = open(session, browser, ctx, "extract_table").await?;
    page.prepare(session, browser, ctx, Some(&target), true)
        .await
        .map_err(super::plain)?;
    let (id, _) = page.entry_at(session, "extract_table", Some(&target))?;
    let entry = page.entry(id)?;
    if !matches!(
        entry.role.to_lowercase().as_str(),
        "table" | "grid" | "treegrid" | "layouttable"
    ) {
        return Err(format!(
            "extract_table: {} is a {}, not a table (find --type table lists the tables)",
            entry.name, entry.role
        ));
    }
    let function = text_function(TABLE_ROWS, "");
    let page_args = [
        json!(offset),
        json!(limit.unwrap_or(BODY_BUDGET)),
        json!(BODY_BUDGET),
    ];
    let answer = page
        .dom(browser)
        .call_on(entry, &function, &page_args)
        .await
        .map_err(super::plain)?;
    let table = TableRows::from_reply(THE_PAGE, &answer).map_err(super::plain)?;
    if table.header.is_empty() && table.total == 0 {
        return Ok("(empty table)".into());
    }
    let mut rows = vec![table.header];
    rows.extend(table.rows);
    let text = if format == "csv" {
        table_csv(&rows)
    } else {
        table_markdown(&rows)
    };
    let mut lines = text.split("\r\n").map(str::to_string);
    let head = if format == "csv" { 1 } else { 2 };
    let mut pager = Pager::new(lines.by_ref().take(head).collect());
    for line in lines {
        if !pager.push(line) {
            break;
        }
    }
    Ok(finish_entries(cmd, pager, limit, offset, table.total))
}

/// A Markdown (GFM) table as short as it can be: no outer pipes, no padding of short rows
/// (a reader fills them), a pipe inside a cell escaped; the first row is the header.
pub(crate) fn table_markdown(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let line = |row: &Vec<String>| {
        row.iter()
            .map(|c| c.replace('|', "\\|"))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let mut lines = vec![line(&rows[0])];
    lines.push(vec!["---"; width].join(" | "));
    lines.extend(rows[1..].iter().map(line));
    join_lines(lines)
}

/// CSV, a cell quoted only when it must be (a comma, a quote, a line break, or spaces at
/// its ends).
pub(crate) fn table_csv(rows: &[Vec<String>]) -> String {
    let cell = |c: &String| {
        if c.contains([',', '"', '\n', '\r']) || c.trim() != c {
            format!("\"{}\"", c.replace('"', "\"\""))
        } else {
            c.clone()
        }
    };
    join_lines(
        rows.iter()
            .map(|row| row.iter().map(cell).collect::<Vec<_>>().join(","))
            .collect(),
    )
}
