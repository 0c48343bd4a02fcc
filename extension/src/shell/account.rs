//! The kernel side of [`super::effects`]: taking a session's looks at its directory, the
//! account an action's reply ends with, and the `diff` command.
//!
//! A look is taken after every command that read or acted in the page (from the tree that
//! command left in the cache, so it costs no DevTools call) and by actions right before they
//! act; an action reads its directory again afterwards and says what differs. It must not
//! decide what counts as a change (that is `effects`) nor act on the page.

use shared_protocol::grammar::{Args, Command};

use super::browser::Browser;
use super::effects::{self, Changes, Document, Look};
use super::reading::{self, OpenPage};
use super::session::{Cwd, Session};
use super::Context;

/// The document of a page tree: the tab's load count and the address its root reports.
fn document_of<B: Browser>(browser: &B, tab: i64, vfs: &crate::ax::Vfs) -> Document {
    let url = vfs
        .entry(vfs.root())
        .and_then(|root| root.url.as_deref())
        .unwrap_or("");
    Document::new(browser.load_mark(tab).0, url)
}

fn dir_of(session: &Session) -> &[String] {
    match &session.cwd {
        Cwd::Tab { dom, .. } => dom,
        _ => &[],
    }
}

/// The session's directory as `page` shows it now.
pub(crate) fn look<B: Browser>(page: &OpenPage, session: &Session, browser: &B) -> Look {
    Look::of(
        page.vfs(),
        page.id,
        document_of(browser, page.id, page.vfs()),
        dir_of(session),
    )
}

/// After a command in a page: the session's look is what the tree it left shows (nothing
/// when no tree of its tab is kept, e.g. while another session reads it).
pub(crate) fn remember<B: Browser>(session: &mut Session, browser: &B, ctx: &Context) {
    let Some(tab) = session.tab() else {
        session.look = None;
        return;
    };
    if let Some(vfs) = ctx.pages.kept(tab) {
        session.look = Some(Look::of(
            &vfs,
            tab,
            document_of(browser, tab, &vfs),
            dir_of(session),
        ));
    }
}

/// What an action changed, for the end of its reply (`None` when there is nothing to say:
/// `--quiet`, or a dialog the action opened, which the reply reports on its own). The page is
/// read again (only what changed) and compared with `before`; the session's look becomes the
/// new state. A quiet action leaves the look as it was, so `diff` tells its effect later.
pub(crate) async fn account<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    command: &str,
    args: &Args,
    before: Look,
) -> Option<String> {
    if args.has("--quiet") {
        return None;
    }
    if browser.open_dialog(before.tab).is_some() {
        return None;
    }
    let page = match reading::open(session, browser, ctx, command).await {
        Ok(page) => page,
        Err(e) => return Some(format!("(what changed could not be read: {e})")),
    };
    let after = look(&page, session, browser);
    let said = match effects::compare(&before, &after) {
        Changes::Elsewhere { document: true } => Some(new_page(&page)),
        // The directory went with the change: the notice of `open` says where the session is.
        Changes::Elsewhere { document: false } => page.notice.clone(),
        changes => {
            let lines = effects::lines(&changes, effects::EFFECT_LINES);
            Some(if lines.is_empty() {
                "(nothing changed here)".to_string()
            } else {
                lines.join("\r\n")
            })
        }
    };
    session.look = Some(after);
    said
}

fn new_page(page: &OpenPage) -> String {
    format!("→ New page: {} — {}", page.tab.title, page.tab.url)
}

/// `diff [--json]`: what changed in the session's directory since its last look.
pub(crate) async fn diff<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    if !args.positional.is_empty() {
        return Err("diff: takes no arguments; usage: diff [--json]".into());
    }
    let before = session.look.take();
    let page = reading::open(session, browser, ctx, &cmd.name).await?;
    let after = look(&page, session, browser);
    let json = args.has("--json");
    let out = match &before {
        None => {
            let out = if json {
                serde_json::json!({ "document": "same", "url": page.tab.url, "compared": false })
                    .to_string()
            } else {
                "diff: nothing to compare with yet — this look is kept; `diff` again shows what changes after it".to_string()
            };
            session.look = Some(after);
            return Ok(out);
        }
        Some(before) => {
            let changes = effects::compare(before, &after);
            if json {
                effects::to_json(&changes, &page.tab.url).to_string()
            } else {
                match &changes {
                    Changes::Elsewhere { document: true } => {
                        format!("New document since your last look: {} — {}", page.tab.title, page.tab.url)
                    }
                    Changes::Elsewhere { document: false } => format!(
                        "diff: your last look was at another place ({}); this one is kept for the next `diff`",
                        display_dir(&before.dir)
                    ),
                    changes => {
                        let lines = effects::lines(changes, usize::MAX);
                        if lines.is_empty() {
                            "No change here since your last look.".to_string()
                        } else {
                            lines.join("\r\n")
                        }
                    }
                }
            }
        }
    };
    session.look = Some(after);
    Ok(out)
}

fn display_dir(dir: &[String]) -> String {
    if dir.is_empty() {
        "the page root".into()
    } else {
        dir.join("/")
    }
}
