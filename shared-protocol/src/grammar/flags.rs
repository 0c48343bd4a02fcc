//! Every command of the language and its one-letter flags: which letters it knows and which
//! of them take a value.
//!
//! This module owns that table. [`super::Args::parse`] reads it so that `ls -la` means
//! `ls -l -a` (each letter a known flag of the command), a letter the command does not know
//! is an error naming the letter and the command, and a letter that takes a value (`-n N`)
//! is accepted only on its own, so no combination can swallow the next word as a value. It
//! must not know what a flag does (the extension's commands read them) and must not contain
//! long flags, which need no table: `--name` is always one flag.

/// One single-letter flag of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortFlag {
    pub letter: char,
    /// Takes the next word as its value (then it is also in [`super::VALUE_FLAGS`]).
    pub takes_value: bool,
}

const fn on(letter: char) -> ShortFlag {
    ShortFlag {
        letter,
        takes_value: false,
    }
}

const fn valued(letter: char) -> ShortFlag {
    ShortFlag {
        letter,
        takes_value: true,
    }
}

/// Every command name of the language with its short flags. A name missing here is not a
/// command (the extension answers "command not found"), and its words follow the generic
/// rules alone.
pub const COMMAND_SHORT_FLAGS: &[(&str, &[ShortFlag])] = &[
    ("tabs", &[]),
    ("windows", &[]),
    ("here", &[]),
    ("cd", &[]),
    ("pwd", &[]),
    // -a: every entry is always listed; accepted so that `ls -la` works as it does in sh.
    ("ls", &[on('l'), on('a'), on('r'), valued('n')]),
    ("open", &[]),
    ("navigate", &[]),
    ("goto", &[]),
    ("back", &[]),
    ("forward", &[]),
    ("close", &[]),
    ("refresh", &[]),
    ("group", &[]),
    ("cat", &[]),
    ("text", &[valued('n')]),
    ("read", &[valued('d'), valued('n')]),
    ("tree", &[valued('n')]),
    ("grep", &[on('r'), valued('n')]),
    ("find", &[valued('n')]),
    ("extract_links", &[valued('n')]),
    ("extract_table", &[valued('n')]),
    ("screenshot", &[]),
    ("diff", &[]),
    ("wait", &[]),
    ("whoami", &[]),
    ("click", &[]),
    ("dialog", &[]),
    ("focus", &[]),
    ("type", &[]),
    ("key", &[]),
    ("select", &[]),
    ("scroll", &[]),
    ("submit", &[]),
    ("js", &[]),
    ("eval", &[]),
    ("functions", &[]),
    ("call", &[]),
    ("watch", &[]),
    ("for", &[]),
    ("each", &[]),
    ("script", &[]),
    ("bookmark", &[valued('d')]),
    ("history", &[valued('n')]),
    ("env", &[]),
    ("export", &[]),
    ("clear", &[]),
    ("help", &[]),
    ("debug", &[]),
    ("connect", &[]),
    ("disconnect", &[]),
];

/// The short flags of `command` (lower-case name), or `None` when it is no command.
pub fn short_flags(command: &str) -> Option<&'static [ShortFlag]> {
    COMMAND_SHORT_FLAGS
        .iter()
        .find(|(name, _)| *name == command)
        .map(|(_, flags)| *flags)
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
