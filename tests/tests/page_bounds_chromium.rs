//! Bounded replies in a real browser: headless Chromium runs the built extension on a page
//! holding a 20 MB text node (`tests/fixtures/pages/huge_text.html`, made by the page's own
//! script): `text` answers with at most `MAX_OUTPUT_CHARS` characters ending with a
//! `[left out: …]` line, the next page named there continues exactly where the first
//! stopped, `ls --text`, `read`, `find --text` and `cat` stay within the cap, and the link
//! stays up all along (no reconnect, later commands answered). The node is hidden from the
//! accessibility tree (see the fixture).

use domshell_tests::PageRig;
use serde_json::Value;
use shared_protocol::MAX_OUTPUT_CHARS;

/// Words in the fixture's text node (`w0000001` … ), as its script makes them.
const WORDS: usize = 2_300_000;

/// The fixture's text as the page shows it.
fn huge_text() -> String {
    (1..=WORDS)
        .map(|i| format!("w{i:07}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The shared page rig, with a longer budget per command for a 20 MB page.
struct Rig {
    page: PageRig,
    base: String,
}

impl Rig {
    async fn start() -> Rig {
        // Reading a tree with a 20 MB name keeps the worker busy for a while.
        let page = PageRig::start_with(30_000).await;
        let base = page.base.clone();
        Rig { page, base }
    }

    /// Runs a command that must succeed.
    async fn ok(&self, command: &str) -> String {
        let (ok, output, _) = self.page.run_timed(command, 40_000).await;
        assert!(ok, "`{command}` failed: {output}");
        output
    }

    async fn health(&self) -> Value {
        self.page.server.health().await.unwrap()
    }
}

/// The `[left out: …]` line ending `output`, which must be there.
fn left_out(output: &str) -> &str {
    let last = output.lines().last().unwrap_or_default();
    assert!(last.starts_with("[left out: "), "no left out line: {last}");
    last
}

/// The command a `[left out: …; next: CMD]` line names.
fn next_command(line: &str) -> String {
    line.split_once("; next: ")
        .and_then(|(_, rest)| rest.strip_suffix(']'))
        .unwrap_or_else(|| panic!("no next command in {line}"))
        .to_string()
}

fn assert_capped(command: &str, output: &str) {
    let chars = output.chars().count();
    assert!(
        chars <= MAX_OUTPUT_CHARS,
        "`{command}` gave {chars} characters, over the {MAX_OUTPUT_CHARS} cap"
    );
}

#[tokio::test]
async fn a_20_mb_text_node_gives_capped_replies_and_the_link_stays_up() {
    let rig = Rig::start().await;
    let expected = huge_text();
    let before = rig.health().await;

    let opened = rig.ok(&format!("open {}/huge_text.html", rig.base)).await;
    assert!(opened.contains("AX Nodes: "), "{opened}");

    // `text` of the page: a page of the text, and the next page it names continues exactly
    // where the first stopped (the words are numbered: no gap, no overlap).
    let first = rig.ok("text").await;
    assert_capped("text", &first);
    let footer = left_out(&first);
    let next = next_command(footer);
    assert!(next.starts_with("text --offset "), "{next}");
    let offset: usize = next["text --offset ".len()..].parse().unwrap();
    // The text, then the footer line (no header: the call names the path).
    let body = |page: &str| -> String {
        let lines: Vec<&str> = page.split("\r\n").collect();
        lines[..lines.len() - 1].join("\n")
    };
    let page1 = body(&first);
    assert_eq!(
        page1.chars().count(),
        offset,
        "the page shown is the page counted"
    );
    assert!(footer.contains("more characters"), "{footer}");
    let second = rig.ok(&next).await;
    assert_capped(&next, &second);
    left_out(&second);
    let joined = format!("{page1}{}", body(&second));
    let at = joined
        .find("w0000001")
        .expect("the words are on the first page");
    assert!(
        expected.starts_with(&joined[at..]),
        "two pages in a row are one stretch of the text"
    );
    // A few characters far into the text: just them.
    let total: usize = footer
        .split_once(" characters in all")
        .and_then(|(head, _)| head.rsplit_once('(').map(|(_, n)| n.parse().unwrap()))
        .unwrap_or_else(|| panic!("no total in {footer}"));
    let tail = rig.ok(&format!("text --offset {} -n 5", total - 5)).await;
    assert_eq!(tail.lines().next(), Some("After"), "{tail}");

    // The other readers stay small: previews are cut in the page, `read` and `cat` read
    // no text, `ls --text` as wide as a reply is cut to one.
    for command in [
        "ls --text".to_string(),
        format!("ls -r --text --textlen {MAX_OUTPUT_CHARS}"),
        "read --text".to_string(),
        "find --type main --text".to_string(),
    ] {
        let out = rig.ok(&command).await;
        assert_capped(&command, &out);
    }
    let preview = rig.ok("ls --text").await;
    assert!(preview.contains("w0000001 w0000002"), "{preview}");
    let main = rig.ok("find --type main -n 1").await;
    let main = main
        .split_whitespace()
        .nth(1)
        .unwrap_or("main")
        .trim_end_matches('/')
        .to_string();
    let cat = rig.ok(&format!("cat {main}")).await;
    assert_capped("cat", &cat);

    // The link stayed up: other commands answer and the extension never reconnected.
    let tabs = rig.ok("tabs").await;
    assert!(tabs.contains("Huge text"), "{tabs}");
    rig.ok("ls").await;
    let after = rig.health().await;
    assert_eq!(after["link"]["state"], "connected", "{after}");
    assert_eq!(
        after["link"]["reconnect_count"], before["link"]["reconnect_count"],
        "no reconnect: {after}"
    );
}
