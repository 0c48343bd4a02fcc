//! What a key is to the DevTools protocol: the named keys of `key` (Enter, Tab, F5…), single
//! characters on a US layout (key, code, Windows virtual key code, whether Shift makes them),
//! the `--modifiers` mask, and the `Input.dispatchKeyEvent` parameters of one press.
//!
//! It owns those tables and the shape of the events, so `key k` reaches a page exactly as a
//! person's key press does (its keydown listeners fire, shortcuts work). It must not talk to
//! the browser or decide which tab gets the keys; `interact` does.

use serde_json::{json, Value};

/// A key as CDP wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeySpec {
    /// `KeyboardEvent.key`: `Enter`, `k`, `K`, `?`.
    pub key: String,
    /// `KeyboardEvent.code`, the physical key: `Enter`, `KeyK`, `Slash`; empty when a US
    /// keyboard has no key for the character.
    pub code: String,
    /// `windowsVirtualKeyCode` (also `keyCode`/`which` of the page's event).
    pub key_code: i64,
    /// The text the key types, if any.
    pub text: Option<String>,
    /// A US keyboard needs Shift for it (`K`, `?`).
    pub shifted: bool,
}

/// CDP's modifier bits.
pub(crate) const ALT: i64 = 1;
pub(crate) const CTRL: i64 = 2;
pub(crate) const META: i64 = 4;
pub(crate) const SHIFT: i64 = 8;

/// `(key, code, windowsVirtualKeyCode, text)` of the named keys.
const NAMED_KEYS: [(&str, &str, i64, Option<&str>); 14] = [
    ("Enter", "Enter", 13, Some("\r")),
    ("Tab", "Tab", 9, None),
    (" ", "Space", 32, Some(" ")),
    ("Escape", "Escape", 27, None),
    ("Backspace", "Backspace", 8, None),
    ("Delete", "Delete", 46, None),
    ("ArrowUp", "ArrowUp", 38, None),
    ("ArrowDown", "ArrowDown", 40, None),
    ("ArrowLeft", "ArrowLeft", 37, None),
    ("ArrowRight", "ArrowRight", 39, None),
    ("Home", "Home", 36, None),
    ("End", "End", 35, None),
    ("PageUp", "PageUp", 33, None),
    ("PageDown", "PageDown", 34, None),
];

const FUNCTION_KEYS: [&str; 12] = [
    "F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "F10", "F11", "F12",
];

/// The punctuation of a US keyboard: `(unshifted, shifted, code, windowsVirtualKeyCode)`.
const PUNCTUATION: [(char, char, &str, i64); 11] = [
    ('`', '~', "Backquote", 192),
    ('-', '_', "Minus", 189),
    ('=', '+', "Equal", 187),
    ('[', '{', "BracketLeft", 219),
    (']', '}', "BracketRight", 221),
    ('\\', '|', "Backslash", 220),
    (';', ':', "Semicolon", 186),
    ('\'', '"', "Quote", 222),
    (',', '<', "Comma", 188),
    ('.', '>', "Period", 190),
    ('/', '?', "Slash", 191),
];

/// The shifted digit row, `!` on 1 … `)` on 0.
const SHIFTED_DIGITS: [char; 10] = [')', '!', '@', '#', '$', '%', '^', '&', '*', '('];

/// The names `key` accepts, for its messages.
pub(crate) const KEY_NAMES: &str =
    "Enter Tab Space Escape Backspace Delete ArrowUp ArrowDown ArrowLeft ArrowRight Home End PageUp PageDown F1–F12, or one character";

impl KeySpec {
    fn named(key: &str, code: &str, key_code: i64, text: Option<&str>) -> KeySpec {
        KeySpec {
            key: key.to_string(),
            code: code.to_string(),
            key_code,
            text: text.map(str::to_string),
            shifted: false,
        }
    }

    /// How replies name the key.
    pub fn shown(&self) -> &str {
        if self.key == " " {
            "Space"
        } else {
            &self.key
        }
    }

