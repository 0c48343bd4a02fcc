//! The side panel end to end: headless Chromium runs the built extension, its side-panel
//! page is opened (as a tab: a headless browser has no side panel to show it in) and driven
//! with real key events over CDP, the fixture page `lane.html` is served on 127.0.0.1, and
//! an agent works through the server's debug route.
//!
//! Covered: the panel shows the link and the agent's lane with its MCP client; the person
//! types commands (Enter, Tab completion of commands and names, ↑ history, Ctrl+C stopping
//! a long wait, Ctrl+L) that the WASM kernel runs in the person's own lane; the panel's
//! Close button closes the agent's lane, whose next line is refused; the options page
//! counts the lanes; nothing is left (tabs and tab groups counted before and after).

use std::time::Duration;

use domshell_tests::chromium::CdpClient;
use domshell_tests::{eventually, Chromium, PageRig};
use serde_json::{json, Value};

const PANEL: &str = "extension/static/sidepanel.html";

fn extension_page(path: &str) -> String {
    format!(
        "chrome-extension://{}/{path}",
        shared_protocol::EXTENSION_ID
    )
}

/// Tab and tab-group counts of the whole browser.
async fn census(chromium: &Chromium) -> (usize, usize) {
    let js = "Promise.all([chrome.tabs.query({}), chrome.tabGroups.query({})]).then(([t, g]) => [t.length, g.length])";
    let v = chromium
        .evaluate_in_worker(js)
        .await
        .expect("the worker answers");
    (
        v[0].as_u64().unwrap_or(0) as usize,
        v[1].as_u64().unwrap_or(0) as usize,
    )
}

/// The panel page, driven like a keyboard would.
struct Panel {
    cdp: CdpClient,
}

impl Panel {
    async fn eval(&mut self, js: &str) -> Value {
        self.cdp.evaluate(js).await.expect("the panel answers")
    }

    async fn key(&mut self, key: &str, code: &str, vk: u32, modifiers: u32, text: &str) {
        for kind in ["keyDown", "keyUp"] {
            let mut params = json!({"type": kind, "key": key, "code": code,
                "windowsVirtualKeyCode": vk, "modifiers": modifiers});
            if kind == "keyDown" && !text.is_empty() {
                params["text"] = json!(text);
            }
            self.cdp
                .send("Input.dispatchKeyEvent", params)
                .await
                .expect("a key event");
        }
    }

    /// Types `text` into the prompt (appending to what is there).
    async fn type_text(&mut self, text: &str) {
        self.eval("document.getElementById('line').focus(); true")
            .await;
        self.cdp
            .send("Input.insertText", json!({"text": text}))
            .await
            .expect("text typed");
    }

    async fn enter(&mut self) {
        self.key("Enter", "Enter", 13, 0, "\r").await;
    }

    async fn tab(&mut self) {
        self.key("Tab", "Tab", 9, 0, "").await;
    }

