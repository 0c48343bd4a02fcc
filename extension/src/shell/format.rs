//! Text and JSON shapes of the browser-level listings (`tabs`, `windows`, `ls ~`) and of
//! the lines navigation commands print about a tab.
//!
//! It owns column widths and markers. It must not fetch anything: callers pass what the
//! browser reported, the session's tab and the allowlist.

use serde_json::{json, Value};

use super::access::{check_page, DomainList, Refusal};
use super::browser::{TabInfo, WindowInfo};

const TITLE_WIDTH: usize = 60;
const URL_WIDTH: usize = 100;
const WINDOW_TITLE_WIDTH: usize = 36;
const WINDOW_URL_WIDTH: usize = 30;
const OUTSIDE_MARK: &str = " [outside allowlist]";
const INTERNAL_MARK: &str = " [browser page]";

/// `text` padded or cut (with `…`) to exactly `width` characters.
pub fn clip(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        format!("{text:<width$}")
    } else {
        let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

fn id_text(id: Option<i64>) -> String {
    id.map(|i| i.to_string()).unwrap_or_else(|| "-".into())
}

/// Whether the shell may enter the tab.
fn allowed(tab: &TabInfo, domains: &DomainList) -> bool {
    check_page(&tab.url, domains).is_ok()
}

/// Why a listed tab cannot be entered, as a suffix: listings hide nothing.
fn mark(tab: &TabInfo, domains: &DomainList) -> &'static str {
    match check_page(&tab.url, domains) {
        Ok(()) => "",
        Err(Refusal::Internal { .. }) => INTERNAL_MARK,
        Err(_) => OUTSIDE_MARK,
    }
}

/// The `tabs` table.
pub fn tabs_table(tabs: &[TabInfo], current: Option<i64>, domains: &DomainList) -> String {
    if tabs.is_empty() {
        return "(no tabs)".into();
    }
    // One line per tab, nothing padded: `*<id>  <title>  <url>  win <id>`.
    let mut lines = Vec::with_capacity(tabs.len());
    for tab in tabs {
        let mut line = format!("{}{}", if tab.active { '*' } else { ' ' }, id_text(tab.id));
        for part in [clip(&tab.title, TITLE_WIDTH), clip(&tab.url, URL_WIDTH)] {
            if !part.trim().is_empty() {
                line.push_str("  ");
                line.push_str(part.trim_end());
            }
        }
        line.push_str(&format!("  win {}", id_text(tab.window_id)));
        if tab.id.is_some() && tab.id == current {
            line.push_str(" *current");
        }
        line.push_str(mark(tab, domains));
        lines.push(line);
    }
    lines.join("\r\n")
}

/// `tabs --json` / `ls --json ~/tabs`.
pub fn tabs_json(tabs: &[TabInfo], current: Option<i64>, domains: &DomainList) -> Value {
    let tabs: Vec<Value> = tabs
        .iter()
        .map(|t| {
            json!({
                "id": t.id, "title": t.title, "url": t.url, "windowId": t.window_id,
                "active": t.active, "current": t.id.is_some() && t.id == current,
                "allowed": allowed(t, domains),
            })
        })
        .collect();
    json!({ "tabs": tabs })
}

fn without_scheme(url: &str) -> &str {
    url.split_once("://").map(|(_, rest)| rest).unwrap_or(url)
}

/// The `windows` tree.
pub fn windows_tree(windows: &[WindowInfo], current: Option<i64>, domains: &DomainList) -> String {
    if windows.is_empty() {
        return "(no windows)".into();
    }
    let mut lines = Vec::new();
    for window in windows {
        let mut head = format!("Window {}", id_text(window.id));
        if window.focused {
            head.push_str(" (focused)");
        }
        if let Some(kind) = window.kind.as_deref().filter(|k| *k != "normal") {
            head.push_str(&format!(" [{kind}]"));
        }
        lines.push(head);
        let count = window.tabs.len();
        for (i, tab) in window.tabs.iter().enumerate() {
            let branch = if i + 1 == count {
                "└──"
            } else {
                "├──"
            };
            let mut line = format!(
                "{branch} {}{} {}   {}",
                if tab.active { '*' } else { ' ' },
                id_text(tab.id),
                clip(&tab.title, WINDOW_TITLE_WIDTH).trim_end(),
                clip(without_scheme(&tab.url), WINDOW_URL_WIDTH).trim_end(),
            );
            if tab.id.is_some() && tab.id == current {
                line.push_str(" *current");
            }
            if !allowed(tab, domains) {
                line.push_str(OUTSIDE_MARK);
            }
            lines.push(line);
        }
    }
    lines.join("\r\n")
}

