//! Flags as the command table ([`crate::commands`]) defines them: which letters a command
//! knows, which of them take a value, and which long flags take one.
//!
//! [`super::Args::parse`] reads them so that `ls -la` means
//! `ls -l -a` (each letter a known flag of the command), a letter the command does not know
//! is an error naming the letter and the command, and a letter that takes a value (`-n N`)
//! is accepted only on its own, so no combination can swallow the next word as a value. It
//! must not know what a flag does (the extension's commands read them) and holds no table of
//! its own.

/// One single-letter flag of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortFlag {
    pub letter: char,
    /// Takes the next word as its value.
    pub takes_value: bool,
}

/// The one-letter flags of `command` (lower-case name) as the command table lists them, or
/// `None` when it is no command.
pub fn short_flags(command: &str) -> Option<Vec<ShortFlag>> {
    crate::commands::find(command).map(|def| {
        def.letters()
            .map(|(letter, takes_value)| ShortFlag {
                letter,
                takes_value,
            })
            .collect()
    })
}

/// Whether `flag` takes the next word as its value for `command`: as its row says, or, for
/// a word that is no command, as any command's flag of that spelling does.
pub fn takes_value(command: &str, flag: &str) -> bool {
    match crate::commands::find(command) {
        Some(def) => def.flag(flag).is_some_and(|f| f.takes_value),
        None => crate::commands::COMMANDS
            .iter()
            .any(|def| def.flag(flag).is_some_and(|f| f.takes_value)),
    }
}

/// `-a -l -n N -r` for an error message, or a sentence when there are none.
pub(crate) fn describe(command: &str, flags: &[ShortFlag]) -> String {
    if flags.is_empty() {
        return format!("{command} has no one-letter options");
    }
    // A command has a handful of flags: an insertion sort (stable, like `sort_by_key`) keeps
    // an instance of the standard sort, some 5 KB of WASM, out of this error message.
    let mut sorted = flags.to_vec();
    for i in 1..sorted.len() {
        let mut j = i;
        while j > 0 && sorted[j - 1].letter > sorted[j].letter {
            sorted.swap(j - 1, j);
            j -= 1;
        }
    }
    let list: Vec<String> = sorted
        .iter()
        .map(|f| {
            if f.takes_value {
                format!("-{} N", f.letter)
            } else {
                format!("-{}", f.letter)
            }
        })
        .collect();
    format!("{command} knows {}", list.join(" "))
}