    /// The two `Input.dispatchKeyEvent` parameter sets of one press with `modifiers` (Shift
    /// added when the key needs it): `keyDown` with its text for a key that types, otherwise
    /// (a named key without text, or with Ctrl, Alt or Meta held) `rawKeyDown`; then `keyUp`.
    pub fn events(&self, modifiers: i64) -> [Value; 2] {
        let modifiers = modifiers | if self.shifted { SHIFT } else { 0 };
        let types_text = self.text.is_some() && modifiers & (ALT | CTRL | META) == 0;
        let mut down = json!({
            "type": if types_text { "keyDown" } else { "rawKeyDown" },
            "key": self.key,
            "code": self.code,
            "windowsVirtualKeyCode": self.key_code,
            "modifiers": modifiers,
        });
        if let Some(text) = self.text.as_ref().filter(|_| types_text) {
            down["text"] = json!(text);
            down["unmodifiedText"] = json!(text);
        }
        let up = json!({
            "type": "keyUp",
            "key": self.key,
            "code": self.code,
            "windowsVirtualKeyCode": self.key_code,
            "modifiers": modifiers,
        });
        [down, up]
    }
}

/// A named key (case-insensitive; `Space`, `Esc`, `Return`, `Up`… accepted).
pub(crate) fn named_key(name: &str) -> Option<KeySpec> {
    let lower = name.to_ascii_lowercase();
    let canonical = match lower.as_str() {
        "space" => " ",
        "esc" => "escape",
        "return" => "enter",
        "up" => "arrowup",
        "down" => "arrowdown",
        "left" => "arrowleft",
        "right" => "arrowright",
        other => other,
    };
    if let Some((key, code, key_code, text)) = NAMED_KEYS
        .iter()
        .find(|(key, ..)| key.eq_ignore_ascii_case(canonical))
    {
        return Some(KeySpec::named(key, code, *key_code, *text));
    }
    FUNCTION_KEYS
        .iter()
        .zip(112..)
        .find(|(f, _)| f.eq_ignore_ascii_case(canonical))
        .map(|(f, key_code)| KeySpec::named(f, f, key_code, None))
}

/// One character as the key that types it on a US keyboard; a character that keyboard has
/// no key for is still sent (with its text, no code), as an input method would.
pub(crate) fn char_key(c: char) -> KeySpec {
    let spec = |code: String, key_code: i64, shifted: bool| KeySpec {
        key: c.to_string(),
        code,
        key_code,
        text: Some(c.to_string()),
        shifted,
    };
    if c.is_ascii_alphabetic() {
        let upper = c.to_ascii_uppercase();
        return spec(
            format!("Key{upper}"),
            i64::from(u32::from(upper)),
            c.is_ascii_uppercase(),
        );
    }
    if let Some(d) = c.to_digit(10) {
        return spec(format!("Digit{d}"), i64::from(u32::from(c)), false);
    }
    if let Some(d) = SHIFTED_DIGITS.iter().position(|s| *s == c) {
        return spec(format!("Digit{d}"), 48 + d as i64, true);
    }
    if c == ' ' {
        return spec("Space".into(), 32, false);
    }
    if let Some((plain, _, code, key_code)) = PUNCTUATION
        .iter()
        .find(|(plain, shifted, ..)| *plain == c || *shifted == c)
    {
        return spec(code.to_string(), *key_code, *plain != c);
    }
    spec(String::new(), 0, false)
}

/// The key `key <name>` means: a named key, else a single character.
pub(crate) fn key_for(name: &str) -> Option<KeySpec> {
    if let Some(spec) = named_key(name) {
        return Some(spec);
    }
    let mut chars = name.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if !c.is_control() => Some(char_key(c)),
        _ => None,
    }
}

