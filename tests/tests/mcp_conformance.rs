//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! `tests/conformance/`) against the real `domshell serve --transport http`, for both
//! requirement sets it knows (2025-11-25, session era, and 2026-07-28, stateless era).
//!
//! What it proves: every check of every server scenario the suite runs passes — scored
//! requirements and the not-yet-scored extras alike (session lifecycle, header validation,
//! SSE polling…) — except the checks listed in `tests/conformance/expected-failures.json`,
//! which may only be checks that need the suite's own fixtures (tools such as
//! `test_simple_text`, `test://` resources, prompts, sampling/elicitation round trips, the
//! optional tasks extension) that a browser-driving server does not and should not serve.
//! Generic protocol behaviour (initialize, ping, tools/list, logging/setLevel, DNS-rebinding
//! protection, stateless `server/discover` and its error codes, session lifecycle, header
//! validation, wire-schema validity of every message) is never excused. The file is kept
//! honest both ways: an entry that no longer fails fails the test too.
//!
//! The server token goes as `Authorization: Bearer …` on every request (the suite has no
//! option for it; `tests/conformance/inject-headers.mjs` adds it), so tool calls are judged on
//! protocol behaviour rather than refused with 401. No extension is connected: no scenario
//! needs a browser, and none calls `domshell_execute` with a command.
//!
//! Node 22 and the suite are installed with npm on first use; a failed install fails the test
//! with what to install — it never skips.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context;
use domshell_tests::conformance::{
    files_dir, Check, CheckStatus, ConformanceSuite, Report, Requirements, ServerRunOptions,
    CONFORMANCE_VERSION, REVISIONS,
};
use domshell_tests::{ServerOptions, ServerProcess};
use serde::Deserialize;

const EXPECTED_FAILURES_FILE: &str = "expected-failures.json";

/// `tests/conformance/expected-failures.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedFailuresFile {
    #[allow(dead_code)] // documentation for readers of the file
    about: String,
    /// The check ids are the pinned suite's; a suite bump must revisit every entry.
    suite_version: String,
    expected_failures: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// `scenario:check-id`.
    id: String,
    /// One line: why domshell cannot pass this check.
    reason: String,
}

#[derive(Debug)]
struct ExpectedFailures {
    entries: Vec<Entry>,
}

