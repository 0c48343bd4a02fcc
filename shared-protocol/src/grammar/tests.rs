//! Table and property tests of the grammar: splitting, tokenizing, pipes, flags, nested
//! commands and redaction, including the inputs the original kernel got wrong.

use super::*;
use proptest::prelude::*;

fn pipeline(text: &str) -> Pipeline {
    match parse_line(text).unwrap_or_else(|e| panic!("{text}: {e}")) {
        Line::Pipeline(p) => p,
        other => panic!("{text}: {other:?}"),
    }
}

fn command(text: &str) -> Command {
    pipeline(text).command
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn simple_command() {
    let c = command("  ls  -l main ");
    assert_eq!(c.name, "ls");
    assert_eq!(c.args, ["-l", "main"]);
    assert_eq!(c.raw, "ls  -l main");
    assert!(!c.is_raw());
}

#[test]
fn names_are_lower_cased_and_may_be_quoted() {
    assert_eq!(command("CLICK x").name, "click");
    assert_eq!(command("\"click\" x").name, "click");
    assert_eq!(command("'JS' a | b").name, "js");
    assert_eq!(command("'JS' a | b").args, ["a | b"]);
}

#[test]
fn history_replay() {
    assert_eq!(parse_line("!12").unwrap(), Line::HistoryReplay(12));
    assert_eq!(parse_line(" !0 ").unwrap(), Line::HistoryReplay(0));
    assert_eq!(command("!x").name, "!x");
    assert_eq!(command("!1 2").name, "!1");
    assert!(matches!(
        parse_line("!99999999999999999999999999"),
        Err(ParseError::HistoryNumber(_))
    ));
}

#[test]
fn empty_line_is_an_error() {
    assert_eq!(parse_line("   "), Err(ParseError::Empty));
}

#[test]
fn pipes_with_grep_and_head() {
    let p = pipeline("tabs | grep -n 2 wiki pedia | head -n 5 | head -3 | head | grep -i -- -x");
    assert_eq!(p.command.name, "tabs");
    assert_eq!(p.command.raw, "tabs");
    assert_eq!(
        p.consumers,
        [
            Consumer::Grep {
                pattern: "wiki pedia".into(),
                limit: Some(2)
            },
            Consumer::Head { lines: 5 },
            Consumer::Head { lines: 3 },
            Consumer::Head {
                lines: DEFAULT_HEAD_LINES
            },
            Consumer::Grep {
                pattern: "-x".into(),
                limit: None
            },
        ]
    );
}

#[test]
fn quoted_pipes_are_not_pipes() {
    let p = pipeline("grep \"a | b\" | grep 'c|d'");
    assert_eq!(p.command.args, ["a | b"]);
    assert_eq!(p.consumers.len(), 1);
    assert_eq!(command("type a\\|b").args, ["a|b"]);
}

#[test]
fn pipe_errors() {
    assert_eq!(
        parse_line("ls | sort").unwrap_err().to_string(),
        "Pipe: 'sort' not supported as pipe consumer. Use grep or head."
    );
    assert!(matches!(
        parse_line("ls || grep x"),
        Err(ParseError::EmptyPipeSegment { position: "after" })
    ));
    assert!(matches!(
        parse_line("| grep x"),
        Err(ParseError::EmptyPipeSegment { position: "before" })
    ));
    assert!(matches!(
        parse_line("ls |"),
        Err(ParseError::EmptyPipeSegment { .. })
    ));
    assert!(parse_line("ls | grep")
        .unwrap_err()
        .to_string()
        .contains("missing pattern"));
    assert!(parse_line("ls | grep -v x")
        .unwrap_err()
        .to_string()
        .contains("grep -- -v"));
    assert!(parse_line("ls | head -n x").is_err());
    assert!(parse_line("ls | head -n").is_err());
    assert!(parse_line("ls | head 5").is_err());
}

#[test]
fn raw_commands_keep_the_rest_verbatim() {
    let c = command("js  a || b | c; 'x' \"y\"  ");
    assert_eq!(c.name, "js");
    assert_eq!(c.args, ["a || b | c; 'x' \"y\""]);
    assert_eq!(c.rest(), "a || b | c; 'x' \"y\"");
    assert!(c.is_raw());
    assert!(pipeline("eval x | grep y").consumers.is_empty());
    // Unbalanced quotes are JavaScript's business, not the shell's.
    assert_eq!(command("js it's").args, ["it's"]);
    assert!(command("js").args.is_empty());
}

#[test]
fn raw_command_help() {
    assert!(command("js --help").wants_help());
    assert!(command("for  --help ").wants_help());
    assert!(!command("js x --help").wants_help());
    assert!(command("js --help").nested_form().unwrap().is_none());
}

#[test]
fn help_flag() {
    assert!(command("ls -l --help").wants_help());
    assert!(!command("ls -- --help").wants_help());
    assert!(command("type --help").wants_help());
    assert!(!command("type a --help").wants_help());
}

#[test]
fn type_takes_everything_as_text() {
    let args = command("type -5 --times -rf /").parse_args().unwrap();
    assert_eq!(args.positional, ["-5", "--times", "-rf", "/"]);
    assert!(args.flags.is_empty());
    let args = command("type -- --help").parse_args().unwrap();
    assert_eq!(args.positional, ["--help"]);
    assert_eq!(command("type \"line 1\\nline 2\"").args, ["line 1\nline 2"]);
}

#[test]
fn flags_keep_dash_values_after_double_dash() {
    let args = command("grep -n 3 -- -x").parse_args().unwrap();
    assert_eq!(args.positional, ["-x"]);
    assert_eq!(args.value("-n"), Some("3"));
    let args = command("scroll down -2").parse_args().unwrap();
    assert_eq!(args.positional, ["down", "-2"]);
    assert!(command("ls -n").parse_args().is_err());
}

#[test]
fn combined_short_flags_are_each_letter_of_the_command() {
    for (text, flags, positional) in [
        ("ls -la", vec!["-l", "-a"], vec![]),
        ("ls -al", vec!["-a", "-l"], vec![]),
        ("ls -lar main", vec!["-l", "-a", "-r"], vec!["main"]),
        ("ls -l -a", vec!["-l", "-a"], vec![]),
        ("LS -LA", vec![], vec![]),
        ("ls -la -n 3 nav", vec!["-l", "-a", "-n"], vec!["nav"]),
        ("grep -r login", vec!["-r"], vec!["login"]),
        ("read -d 2 main", vec!["-d"], vec!["main"]),
    ] {
        match command(text).parse_args() {
            // Letters are case-sensitive: `-L` is not `-l`.
            Err(e) if text == "LS -LA" => {
                assert_eq!(
                    e.to_string(),
                    "ls: unknown option -L in -LA (ls knows -a -l -n N -r); see `ls --help`"
                );
            }
            Err(e) => panic!("{text}: {e}"),
            Ok(args) => {
                let names: Vec<&str> = args.flags.iter().map(|f| f.name.as_str()).collect();
                assert_eq!(names, flags, "{text}");
                assert_eq!(args.positional, positional, "{text}");
                assert!(
                    args.flags
                        .iter()
                        .filter(|f| f.name != "-n" && f.name != "-d")
                        .all(|f| f.value.is_none()),
                    "{text}"
                );
            }
        }
    }
    let args = command("ls -la -n 3").parse_args().unwrap();
    assert_eq!(args.value("-n"), Some("3"));
    assert!(args.has("-l") && args.has("-a"));
}

#[test]
fn an_unknown_letter_is_an_error_naming_it_and_the_command() {
    for (text, message) in [
        (
            "ls -lz",
            "ls: unknown option -z in -lz (ls knows -a -l -n N -r); see `ls --help`",
        ),
        (
            "ls -z",
            "ls: unknown option -z (ls knows -a -l -n N -r); see `ls --help`",
        ),
        (
            "click -x submit_btn",
            "click: unknown option -x (click has no one-letter options); see `click --help`",
        ),
        (
            "grep -ri x",
            "grep: unknown option -i in -ri (grep knows -n N -r); see `grep --help`",
        ),
        (
            "open -u https://evil.example",
            "open: unknown option -u (open has no one-letter options); see `open --help`",
        ),
    ] {
        let err = command(text).parse_args().unwrap_err();
        assert_eq!(err.to_string(), message, "{text}");
    }
}

#[test]
fn a_letter_that_takes_a_value_stands_alone() {
    // `-ln 5` would let a combination take the next word as a value: refused, the word is
    // never consumed.
    for (text, message) in [
        (
            "ls -ln 5",
            "ls: -n takes a value, so it cannot share a dash with other letters (-ln); write it on its own: -n N",
        ),
        (
            "grep -rn 3 x",
            "grep: -n takes a value, so it cannot share a dash with other letters (-rn); write it on its own: -n N",
        ),
        (
            "ls -nl 5",
            "ls: -n takes a value, so it cannot share a dash with other letters (-nl); write it on its own: -n N",
        ),
        (
            "history -n5",
            "history: -n takes a value, so it cannot share a dash with other letters (-n5); write it on its own: -n N",
        ),
    ] {
        let err = command(text).parse_args().unwrap_err();
        assert_eq!(err.to_string(), message, "{text}");
    }
    assert_eq!(
        command("ls -n").parse_args().unwrap_err().to_string(),
        "ls: -n needs a value"
    );
}

#[test]
fn what_is_not_a_short_flag_stays_as_it_was() {
    // Negative numbers, the lone dash, words after `--`, long flags, `type` text.
    let args = command("scroll down -2").parse_args().unwrap();
    assert_eq!(args.positional, ["down", "-2"]);
    assert_eq!(command("cd -").parse_args().unwrap().positional, ["-"]);
    let args = command("grep -- -la").parse_args().unwrap();
    assert_eq!(args.positional, ["-la"]);
    assert!(args.flags.is_empty());
    let args = command("ls --long --all").parse_args().unwrap();
    assert!(args.has("--long") && args.has("--all"));
    assert_eq!(
        command("type -la").parse_args().unwrap().positional,
        ["-la"]
    );
    // A word that names no command keeps the generic rule (the extension answers "command
    // not found").
    let args = command("frobnicate -la").parse_args().unwrap();
    assert_eq!(args.flags[0].name, "-la");
}

#[test]
fn a_letter_means_the_same_alone_and_spelled_as_a_flag() {
    // One table: a one-letter flag's arity is its row's, whether read as a letter or as
    // the word `-n`.
    for def in crate::commands::COMMANDS {
        let mut letters = std::collections::HashSet::new();
        for (letter, takes_value) in def.letters() {
            assert!(letters.insert(letter), "{}: -{letter} twice", def.name);
            assert_eq!(
                takes_value,
                takes_value_of(def.name, letter),
                "{}",
                def.name
            );
        }
    }
    for raw in ["js", "eval", "watch", "for", "each", "script"] {
        assert!(
            crate::commands::is_raw(raw),
            "{raw} takes the rest of the line"
        );
    }
}

fn takes_value_of(command: &str, letter: char) -> bool {
    takes_value(command, &format!("-{letter}"))
}

proptest! {
    /// Any combination of a command's boolean letters means exactly those letters written
    /// one by one.
    #[test]
    fn a_combination_is_its_letters_one_by_one(
        (name, booleans) in proptest::sample::select(
            crate::commands::COMMANDS
                .iter()
                .map(|def| {
                    let letters: Vec<char> =
                        def.letters().filter(|(_, valued)| !valued).map(|(c, _)| c).collect();
                    (def.name, letters)
                })
                .filter(|(_, letters)| !letters.is_empty())
                .collect::<Vec<_>>()
        ),
        picks in proptest::collection::vec(0usize..8, 1..5),
    ) {
        let letters: String = picks.iter().map(|i| booleans[i % booleans.len()]).collect();
        let combined = command(&format!("{name} -{letters} word")).parse_args().unwrap();
        let separate: Vec<String> = letters.chars().map(|c| format!("-{c}")).collect();
        let alone = command(&format!("{name} {} word", separate.join(" "))).parse_args().unwrap();
        prop_assert_eq!(&combined.flags, &alone.flags);
        prop_assert_eq!(&combined.positional, &alone.positional);
        prop_assert_eq!(combined.positional, vec!["word".to_string()]);
    }
}

#[test]
fn navigation_targets() {
    assert_eq!(
        command("open https://x.org/a").navigation_target().unwrap(),
        Some("https://x.org/a".into())
    );
    assert_eq!(
        command("navigate --url evil.example")
            .navigation_target()
            .unwrap(),
        Some("evil.example".into())
    );
    // Anything that one side could read as a destination and the other not is refused.
    for text in [
        "open https://x.org/a b",
        "open --url a.com b.com",
        "goto --new-tab x.com",
        "open",
    ] {
        let err = command(text).navigation_target().unwrap_err();
        assert!(
            err.to_string().contains("usage: open|navigate|goto"),
            "{text}: {err}"
        );
    }
    // A one-letter flag is refused before it could be read as anything.
    let err = command("open -n evil.example")
        .navigation_target()
        .unwrap_err();
    assert!(err.to_string().contains("unknown option -n"), "{err}");
    assert_eq!(command("open --help").navigation_target().unwrap(), None);
    assert_eq!(
        command("open x.org --timeout 5")
            .navigation_target()
            .unwrap(),
        Some("x.org".into())
    );
    assert_eq!(
        command("group new work --url x.com")
            .navigation_target()
            .unwrap(),
        Some("x.com".into())
    );
    assert_eq!(
        command("group NEW --url=y.com")
            .navigation_target()
            .unwrap(),
        Some("y.com".into())
    );
    assert_eq!(
        command("group close --url x").navigation_target().unwrap(),
        None
    );
    assert_eq!(command("cd https://x").navigation_target().unwrap(), None);
}

#[test]
fn for_loops_split_on_the_last_separator() {
    let c = command("for ls -l : click {}");
    let Some(Nested::For(f)) = c.nested_form().unwrap() else {
        panic!()
    };
    assert_eq!(f.source, "ls -l");
    assert_eq!(f.template, "click {}");
    assert_eq!(f.substitute("a_b"), "click a_b");
    let c = command("for for a : b : type {} {}");
    let Some(Nested::For(f)) = c.nested_form().unwrap() else {
        panic!()
    };
    assert_eq!(f.source, "for a : b");
    assert_eq!(f.substitute("x"), "type x x");
    let nested = c.nested().unwrap();
    assert_eq!(nested.len(), 2);
    assert!(parse_line("for ls")
        .unwrap_err()
        .to_string()
        .contains("usage: for"));
    assert!(parse_line("for  : x").is_err());
    assert!(parse_line("for ls :").is_err());
}

#[test]
fn each_flags_then_verbatim_command() {
    let c = command("each --pattern \"wiki pedia\" --limit 3 js document.title.replace(/'/g, '')");
    let Some(Nested::Each(e)) = c.nested_form().unwrap() else {
        panic!()
    };
    assert_eq!(e.pattern.as_deref(), Some("wiki pedia"));
    assert_eq!(e.limit, Some(3));
    assert_eq!(e.command, "js document.title.replace(/'/g, '')");
    assert!(!e.command_was_quoted);
    let Some(Nested::Each(e)) = command("each --limit=2 \"click x\"").nested_form().unwrap() else {
        panic!()
    };
    assert_eq!(
        (e.limit, e.command.as_str(), e.command_was_quoted),
        (Some(2), "click x", true)
    );
    let Some(Nested::Each(e)) = command("each -- --pattern").nested_form().unwrap() else {
        panic!()
    };
    assert_eq!(e.command, "--pattern");
    assert!(parse_line("each --limit x ls").is_err());
    assert!(parse_line("each --pattern").is_err());
    assert!(parse_line("each").is_err());
    assert!(parse_line("each --limit 2").is_err());
}

#[test]
fn watch_forms() {
    let watch = |text: &str| match command(text).nested_form().unwrap() {
        Some(Nested::Watch(w)) => w,
        other => panic!("{other:?}"),
    };
    let w = watch("watch \"ls -l\" --interval 0.5 --times 3 --until-change");
    assert_eq!(w.command, "ls -l");
    assert!(w.command_was_quoted);
    assert_eq!(
        (w.interval_s, w.times, w.until_change),
        (Some(0.5), Some(3), true)
    );
    let w = watch("watch --times=2 grep \"a b\" | head -n 1");
    assert_eq!(w.command, "grep \"a b\" | head -n 1");
    assert_eq!(w.times, Some(2));
    let w = watch("watch ls -- --times 3");
    assert_eq!(w.command, "ls --times 3");
    assert_eq!(w.times, None);
    let w = watch("watch ls \"--times\" 3");
    assert_eq!(w.command, "ls \"--times\" 3");
    assert!(parse_line("watch --interval nan ls").is_err());
    assert!(parse_line("watch --interval -1 ls").is_err());
    assert!(parse_line("watch --times").is_err());
    assert!(parse_line("watch --times 2").is_err());
    let err = parse_line("watch js it's").unwrap_err().to_string();
    assert!(err.contains("quote the whole command"), "{err}");
    assert!(parse_line("watch \"js it's\"").is_ok());
}

#[test]
fn script_forms() {
    let script = |text: &str| match command(text).nested_form().unwrap() {
        Some(Nested::Script(sc)) => sc,
        other => panic!("{other:?}"),
    };
    assert_eq!(script("script"), Script::List);
    assert_eq!(script("script LIST"), Script::List);
    assert_eq!(script("script show a"), Script::Show { name: "a".into() });
    assert_eq!(
        script("script delete a"),
        Script::Delete { name: "a".into() }
    );
    assert_eq!(
        script("script run login \"me@x.org\" two"),
        Script::Run {
            name: "login".into(),
            args: s(&["me@x.org", "two"])
        }
    );
    assert_eq!(
        script("script save go open x.com ; click a;b ;  ; type $1"),
        Script::Save {
            name: "go".into(),
            commands: s(&["open x.com", "click a;b", "type $1"])
        }
    );
    assert_eq!(
        script("script save go \"ls ; cd main\""),
        Script::Save {
            name: "go".into(),
            commands: s(&["ls", "cd main"])
        }
    );
    assert_eq!(
        command("script save go ls ; pwd").nested().unwrap().len(),
        2
    );
    assert!(parse_line("script frob")
        .unwrap_err()
        .to_string()
        .contains("unknown subcommand"));
    assert!(parse_line("script run").is_err());
    assert!(parse_line("script save x").is_err());
    assert!(parse_line("script save x ls ; ls | sort")
        .unwrap_err()
        .to_string()
        .contains("`script save` command 2"));
}

#[test]
fn nested_errors_say_where() {
    let err = parse_line("for ls : click \"x").unwrap_err();
    assert!(matches!(err, ParseError::Inside { .. }));
    assert!(
        err.to_string()
            .starts_with("in the `for` template: unterminated"),
        "{err}"
    );
}

#[test]
fn nesting_is_bounded() {
    let mut text = "ls".to_string();
    for _ in 0..MAX_NESTING {
        text = format!("each {text}");
    }
    assert!(parse_line(&text).is_ok());
    text = format!("each {text}");
    assert_eq!(
        parse_line(&text),
        Err(ParseError::TooDeep { max: MAX_NESTING })
    );
    let deep_for = format!("{}ls : ls", "for ".repeat(20));
    assert!(parse_line(&deep_for).is_err());
}

#[test]
fn nested_returns_parsed_children() {
    let c = command("for tabs | grep wiki : each --limit 1 click {}");
    let children = c.nested().unwrap();
    let Line::Pipeline(source) = &children[0] else {
        panic!()
    };
    assert_eq!(source.command.name, "tabs");
    assert_eq!(source.consumers.len(), 1);
    let Line::Pipeline(template) = &children[1] else {
        panic!()
    };
    assert_eq!(template.command.name, "each");
    let grandchildren = template.command.nested().unwrap();
    let Line::Pipeline(inner) = &grandchildren[0] else {
        panic!()
    };
    assert_eq!(inner.command.name, "click");
    assert_eq!(inner.command.args, ["{}"]);
    assert!(command("ls").nested().unwrap().is_empty());
    assert!(command("script run x").nested().unwrap().is_empty());
}

#[test]
fn navigation_url_rules() {
    for (input, expected) in [
        ("example.com/x", "https://example.com/x"),
        ("  example.com ", "https://example.com"),
        ("localhost:3000", "https://localhost:3000"),
        ("example.com:8080/a", "https://example.com:8080/a"),
        ("http://a.b", "http://a.b"),
        ("HTTPS://A.B", "HTTPS://A.B"),
        ("http:a.b", "http:a.b"),
        ("about:blank", "about:blank"),
        ("data:text/html,hi", "data:text/html,hi"),
        ("JavaScript:alert(1)", "JavaScript:alert(1)"),
        ("java\tscript:alert(1)", "javascript:alert(1)"),
        ("chrome-extension://abc/x", "chrome-extension://abc/x"),
        ("ws://h:1", "ws://h:1"),
        ("//x.com", "https:////x.com"),
        ("ünïcödé.de", "https://ünïcödé.de"),
        ("1a:b", "https://1a:b"),
    ] {
        assert_eq!(navigation_url(input), expected, "{input}");
    }
}

#[test]
fn split_then_parse_keeps_multi_line_js_whole() {
    let lines = split_lines("js const a = `x\ny`;\nls | head -n 2");
    assert_eq!(lines.len(), 2);
    assert_eq!(command(&lines[0]).args, ["const a = `x\ny`;"]);
    assert_eq!(pipeline(&lines[1]).consumers, [Consumer::Head { lines: 2 }]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
        for line in split_lines(&text) {
            if let Ok(Line::Pipeline(p)) = parse_line(&line) {
                let _ = p.command.parse_args();
                let _ = p.command.navigation_target();
                let _ = p.command.nested();
                let _ = p.command.wants_help();
            }
        }
        let _ = parse_line(&text);
        let _ = navigation_url(&text);
    }

    #[test]
    fn shell_alphabet_never_panics(text in "[a-z !{}:;|'\"\\\\\\n\t(){}`/*=-]{0,60}") {
        for line in split_lines(&text) {
            let _ = parse_line(&line);
        }
        let _ = parse_line(&text);
    }

    #[test]
    fn command_words_with_nesting_never_panic(
        words in proptest::collection::vec(
            prop_oneof![
                Just("for".to_string()), Just("each".to_string()), Just("watch".to_string()),
                Just("script".to_string()), Just("save".to_string()), Just(":".to_string()),
                Just(";".to_string()), Just("|".to_string()), Just("{}".to_string()),
                Just("--times".to_string()), Just("--pattern".to_string()), Just("\"".to_string()),
                Just("click".to_string()), Just("js".to_string()), Just("-n".to_string()),
                "[a-z]{1,3}",
            ],
            0..16,
        )
    ) {
        let text = words.join(" ");
        if let Ok(Line::Pipeline(p)) = parse_line(&text) {
            prop_assert!(p.command.nested().is_ok());
        }
    }

    #[test]
    fn quoted_words_round_trip(values in proptest::collection::vec("\\PC{0,12}", 1..6)) {
        let text = format!("cmd {}", values.iter().map(|v| quote_word(v)).collect::<Vec<_>>().join(" "));
        let c = command(&text);
        prop_assert_eq!(c.args, values);
    }

    #[test]
    fn split_lines_output_is_trimmed_and_non_empty(text in "\\PC{0,60}") {
        for line in split_lines(&text) {
            prop_assert!(!line.is_empty());
            prop_assert_eq!(line.trim(), line.as_str());
        }
    }

    #[test]
    fn plain_lines_split_like_newlines(lines in proptest::collection::vec("[a-z][a-z0-9 _.-]{0,20}", 0..8)) {
        let text = lines.join("\n");
        let expected: Vec<String> = lines.iter().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
        prop_assert_eq!(split_lines(&text), expected);
    }
}

#[test]
fn an_unquoted_newline_never_hides_a_second_command() {
    // Inside a raw command's inner text, where split_lines cannot cut.
    for text in [
        "watch \"ls\nclick x\"",
        "each \"ls\nclick x\"",
        "script save s \"ls\nclick x\"",
        "for tabs : \"ls\nclick x\"",
        "for ls : each \"text\nclick x\"",
    ] {
        let err = parse_line(text).unwrap_err();
        assert!(
            err.to_string().contains("line break outside quotes"),
            "{text}: {err}"
        );
    }
    // A line that skipped split_lines.
    assert!(matches!(
        parse_line("ls\nclick x"),
        Err(ParseError::UnquotedNewline { column: 3 })
    ));
    // Quoted newlines are text, and JavaScript may span lines.
    assert!(parse_line("type \"two\nlines\"").is_ok());
    assert!(parse_line("each \"type 'a\nb'\"").is_ok());
    assert!(parse_line("js (() => {\n return 1;\n})()").is_ok());
}
