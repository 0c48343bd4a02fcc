//! `console`, `network` and `network body`: what the current tab's page logged and fetched
//! since domshell attached to it, from the rings the glue keeps ([`super::activity`]);
//! `downloads` from the worker's book ([`super::downloads`]); and `wait --idle`/`--url`,
//! which watch the page as a whole.
//!
//! It owns how entries are filtered and shown, and the domain allowlist applied to
//! requests (a request to a host outside the list is counted, not shown). It must not keep
//! anything itself, and fetches a response body only when asked for it by number (the
//! server classifies `network body` as sensitive: bodies can hold credentials).

use serde_json::json;
use shared_protocol::grammar::Args;

use super::activity::{Level, RequestEntry, TabActivity};
use super::browser::Browser;
use super::reading::number;
use super::session::Session;
use super::Context;

/// Entries shown when no `-n` is given.
const DEFAULT_SHOWN: usize = 50;
/// Characters of a response body shown (the reply's own cap applies too).
const MAX_BODY_CHARS: usize = 50_000;

pub(crate) async fn run<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &shared_protocol::grammar::Command,
    args: &Args,
) -> Result<String, String> {
    if cmd.name == "downloads" {
        return downloads(browser, ctx, cmd, args).await;
    }
    let tab = super::navigation::require_page(session, browser, ctx, &cmd.name).await?;
    let id = tab.id.unwrap_or_default();
    let activity = browser.activity(id).unwrap_or_default();
    let shown = number(cmd, args, "-n")?.unwrap_or(DEFAULT_SHOWN);
    match (cmd.name.as_str(), args.positional.as_slice()) {
        ("console", []) => {
            let level = match args.value("--level") {
                Some(word) => Some(Level::parse(word).ok_or_else(|| {
                    format!("--level takes error, warn, info or debug, not '{word}'")
                })?),
                None => None,
            };
            let out = console(&activity, level, shown, args.has("--json"));
            if args.has("--clear") {
                browser.clear_console(id);
            }
            Ok(out)
        }
        ("network", []) => Ok(network(
            &activity,
            ctx,
            shown,
            args.has("--failed"),
            args.value("--type"),
            args.has("--json"),
        )),
        ("network", [body, which]) if body == "body" => {
            let number: u64 = which.trim_start_matches('#').parse().map_err(|_| {
                format!("network body: which request? a number `network` shows, not '{which}'")
            })?;
            let request = activity.request(number).ok_or_else(|| {
                format!("no request {number} is kept for this tab (`network` lists them)")
            })?;
            if !ctx.domains.allows_host(&request.url) {
                return Err(format!(
                    "request {number} went to a host outside the domain allowlist"
                ));
            }
            body_of(browser, id, request).await
        }
        ("console", _) => {
            Err("usage: console [-n N] [--level error|warn|info|debug] [--clear] [--json]".into())
        }
        _ => {
            Err("usage: network [-n N] [--failed] [--type TYPE] [--json] | network body <n>".into())
        }
    }
}

fn console(activity: &TabActivity, level: Option<Level>, shown: usize, as_json: bool) -> String {
    let matching: Vec<_> = activity
        .console()
        .filter(|e| level.is_none_or(|l| e.level >= l))
        .collect();
    let skip = matching.len().saturating_sub(shown);
    let kept = &matching[skip..];
    if as_json {
        let entries: Vec<_> = kept
            .iter()
            .map(|e| json!({"level": e.level.as_str(), "text": e.text, "source": e.source}))
            .collect();
        return json!({"entries": entries, "earlier": skip, "dropped": activity.console_dropped})
            .to_string();
    }
    if kept.is_empty() {
        return "(no console messages since domshell attached to this tab)".into();
    }
    let mut lines = Vec::with_capacity(kept.len() + 1);
    if skip > 0 || activity.console_dropped > 0 {
        lines.push(format!(
            "[{} earlier message(s) not shown: -n N]",
            skip as u64 + activity.console_dropped
        ));
    }
    for entry in kept {
        let mut line = format!("[{}] {}", entry.level.as_str(), entry.text);
        if let Some(source) = &entry.source {
            line.push_str("  (");
            line.push_str(source);
            line.push(')');
        }
        lines.push(line);
    }
    lines.join("\r\n")
}

/// A byte count as people read it.
fn size(bytes: u64) -> String {
    match bytes {
        0..=1023 => format!("{bytes} B"),
        1024..=1_048_575 => format!("{}.{} KB", bytes / 1024, bytes % 1024 * 10 / 1024),
        _ => format!(
            "{}.{} MB",
            bytes / 1_048_576,
            bytes % 1_048_576 * 10 / 1_048_576
        ),
    }
}

