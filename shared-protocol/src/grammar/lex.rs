//! Character-level scanning: splitting MCP input into command lines, splitting a line on
//! pipes, and tokenising a command into words.
//!
//! This module owns the quoting and escaping rules; everything above it works on the
//! tokens it returns. It must not know command names beyond the two facts the line splitter
//! needs (which first words are JavaScript, and that the input is text, not a page).

use super::ParseError;

/// First words whose lines are scanned with JavaScript rules when splitting input into lines.
const JS_WORDS: [&str; 2] = ["js", "eval"];

/// One word of a command after quote removal, with the byte range it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub value: String,
    /// Byte offset of the first character of the word in the scanned text.
    pub start: usize,
    /// Byte offset just past the word.
    pub end: usize,
    /// The whole word was one quoted string (`"…"` or `'…'`), e.g. `"ls -l"`.
    pub fully_quoted: bool,
}

/// Splits MCP input into command lines. See [`crate::grammar`] for the rules.
pub fn split_lines(text: &str) -> Vec<String> {
    let text = text.replace("\r\n", "\n");
    let chars: Vec<char> = text.chars().collect();
    // Each failed multi-line attempt rescans to the end of the input; the budget keeps
    // pathological input (thousands of unclosed `js (` lines) linear. It depends only on
    // the input, so the server and the extension still split identically.
    let mut budget = chars.len().saturating_mul(8).saturating_add(4096);
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < chars.len() {
        while pos < chars.len() && chars[pos].is_whitespace() {
            pos += 1;
        }
        if pos >= chars.len() {
            break;
        }
        let js = starts_with_js_word(&chars[pos..]);
        let attempt = if budget == 0 {
            None
        } else if js {
            scan_js(&chars, pos, &mut budget)
        } else {
            scan_shell(&chars, pos, true, &mut budget)
        };
        let (end, content) = match attempt {
            Some(found) => found,
            // An unclosed quote or bracket must not swallow the rest of the input: the
            // command ends at its own line and the parser reports what is unclosed.
            None => {
                let mut unlimited = usize::MAX;
                match scan_shell(&chars, pos, false, &mut unlimited) {
                    Some(found) => found,
                    None => (chars.len(), chars[pos..].iter().collect()),
                }
            }
        };
        let trimmed = content.trim();
        if !trimmed.is_empty() {
            out.push(trimmed.to_string());
        }
        pos = end.max(pos + 1);
    }
    out
}

fn starts_with_js_word(chars: &[char]) -> bool {
    let word: String = chars
        .iter()
        .take_while(|c| !c.is_whitespace())
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    JS_WORDS.contains(&word.as_str())
}

fn is_word_boundary(content: &str) -> bool {
    content.chars().next_back().is_none_or(char::is_whitespace)
}

/// Scans one shell-rule command starting at `start`. Returns the index after the
/// terminating newline (or the end) and the command text with line continuations removed.
/// `None` means `multiline` was set and a line-spanning quote was still open at the end.
fn scan_shell(
    chars: &[char],
    start: usize,
    multiline: bool,
    budget: &mut usize,
) -> Option<(usize, String)> {
    #[derive(PartialEq)]
    enum State {
        Normal,
        Single { spans_lines: bool },
        Double { spans_lines: bool },
    }
    let mut state = State::Normal;
    let mut out = String::new();
    let mut i = start;
    while i < chars.len() {
        *budget = budget.saturating_sub(1);
        if *budget == 0 {
            return None;
        }
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match state {
            State::Normal => match c {
                '\\' if next == Some('\n') => i += 2,
                '\\' => {
                    out.push(c);
                    if let Some(n) = next {
                        out.push(n);
                    }
                    i += 2;
                }
                '\n' => return Some((i + 1, out)),
                '\'' | '"' if multiline => {
                    // A quote inside a word (`don't`) is far more often an apostrophe than
                    // the start of a multi-line string, so only word-initial quotes may
                    // carry a command over a newline.
                    let spans_lines = is_word_boundary(&out);
                    state = if c == '\'' {
                        State::Single { spans_lines }
                    } else {
                        State::Double { spans_lines }
                    };
                    out.push(c);
                    i += 1;
                }
                _ => {
                    out.push(c);
                    i += 1;
                }
            },
            State::Single { spans_lines } => {
                if c == '\'' {
                    state = State::Normal;
                } else if c == '\n' && !spans_lines {
                    return Some((i + 1, out));
                }
                out.push(c);
                i += 1;
            }
            State::Double { spans_lines } => match c {
                '\\' if next == Some('\n') => i += 2,
                '\\' => {
                    out.push(c);
                    if let Some(n) = next {
                        out.push(n);
                    }
                    i += 2;
                }
                '\n' if !spans_lines => return Some((i + 1, out)),
                '"' => {
                    state = State::Normal;
                    out.push(c);
                    i += 1;
                }
                _ => {
                    out.push(c);
                    i += 1;
                }
            },
        }
    }
    match state {
        State::Normal
        | State::Single { spans_lines: false }
        | State::Double { spans_lines: false } => Some((chars.len(), out)),
        _ => None,
    }
}

