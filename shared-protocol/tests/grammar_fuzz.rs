//! A bounded fuzz run of the command grammar inside the test suite: every public entry
//! point of `grammar` and `tier` meets arbitrary text (control characters, quotes, escapes,
//! separators, deep nesting, long words) and must return, never panic or loop.

use proptest::prelude::*;
use shared_protocol::grammar::{
    navigation_url, parse_line, quote_word, redact_command, split_lines, tokenize, Line,
};
use shared_protocol::tier::classify;

/// Fragments the grammar gives meaning to, mixed with arbitrary text.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,12}",
        "[\\x00-\\x1f\\x7f]{1,3}",
        proptest::sample::select(vec![
            "for ",
            "each ",
            "watch ",
            "script save s ",
            "script run ",
            "js ",
            "eval ",
            " : ",
            " ; ",
            " | ",
            "| grep ",
            "| head -n ",
            "{}",
            "\"",
            "'",
            "\\",
            "\\\n",
            "\n",
            "\r\n",
            "--help",
            "--",
            "-n",
            "--url=",
            "!",
            "!9999999999999999999999",
            "open ",
            "type ",
            "submit ",
            "connect ",
            "(",
            ")",
            "{",
            "}",
            "[",
            "/*",
            "*/",
            "//",
            "`",
            "ж",
            "漢字",
            "\u{200b}",
        ])
        .prop_map(str::to_string),
    ]
}

fn input() -> impl Strategy<Value = String> {
    proptest::collection::vec(fragment(), 0..24).prop_map(|parts| parts.concat())
}

fn exercise(text: &str) {
    let _ = classify(text);
    let _ = redact_command(text);
    let _ = tokenize(text);
    let _ = navigation_url(text);
    let _ = quote_word(text);
    for line in split_lines(text) {
        if let Ok(Line::Pipeline(pipeline)) = parse_line(&line) {
            let command = &pipeline.command;
            let _ = command.parse_args();
            let _ = command.navigation_target();
            let _ = command.nested_form();
            let _ = command.nested();
            let _ = command.wants_help();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn the_grammar_never_panics(text in input()) {
        exercise(&text);
    }

    #[test]
    fn the_grammar_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn deep_nesting_and_long_input_stay_bounded() {
    let deep = "for ls : ".repeat(200) + "click {}";
    exercise(&deep);
    let wide = "js (".repeat(5_000);
    exercise(&wide);
    let long = "type ".to_string() + &"x".repeat(200_000);
    exercise(&long);
}