fn state(request: &RequestEntry) -> String {
    match (&request.failure, request.status) {
        // Answered, then its body was not read to the end (the page did not want it).
        (Some(why), Some(status)) => format!("{status} ({why})"),
        (Some(why), None) => format!("failed ({why})"),
        (None, Some(status)) => status.to_string(),
        (None, None) => "pending".into(),
    }
}

fn network(
    activity: &TabActivity,
    ctx: &Context,
    shown: usize,
    failed_only: bool,
    kind: Option<&str>,
    as_json: bool,
) -> String {
    let mut outside = 0;
    let matching: Vec<&RequestEntry> = activity
        .requests()
        .filter(|r| {
            let allowed = ctx.domains.allows_host(&r.url);
            outside += usize::from(!allowed);
            allowed
        })
        .filter(|r| !failed_only || r.failed())
        .filter(|r| kind.is_none_or(|k| r.kind.eq_ignore_ascii_case(k)))
        .collect();
    let skip = matching.len().saturating_sub(shown);
    let kept = &matching[skip..];
    if as_json {
        let requests: Vec<_> = kept
            .iter()
            .map(|r| {
                json!({"n": r.number, "method": r.method, "url": r.url, "type": r.kind,
                       "status": r.status, "mimeType": r.mime_type, "size": r.size,
                       "ms": r.duration_ms.map(|d| d.round()), "failure": r.failure})
            })
            .collect();
        return json!({"requests": requests, "earlier": skip, "outside_allowlist": outside,
                      "dropped": activity.requests_dropped})
        .to_string();
    }
    let mut lines = Vec::with_capacity(kept.len() + 2);
    if skip > 0 || activity.requests_dropped > 0 {
        lines.push(format!(
            "[{} earlier request(s) not shown: -n N]",
            skip as u64 + activity.requests_dropped
        ));
    }
    for r in kept {
        let mut line = format!(
            "{:>3} {} {} {} {}",
            r.number,
            r.method,
            state(r),
            r.kind,
            r.url
        );
        if let Some(bytes) = r.size {
            line.push_str("  ");
            line.push_str(&size(bytes));
        }
        if let Some(ms) = r.duration_ms {
            line.push_str(&format!("  {} ms", ms.round() as u64));
        }
        lines.push(line);
    }
    if outside > 0 {
        lines.push(format!(
            "[{outside} request(s) to hosts outside the domain allowlist not shown]"
        ));
    }
    if lines.is_empty() {
        return "(no requests since domshell attached to this tab)".into();
    }
    lines.join("\r\n")
}

async fn body_of<B: Browser>(
    browser: &B,
    tab: i64,
    request: &RequestEntry,
) -> Result<String, String> {
    if request.in_flight() {
        return Err(format!(
            "request {} has not finished; its body is not there yet",
            request.number
        ));
    }
    let reply = browser
        .cdp(
            tab,
            "Network.getResponseBody",
            json!({ "requestId": request.request_id }),
        )
        .await
        .map_err(|e| format!("the body of request {} is gone ({e})", request.number))?;
    let body = reply["body"].as_str().unwrap_or_default();
    if reply["base64Encoded"].as_bool() == Some(true) {
        return Ok(format!(
            "(request {}: {} bytes of binary data, {}; not shown)",
            request.number,
            body.len() / 4 * 3,
            request.mime_type.as_deref().unwrap_or("unknown type")
        ));
    }
    let total = body.chars().count();
    if total <= MAX_BODY_CHARS {
        return Ok(body.to_string());
    }
    let cut: String = body.chars().take(MAX_BODY_CHARS).collect();
    Ok(format!(
        "{cut}\r\n[left out: {} more characters of the body]",
        total - MAX_BODY_CHARS
    ))
}

/// Longest `downloads wait`, and its default.
const DOWNLOAD_WAIT_S: f64 = 30.0;

/// One download as a line: `✓ report.csv  complete  12.0 KB  /home/u/Downloads/report.csv`.
pub(crate) fn download_line(d: &super::downloads::Download) -> String {
    let mark = match d.state.as_str() {
        "complete" => "✓",
        "in_progress" => "…",
        _ => "✗",
    };
    let mut line = format!("{mark} {}  {}", d.name(), d.state);
    if d.bytes > 0 {
        line.push_str("  ");
        line.push_str(&size(d.bytes));
    }
    if let Some(error) = &d.error {
        line.push_str(&format!("  ({error})"));
    }
    if !d.path.is_empty() {
        line.push_str("  ");
        line.push_str(&d.path);
    }
    line
}

