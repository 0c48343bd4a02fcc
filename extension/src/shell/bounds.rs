//! How big a reply may be: the cap on every command's output, the final "left out" line that
//! says what was cut and which command shows the rest, and the pager the listing commands
//! fill up to the cap.
//!
//! It owns the cap's arithmetic and wording (sans-IO, unit-tested). It must not read the
//! page: commands bound what they read themselves and use [`Pager`] and [`left_out`]; the
//! kernel applies [`bound`] once to every output so no command can exceed
//! [`MAX_OUTPUT_CHARS`], however it was written.
//!
//! Units: `-n N` / `--offset K` count what a command prints: characters for `text`, rows for
//! `extract_table`, entries (one per line) for every listing (`ls`, `find`, `grep`, `read`,
//! `tree`, `extract_links`).

use shared_protocol::frame::{Frame, FrameError};
use shared_protocol::grammar::{quote_word, Command};
pub use shared_protocol::{MAX_IMAGE_OUTPUT_BYTES, MAX_OUTPUT_CHARS};

/// How every "left out" line starts, so pipes (`| grep`, `| head`) can keep it.
pub const LEFT_OUT_PREFIX: &str = "[left out: ";

/// Room kept for the "left out" line and a command's header lines within the cap.
pub const FOOTER_RESERVE: usize = 1_000;

/// What the body of a paged output may use: the cap minus the room for the footer.
pub const BODY_BUDGET: usize = MAX_OUTPUT_CHARS - FOOTER_RESERVE;

/// `text` with `--offset K` set to `next` (any earlier `--offset` dropped, `-n` kept), as
/// the user would type it: the exact command that shows the next page.
pub fn next_page(cmd: &Command, next: usize) -> String {
    let mut words: Vec<String> = Vec::with_capacity(cmd.args.len() + 2);
    let mut it = cmd.args.iter().peekable();
    let mut after_dashes: Vec<String> = Vec::new();
    while let Some(word) = it.next() {
        if word == "--" {
            after_dashes.push(word.clone());
            after_dashes.extend(it.by_ref().cloned());
            break;
        }
        if word == "--offset" {
            it.next();
            continue;
        }
        if word.starts_with("--offset=") {
            continue;
        }
        words.push(word.clone());
    }
    words.push("--offset".into());
    words.push(next.to_string());
    words.extend(after_dashes);
    let mut line = cmd.name.clone();
    for word in &words {
        line.push(' ');
        line.push_str(&quote_word(word));
    }
    line
}

/// The final line of a paged listing: how many entries follow and the command that shows them.
pub fn left_out_entries(cmd: &Command, more: usize, total: usize, next: usize) -> String {
    let plural = if more == 1 { "entry" } else { "entries" };
    format!(
        "{LEFT_OUT_PREFIX}{more} more {plural}, one line each ({total} in all); next: {}]",
        next_page(cmd, next)
    )
}

/// The final line of a text cut at `next` characters: characters and lines after it, and
/// the command that shows them.
pub fn left_out_chars(
    cmd: &Command,
    more_chars: usize,
    more_lines: usize,
    total: usize,
    next: usize,
) -> String {
    format!(
        "{LEFT_OUT_PREFIX}{more_chars} more characters, {more_lines} more {} ({total} characters in all); next: {}]",
        if more_lines == 1 { "line" } else { "lines" },
        next_page(cmd, next)
    )
}

/// Commands whose output pages with `-n`/`--offset`, and what they count.
fn pages_by(command: &str) -> Option<&'static str> {
    match command {
        "text" => Some("characters"),
        "extract_table" => Some("rows"),
        "ls" | "find" | "grep" | "read" | "tree" | "extract_links" => Some("entries"),
        _ => None,
    }
}

/// What to do instead, for the "left out" line of a command cut at dispatch.
fn narrowing_hint(cmd: &Command) -> String {
    match (cmd.name.as_str(), pages_by(&cmd.name)) {
        ("cat", _) => "cat does not page: `text <name> --offset N` reads an element's text page by page, `| grep PATTERN` narrows".into(),
        (name, Some(unit)) => format!(
            "page with -n N --offset K ({unit}; see `{name} --help`), or narrow with `| grep PATTERN`"
        ),
        (name, None) => {
            format!("{name} does not page: narrow it with `| grep PATTERN` or `| head -n N`")
        }
    }
}