    async fn input(&mut self) -> String {
        self.eval("document.getElementById('line').value")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn output(&mut self) -> String {
        self.eval("document.getElementById('out').textContent")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The output once it holds `needle` (within `secs`).
    async fn output_with(&mut self, needle: &str, secs: u64) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let out = self.output().await;
            if out.contains(needle) {
                return out;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the panel never showed {needle:?}; it shows:\n{out}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types `line`, presses Enter, and returns the output once `needle` is in it.
    async fn run(&mut self, line: &str, needle: &str) -> String {
        self.type_text(line).await;
        self.enter().await;
        self.output_with(needle, 20).await
    }

    /// The lane list's text once it holds `needle`.
    /// Waits (10 s at most) until the prompt shows `needle`: a command has finished when
    /// the prompt shows where it left the session.
    async fn prompt_with(&mut self, needle: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let prompt = self
                .eval("document.getElementById('prompt').textContent")
                .await;
            if prompt.as_str().unwrap_or_default().contains(needle) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the prompt never showed {needle:?}: {prompt}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn lanes_with(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = self
                .eval("document.getElementById('lanes').textContent")
                .await
                .as_str()
                .unwrap_or_default()
                .to_string();
            if text.contains(needle) {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the lane list never showed {needle:?}: {text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Waits (5 s at most) until the prompt's text is `expected`: Tab completes asynchronously.
async fn line_becomes(target: &domshell_tests::chromium::Target, expected: &str) {
    eventually(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async {
            let value = domshell_tests::chromium::evaluate_in_target(
                target,
                "document.getElementById('line').value",
            )
            .await?;
            anyhow::ensure!(value == expected, "{value}");
            Ok(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("Tab did not complete to {expected:?}: {e:#}"));
}

async fn debug(rig: &PageRig, body: Value) -> Value {
    let (status, body) = rig
        .server
        .execute_body(body)
        .await
        .expect("the debug route answers");
    assert_eq!(status, 200, "{body}");
    eprintln!("{body:#}");
    body
}

#[tokio::test]
async fn the_side_panel_drives_a_lane_of_its_own_and_closes_an_agents() {
    let rig = PageRig::start_with_args(1_000, &["--transport", "http"]).await;
    let before = census(&rig.chromium).await;
    let url = format!("{}/lane.html", rig.base);

    // An agent mints a lane.
    let minted = debug(
        &rig,
        json!({"session": "agent", "command": "click count_btn", "group_id": "new",
               "group_name": "helper", "initial_url": url}),
    )
    .await;
    assert_eq!(minted["ok"], true, "{minted}");
    let agent_lane = minted["lane"].as_str().unwrap_or_default().to_string();

    // The options page counts it.
    let options = rig
        .chromium
        .open_page(&extension_page("extension/static/options.html"))
        .await
        .expect("the options page");
    eventually(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            let figures = domshell_tests::chromium::evaluate_in_target(
                &options,
                "document.getElementById('figures').textContent",
            )
            .await?;
            anyhow::ensure!(
                figures.as_str().unwrap_or("").contains("1 lane open"),
                "{figures}"
            );
            Ok(())
        },
    )
    .await
    .expect("the options page shows the lane count");
    rig.chromium
        .close_target(&options.id)
        .await
        .expect("the options page closes");

    // The panel shows the link and the agent's lane with its client.
    let target = rig
        .chromium
        .open_page(&extension_page(PANEL))
        .await
        .expect("the side panel page");
    let mut panel = Panel {
        cdp: CdpClient::connect(&target.ws_url)
            .await
            .expect("CDP to the panel"),
    };
    eventually(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            let state = domshell_tests::chromium::evaluate_in_target(
                &target,
                "document.getElementById('link').dataset.state",
            )
            .await?;
            anyhow::ensure!(state == "connected", "{state}");
            Ok(())
        },
    )
    .await
    .expect("the panel shows the link");
    let lanes = panel.lanes_with("debug-api").await;
    assert!(
        lanes.contains(&format!("lane {agent_lane} · 1 tab(s) · 1 session(s)"))
            && lanes.contains("🐚 helper")
            && lanes.contains("last: click"),
        "{lanes}"
    );

    // The person makes a lane of their own and works in it.
    let out = panel
        .run(&format!("group new --url {url} mine"), "✓ New lane")
        .await;
    assert!(out.contains("(🐚 mine)"), "{out}");
    let prompt = panel
        .eval("document.getElementById('prompt').textContent")
        .await;
    assert!(
        prompt.as_str().unwrap_or("").starts_with("~/tabs/"),
        "{prompt}"
    );
    panel.run("click count_btn", "✓ Clicked: count_btn").await;
    // Tab completes a command, then a name on the page.
    panel.type_text("cli").await;
    panel.tab().await;
    line_becomes(&target, "click ").await;
    // A directory completes with its slash, then a name inside it.
    panel
        .eval("document.getElementById('line').value = ''; true")
        .await;
    panel.type_text("cd ma").await;
    panel.tab().await;
    line_becomes(&target, "cd main/").await;
    panel.enter().await;
    panel.output_with("$ cd main/", 10).await;
    // The echo comes before the answer: completing now would list the tab's root.
    panel.prompt_with("/main").await;
    panel.type_text("click cou").await;
    panel.tab().await;
    line_becomes(&target, "click count_btn ").await;
    panel.enter().await;
    // The reply ends with what the click changed: the counter's text.
    panel
        .output_with("✓ Clicked: count_btn (button)\n", 10)
        .await;
    panel.output_with("+ clicked_2 (paragraph)", 10).await;
    panel.prompt_with("/main").await;
    panel.run("text", "clicked 2").await;
    // `sleep` really waits in the worker.
    panel.run("sleep 0.2", "slept 200 ms").await;
    // ↑ brings the earlier lines back.
    panel.key("ArrowUp", "ArrowUp", 38, 0, "").await;
    assert_eq!(panel.input().await, "sleep 0.2");
    panel.key("ArrowUp", "ArrowUp", 38, 0, "").await;
    assert_eq!(panel.input().await, "text");
    panel.key("ArrowUp", "ArrowUp", 38, 0, "").await;
    assert_eq!(panel.input().await, "click count_btn");
    panel
        .eval("document.getElementById('line').value = ''; true")
        .await;
    // Its own lane is listed as the person's.
    panel.lanes_with("🐚 mine · person (yours)").await;

    // Ctrl+C stops a long wait at once.
    panel.type_text("wait no_such_thing --timeout 30").await;
    panel.enter().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    panel.key("c", "KeyC", 67, 2, "").await;
    panel.output_with("cancelled", 5).await;
    eprintln!("Ctrl+C answered after {:?}", started.elapsed());

    // Ctrl+L clears the screen.
    panel.key("l", "KeyL", 76, 2, "").await;
    assert_eq!(panel.output().await, "");

    // The Close button stops the agent's lane; the agent's next line is refused.
    panel
        .eval(&format!(
            "document.querySelector('#lanes li[data-lane=\"{agent_lane}\"] button').click(); true"
        ))
        .await;
    panel
        .output_with(&format!("✓ Closed lane {agent_lane} and its 1 tab(s)"), 10)
        .await;
    let refused = debug(&rig, json!({"session": "agent", "command": "tabs"})).await;
    assert!(
        refused["output"]
            .as_str()
            .unwrap_or_default()
            .contains("was closed, so nothing was done"),
        "{refused}"
    );

    // The person closes their own lane; the panel's tab goes; nothing is left.
    panel.run("group close", "✓ Closed lane").await;
    rig.chromium
        .close_target(&target.id)
        .await
        .expect("the panel closes");
    eventually(
        Duration::from_secs(10),
        Duration::from_millis(200),
        || async {
            let now = census(&rig.chromium).await;
            anyhow::ensure!(now == before, "{now:?}, before {before:?}");
            Ok(())
        },
    )
    .await
    .expect("exactly the tabs there were, and no group");
}