/// Scans one `js`/`eval` command with JavaScript's lexical rules: strings in `'`, `"` and
/// `` ` `` with backslash escapes, `//` and `/* */` comments, and bracket depth. A newline
/// ends the command only outside strings and comments and at bracket depth zero.
/// `None` means something was still open at the end of the input.
fn scan_js(chars: &[char], start: usize, budget: &mut usize) -> Option<(usize, String)> {
    enum State {
        Code,
        Str(char),
        LineComment,
        BlockComment,
    }
    let mut state = State::Code;
    let mut depth: usize = 0;
    let mut out = String::new();
    let mut i = start;
    while i < chars.len() {
        *budget = budget.saturating_sub(1);
        if *budget == 0 {
            return None;
        }
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match state {
            State::Code => match c {
                '\\' if next == Some('\n') => {
                    i += 2;
                    continue;
                }
                '\'' | '"' | '`' => state = State::Str(c),
                '/' if next == Some('/') => {
                    state = State::LineComment;
                    out.push_str("//");
                    i += 2;
                    continue;
                }
                '/' if next == Some('*') => {
                    state = State::BlockComment;
                    out.push_str("/*");
                    i += 2;
                    continue;
                }
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                '\n' if depth == 0 => return Some((i + 1, out)),
                _ => {}
            },
            State::Str(quote) => {
                if c == '\\' {
                    out.push(c);
                    if let Some(n) = next {
                        out.push(n);
                    }
                    i += 2;
                    continue;
                }
                if c == quote {
                    state = State::Code;
                }
            }
            State::LineComment => {
                if c == '\n' {
                    if depth == 0 {
                        return Some((i + 1, out));
                    }
                    state = State::Code;
                }
            }
            State::BlockComment => {
                if c == '*' && next == Some('/') {
                    state = State::Code;
                    out.push_str("*/");
                    i += 2;
                    continue;
                }
            }
        }
        out.push(c);
        i += 1;
    }
    match state {
        State::Code | State::LineComment if depth == 0 => Some((chars.len(), out)),
        _ => None,
    }
}

fn unterminated(text: &str, quote_at: usize, quote: char) -> ParseError {
    ParseError::UnterminatedQuote {
        quote,
        column: text[..quote_at].chars().count() + 1,
        near: text[quote_at..].chars().take(24).collect(),
    }
}

/// Reads the next word at or after byte offset `from`. `Ok(None)` at the end of the text.
pub(crate) fn next_token(text: &str, from: usize) -> Result<Option<Token>, ParseError> {
    let Some(rest) = text.get(from..) else {
        return Ok(None);
    };
    let skipped = rest.len() - rest.trim_start().len();
    let start = from + skipped;
    let mut iter = text[start..].char_indices().map(|(i, c)| (start + i, c));
    let mut value = String::new();
    let mut end = start;
    let mut quoted_parts = 0usize;
    let mut unquoted_chars = false;
    let mut any = false;
    while let Some((i, c)) = iter.next() {
        if c.is_whitespace() {
            break;
        }
        any = true;
        match c {
            '\'' => {
                quoted_parts += 1;
                let mut closed = false;
                for (j, q) in iter.by_ref() {
                    if q == '\'' {
                        closed = true;
                        end = j + 1;
                        break;
                    }
                    value.push(q);
                }
                if !closed {
                    return Err(unterminated(text, i, '\''));
                }
                continue;
            }
            '"' => {
                quoted_parts += 1;
                let mut closed = false;
                while let Some((j, q)) = iter.next() {
                    match q {
                        '"' => {
                            closed = true;
                            end = j + 1;
                            break;
                        }
                        '\\' => match iter.next() {
                            Some((_, '"')) => value.push('"'),
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, '\n')) => {}
                            Some((_, other)) => {
                                value.push('\\');
                                value.push(other);
                            }
                            None => value.push('\\'),
                        },
                        _ => value.push(q),
                    }
                }
                if !closed {
                    return Err(unterminated(text, i, '"'));
                }
                continue;
            }
            '\\' => {
                unquoted_chars = true;
                match iter.next() {
                    Some((j, escaped)) => {
                        value.push(escaped);
                        end = j + escaped.len_utf8();
                    }
                    None => {
                        value.push('\\');
                        end = i + 1;
                    }
                }
                continue;
            }
            _ => {
                unquoted_chars = true;
                value.push(c);
                end = i + c.len_utf8();
            }
        }
    }
    if !any {
        return Ok(None);
    }
    Ok(Some(Token {
        value,
        start,
        end,
        fully_quoted: quoted_parts == 1 && !unquoted_chars,
    }))
}

