//! Commands that run other commands: `for <source> : <template>`, `each [--pattern P]
//! [--limit N] <cmd>`, `watch <cmd> [--interval S] [--times N] [--until-change]` and
//! `script` (its stored commands are [`super::saved`]'s).
//!
//! Every loop is bounded: in items ([`MAX_ITEMS`], [`MAX_TIMES`]), in depth
//! ([`shared_protocol::grammar::MAX_NESTING`]) and in time (the command's deadline bounds
//! every browser call and every wait inside it, and a cancelled command stops at its next
//! await). Inner lines are not written into the history: the loop's own line is. `each`
//! visits the tabs the session may see (its lane's, or the user's outside every lane) and
//! comes back to where it was.
//!
//! It owns looping and the layout of what the loops print. It must not parse inner
//! commands (the grammar does) nor decide their tiers (the classifier saw the whole line).

use std::future::Future;
use std::pin::Pin;

use shared_protocol::grammar::{parse_line, Command, Line, Nested, Script, MAX_NESTING};

use super::browser::Browser;
use super::session::Session;
use super::{run_pipeline, Context};

/// Items a `for` or `each` runs its command for, at most.
pub const MAX_ITEMS: usize = 100;
/// Runs of a `watch`, at most, and by default.
pub const MAX_TIMES: u32 = 100;
const DEFAULT_TIMES: u32 = 5;
/// `watch`'s pause between runs, by default and at least (ms).
const DEFAULT_INTERVAL_MS: u64 = 2_000;
const MIN_INTERVAL_MS: u64 = 500;
/// Tabs `each` visits when no `--limit` is given.
const DEFAULT_EACH_LIMIT: usize = 20;

type Boxed<'a> = Pin<Box<dyn Future<Output = Result<String, String>> + 'a>>;

/// Runs a `for`, `each` or `watch` line.
pub fn run<'a, B: Browser>(
    session: &'a mut Session,
    browser: &'a B,
    ctx: &'a Context,
    cmd: &'a Command,
) -> Boxed<'a> {
    Box::pin(async move {
        let name = cmd.name.as_str();
        if ctx.depth.get() >= MAX_NESTING {
            return Err(format!(
                "{name}: loops are nested more than {MAX_NESTING} deep; split the work"
            ));
        }
        let form = cmd
            .nested_form()
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{name}: not a loop"))?;
        ctx.depth.set(ctx.depth.get() + 1);
        let result = match form {
            // No `?` in these arms: the depth above is restored after the match.
            Nested::For(f) => match inner(session, browser, ctx, &f.source).await {
                Err(e) => Err(format!("for: the source `{}` failed: {e}", f.source)),
                Ok(listing) => {
                    let items = items_of(&listing);
                    let running = items.len().min(MAX_ITEMS);
                    let mut runs = Runs::default();
                    for (i, item) in items.iter().take(MAX_ITEMS).enumerate() {
                        let line = f.substitute(item);
                        ctx.report_item("for", "item", i, running);
                        let outcome = inner(session, browser, ctx, &line).await;
                        runs.add(format!("$ {line}"), outcome);
                    }
                    runs.left_out(items.len().saturating_sub(MAX_ITEMS), "item");
                    runs.finish("for", "the source printed nothing: no item to run")
                }
            },
            Nested::Each(e) => {
                each(
                    session,
                    browser,
                    ctx,
                    &e.command,
                    e.pattern.as_deref(),
                    e.limit,
                )
                .await
            }
            Nested::Watch(w) => {
                let times = w.times.unwrap_or(DEFAULT_TIMES).clamp(1, MAX_TIMES);
                let interval = w
                    .interval_s
                    .map_or(DEFAULT_INTERVAL_MS, |s| (s * 1000.0) as u64)
                    .max(MIN_INTERVAL_MS);
                watch(
                    session,
                    browser,
                    ctx,
                    &w.command,
                    times,
                    interval,
                    w.until_change,
                )
                .await
            }
            Nested::Script(Script::Run { name, args }) => {
                script_run(session, browser, ctx, &name, &args).await
            }
            Nested::Script(other) => ctx.saved.borrow_mut().script_command(&other),
        };
        ctx.depth.set(ctx.depth.get() - 1);
        result
    })
}

/// `script run <name> [args…]`: its commands in order, with the arguments in place; the
/// first that fails stops the rest.
async fn script_run<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    name: &str,
    args: &[String],
) -> Result<String, String> {
    let lines = ctx
        .saved
        .borrow()
        .script(name)
        .map(<[String]>::to_vec)
        .ok_or_else(|| format!("script: no script named {name} (`script list` lists them)"))?;
    let mut runs = Runs::default();
    for (i, line) in lines.iter().enumerate() {
        let line = super::saved::substitute(line, name, args);
        ctx.report_item("script", "command", i, lines.len());
        let outcome = inner(session, browser, ctx, &line).await;
        let failed = outcome.is_err();
        runs.add(format!("$ {line}"), outcome);
        if failed {
            let left = lines.len() - i - 1;
            if left > 0 {
                runs.blocks
                    .push(format!("[stopped: {left} later command(s) not run]"));
            }
            break;
        }
    }
    runs.finish("script", "the script has no commands")
}