/// `windows --json` / `ls --json ~/windows`.
pub fn windows_json(windows: &[WindowInfo], current: Option<i64>, domains: &DomainList) -> Value {
    let windows: Vec<Value> = windows
        .iter()
        .map(|w| {
            let tabs: Vec<Value> = w
                .tabs
                .iter()
                .map(|t| {
                    json!({
                        "id": t.id, "title": t.title, "url": t.url, "active": t.active,
                        "current": t.id.is_some() && t.id == current,
                        "allowed": allowed(t, domains),
                    })
                })
                .collect();
            json!({ "id": w.id, "focused": w.focused, "type": w.kind, "tabs": tabs })
        })
        .collect();
    json!({ "windows": windows })
}

/// `ls` at `~`.
pub fn root_listing(windows: &[WindowInfo], active: Option<&TabInfo>) -> String {
    let tabs: usize = windows.iter().map(|w| w.tabs.len()).sum();
    let mut lines = vec![
        format!("windows/ ({} windows)", windows.len()),
        format!("tabs/ ({tabs} tabs)"),
    ];
    if let Some(tab) = active {
        lines.push(format!(
            "Active tab: {} — {} ({})",
            id_text(tab.id),
            tab.title,
            tab.url
        ));
    }
    lines.join("\r\n")
}

/// A link's `href` as a line shows it: from its path on when it is on the page's own origin
/// (the agent knows where it is), whole otherwise.
pub fn relative_href<'a>(href: &'a str, page_url: &str) -> &'a str {
    match (web_origin(href), web_origin(page_url)) {
        (Some(link), Some(page)) if link.eq_ignore_ascii_case(page) => match &href[link.len()..] {
            "" => "/",
            rest => rest,
        },
        _ => href,
    }
}

/// `scheme://host[:port]` of an http(s) URL.
fn web_origin(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let authority = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    (authority > 0).then(|| &url[..scheme.len() + 3 + authority])
}

/// `  Title: …` / `  URL: …` under a ✓ line.
pub fn tab_lines(tab: &TabInfo) -> String {
    format!("  Title: {}\r\n  URL: {}", tab.title, tab.url)
}

/// A duration as people read it at a glance: `45 s`, `12 min`, `3 h`, `2 d`.
pub fn duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=89 => format!("{s} s"),
        90..=5399 => format!("{} min", (s + 30) / 60),
        5400..=172_799 => format!("{} h", (s + 1800) / 3600),
        _ => format!("{} d", (s + 43_200) / 86_400),
    }
}

#[cfg(test)]
mod href_tests {
    use super::relative_href;

    #[test]
    fn same_origin_links_are_shown_from_their_path() {
        let page = "https://en.example.org/wiki/Comet?x=1";
        assert_eq!(
            relative_href("https://en.example.org/wiki/Orbit", page),
            "/wiki/Orbit"
        );
        assert_eq!(relative_href("https://EN.example.org", page), "/");
        assert_eq!(relative_href("https://en.example.org#top", page), "#top");
        // Another host, port or scheme is another site: shown whole.
        for other in [
            "https://example.org/wiki/Orbit",
            "https://en.example.org:8443/x",
            "http://en.example.org/x",
            "https://en.example.org.evil.test/x",
            "mailto:a@en.example.org",
        ] {
            assert_eq!(relative_href(other, page), other);
        }
        assert_eq!(
            relative_href("https://a.test/x", "about:blank"),
            "https://a.test/x"
        );
    }
}

#[cfg(test)]
mod duration_tests {
    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(super::duration_ms(0), "0 s");
        assert_eq!(super::duration_ms(45_900), "45 s");
        assert_eq!(super::duration_ms(12 * 60_000), "12 min");
        assert_eq!(super::duration_ms(3 * 3_600_000), "3 h");
        assert_eq!(super::duration_ms(50 * 3_600_000), "2 d");
    }
}