/// The longest prefix of `text` with at most `max_chars` characters (never splits one).
pub fn prefix_chars(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// The last line of `text` when it is a "left out" line: `(body, Some(footer))`.
pub fn split_footer(text: &str) -> (&str, Option<&str>) {
    let (body, last) = match text.rfind('\n') {
        Some(at) => (
            text[..at].strip_suffix('\r').unwrap_or(&text[..at]),
            &text[at + 1..],
        ),
        None => ("", text),
    };
    if last.starts_with(LEFT_OUT_PREFIX) {
        (body, Some(last))
    } else {
        (text, None)
    }
}

/// Applies the cap to one command's outcome (success or failure): a longer text is cut on a
/// character boundary and ends with a "left out" line; a `--json` reply (which a cut would
/// break) and an image (which a cut would corrupt) over their caps become errors.
pub fn bound(cmd: &Command, result: Result<String, String>) -> Result<String, String> {
    let (ok, text) = match result {
        Ok(t) => (true, t),
        Err(t) => (false, t),
    };
    if ok && shared_protocol::attachments::is_binary(&text) {
        return if text.len() <= MAX_IMAGE_OUTPUT_BYTES {
            Ok(text)
        } else {
            Err(format!(
                "{}: the image or document is {} MB, over the {} MB a reply may carry; capture less (an element, a smaller --max-width)",
                cmd.name,
                text.len().div_ceil(1024 * 1024),
                MAX_IMAGE_OUTPUT_BYTES / (1024 * 1024)
            ))
        };
    }
    // Cheap test first: a text of at most this many bytes has at most as many characters.
    if text.len() <= MAX_OUTPUT_CHARS || text.chars().count() <= MAX_OUTPUT_CHARS {
        return if ok { Ok(text) } else { Err(text) };
    }
    let total = text.chars().count();
    if ok && cmd.args.iter().any(|a| a == "--json") {
        return Err(format!(
            "{}: the JSON reply would be {total} characters, over the {MAX_OUTPUT_CHARS} a reply may have; {}",
            cmd.name,
            match pages_by(&cmd.name) {
                Some(_) => "ask for fewer with -n N and page with --offset K".to_string(),
                None => "narrow it".to_string(),
            }
        ));
    }
    let kept = prefix_chars(&text, BODY_BUDGET);
    let rest = &text[kept.len()..];
    let kept_chars = kept.chars().count();
    let more_lines = rest.matches('\n').count() + usize::from(!rest.ends_with('\n'));
    let footer = format!(
        "{LEFT_OUT_PREFIX}{} more characters, {more_lines} more {} ({total} characters in all); {}]",
        total - kept_chars,
        if more_lines == 1 { "line" } else { "lines" },
        narrowing_hint(cmd)
    );
    let kept = kept.strip_suffix('\r').unwrap_or(kept);
    let out = format!("{kept}\r\n{footer}");
    if ok {
        Ok(out)
    } else {
        Err(out)
    }
}

/// The `RESULT` frame for a command's reply, as sent: when its encoding would be larger than
/// `max_bytes` (the cap makes that impossible for text, but the frame limit is the last
/// line), it is replaced by an error result that says so, so the link is never put at risk.
pub fn result_frame_text(
    id: String,
    ok: bool,
    output: String,
    lane: Option<String>,
    max_bytes: usize,
) -> Result<String, FrameError> {
    let frame = Frame::Result {
        id: id.clone(),
        ok,
        output,
        lane: lane.clone(),
    };
    let text = frame.encode()?;
    if text.len() <= max_bytes {
        return Ok(text);
    }
    Frame::Result {
        id,
        ok: false,
        output: format!(
            "the reply was {} bytes, over the {max_bytes}-byte frame limit, and was not sent; ask for less (-n N, --offset K, | grep PATTERN)",
            text.len()
        ),
        lane,
    }
    .encode()
}

/// Lines of a listing, filled until the next one would not fit [`BODY_BUDGET`].
#[derive(Debug, Clone)]
pub struct Pager {
    lines: Vec<String>,
    used: usize,
    budget: usize,
    /// Entries pushed (header lines are not entries).
    entries: usize,
}

impl Pager {
    /// A pager starting with `header` lines (notices, titles), which count against the budget.
    pub fn new(header: Vec<String>) -> Pager {
        let used = header.iter().map(|l| l.chars().count() + 2).sum();
        Pager {
            lines: header,
            used,
            budget: BODY_BUDGET,
            entries: 0,
        }
    }

    /// Adds one entry's line; `false` (and nothing added) when it does not fit. A first entry
    /// that alone is longer than the budget is cut to fit (with `…`), so every page makes
    /// progress.
    pub fn push(&mut self, line: String) -> bool {
        self.push_group(vec![line])
    }

    /// Adds one entry shown as several lines (`ls -r`: an entry and its children), all or
    /// nothing, under the same rule as [`Pager::push`].
    pub fn push_group(&mut self, lines: Vec<String>) -> bool {
        let len: usize = lines.iter().map(|l| l.chars().count() + 2).sum();
        if self.used + len <= self.budget {
            self.used += len;
            self.lines.extend(lines);
            self.entries += 1;
            return true;
        }
        if self.entries > 0 {
            return false;
        }
        for line in lines {
            let room = self.budget.saturating_sub(self.used + 3);
            if room == 0 {
                break;
            }
            let len = line.chars().count();
            let line = if len + 2 <= room {
                line
            } else {
                let mut cut = prefix_chars(&line, room).to_string();
                cut.push('…');
                cut
            };
            self.used += line.chars().count() + 2;
            self.lines.push(line);
        }
        self.entries += 1;
        true
    }

    /// Entries added so far.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Whether any room is left in the budget.
    pub fn has_room(&self) -> bool {
        self.used < self.budget
    }

    /// The lines, plus `footer` when given, joined with CRLF.
    pub fn finish(mut self, footer: Option<String>) -> String {
        self.lines.extend(footer);
        self.lines.join("\r\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn command(line: &str) -> Command {
        match shared_protocol::grammar::parse_line(line) {
            Ok(shared_protocol::grammar::Line::Pipeline(p)) => p.command,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn next_page_replaces_the_offset_and_keeps_everything_else() {
        assert_eq!(
            next_page(&command("text main"), 99_000),
            "text main --offset 99000"
        );
        assert_eq!(
            next_page(&command("ls --text --offset 5 -n 3"), 8),
            "ls --text -n 3 --offset 8"
        );
        assert_eq!(next_page(&command("ls --offset=5"), 8), "ls --offset 8");
        assert_eq!(
            next_page(&command("text \"two words\""), 10),
            "text \"two words\" --offset 10"
        );
        assert_eq!(
            next_page(&command("grep -- -x"), 10),
            "grep --offset 10 -- -x"
        );
    }

    #[test]
    fn short_outputs_pass_untouched() {
        let cmd = command("tabs");
        assert_eq!(bound(&cmd, Ok("a\r\nb".into())), Ok("a\r\nb".into()));
        assert_eq!(bound(&cmd, Err("nope".into())), Err("nope".into()));
        let exact = "é".repeat(MAX_OUTPUT_CHARS);
        assert_eq!(bound(&cmd, Ok(exact.clone())), Ok(exact));
    }

    #[test]
    fn a_long_output_is_cut_with_a_left_out_line() {
        let cmd = command("cat big");
        let line = "ü".repeat(300);
        let text = vec![line.as_str(); 1_000].join("\r\n");
        let total = text.chars().count();
        let out = bound(&cmd, Ok(text.clone())).unwrap();
        assert!(out.chars().count() <= MAX_OUTPUT_CHARS, "{}", out.len());
        let (body, footer) = split_footer(&out);
        let footer = footer.expect("a left out line");
        assert!(text.starts_with(body));
        let more = total - body.chars().count();
        assert!(
            footer.contains(&format!("{more} more characters")),
            "{footer}"
        );
        assert!(
            footer.contains(&format!("({total} characters in all)")),
            "{footer}"
        );
        let more_lines = text[body.len()..].matches('\n').count() + 1;
        assert!(
            footer.contains(&format!("{more_lines} more lines")),
            "{footer}"
        );
        assert!(footer.contains("text <name> --offset N"), "{footer}");
        let err = bound(&cmd, Err(text)).unwrap_err();
        assert!(err.chars().count() <= MAX_OUTPUT_CHARS);
    }

    use shared_protocol::attachments::{PDF_MARK, SCREENSHOT_MARK};

    #[test]
    fn json_and_images_are_refused_not_cut() {
        let big = "x".repeat(MAX_OUTPUT_CHARS + 1);
        let err = bound(&command("ls --json"), Ok(big)).unwrap_err();
        assert!(err.contains("-n N") && err.contains("--offset K"), "{err}");
        let shot = format!("{SCREENSHOT_MARK}{}", "A".repeat(2 * MAX_OUTPUT_CHARS));
        assert_eq!(bound(&command("screenshot"), Ok(shot.clone())), Ok(shot));
        let huge = format!("{SCREENSHOT_MARK}{}", "A".repeat(MAX_IMAGE_OUTPUT_BYTES));
        let err = bound(&command("screenshot"), Ok(huge)).unwrap_err();
        assert!(err.contains("over the 12 MB"), "{err}");
        let pdf = format!("{PDF_MARK}{}", "A".repeat(2 * MAX_OUTPUT_CHARS));
        assert_eq!(bound(&command("pdf"), Ok(pdf.clone())), Ok(pdf));
    }

    #[test]
    fn the_pager_fills_the_budget_and_cuts_only_a_lone_giant() {
        let mut pager = Pager::new(vec!["(notice)".into()]);
        let line = "n".repeat(998);
        let mut pushed = 0;
        while pager.push(line.clone()) {
            pushed += 1;
        }
        assert_eq!(pushed, pager.entries());
        assert_eq!(pushed, (BODY_BUDGET - 10) / 1_000);
        let out = pager.finish(Some(format!("{LEFT_OUT_PREFIX}x]")));
        assert!(out.chars().count() <= MAX_OUTPUT_CHARS);

        let mut lone = Pager::new(Vec::new());
        assert!(lone.push("g".repeat(10 * MAX_OUTPUT_CHARS)));
        assert!(!lone.push("next".into()));
        let out = lone.finish(None);
        assert!(out.ends_with('…') && out.chars().count() <= BODY_BUDGET);
    }

    #[test]
    fn the_footer_is_found_only_on_the_last_line() {
        assert_eq!(
            split_footer("a\r\nb\r\n[left out: 3]"),
            ("a\r\nb", Some("[left out: 3]"))
        );
        assert_eq!(
            split_footer("[left out: 3]\r\nb"),
            ("[left out: 3]\r\nb", None)
        );
        assert_eq!(split_footer("plain"), ("plain", None));
    }

    #[test]
    fn an_oversized_result_frame_becomes_an_error_result() {
        let small =
            result_frame_text("r1".into(), true, "fine".into(), Some("7".into()), 1_000).unwrap();
        assert_eq!(
            Frame::decode(&small, 1_000).unwrap(),
            Frame::Result {
                id: "r1".into(),
                ok: true,
                output: "fine".into(),
                lane: Some("7".into())
            }
        );
        // Control characters grow sixfold when escaped: 200 of them do not fit 1,000 bytes.
        let text = result_frame_text("r2".into(), true, "\u{1}".repeat(200), None, 1_000).unwrap();
        assert!(text.len() <= 1_000, "{}", text.len());
        match Frame::decode(&text, 1_000).unwrap() {
            Frame::Result { id, ok, output, .. } => {
                assert_eq!((id.as_str(), ok), ("r2", false));
                assert!(output.contains("frame limit"), "{output}");
            }
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        #[test]
        fn bound_never_exceeds_the_cap_nor_splits_a_char(
            piece in "(?s).{0,40}", repeat in 0usize..6_000, ok in any::<bool>()
        ) {
            let text = piece.repeat(repeat);
            let result = if ok { Ok(text.clone()) } else { Err(text.clone()) };
            let out = match bound(&command("tree"), result) { Ok(t) | Err(t) => t };
            prop_assert!(out.chars().count() <= MAX_OUTPUT_CHARS);
            let (body, _) = split_footer(&out);
            prop_assert!(text.starts_with(body.trim_end_matches('\r')));
        }
    }
}
