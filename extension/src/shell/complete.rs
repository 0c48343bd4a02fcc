//! Tab completion for the side panel's prompt: the word under the cursor (at the end of the
//! line) completed to a command, a `group` subcommand, or a name in the directory it names.
//!
//! It owns choosing candidates; it must not change the session: names are read by a
//! listing run on a copy of the session's state, which is then dropped (no history entry,
//! no move).

use serde_json::Value;

use super::browser::Browser;
use super::commands::COMMANDS;
use super::deadline::DeadlineBrowser;
use super::{run_line, Context, Session};

/// Candidates offered at most.
pub const MAX_CANDIDATES: usize = 64;
/// `group`'s subcommands, completed after `group `.
const GROUP_SUBCOMMANDS: [&str; 6] = ["new", "attach", "join", "detach", "close", "list"];

/// What Tab offers: the line's text from byte `start` on is replaced by one of
/// `candidates`; with exactly one, the line becomes `line[..start] + candidate`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Completion {
    pub start: usize,
    pub candidates: Vec<String>,
    /// The longest text every candidate starts with (what Tab inserts when several match).
    pub common: String,
}

/// The word being completed: where it starts, and whether it is the line's first word
/// (after the last `|` or `;`, a new command starts).
fn last_word(line: &str) -> (usize, bool, Option<&str>) {
    let start = line.rfind(|c: char| c.is_whitespace()).map_or(0, |i| {
        i + line[i..].chars().next().map_or(1, char::len_utf8)
    });
    let before = line[..start].trim_end();
    let command_start = before.rfind(['|', ';']).map_or(0, |i| i + 1);
    let mut earlier = before[command_start..].split_whitespace();
    let first = earlier.next();
    let is_first = first.is_none();
    let second = earlier.next();
    // `group <sub>`: only the word right after `group`.
    let group_sub = (first == Some("group") && second.is_none()).then_some("group");
    (start, is_first, group_sub)
}

/// Candidates among `options` that start with `prefix` (case-insensitively), in the
/// options' order (commands as `help` lists them, names in page order), at most
/// [`MAX_CANDIDATES`].
pub fn matching<'a>(prefix: &str, options: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let lower = prefix.to_lowercase();
    options
        .into_iter()
        .filter(|o| o.to_lowercase().starts_with(&lower))
        .take(MAX_CANDIDATES)
        .map(str::to_string)
        .collect()
}

fn common_prefix(candidates: &[String]) -> String {
    let Some(first) = candidates.first() else {
        return String::new();
    };
    let mut end = first.len();
    for other in &candidates[1..] {
        end = first
            .char_indices()
            .zip(other.chars())
            .find(|((_, a), b)| a != b)
            .map_or(end.min(other.len()), |((i, _), _)| i)
            .min(end);
    }
    first[..end].to_string()
}

fn completion(start: usize, candidates: Vec<String>) -> Completion {
    let common = common_prefix(&candidates);
    Completion {
        start,
        candidates,
        common,
    }
}

/// The names a `ls --json` listing offers: a page directory's children (directories with a
/// trailing `/`), the tabs of `~/tabs` by id, the two directories of `~`.
pub fn listed_names(listing: &Value) -> Vec<String> {
    if let Some(children) = listing["children"].as_array() {
        return children
            .iter()
            .filter_map(|c| {
                let name = c["name"].as_str()?;
                Some(if c["type"] == "directory" {
                    format!("{name}/")
                } else {
                    name.to_string()
                })
            })
            .collect();
    }
    if let Some(tabs) = listing["tabs"].as_array() {
        return tabs
            .iter()
            .filter_map(|t| t["id"].as_i64())
            .map(|id| format!("{id}/"))
            .collect();
    }
    if listing.get("windows").is_some() {
        return vec!["tabs/".into(), "windows/".into()];
    }
    Vec::new()
}