async fn downloads<B: Browser>(
    browser: &B,
    ctx: &Context,
    cmd: &shared_protocol::grammar::Command,
    args: &Args,
) -> Result<String, String> {
    match args.positional.as_slice() {
        [] => {
            let mine = ctx.downloads.borrow().of(&ctx.session_name);
            let shown = number(cmd, args, "-n")?.unwrap_or(DEFAULT_SHOWN);
            let kept = &mine[mine.len().saturating_sub(shown)..];
            if args.has("--json") {
                let list: Vec<_> = kept
                    .iter()
                    .map(|d| json!({"name": d.name(), "state": d.state, "bytes": d.bytes,
                                    "total": d.total, "path": d.path, "url": d.url, "error": d.error}))
                    .collect();
                return Ok(json!({"downloads": list}).to_string());
            }
            if kept.is_empty() {
                return Ok("(no downloads started by this session)".into());
            }
            Ok(kept
                .iter()
                .map(download_line)
                .collect::<Vec<_>>()
                .join("\r\n"))
        }
        [wait] if wait == "wait" => {
            let timeout_s = match args.value("--timeout") {
                None => DOWNLOAD_WAIT_S,
                Some(t) => shared_protocol::decimal::parse_f64(t)
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("--timeout expects seconds, got '{t}'"))?
                    .min(DOWNLOAD_WAIT_S),
            };
            let asked = ((timeout_s * 1000.0) as u64).min(ctx.wait_cap_ms);
            let budget = browser
                .remaining_ms()
                .map_or(asked, |left| super::deadline::wait_within(asked, left));
            let mut slept = 0;
            loop {
                let last = ctx.downloads.borrow().of(&ctx.session_name).pop();
                match last {
                    None => return Err("this session started no download".into()),
                    Some(d) if d.finished() => {
                        return if d.state == "complete" {
                            Ok(download_line(&d))
                        } else {
                            Err(format!("the download failed: {}", download_line(&d)))
                        }
                    }
                    Some(d) if slept >= budget => {
                        return Err(format!(
                            "timed out after {timeout_s}s; still running: {}",
                            download_line(&d)
                        ))
                    }
                    Some(_) => {}
                }
                browser.sleep_ms(POLL_MS).await;
                slept += POLL_MS;
            }
        }
        _ => Err("usage: downloads [-n N] [--json] | downloads wait [--timeout S]".into()),
    }
}

/// Quiet the network must stay for `wait --idle`.
const IDLE_MS: f64 = 500.0;
/// A request open this long (a long poll, a stream) no longer keeps the page busy.
const STALE_REQUEST_MS: f64 = 10_000.0;
/// How often `wait --idle`/`--url` look again.
const POLL_MS: u64 = 100;

/// `wait --idle` (`url` `None`) or `wait --url <pattern>`: look every [`POLL_MS`] until the
/// network has rested [`IDLE_MS`] or the tab's URL contains the pattern, for `budget_ms`
/// at most (the call's cancellation ends the sleeps).
pub(crate) async fn wait_for_page<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    url: Option<&str>,
    budget_ms: u64,
    timeout_s: f64,
) -> Result<String, String> {
    let tab = super::navigation::require_page(session, browser, ctx, "wait").await?;
    let id = tab.id.unwrap_or_default();
    let started = browser.monotonic_ms();
    // A browser without a clock (the tests' fake) still ends the wait: sleeps add up.
    let mut slept = 0u64;
    let waited = |slept: u64| (slept as f64).max(browser.monotonic_ms() - started);
    let needle = url.map(str::to_lowercase);
    loop {
        match &needle {
            Some(needle) => {
                let now = browser.tab(id).await.map_err(super::plain)?;
                let current = now.map(|t| t.url).unwrap_or_default();
                if current.to_lowercase().contains(needle.as_str()) {
                    return Ok(format!(
                        "✓ URL matches after {:.1}s: {current}",
                        waited(slept) / 1000.0
                    ));
                }
            }
            None => {
                let activity = browser.activity(id).unwrap_or_default();
                let quiet = activity.quiet_for_ms(browser.monotonic_ms(), STALE_REQUEST_MS);
                if quiet.is_some_and(|q| q >= IDLE_MS) {
                    return Ok(format!(
                        "✓ Network idle after {:.1}s ({} request(s) seen on this tab)",
                        waited(slept) / 1000.0,
                        activity.requests().count()
                    ));
                }
            }
        }
        if waited(slept) as u64 >= budget_ms {
            break;
        }
        browser.sleep_ms(POLL_MS).await;
        slept += POLL_MS;
    }
    Err(match url {
        Some(pattern) => format!(
            "timed out after {timeout_s}s — the URL never contained \"{pattern}\" (it is {})",
            browser
                .tab(id)
                .await
                .ok()
                .flatten()
                .map(|t| t.url)
                .unwrap_or_default()
        ),
        None => format!(
            "timed out after {timeout_s}s — the network never rested {IDLE_MS} ms (`network` shows what is in flight)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_at_a_glance() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KB");
        assert_eq!(size(3 * 1_048_576), "3.0 MB");
    }
}