impl ExpectedFailures {
    fn load() -> anyhow::Result<Self> {
        let path = files_dir().join(EXPECTED_FAILURES_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    fn parse(text: &str) -> anyhow::Result<Self> {
        let file: ExpectedFailuresFile = serde_json::from_str(text)?;
        anyhow::ensure!(
            file.suite_version == CONFORMANCE_VERSION,
            "written for conformance {}, but the pinned suite is {CONFORMANCE_VERSION}: check \
             every entry against the new suite's check ids, then update suite_version",
            file.suite_version
        );
        let mut seen = BTreeSet::new();
        for entry in &file.expected_failures {
            // Whole-scenario entries are refused: every scenario also runs generic checks
            // (e.g. `wire-schema-valid`), which a scenario-wide excuse would hide.
            let valid_id = entry
                .id
                .split_once(':')
                .is_some_and(|(scenario, check)| !scenario.is_empty() && !check.is_empty());
            anyhow::ensure!(
                valid_id,
                "{:?} is not `scenario:check-id` (whole scenarios cannot be excused)",
                entry.id
            );
            anyhow::ensure!(
                !entry.reason.trim().is_empty() && !entry.reason.contains('\n'),
                "{}: the reason must be one non-empty line",
                entry.id
            );
            anyhow::ensure!(seen.insert(&entry.id), "{} is listed twice", entry.id);
        }
        Ok(Self {
            entries: file.expected_failures,
        })
    }

    fn find(&self, scenario: &str, check: &str) -> Option<usize> {
        self.entries.iter().position(|e| {
            e.id.split_once(':')
                .is_some_and(|(s, c)| s == scenario && c == check)
        })
    }
}

/// One requirement set's run.
struct Run {
    requirements: Requirements,
    report: Report,
}

/// What is wrong with a set of runs, judged against the expected failures.
#[derive(Debug, Default)]
struct Verdict {
    /// (revision, scenario, check) failing without an entry.
    unexpected: Vec<(String, String, Check)>,
    /// Entries that excused nothing in any run.
    stale: Vec<Entry>,
    /// (revision, scenario): required by the revision but never run or without results.
    missing: Vec<(String, String)>,
}

impl Verdict {
    fn passed(&self) -> bool {
        self.unexpected.is_empty() && self.stale.is_empty() && self.missing.is_empty()
    }

    fn describe(&self, expected: &ExpectedFailures) -> String {
        let mut text = String::new();
        if !self.missing.is_empty() {
            text += "\nRequired scenarios that produced no results:";
            for (revision, scenario) in &self.missing {
                text += &format!("\n  [{revision}] {scenario}");
            }
        }
        if !self.unexpected.is_empty() {
            text += &format!(
                "\n{} failing check(s) not in tests/conformance/{EXPECTED_FAILURES_FILE} — \
                 fix the server; list a check only if it needs a fixture domshell should not \
                 serve:",
                self.unexpected.len()
            );
            for (revision, scenario, check) in &self.unexpected {
                let details = check.raw.get("details").map(|d| d.to_string());
                text += &format!(
                    "\n  [{revision}] {scenario}:{} — {}\n      ({}){}",
                    check.id,
                    check.error_message.as_deref().unwrap_or("(no message)"),
                    check.description,
                    details
                        .map(|d| format!("\n      details: {}", truncate(&d, 400)))
                        .unwrap_or_default()
                );
            }
        }
        if !self.stale.is_empty() {
            text += &format!(
                "\n{} expected failure(s) that no longer fail — delete them from \
                 tests/conformance/{EXPECTED_FAILURES_FILE}. (A fixture check that passes \
                 without its fixture usually means the server answers a method whose \
                 capability it does not declare.)",
                self.stale.len()
            );
            for entry in &self.stale {
                text += &format!("\n  {} — {}", entry.id, entry.reason);
            }
        }
        text += &format!("\n({} expected failures listed)", expected.entries.len());
        text
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Judge every failed check of every run — scored or not: the suite's not-scored extras
/// include generic behaviour (session lifecycle, header validation) that must hold too.
fn judge(runs: &[Run], expected: &ExpectedFailures) -> Verdict {
    let mut verdict = Verdict::default();
    let mut used = vec![false; expected.entries.len()];
    for run in runs {
        let revision = &run.requirements.revision;
        for name in &run.requirements.required {
            let ran = run
                .report
                .scenario(name)
                .is_some_and(|s| !s.skipped && !s.checks.is_empty());
            if !ran {
                verdict.missing.push((revision.clone(), name.clone()));
            }
        }
        for scenario in &run.report.scenarios {
            for check in &scenario.checks {
                if check.status != CheckStatus::Failure {
                    continue;
                }
                match expected.find(&scenario.name, &check.id) {
                    Some(index) => used[index] = true,
                    None => verdict.unexpected.push((
                        revision.clone(),
                        scenario.name.clone(),
                        check.clone(),
                    )),
                }
            }
        }
    }
    verdict.stale = expected
        .entries
        .iter()
        .zip(used)
        .filter(|(_, used)| !used)
        .map(|(entry, _)| entry.clone())
        .collect();
    verdict
}

#[tokio::test]
async fn official_server_scenarios_pass_except_missing_fixtures() -> anyhow::Result<()> {
    let expected = ExpectedFailures::load()?;
    let suite = tokio::task::spawn_blocking(ConformanceSuite::ensure)
        .await?
        .context(
            "installing the MCP conformance suite (Node 22 + @modelcontextprotocol/conformance \
             via `npm ci`) failed; this test needs npm and the npm registry and never skips",
        )?;
    let server = ServerProcess::start(ServerOptions {
        extra_args: vec!["--transport".into(), "http".into()],
        debug_api: false,
        ..ServerOptions::default()
    })
    .await?;
    let url = server.http_url("/mcp");

    let mut runs = Vec::new();
    for revision in REVISIONS {
        let requirements = suite.server_requirements(revision).await?;
        anyhow::ensure!(
            !requirements.required.is_empty(),
            "the suite lists no server scenarios for {revision}"
        );
        let opts = ServerRunOptions {
            scenario_timeout: Duration::from_secs(20),
            // A hung CLI is killed well before a CI job's own limit.
            timeout: Duration::from_secs(180),
            ..ServerRunOptions::requirements(revision)
        }
        .bearer(server.mcp_token());
        let report = suite
            .run_server_scenarios(&url, &opts)
            .await
            .with_context(|| format!("running the {revision} requirement set"))?;
        eprintln!("[{revision}] {}\n", report.summary());
        runs.push(Run {
            requirements,
            report,
        });
    }

    let verdict = judge(&runs, &expected);
    // The server's log is not appended: at debug level it is thousands of lines of wire
    // dumps; DOMSHELL_TEST_ECHO=1 streams it when needed.
    anyhow::ensure!(
        verdict.passed(),
        "MCP conformance against {url}:{}\n(per-check details: run with --nocapture; server \
         log: DOMSHELL_TEST_ECHO=1)",
        verdict.describe(&expected)
    );
    Ok(())
}

/// The checked-in file parses and is well-formed without running anything (a fast signal
/// when editing it).
#[test]
fn expected_failures_file_is_well_formed() {
    let expected = ExpectedFailures::load().expect("a valid expected-failures file");
    assert!(!expected.entries.is_empty());
}

/// The judging rules on synthetic reports.
mod judging {
    use super::*;
    use domshell_tests::conformance::ScenarioReport;
    use serde_json::Value;

    fn check(id: &str, status: CheckStatus) -> Check {
        Check {
            id: id.into(),
            name: id.into(),
            description: id.into(),
            status,
            error_message: None,
            raw: Value::Null,
        }
    }

    fn scenario(name: &str, scored: bool, checks: Vec<Check>) -> ScenarioReport {
        ScenarioReport {
            name: name.into(),
            scored: Some(scored),
            skipped: false,
            checks,
        }
    }

    fn run(required: &[&str], scenarios: Vec<ScenarioReport>) -> Run {
        Run {
            requirements: Requirements {
                revision: "2026-07-28".into(),
                required: required.iter().map(|s| s.to_string()).collect(),
                not_scored: Vec::new(),
            },
            report: Report {
                url: "http://127.0.0.1:1/mcp".into(),
                scenarios,
                runs: Vec::new(),
                elapsed: Duration::ZERO,
            },
        }
    }

    fn expected(ids: &[&str]) -> ExpectedFailures {
        let entries: Vec<Value> = ids
            .iter()
            .map(|id| serde_json::json!({"id": id, "reason": "no fixture"}))
            .collect();
        let doc = serde_json::json!({
            "about": "test",
            "suite_version": CONFORMANCE_VERSION,
            "expected_failures": entries,
        });
        ExpectedFailures::parse(&doc.to_string()).unwrap()
    }

    #[test]
    fn listed_checks_are_excused_and_nothing_else() {
        let runs = [run(
            &["fixture"],
            vec![scenario(
                "fixture",
                true,
                vec![
                    check("needs-tool", CheckStatus::Failure),
                    check("wire-schema-valid", CheckStatus::Failure),
                    check("hint", CheckStatus::Warning),
                ],
            )],
        )];
        let verdict = judge(&runs, &expected(&["fixture:needs-tool"]));
        assert_eq!(verdict.unexpected.len(), 1, "{verdict:?}");
        assert_eq!(verdict.unexpected[0].2.id, "wire-schema-valid");
        assert!(verdict.stale.is_empty());
    }

    #[test]
    fn unscored_scenarios_are_judged_too() {
        let runs = [run(
            &[],
            vec![scenario(
                "http-header-validation",
                false,
                vec![check("reject", CheckStatus::Failure)],
            )],
        )];
        let verdict = judge(&runs, &expected(&[]));
        assert_eq!(verdict.unexpected.len(), 1);
    }

    #[test]
    fn entries_that_no_longer_fail_are_stale() {
        let runs = [run(
            &["prompts-list"],
            vec![scenario(
                "prompts-list",
                true,
                vec![check("prompts-list", CheckStatus::Success)],
            )],
        )];
        let verdict = judge(&runs, &expected(&["prompts-list:prompts-list"]));
        assert_eq!(verdict.stale.len(), 1);
        assert!(!verdict.passed());
    }

    #[test]
    fn required_scenarios_without_results_are_missing() {
        let runs = [run(
            &["ping", "tools-list"],
            vec![scenario("ping", true, vec![])],
        )];
        let verdict = judge(&runs, &expected(&[]));
        assert_eq!(verdict.missing.len(), 2, "{verdict:?}");
    }

    #[test]
    fn malformed_files_are_refused() {
        let parse = |entries: Value, version: &str| {
            ExpectedFailures::parse(
                &serde_json::json!({
                    "about": "", "suite_version": version, "expected_failures": entries
                })
                .to_string(),
            )
        };
        let ok = serde_json::json!([{"id": "a:b", "reason": "x"}]);
        assert!(parse(ok.clone(), CONFORMANCE_VERSION).is_ok());
        assert!(parse(ok, "0.0.1").is_err(), "other suite version");
        for bad in [
            serde_json::json!([{"id": "whole-scenario", "reason": "x"}]),
            serde_json::json!([{"id": "a:b", "reason": ""}]),
            serde_json::json!([{"id": "a:b", "reason": "two\nlines"}]),
            serde_json::json!([{"id": "a:b", "reason": "x"}, {"id": "a:b", "reason": "y"}]),
            serde_json::json!([{"id": "a:b", "reason": "x", "extra": 1}]),
        ] {
            assert!(parse(bad.clone(), CONFORMANCE_VERSION).is_err(), "{bad}");
        }
    }
}