/// Completes the end of `line` without a browser: commands and `group` subcommands.
/// `Err((start, word))`: the word is a name, which needs a listing ([`complete`]).
pub fn complete_word(line: &str) -> Result<Completion, (usize, String)> {
    let (start, is_first, group_sub) = last_word(line);
    let word = &line[start..];
    if is_first {
        let names = COMMANDS.iter().filter(|c| c.available()).map(|c| c.name);
        return Ok(completion(start, matching(word, names)));
    }
    if group_sub.is_some() && !word.contains('/') && word.parse::<i64>().is_err() {
        return Ok(completion(start, matching(word, GROUP_SUBCOMMANDS)));
    }
    Err((start, word.to_string()))
}

/// Completes the end of `line` for `session`, listing the directory a name is in on a copy
/// of the session (the session itself is not touched).
pub async fn complete<B: Browser>(
    session: &Session,
    browser: &B,
    ctx: &Context,
    line: &str,
) -> Completion {
    let (start, word) = match complete_word(line) {
        Ok(done) => return done,
        Err(name) => name,
    };
    let (dir, leaf) = match word.rfind('/') {
        Some(i) => (&word[..=i], &word[i + 1..]),
        None => ("", word.as_str()),
    };
    let listing_line = if dir.is_empty() {
        "ls --json".to_string()
    } else {
        format!("ls --json {dir}")
    };
    // Run as a line of its own on a copy: no history entry, no lane's last command.
    let mut scratch = session.clone();
    let bounded = DeadlineBrowser::new(browser, ctx.wait_cap_ms);
    let reply = run_line(&mut scratch, &bounded, ctx, &listing_line).await;
    ctx.objects.release(browser).await;
    if !reply.ok {
        return completion(start, Vec::new());
    }
    let listing: Value = serde_json::from_str(&reply.output).unwrap_or(Value::Null);
    let names = listed_names(&listing);
    let found = matching(leaf, names.iter().map(String::as_str));
    completion(
        start,
        found
            .into_iter()
            .map(|name| format!("{dir}{name}"))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_word_completes_to_commands() {
        let c = complete_word("cl").unwrap();
        assert_eq!(c.start, 0);
        assert!(c.candidates.contains(&"click".to_string()), "{c:?}");
        assert!(c.candidates.contains(&"clear".to_string()), "{c:?}");
        assert_eq!(c.common, "cl");
        let after_pipe = complete_word("ls | gre").unwrap();
        assert_eq!(after_pipe.start, 5);
        assert_eq!(after_pipe.candidates, ["grep"]);
        assert_eq!(after_pipe.common, "grep");
    }

    #[test]
    fn commands_not_built_are_not_offered() {
        let c = complete_word("").unwrap();
        assert!(!c.candidates.is_empty());
        for name in &c.candidates {
            let spec = crate::shell::commands::find(name).unwrap();
            assert!(spec.available(), "{name}");
        }
    }

    #[test]
    fn group_completes_its_subcommands_then_names() {
        let c = complete_word("group cl").unwrap();
        assert_eq!(
            (c.start, c.candidates.as_slice()),
            (6, &["close".to_string()][..])
        );
        assert_eq!(complete_word("group close 4"), Err((12, "4".to_string())));
        assert_eq!(complete_word("click sub"), Err((6, "sub".to_string())));
    }

    #[test]
    fn names_come_from_listings_of_every_level() {
        let page = json!({"children": [
            {"name": "main", "type": "directory"},
            {"name": "submit_btn", "type": "interactive"},
        ], "total": 2});
        assert_eq!(listed_names(&page), ["main/", "submit_btn"]);
        let tabs = json!({"tabs": [{"id": 12}, {"id": 7}]});
        assert_eq!(listed_names(&tabs), ["12/", "7/"]);
        assert_eq!(listed_names(&json!({"windows": 1})), ["tabs/", "windows/"]);
        assert!(listed_names(&json!("text")).is_empty());
    }

    #[test]
    fn matching_is_case_insensitive_ordered_and_bounded() {
        let many: Vec<String> = (0..100).rev().map(|i| format!("b{i:03}")).collect();
        let found = matching("B", many.iter().map(String::as_str));
        assert_eq!(found.len(), MAX_CANDIDATES);
        assert_eq!(found[0], "b099");
        assert_eq!(common_prefix(&["sub_a".into(), "sub_b".into()]), "sub_");
        assert_eq!(common_prefix(&["é1".into(), "é2".into()]), "é");
        assert_eq!(common_prefix(&[]), "");
    }
}
