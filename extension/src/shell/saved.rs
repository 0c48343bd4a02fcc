//! What a person or an agent saves for later: bookmarks (named paths for `cd @name`) and
//! scripts (named command sequences with `$1…$N`, `$0`, `$#`), and the `bookmark` and
//! `script` commands over them.
//!
//! The book is one per browser profile, shared by every session, kept in
//! `chrome.storage.local` by the worker so that it survives worker and browser restarts. It
//! is bounded ([`MAX_BOOKMARKS`], [`MAX_SCRIPTS`], [`MAX_SCRIPT_LINES`]) and read back
//! member by member. This module must not call Chrome or storage; the glue loads and saves
//! the book around commands.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Value};
use shared_protocol::grammar::Script;

/// The `chrome.storage.local` key of the book.
pub const STORAGE_KEY: &str = "domshell_saved";
pub const MAX_BOOKMARKS: usize = 100;
pub const MAX_SCRIPTS: usize = 50;
pub const MAX_SCRIPT_LINES: usize = 50;
/// The longest name (characters) and stored line (bytes) kept.
pub const MAX_NAME_CHARS: usize = 40;
pub const MAX_LINE_BYTES: usize = 4_096;

/// Bookmarks and scripts, in the order they were saved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Saved {
    pub bookmarks: Vec<(String, String)>,
    pub scripts: Vec<(String, Vec<String>)>,
}

/// The worker's book, shared by every session's commands.
pub type SavedCell = Rc<RefCell<Saved>>;

/// A name is letters, digits, `_`, `-` and `.`, 1 to [`MAX_NAME_CHARS`] of them.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what}: `{name}` is not a name: use 1–{MAX_NAME_CHARS} letters, digits, `_`, `-` or `.`"
        ))
    }
}

impl Saved {
    pub fn bookmark(&self, name: &str) -> Option<&str> {
        self.bookmarks
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_str())
    }

    pub fn script(&self, name: &str) -> Option<&[String]> {
        self.scripts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, lines)| lines.as_slice())
    }

    /// `bookmark …` with `cwd` the session's path; what it prints.
    pub fn bookmark_command(
        &mut self,
        words: &[String],
        delete: Option<&str>,
        cwd: &str,
    ) -> Result<String, String> {
        if let Some(name) = delete {
            let before = self.bookmarks.len();
            self.bookmarks.retain(|(n, _)| n != name);
            return if self.bookmarks.len() < before {
                Ok(format!("✓ Bookmark @{name} deleted"))
            } else {
                Err(format!(
                    "bookmark: no bookmark named {name} (`bookmark` lists them)"
                ))
            };
        }
        match words {
            [] => Ok(if self.bookmarks.is_empty() {
                "No bookmarks. `bookmark <name>` saves where you are; `cd @<name>` goes there."
                    .into()
            } else {
                let mut lines = vec![format!("Bookmarks ({}):", self.bookmarks.len())];
                lines.extend(self.bookmarks.iter().map(|(n, p)| format!("  @{n}  {p}")));
                lines.join("\r\n")
            }),
            [name] | [name, _] => {
                check_name("bookmark", name)?;
                let path = words.get(1).map_or(cwd, String::as_str);
                if path.len() > MAX_LINE_BYTES {
                    return Err(format!(
                        "bookmark: the path is longer than {MAX_LINE_BYTES} bytes"
                    ));
                }
                let full = self.bookmarks.len() >= MAX_BOOKMARKS;
                match self.bookmarks.iter_mut().find(|(n, _)| n == name) {
                    Some(entry) => entry.1 = path.to_string(),
                    None if full => {
                        return Err(format!(
                            "bookmark: {MAX_BOOKMARKS} bookmarks are saved already; delete one with `bookmark -d <name>`"
                        ))
                    }
                    None => self.bookmarks.push((name.clone(), path.to_string())),
                }
                Ok(format!("✓ Bookmark @{name} → {path}"))
            }
            _ => Err("bookmark: usage: bookmark [name [path]] | bookmark -d <name>".into()),
        }
    }

    /// `script list|show|save|delete`; `run` is the kernel's (it runs commands).
    pub fn script_command(&mut self, script: &Script) -> Result<String, String> {
        match script {
            Script::List => Ok(if self.scripts.is_empty() {
                "No scripts. `script save <name> <cmd1> ; <cmd2>` saves one.".into()
            } else {
                let mut lines = vec![format!("Scripts ({}):", self.scripts.len())];
                lines.extend(
                    self.scripts
                        .iter()
                        .map(|(n, l)| format!("  {n}  ({} command(s))", l.len())),
                );
                lines.join("\r\n")
            }),
            Script::Show { name } => self
                .script(name)
                .map(|lines| lines.join("\r\n"))
                .ok_or_else(|| no_script(name)),
            Script::Delete { name } => {
                let before = self.scripts.len();
                self.scripts.retain(|(n, _)| n != name);
                if self.scripts.len() < before {
                    Ok(format!("✓ Script {name} deleted"))
                } else {
                    Err(no_script(name))
                }
            }
            Script::Save { name, commands } => {
                check_name("script save", name)?;
                if commands.len() > MAX_SCRIPT_LINES {
                    return Err(format!(
                        "script save: at most {MAX_SCRIPT_LINES} commands per script"
                    ));
                }
                if commands.iter().any(|c| c.len() > MAX_LINE_BYTES) {
                    return Err(format!(
                        "script save: a command is longer than {MAX_LINE_BYTES} bytes"
                    ));
                }
                let full = self.scripts.len() >= MAX_SCRIPTS;
                match self.scripts.iter_mut().find(|(n, _)| n == name) {
                    Some(entry) => entry.1 = commands.clone(),
                    None if full => {
                        return Err(format!(
                            "script save: {MAX_SCRIPTS} scripts are saved already; delete one with `script delete <name>`"
                        ))
                    }
                    None => self.scripts.push((name.clone(), commands.clone())),
                }
                Ok(format!(
                    "✓ Script {name} saved ({} command(s))",
                    commands.len()
                ))
            }
            Script::Run { .. } => Err("script run: run by the kernel".into()),
        }
    }

    /// The stored form.
    pub fn to_storage(&self) -> Value {
        json!({
            "bookmarks": self.bookmarks.iter().map(|(n, p)| json!([n, p])).collect::<Vec<_>>(),
            "scripts": self.scripts.iter().map(|(n, l)| json!([n, l])).collect::<Vec<_>>(),
        })
    }

    /// Reads the stored form back, keeping what is well formed and within the bounds.
    pub fn from_storage(stored: &Value) -> Saved {
        let pairs = |key: &str| stored[key].as_array().cloned().unwrap_or_default();
        let mut saved = Saved::default();
        for pair in pairs("bookmarks").iter().take(MAX_BOOKMARKS) {
            if let (Some(n), Some(p)) = (pair[0].as_str(), pair[1].as_str()) {
                if check_name("", n).is_ok() && saved.bookmark(n).is_none() {
                    saved.bookmarks.push((n.to_string(), p.to_string()));
                }
            }
        }
        for pair in pairs("scripts").iter().take(MAX_SCRIPTS) {
            let (Some(n), Some(lines)) = (pair[0].as_str(), pair[1].as_array()) else {
                continue;
            };
            let lines: Vec<String> = lines
                .iter()
                .filter_map(Value::as_str)
                .take(MAX_SCRIPT_LINES)
                .map(str::to_string)
                .collect();
            if check_name("", n).is_ok() && saved.script(n).is_none() {
                saved.scripts.push((n.to_string(), lines));
            }
        }
        saved
    }
}