/// `--modifiers ctrl,shift`: CDP's bit mask (Alt 1, Ctrl 2, Meta 4, Shift 8).
pub(crate) fn modifier_mask(list: &str) -> Result<i64, String> {
    list.split(',')
        .filter(|m| !m.trim().is_empty())
        .try_fold(0, |mask, m| {
            Ok(mask
                | match m.trim().to_ascii_lowercase().as_str() {
                    "alt" | "option" => ALT,
                    "ctrl" | "control" => CTRL,
                    "meta" | "cmd" | "command" => META,
                    "shift" => SHIFT,
                    other => {
                        return Err(format!(
                            "key: unknown modifier '{other}'; use ctrl, shift, alt, meta"
                        ))
                    }
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_keys_and_their_aliases() {
        assert_eq!(named_key("enter").unwrap().key_code, 13);
        assert_eq!(named_key("Return").unwrap().key, "Enter");
        assert_eq!(named_key("F5").unwrap().key_code, 116);
        assert_eq!(named_key("f12").unwrap().key, "F12");
        assert_eq!(named_key("space").unwrap().key, " ");
        assert_eq!(named_key("space").unwrap().shown(), "Space");
        assert_eq!(named_key("up").unwrap().code, "ArrowUp");
        assert!(named_key("Hyper").is_none());
    }

    #[test]
    fn characters_are_the_us_keys_that_type_them() {
        let k = char_key('k');
        assert_eq!(
            (k.key.as_str(), k.code.as_str(), k.key_code, k.shifted),
            ("k", "KeyK", 75, false)
        );
        let k = char_key('K');
        assert_eq!((k.code.as_str(), k.key_code, k.shifted), ("KeyK", 75, true));
        assert_eq!(char_key('7').code, "Digit7");
        assert_eq!(char_key('7').key_code, 55);
        let bang = char_key('!');
        assert_eq!(
            (bang.code.as_str(), bang.key_code, bang.shifted),
            ("Digit1", 49, true)
        );
        let question = char_key('?');
        assert_eq!(
            (question.code.as_str(), question.key_code, question.shifted),
            ("Slash", 191, true)
        );
        assert_eq!(char_key('/').key_code, 191);
        assert!(!char_key('/').shifted);
        let e = char_key('é');
        assert_eq!((e.key.as_str(), e.code.as_str(), e.key_code), ("é", "", 0));
        assert_eq!(e.text.as_deref(), Some("é"));
        assert!(key_for("kk").is_none());
        assert!(key_for("\u{7}").is_none());
        assert_eq!(key_for("-").unwrap().code, "Minus");
    }

    #[test]
    fn a_typing_press_is_key_down_with_text_then_key_up() {
        let [down, up] = char_key('k').events(0);
        assert_eq!(
            down,
            json!({"type": "keyDown", "key": "k", "code": "KeyK", "windowsVirtualKeyCode": 75,
                "modifiers": 0, "text": "k", "unmodifiedText": "k"})
        );
        assert_eq!(
            up,
            json!({"type": "keyUp", "key": "k", "code": "KeyK", "windowsVirtualKeyCode": 75, "modifiers": 0})
        );
        // Shift comes with the key that needs it.
        let [down, _] = char_key('?').events(0);
        assert_eq!(down["modifiers"], SHIFT);
        assert_eq!(down["text"], "?");
    }

    #[test]
    fn a_shortcut_or_a_named_key_is_a_raw_key_down() {
        let [down, up] = char_key('k').events(CTRL | SHIFT);
        assert_eq!(down["type"], "rawKeyDown");
        assert_eq!(down["modifiers"], CTRL | SHIFT);
        assert!(down.get("text").is_none());
        assert_eq!(up["modifiers"], CTRL | SHIFT);
        let [down, _] = named_key("Escape").unwrap().events(0);
        assert_eq!(down["type"], "rawKeyDown");
        let [down, _] = named_key("Enter").unwrap().events(0);
        assert_eq!(
            (down["type"].as_str(), down["text"].as_str()),
            (Some("keyDown"), Some("\r"))
        );
    }

    #[test]
    fn modifiers_are_a_bit_mask() {
        assert_eq!(modifier_mask("ctrl,shift").unwrap(), 10);
        assert_eq!(modifier_mask("Alt, Meta").unwrap(), 5);
        assert_eq!(modifier_mask("").unwrap(), 0);
        assert!(modifier_mask("super")
            .unwrap_err()
            .contains("unknown modifier 'super'"));
    }
}
