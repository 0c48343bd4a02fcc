//! Flags and positional arguments of a command's words.
//!
//! This module owns the flag rule every non-raw command shares, with each command's
//! one-letter flags from [`super::flags`]. It must not know what any flag means; commands
//! read their flags through [`Args`].

use super::flags::{self, ShortFlag};
use super::ParseError;

/// One flag as written (`-l`, `--type`), with its value if it takes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

/// A command's words sorted into positionals and flags.
///
/// Rules: `--` ends flags (everything after it is positional, so `grep -- -x` works); a
/// flag that takes a value ([`flags::takes_value`]) takes the next word whatever it looks like (`-n -5`); `--name=value`
/// is accepted for any long flag; a negative number (`-5`, `-2.5`) and `-` are positionals.
///
/// For a command of the language ([`crate::commands::COMMANDS`]) a single dash introduces
/// one-letter flags of that command: `-la` is `-l` and `-a`, recorded one by one, when every
/// letter is a flag the command has and none takes a value; a letter that takes a value
/// (`-n`) must stand alone, and a letter the command does not have is an error naming it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Args {
    pub positional: Vec<String>,
    /// For each positional, its index in the words it was parsed from.
    pub positional_index: Vec<usize>,
    pub flags: Vec<Flag>,
}

/// `-5`, `-12.5`: an argument, never a flag.
pub fn is_negative_number(word: &str) -> bool {
    let Some(digits) = word.strip_prefix('-') else {
        return false;
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

fn is_flag(word: &str) -> bool {
    word.len() > 1 && word.starts_with('-') && !is_negative_number(word)
}

/// What a single-dash word of a command with known short flags stands for.
enum Short {
    /// One letter that takes the next word as its value: its flag name (`-n`).
    Valued(String),
    /// Boolean letters, one flag name each (`-la` → `-l`, `-a`).
    Booleans(Vec<String>),
}

fn short_letters(
    command: &str,
    word: &str,
    letters: &str,
    known: &[ShortFlag],
) -> Result<Short, ParseError> {
    let combined = letters.chars().count() > 1;
    let mut names = Vec::new();
    for letter in letters.chars() {
        let Some(flag) = known.iter().find(|f| f.letter == letter) else {
            return Err(ParseError::UnknownShortFlag {
                command: command.to_string(),
                letter,
                word: combined.then(|| word.to_string()),
                known: flags::describe(command, known),
            });
        };
        if flag.takes_value {
            if combined {
                return Err(ParseError::CombinedValueFlag {
                    command: command.to_string(),
                    letter,
                    word: word.to_string(),
                });
            }
            return Ok(Short::Valued(format!("-{letter}")));
        }
        names.push(format!("-{letter}"));
    }
    Ok(Short::Booleans(names))
}

impl Args {
    /// Sorts `words` (the arguments after the command name) by the generic rules.
    pub fn parse(command: &str, words: &[String]) -> Result<Args, ParseError> {
        let mut args = Args::default();
        let mut it = words.iter().enumerate();
        while let Some((index, word)) = it.next() {
            if word == "--" {
                for (index, word) in it.by_ref() {
                    args.positional.push(word.clone());
                    args.positional_index.push(index);
                }
                break;
            }
            if !is_flag(word) {
                args.positional.push(word.clone());
                args.positional_index.push(index);
                continue;
            }
            if let Some((name, value)) = word
                .strip_prefix("--")
                .and_then(|long| long.split_once('='))
            {
                args.flags.push(Flag {
                    name: format!("--{name}"),
                    value: Some(value.to_string()),
                });
            } else if let (Some(known), Some(letters)) = (
                flags::short_flags(command),
                word.strip_prefix('-').filter(|w| !w.starts_with('-')),
            ) {
                match short_letters(command, word, letters, &known)? {
                    Short::Valued(name) => {
                        let (_, value) = it.next().ok_or_else(|| ParseError::MissingFlagValue {
                            command: command.to_string(),
                            flag: word.clone(),
                        })?;
                        args.flags.push(Flag {
                            name,
                            value: Some(value.clone()),
                        });
                    }
                    Short::Booleans(names) => {
                        args.flags
                            .extend(names.into_iter().map(|name| Flag { name, value: None }));
                    }
                }
            } else if flags::takes_value(command, word) {
                let (_, value) = it.next().ok_or_else(|| ParseError::MissingFlagValue {
                    command: command.to_string(),
                    flag: word.clone(),
                })?;
                args.flags.push(Flag {
                    name: word.clone(),
                    value: Some(value.clone()),
                });
            } else {
                args.flags.push(Flag {
                    name: word.clone(),
                    value: None,
                });
            }
        }
        Ok(args)
    }

    /// The flag was given (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f.name == name)
    }

    /// Any of the spellings was given, e.g. `&["-l", "--long"]`.
    pub fn has_any(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.has(n))
    }

    /// The value of the last occurrence of the flag.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|f| f.name == name)
            .and_then(|f| f.value.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Args {
        let words: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        Args::parse("test", &words).unwrap()
    }

    #[test]
    fn value_flags_take_the_next_word() {
        let args = parse(&["main", "-n", "5", "--type", "button", "-l", "--text"]);
        assert_eq!(args.positional, ["main"]);
        assert_eq!(args.value("-n"), Some("5"));
        assert_eq!(args.value("--type"), Some("button"));
        assert!(args.has("-l") && args.has("--text") && !args.has("-r"));
        assert!(args.has_any(&["-r", "-l"]));
        assert_eq!(args.value("-l"), None);
    }

    #[test]
    fn positional_indices_point_into_the_words() {
        let args = parse(&["a", "-n", "1", "b", "--", "-c"]);
        assert_eq!(args.positional, ["a", "b", "-c"]);
        assert_eq!(args.positional_index, [0, 3, 5]);
    }

    #[test]
    fn value_flag_value_may_start_with_a_dash() {
        assert_eq!(parse(&["-n", "-5"]).value("-n"), Some("-5"));
    }

    #[test]
    fn double_dash_ends_flags() {
        let args = parse(&["-n", "3", "--", "-x", "--help"]);
        assert_eq!(args.positional, ["-x", "--help"]);
        assert!(!args.has("--help"));
    }

    #[test]
    fn negative_numbers_and_lone_dash_are_positional() {
        let args = parse(&["down", "-5", "-2.5", "-", "-1."]);
        assert_eq!(args.positional, ["down", "-5", "-2.5", "-"]);
        assert!(args.has("-1."));
        assert!(is_negative_number("-0"));
        assert!(!is_negative_number("-x1") && !is_negative_number("-") && !is_negative_number("5"));
    }

    #[test]
    fn long_flags_with_equals() {
        let args = parse(&["--url=https://x/?a=b", "--json"]);
        assert_eq!(args.value("--url"), Some("https://x/?a=b"));
        assert!(args.has("--json"));
    }

    #[test]
    fn missing_value_is_an_error() {
        let words = vec!["--type".to_string()];
        let err = Args::parse("find", &words).unwrap_err();
        assert_eq!(err.to_string(), "find: --type needs a value");
    }

    #[test]
    fn last_value_wins() {
        assert_eq!(parse(&["-n", "1", "-n", "2"]).value("-n"), Some("2"));
    }
}