fn no_script(name: &str) -> String {
    format!("script: no script named {name} (`script list` lists them)")
}

/// A script's line with its arguments in place: `$1…$N`, `$0` (the script's name) and `$#`
/// (how many arguments); a `$N` beyond the arguments is empty. Plain text replacement, as
/// `for` does with `{}`.
pub fn substitute(line: &str, name: &str, args: &[String]) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            let n: usize = after[..digits].parse().unwrap_or(usize::MAX);
            match n {
                0 => out.push_str(name),
                n => out.push_str(args.get(n - 1).map_or("", String::as_str)),
            }
            rest = &after[digits..];
        } else if let Some(tail) = after.strip_prefix('#') {
            out.push_str(&args.len().to_string());
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bookmarks_are_saved_listed_replaced_and_deleted() {
        let mut saved = Saved::default();
        assert!(saved
            .bookmark_command(&[], None, "~")
            .unwrap()
            .starts_with("No bookmarks"));
        assert_eq!(
            saved
                .bookmark_command(&words(&["home"]), None, "~/tabs/7/main")
                .unwrap(),
            "✓ Bookmark @home → ~/tabs/7/main"
        );
        saved
            .bookmark_command(&words(&["t", "~/tabs"]), None, "~")
            .unwrap();
        assert_eq!(saved.bookmark("t"), Some("~/tabs"));
        assert_eq!(
            saved.bookmark_command(&[], None, "~").unwrap(),
            "Bookmarks (2):\r\n  @home  ~/tabs/7/main\r\n  @t  ~/tabs"
        );
        assert!(saved
            .bookmark_command(&words(&["bad name!"]), None, "~")
            .is_err());
        assert!(saved.bookmark_command(&[], Some("t"), "~").is_ok());
        assert!(saved.bookmark_command(&[], Some("t"), "~").is_err());
        let back = Saved::from_storage(&saved.to_storage());
        assert_eq!(back, saved);
    }

    #[test]
    fn scripts_are_bounded_and_survive_storage() {
        let mut saved = Saved::default();
        let save = |name: &str, commands: &[&str]| Script::Save {
            name: name.into(),
            commands: words(commands),
        };
        assert!(saved
            .script_command(&save("greet", &["echo hi $1", "pwd"]))
            .is_ok());
        assert_eq!(
            saved
                .script_command(&Script::Show {
                    name: "greet".into()
                })
                .unwrap(),
            "echo hi $1\r\npwd"
        );
        let too_long: Vec<&str> = vec!["pwd"; MAX_SCRIPT_LINES + 1];
        assert!(saved.script_command(&save("long", &too_long)).is_err());
        let back = Saved::from_storage(&saved.to_storage());
        assert_eq!(back, saved);
        // Whatever storage holds, only well-formed entries come back.
        let odd = json!({"bookmarks": [["ok", "~"], ["bad name", "~"], [1, 2]], "scripts": "x"});
        let read = Saved::from_storage(&odd);
        assert_eq!(read.bookmarks, [("ok".to_string(), "~".to_string())]);
        assert!(read.scripts.is_empty());
    }

    #[test]
    fn arguments_are_put_in_place() {
        let args = words(&["a", "b c"]);
        assert_eq!(substitute("echo $1-$2 $3.", "s", &args), "echo a-b c .");
        assert_eq!(substitute("echo $0 has $# $", "s", &args), "echo s has 2 $");
        assert_eq!(substitute("$10", "s", &args), "");
    }
}
