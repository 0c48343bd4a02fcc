//! Self-test of the third-party MCP client harness: the Python SDK venv and driver
//! ([`domshell_tests::python`]) and the official conformance suite
//! ([`domshell_tests::conformance`]) install, run, and report failures as data.
//!
//! It checks the harness, not the domshell MCP server (feature tests do that), so it needs no
//! server: it points the clients at a port nothing listens on. It installs the pinned tools
//! on first use (PyPI, npm registry) and must not skip when they cannot be installed.

use std::time::Duration;

use domshell_tests::conformance::{ConformanceSuite, ServerRunOptions, CONFORMANCE_VERSION};
use domshell_tests::python::{PythonEnv, MCP_SDK_VERSION};
use serde_json::json;

/// A loopback URL that refuses connections: a port that was just free.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a probe port");
    let port = listener.local_addr().expect("probe port").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/mcp")
}

#[tokio::test]
async fn python_driver_reports_bad_plans_and_dead_servers_as_json() -> anyhow::Result<()> {
    let python = tokio::task::spawn_blocking(PythonEnv::ensure).await??;

    let run = python
        .run_driver(
            &json!({ "transport": { "type": "carrier-pigeon" } }),
            Duration::from_secs(60),
        )
        .await?;
    assert_eq!(run.exit_code, Some(2), "{}", run.failure_report());
    assert_eq!(run.result["error"]["type"], "PlanError", "{}", run.result);
    assert_eq!(run.result["driver"]["sdk_version"], MCP_SDK_VERSION);

    let plan = json!({
        "transport": {
            "type": "http",
            "url": dead_url(),
            "headers": { "Authorization": "Bearer not-a-real-token" },
        },
        "timeout_ms": 20_000,
        "steps": [{ "op": "list_tools" }],
    });
    let run = python.run_driver(&plan, Duration::from_secs(60)).await?;
    assert!(!run.ok(), "{}", run.result);
    assert_eq!(run.exit_code, Some(1));
    assert_eq!(
        run.result["error"]["type"], "ConnectError",
        "{}",
        run.result
    );
    let report = run.failure_report();
    assert!(report.contains("ConnectError"), "{report}");

    let plan = json!({
        "transport": { "type": "stdio", "command": "sh", "args": ["-c", "echo no-mcp-here >&2"] },
        "timeout_ms": 20_000,
    });
    let run = python.run_driver(&plan, Duration::from_secs(60)).await?;
    assert!(!run.ok(), "{}", run.result);
    assert_eq!(run.steps()[0]["op"], "initialize", "{}", run.result);
    assert_eq!(
        run.result["server_stderr"], "no-mcp-here\n",
        "{}",
        run.result
    );
    Ok(())
}

#[tokio::test]
async fn conformance_suite_lists_its_scenarios_and_reports_a_dead_server() -> anyhow::Result<()> {
    let suite = tokio::task::spawn_blocking(ConformanceSuite::ensure).await??;

    let scenarios = suite.list_server_scenarios().await?;
    for name in [
        "server-initialize",
        "tools-list",
        "tools-call-with-progress",
    ] {
        assert!(
            scenarios.iter().any(|s| s.name == name),
            "{name} missing from {scenarios:?}"
        );
    }
    let modern = suite.server_requirements("2026-07-28").await?;
    assert!(
        modern.required.iter().any(|s| s == "server-stateless"),
        "{modern:?}"
    );
    assert!(
        modern.not_scored.iter().any(|(_, why)| why == "extension"),
        "{modern:?}"
    );

    let url = dead_url();
    let opts = ServerRunOptions::scenarios(["ping", "tools-list"]).bearer("not-a-real-token");
    let report = suite.run_server_scenarios(&url, &opts).await?;
    assert_eq!(report.runs.len(), 2, "one CLI run per scenario");
    for name in ["ping", "tools-list"] {
        let scenario = report
            .scenario(name)
            .unwrap_or_else(|| panic!("{name} missing:\n{}", report.summary()));
        assert!(!scenario.passed(), "{}", report.summary());
    }
    let err = report.ensure_passed(&[]).unwrap_err().to_string();
    assert!(err.contains("ping:"), "{err}");
    assert!(report.ensure_passed(&["ping", "tools-list"]).is_ok());
    assert!(report.summary().contains(CONFORMANCE_VERSION));
    Ok(())
}
