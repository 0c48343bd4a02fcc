//! `debug stats | raw | node`: the page mapping's internals, for people finding out why a
//! listing looks the way it does and for benchmarks.
//!
//! It owns how the mapping's counts, the last tree read's timings and the accessibility
//! records behind entries are shown. It must not change the mapping or the page: it reads
//! what the kept tree already holds (reading the current directory first, as every page
//! command does).

use shared_protocol::grammar::{Args, Command};

use super::browser::Browser;
use super::page::Fresh;
use super::reading::{number, open, OpenPage};
use super::session::Session;
use super::Context;

/// Records `debug raw` shows by default, and at most.
const RAW_DEFAULT: usize = 20;
const RAW_MAX: usize = 200;

const USAGE: &str =
    "usage: debug stats [--json] | raw [name] [-n N] [--offset K] | node <name|path|AX id>";

pub(crate) async fn run<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    let (what, rest) = match args.positional.split_first() {
        Some((what, rest)) => (what.as_str(), rest),
        None => return Err(format!("which part? {USAGE}")),
    };
    let target = match rest {
        [] => None,
        [one] => Some(one.as_str()),
        _ => return Err(format!("too many arguments; {USAGE}")),
    };
    if !matches!(what, "stats" | "raw" | "node") || (what == "stats" && target.is_some()) {
        return Err(format!(
            "unknown part '{}'; {USAGE}",
            args.positional.join(" ")
        ));
    }
    if what == "node" && target.is_none() {
        return Err(format!("debug node: which entry? {USAGE}"));
    }
    let limit = number(cmd, args, "-n")?.unwrap_or(RAW_DEFAULT).min(RAW_MAX);
    let offset = number(cmd, args, "--offset")?.unwrap_or(0);
    let mut page = open(session, browser, ctx, "debug").await?;
    page.prepare(session, browser, ctx, target, false)
        .await
        .map_err(super::plain)?;
    match (what, target) {
        ("stats", _) => Ok(stats(&page, ctx, args.has("--json"))),
        ("node", Some(target)) => node(&page, session, target),
        _ => raw(&page, session, target, limit, offset),
    }
}

fn stats(page: &OpenPage, ctx: &Context, as_json: bool) -> String {
    let vfs = page.vfs();
    let fresh = match page.tree.fresh {
        Fresh::Kept => "kept",
        Fresh::Loaded => "loaded",
        Fresh::Refreshed => "refreshed",
    };
    let last = ctx.pages.last_read();
    let unattached = vfs.unattached_frames().len();
    if as_json {
        // Written out rather than built as a `Value`: the worker then carries one JSON
        // writer for these records instead of a second serializer for each type.
        return format!(
            r#"{{"tab":{},"entries":{},"directories":{},"axNodes":{},"frames":{},"framesCounted":{},"unattachedFrames":{unattached},"tree":"{fresh}","keptTabs":{},"lastRead":{}}}"#,
            page.id,
            vfs.len(),
            vfs.directory_count(),
            vfs.node_count(),
            vfs.frame_count(),
            page.tree.frames,
            ctx.pages.kept_tabs().len(),
            to_json(&last),
        );
    }
    let mut lines = vec![
        format!("Tab {}: {}", page.id, page.tab.url),
        format!(
            "  Entries: {} ({} directories), AX nodes kept: {}",
            vfs.len(),
            vfs.directory_count(),
            vfs.node_count()
        ),
        format!(
            "  Frames: {} read, {} in the page, {unattached} not stitched in",
            vfs.frame_count(),
            page.tree.frames
        ),
        format!(
            "  Tree: {fresh} for this command; trees kept for {} tab(s)",
            ctx.pages.kept_tabs().len()
        ),
    ];
    match last {
        Some(read) => {
            lines.push(format!(
                "  Last read (tab {}): {}{}, {} DevTools call(s), {} AX nodes, {} bytes",
                read.tab,
                if read.partial { "partial" } else { "whole" },
                if read.lazy {
                    ", a directory at a time"
                } else {
                    ""
                },
                read.calls,
                read.ax_nodes,
                read.bytes
            ));
            lines.push(format!(
                "    fetch {} ms, decode {} ms, map {} ms, total {} ms",
                tenths(read.fetch_ms),
                tenths(read.decode_ms),
                tenths(read.map_ms),
                tenths(read.total_ms)
            ));
            if let Some(why) = read.not_partial {
                lines.push(format!("    read whole because {why}"));
            }
        }
        None => lines.push("  Last read: none yet".into()),
    }
    lines.join("\r\n")
}

/// `12.3`: milliseconds to a tenth. Formatting a float with a precision would bring the
/// exact float-printing code into the worker for this one line.
fn tenths(ms: f64) -> String {
    let tenths = (ms.max(0.0) * 10.0).round() as u64;
    format!("{}.{}", tenths / 10, tenths % 10)
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// One entry's record: its place in the mapping and its node as DevTools sent it.
fn record(page: &OpenPage, id: crate::ax::vfs::EntryId) -> String {
    let vfs = page.vfs();
    let Some(entry) = vfs.entry(id) else {
        return "null".into();
    };
    format!(
        r#"{{"name":{},"frameId":{},"children":{},"unread":{},"node":{}}}"#,
        to_json(&entry.name),
        to_json(&entry.frame_id),
        vfs.children(id).len(),
        vfs.pending(id).len(),
        to_json(&vfs.raw_node(id)),
    )
}

fn raw(
    page: &OpenPage,
    session: &Session,
    target: Option<&str>,
    limit: usize,
    offset: usize,
) -> Result<String, String> {
    let (dir, _) = page.entry_at(session, "debug", target)?;
    let children = page.vfs().children(dir);
    let shown: Vec<String> = children
        .iter()
        .skip(offset)
        .take(limit)
        .map(|child| record(page, *child))
        .collect();
    let mut out = shown;
    let after = offset + out.len();
    if after < children.len() {
        out.push(format!(
            "[left out: {} more; next: debug raw{} --offset {after}]",
            children.len() - after,
            target.map(|t| format!(" {t}")).unwrap_or_default()
        ));
    }
    if out.is_empty() {
        return Ok("(no entries)".into());
    }
    Ok(out.join("\r\n"))
}

fn node(page: &OpenPage, session: &Session, target: &str) -> Result<String, String> {
    // A name or path first; failing that, an AX node id of the main frame (as `cat` shows).
    let id = match page.entry_at(session, "debug", Some(target)) {
        Ok((id, _)) => id,
        Err(e) => page
            .vfs()
            .entry_for_node(&page.main_frame, target)
            .ok_or(e)?,
    };
    Ok(record(page, id))
}

#[cfg(test)]
mod tests {
    #[test]
    fn milliseconds_are_shown_to_a_tenth() {
        assert_eq!(super::tenths(0.0), "0.0");
        assert_eq!(super::tenths(12.34), "12.3");
        assert_eq!(super::tenths(9.96), "10.0");
        assert_eq!(super::tenths(-1.0), "0.0");
    }
}