/// One inner line, as the kernel runs a line but without a history entry.
async fn inner<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    line: &str,
) -> Result<String, String> {
    match parse_line(line.trim()) {
        Ok(Line::Pipeline(pipeline)) => run_pipeline(session, browser, ctx, &pipeline).await,
        Ok(Line::HistoryReplay(_)) => {
            Err(format!("`{line}`: history replay is not run inside a loop"))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The items of a source's output: its non-empty lines, trimmed, without the `[left out: …]`
/// line a capped output ends with.
fn items_of(listing: &str) -> Vec<String> {
    listing
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("[left out:"))
        .map(str::to_string)
        .collect()
}

/// The outputs of a loop's runs, each under its header.
#[derive(Default)]
struct Runs {
    blocks: Vec<String>,
    failed: usize,
    ran: usize,
}

impl Runs {
    fn add(&mut self, header: String, outcome: Result<String, String>) {
        self.ran += 1;
        let body = match outcome {
            Ok(out) => out,
            Err(e) => {
                self.failed += 1;
                format!("Error: {e}")
            }
        };
        self.blocks.push(if body.is_empty() {
            header
        } else {
            format!("{header}\r\n{body}")
        });
    }

    fn left_out(&mut self, more: usize, what: &str) {
        if more > 0 {
            self.blocks.push(format!(
                "[stopped at {MAX_ITEMS} {what}s: {more} more not run; narrow the source]"
            ));
        }
    }

    /// Ok when every run was; else an error holding every run's output.
    fn finish(self, name: &str, nothing: &str) -> Result<String, String> {
        if self.ran == 0 {
            return Ok(format!("{name}: {nothing}"));
        }
        let text = self.blocks.join("\r\n");
        if self.failed == 0 {
            Ok(text)
        } else {
            Err(format!(
                "{name}: {} of {} run(s) failed\r\n{text}",
                self.failed, self.ran
            ))
        }
    }
}

async fn each<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    command: &str,
    pattern: Option<&str>,
    limit: Option<usize>,
) -> Result<String, String> {
    // The tabs this session may see; each inner command is confined again by the kernel.
    let view = ctx.lanes.borrow().view(session.lane);
    let tabs = super::confined::Confined::new(browser, view)
        .tabs()
        .await
        .map_err(super::plain)?;
    let needle = pattern.map(str::to_lowercase);
    let chosen: Vec<_> = tabs
        .iter()
        .filter(|t| {
            super::access::check_page(&t.url, &ctx.domains).is_ok()
                && needle.as_ref().is_none_or(|n| {
                    t.title.to_lowercase().contains(n) || t.url.to_lowercase().contains(n)
                })
        })
        .collect();
    let limit = limit.unwrap_or(DEFAULT_EACH_LIMIT).min(MAX_ITEMS);
    let home = session.cwd.clone();
    let mut runs = Runs::default();
    let visiting = chosen.len().min(limit);
    for (i, tab) in chosen.iter().take(limit).enumerate() {
        let Some(id) = tab.id else { continue };
        ctx.report_item("each", "tab", i, visiting);
        let header = format!("=== tab {id}: {} ===", tab.title);
        let outcome = match inner(session, browser, ctx, &format!("cd ~/tabs/{id}")).await {
            Ok(_) => inner(session, browser, ctx, command).await,
            Err(e) => Err(e),
        };
        runs.add(header, outcome);
    }
    // Back where the session was: `each` visits, it does not move.
    session.cwd = home;
    if chosen.len() > limit {
        runs.blocks.push(format!(
            "[{} more tab(s) not visited: --limit {limit}]",
            chosen.len() - limit
        ));
    }
    runs.finish(
        "each",
        "no tab matches (tabs you may not read are left out)",
    )
}

async fn watch<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    command: &str,
    times: u32,
    interval_ms: u64,
    until_change: bool,
) -> Result<String, String> {
    let mut runs = Runs::default();
    let mut first: Option<Result<String, String>> = None;
    for n in 1..=times {
        if n > 1 {
            let left = browser.remaining_ms().unwrap_or(u64::MAX);
            if left <= interval_ms {
                runs.blocks.push(format!(
                    "[stopped after {} run(s): the call's budget ends before the next]",
                    n - 1
                ));
                break;
            }
            browser.sleep_ms(interval_ms).await;
        }
        ctx.report_item("watch", "run", (n - 1) as usize, times as usize);
        let outcome = inner(session, browser, ctx, command).await;
        if until_change {
            match &first {
                None => first = Some(outcome.clone()),
                Some(before) if *before == outcome => continue,
                Some(_) => {
                    runs.add(format!("--- run {n}: changed ---"), outcome);
                    return runs.finish("watch", "");
                }
            }
            if n == 1 {
                runs.add(format!("--- run 1: `{command}` ---"), outcome);
            }
            continue;
        }
        runs.add(format!("--- run {n} ---"), outcome);
    }
    if until_change {
        runs.blocks.push(format!("[no change in {times} run(s)]"));
    }
    runs.finish("watch", "")
}

#[cfg(test)]
mod tests {
    use super::items_of;

    #[test]
    fn items_are_the_sources_lines_without_the_left_out_line() {
        assert_eq!(
            items_of("a\r\n  b  \r\n\r\n[left out: 3 more entries]"),
            ["a", "b"]
        );
        assert!(items_of("").is_empty());
    }
}