/// Splits a command into words with their byte ranges. See [`crate::grammar`] for the
/// quoting rules.
pub fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    while let Some(token) = next_token(text, pos)? {
        pos = token.end;
        tokens.push(token);
    }
    Ok(tokens)
}

/// Byte ranges of the segments of `line` between unquoted, unescaped `|` characters.
pub(crate) fn split_pipes(line: &str) -> Result<Vec<(usize, usize)>, ParseError> {
    let mut segments = Vec::new();
    let mut seg_start = 0;
    let mut iter = line.char_indices();
    while let Some((i, c)) = iter.next() {
        match c {
            '\\' => {
                iter.next();
            }
            '\'' => {
                let closed = iter.by_ref().any(|(_, q)| q == '\'');
                if !closed {
                    return Err(unterminated(line, i, '\''));
                }
            }
            '"' => {
                let mut closed = false;
                while let Some((_, q)) = iter.next() {
                    match q {
                        '\\' => {
                            iter.next();
                        }
                        '"' => {
                            closed = true;
                            break;
                        }
                        _ => {}
                    }
                }
                if !closed {
                    return Err(unterminated(line, i, '"'));
                }
            }
            '|' => {
                segments.push((seg_start, i));
                seg_start = i + 1;
            }
            _ => {}
        }
    }
    segments.push((seg_start, line.len()));
    Ok(segments)
}

/// Quotes `word` so that [`tokenize`] reads it back as exactly one word with this value.
pub fn quote_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| !c.is_whitespace() && !matches!(c, '\'' | '"' | '\\' | '|'));
    if plain {
        return word.to_string();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    for c in word.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|t| t.value)
            .collect()
    }

    #[test]
    fn split_trims_and_drops_blank_lines() {
        assert_eq!(
            split_lines("  ls \n\n\t\ncd main  \r\n pwd"),
            ["ls", "cd main", "pwd"]
        );
        assert!(split_lines("").is_empty());
        assert!(split_lines(" \n \r\n").is_empty());
    }

    #[test]
    fn split_keeps_quoted_newlines_in_shell_lines() {
        assert_eq!(
            split_lines("type \"line one\nline two\"\nls"),
            ["type \"line one\nline two\"", "ls"]
        );
        assert_eq!(split_lines("type 'a\nb'\nls"), ["type 'a\nb'", "ls"]);
    }

    #[test]
    fn split_apostrophe_inside_a_word_does_not_join_lines() {
        assert_eq!(
            split_lines("type don't\nls\ntype it's"),
            ["type don't", "ls", "type it's"]
        );
    }

    #[test]
    fn split_unclosed_quote_ends_at_its_own_line() {
        assert_eq!(split_lines("type \"abc\nls"), ["type \"abc", "ls"]);
        assert_eq!(split_lines("js foo('x\nls"), ["js foo('x", "ls"]);
    }

    #[test]
    fn split_backslash_continuation() {
        assert_eq!(
            split_lines("for tabs : \\\n  click {}\nls"),
            ["for tabs :   click {}", "ls"]
        );
        assert_eq!(split_lines("ls \\\r\n-l"), ["ls -l"]);
        // An escaped backslash before a newline is not a continuation.
        assert_eq!(split_lines("type a\\\\\nls"), ["type a\\\\", "ls"]);
        // Inside single quotes a backslash is literal, so the newline stays.
        assert_eq!(split_lines("type ' \\\nx'"), ["type ' \\\nx'"]);
    }

    #[test]
    fn split_multi_line_javascript_stays_one_command() {
        let text = "js (() => {\n  const a = [1, 2];\n  return a.length;\n})()\nls";
        assert_eq!(
            split_lines(text),
            [
                "js (() => {\n  const a = [1, 2];\n  return a.length;\n})()",
                "ls"
            ]
        );
        assert_eq!(split_lines("eval `a\nb`\npwd"), ["eval `a\nb`", "pwd"]);
        assert_eq!(split_lines("js \"a\nb\"\npwd"), ["js \"a\nb\"", "pwd"]);
        assert_eq!(
            split_lines("js 'it\\'s\nfine'\npwd"),
            ["js 'it\\'s\nfine'", "pwd"]
        );
    }

    #[test]
    fn split_javascript_comments_hide_quotes_and_brackets() {
        assert_eq!(
            split_lines("js 1 // don't (\nls"),
            ["js 1 // don't (", "ls"]
        );
        assert_eq!(
            split_lines("js 1 /* it's\n( */ + 2\nls"),
            ["js 1 /* it's\n( */ + 2", "ls"]
        );
        assert_eq!(
            split_lines("js f({ // it's\n a: 1 })\nls"),
            ["js f({ // it's\n a: 1 })", "ls"]
        );
    }

    #[test]
    fn split_pathological_input_is_linear_enough() {
        let text = "js (\n".repeat(20_000);
        let lines = split_lines(&text);
        assert_eq!(lines.len(), 20_000);
    }

    #[test]
    fn tokenize_quotes_and_escapes() {
        assert_eq!(words("a 'b c' \"d e\""), ["a", "b c", "d e"]);
        assert_eq!(words("a\"b c\"d"), ["ab cd"]);
        assert_eq!(
            words(r#""say \"hi\"" a\ b c\\d"#),
            ["say \"hi\"", "a b", "c\\d"]
        );
        assert_eq!(words(r#""x\ny" x\ny"#), ["x\ny", "xny"]);
        assert_eq!(words(r"'no \escapes'"), [r"no \escapes"]);
        assert_eq!(words(r#""keep \d""#), [r"keep \d"]);
        assert_eq!(words("\"\" ''"), ["", ""]);
        assert_eq!(words("trailing\\"), ["trailing\\"]);
    }

    #[test]
    fn tokenize_unicode() {
        assert_eq!(
            words("type 日本語 'ünï cødé' \"😀 x\""),
            ["type", "日本語", "ünï cødé", "😀 x"]
        );
        assert_eq!(words("a\u{3000}b"), ["a", "b"]);
    }

    #[test]
    fn tokenize_reports_the_column_of_an_unterminated_quote() {
        let err = tokenize("type é \"abc").unwrap_err();
        assert_eq!(
            err,
            ParseError::UnterminatedQuote {
                quote: '"',
                column: 8,
                near: "\"abc".into()
            }
        );
        assert!(err.to_string().contains("column 8"));
        assert!(matches!(
            tokenize("it's").unwrap_err(),
            ParseError::UnterminatedQuote {
                quote: '\'',
                column: 3,
                ..
            }
        ));
    }

    #[test]
    fn tokens_know_their_spans_and_quoting() {
        let tokens = tokenize("watch  \"ls -l\" --times 3").unwrap();
        assert_eq!(tokens[1].value, "ls -l");
        assert!(tokens[1].fully_quoted);
        assert_eq!((tokens[1].start, tokens[1].end), (7, 14));
        assert!(!tokens[2].fully_quoted);
        assert!(!tokenize("a\"b\"").unwrap()[0].fully_quoted);
    }

    #[test]
    fn pipes_split_outside_quotes_only() {
        let line = r#"ls | grep "a|b" | grep 'c|d' | grep e\|f"#;
        let parts: Vec<&str> = split_pipes(line)
            .unwrap()
            .into_iter()
            .map(|(s, e)| line[s..e].trim())
            .collect();
        assert_eq!(parts, ["ls", "grep \"a|b\"", "grep 'c|d'", "grep e\\|f"]);
    }

    #[test]
    fn quote_word_round_trips() {
        for word in [
            "plain",
            "",
            "a b",
            "it's",
            "say \"x\"",
            "back\\slash",
            "a|b",
            "x\ny",
        ] {
            let quoted = quote_word(word);
            assert_eq!(words(&quoted), [word], "{quoted}");
        }
    }
}
