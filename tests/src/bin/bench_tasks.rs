//! `cargo xtask bench-tasks [--no-peer] [--no-playwright] [--peer-extension DIR] [--peer-dir DIR]`:
//! what agents' tasks cost with each tool, in calls and in characters returned, with every
//! answer checked. Tools: domshell (release server, built extension, headless Chromium),
//! DOMShell 2.0.10 (its npm server and built extension, as `bench-shell` runs it) and Playwright
//! MCP (`@playwright/mcp` from npm, over stdio, on the same Chromium build), each through a real
//! MCP client (rmcp).
//!
//! The sites are replicas written for it (`domshell_tests::replica_sites`), served on
//! 127.0.0.1. Each tool runs a scripted plan per task: the fewest calls its documented
//! commands allow, reading only what the task needs, and taking names, paths and refs only from
//! what earlier replies showed (the plans are written out in the README). A task is correct
//! when the plan ran and everything the tool returned holds each fact of the answer. It prints,
//! per task and tool, calls, characters returned and correct or not, plus the fixed cost of
//! `initialize` and `tools/list`. It judges no figure: a failing peer is shown, not fatal;
//! domshell failing a task is an error.
//!
//! It must not talk to anything but 127.0.0.1 (the npm installs aside), and every process it
//! starts stops with it.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use domshell_tests::chromium::chromium_binary;
use domshell_tests::mcp_client::{self, Client};
use domshell_tests::shell_rig::{self, Rig, CALL_BOUND};
use domshell_tests::{domshell_peer as peer, playwright_peer, replica_sites, strip_ansi};
use rmcp::model::{CallToolRequestParams, JsonObject};
use serde_json::{json, Value};

/// One task: what it asks, and the facts its answer must hold.
struct Task {
    name: &'static str,
    asks: &'static str,
    facts: &'static [&'static str],
}

const TASKS: [Task; 5] = [
    Task {
        name: "article",
        asks: "the encyclopedia article Comet: its lead and the lead's first three links",
        facts: &["warms and begins to release gases", "icy", "small Solar System body", "Sun"],
    },
    Task {
        name: "search",
        asks: "search the encyclopedia for Oort cloud, open the first result, read its lead and See also",
        facts: &[
            "proposed to surround the",
            "Detached object",
            "Sednoid",
            "List of possible dwarf planets",
        ],
    },
    Task {
        name: "table",
        asks: "the table of language models (model, organisation), then the first model's article",
        facts: &["North Lab", "South Lab", "West Institute", "Epsilon", "known for its small memory footprint"],
    },
    Task {
        name: "news",
        asks: "the titles on the aggregator's first two pages, then the first story's top comment",
        facts: &[
            "Comet seen over the bay",
            "Satellites and the night sky",
            "Solar sails, explained",
            "Where the Voyagers are now",
            "The tail pointed away from the Sun, as predicted.",
        ],
    },
    Task {
        name: "form",
        asks: "sign up as Ada Lovelace, ada@example.org, on the Pro plan, accepting the terms",
        facts: &["Welcome, Ada Lovelace!", "Your Pro plan is ready", "ada@example.org", "You accepted the terms."],
    },
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    Domshell,
    DomShell2010,
    Playwright,
}

impl Tool {
    fn label(self) -> &'static str {
        match self {
            Tool::Domshell => "domshell",
            Tool::DomShell2010 => "DOMShell 2.0.10",
            Tool::Playwright => "Playwright MCP",
        }
    }
}

/// One task run by one tool: its calls, what they returned, and whether the answer is there.
#[derive(Default)]
struct Outcome {
    calls: usize,
    chars: usize,
    transcript: String,
    failure: Option<String>,
}

impl Outcome {
    fn correct(&self, task: &Task) -> bool {
        self.failure.is_none() && task.facts.iter().all(|f| self.transcript.contains(f))
    }

    fn missing(&self, task: &Task) -> Vec<&'static str> {
        task.facts
            .iter()
            .copied()
            .filter(|f| !self.transcript.contains(f))
            .collect()
    }
}

/// A tool's MCP session as a plan drives it, counting what it returns.
struct Driver<'a> {
    client: &'a Client,
    group_id: Option<&'static str>,
    outcome: Outcome,
}

impl Driver<'_> {
    /// One `tools/call`; the text it returned (an error reply is text the agent reads too,
    /// and fails the plan).
    async fn call(&mut self, tool: &str, arguments: Value) -> Result<String> {
        let arguments: JsonObject = match arguments {
            Value::Object(map) => map,
            _ => bail!("arguments must be an object"),
        };
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        let result = tokio::time::timeout(CALL_BOUND, self.client.peer().call_tool(params))
            .await
            .with_context(|| format!("{tool}: no reply within {CALL_BOUND:?}"))?
            .with_context(|| format!("tools/call {tool}"))?;
        let text = strip_ansi(&mcp_client::text_of(&result));
        self.outcome.calls += 1;
        self.outcome.chars += text.chars().count();
        self.outcome.transcript.push_str(&text);
        self.outcome.transcript.push('\n');
        if result.is_error == Some(true) {
            bail!("{tool} failed: {text:.300}");
        }
        Ok(text)
    }

    /// `domshell_execute` with these lines (both shells run several lines per call).
    async fn sh(&mut self, lines: &str) -> Result<String> {
        let mut arguments = json!({ "command": lines });
        if let Some(group) = self.group_id {
            arguments["group_id"] = json!(group);
        }
        self.call("domshell_execute", arguments).await
    }
}

/// domshell's plans: several lines per call, actions that wait for the page they lead to, bare
/// names found below the current directory, `text` of what is needed.
async fn plan_domshell(task: &str, d: &mut Driver<'_>, base: &str) -> Result<()> {
    match task {
        "article" => {
            d.sh(&format!(
                "open {base}/wiki/Comet\ntext main -n 600\nextract_links main -n 3"
            ))
            .await?;
        }
        "search" => {
            let found = d
                .sh(&format!(
                    "open {base}/wiki/Main_Page\nfind --type searchbox"
                ))
                .await?;
            let field = shell_rig::first_path(&found, "[x]")?;
            let found = d
                .sh(&format!(
                    "submit {field} \"Oort cloud\"\nfind oort --type link -n 1"
                ))
                .await?;
            let result = shell_rig::first_path(&found, "[x]")?;
            let listed = d.sh(&format!("click {result}\nls main")).await?;
            let see_also = after_line(&listed, "see_also_heading")?;
            d.sh(&format!("text main -n 520\ntext main/{see_also}"))
                .await?;
        }
        "table" => {
            let found = d
                .sh(&format!("open {base}/models\nfind --type table"))
                .await?;
            let table = shell_rig::first_path(&found, "[d]")?;
            d.sh(&format!(
                "extract_table {table}\nclick alpha_link --quiet\ntext main -n 300"
            ))
            .await?;
        }
        "news" => {
            d.sh(&format!("open {base}/news\ntext")).await?;
            d.sh("click more_link --quiet\ntext").await?;
            d.sh("back\nclick 45_comments_link --quiet\ntext -n 300")
                .await?;
        }
        "form" => {
            let found = d
                .sh(&format!(
                    "open {base}/signup\nfind --type input\nfind --type checkbox\nfind --type button"
                ))
                .await?;
            // Each field sits in a paragraph named after its label: `full_name/input`.
            let fields = paths_of(&found);
            let [name, email, plan, terms, button] = pick(
                &fields,
                [
                    "full_name/input",
                    "email/input",
                    "plan/select",
                    "/chk",
                    "create_account_btn",
                ],
            )?;
            d.sh(&format!(
                "focus {name}\ntype Ada Lovelace\nfocus {email}\ntype ada@example.org\nselect {plan} Pro --quiet\nclick {terms} --quiet\nclick {button} --quiet\ntext main"
            ))
            .await?;
        }
        other => bail!("no plan for {other}"),
    }
    Ok(())
}

/// DOMShell 2.0.10's plans: its commands resolve a path segment by exact name in one
/// directory, its unnamed containers are named by node id (so `ls` first), `text` needs an
/// element (the page root has none), it has no `back`, `wait` or `select` (a drop-down is
/// focused and typed into), and a click does not wait for the page it leads to: what
/// follows a navigation goes in the next call, and a search that finds nothing on a page
/// still loading is asked again (at most twice).
async fn plan_domshell_2010(task: &str, d: &mut Driver<'_>, base: &str) -> Result<()> {
    match task {
        "article" => {
            let listed = d.sh(&format!("open {base}/wiki/Comet\nls")).await?;
            let main = shell_rig::main_dir(&listed)?;
            d.sh(&format!("text {main} -n 600\nextract_links {main} -n 3"))
                .await?;
        }
        "search" => {
            let found = d
                .sh(&format!(
                    "open {base}/wiki/Main_Page\nfind --type searchbox"
                ))
                .await?;
            let field = shell_rig::first_path(&found, "[x]")?;
            d.sh(&format!("submit {field} \"Oort cloud\"")).await?;
            let result = again_until(d, "find oort --type link -n 1", |out| {
                shell_rig::first_path(out, "[x]")
            })
            .await?;
            d.sh(&format!("click {result}")).await?;
            let main = again_until(d, "ls", shell_rig::main_dir).await?;
            let inside = d.sh(&format!("cd {main}\nls")).await?;
            let see_also = after_line(&inside, "see_also_heading")?;
            d.sh(&format!("text -n 520\ntext {see_also}")).await?;
        }
        "table" => {
            let found = d
                .sh(&format!("open {base}/models\nfind --type table"))
                .await?;
            let table = shell_rig::first_path(&found, "[d]")?;
            let found = d
                .sh(&format!(
                    "extract_table {table}\nfind alpha --type link -n 1"
                ))
                .await?;
            let link = shell_rig::first_path(&found, "[x]")?;
            d.sh(&format!("click {link}")).await?;
            let main = again_until(d, "ls", shell_rig::main_dir).await?;
            d.sh(&format!("text {main} -n 300")).await?;
        }
        "news" => {
            // No landmark: the page's text is that of its outermost table.
            let listed = d.sh(&format!("open {base}/news\nls")).await?;
            let top = first_dir(&listed)?;
            let found = d
                .sh(&format!("text {top}\nfind 45_comments --type link -n 1"))
                .await?;
            let comments = shell_rig::first_path(&found, "[x]")?;
            d.sh(&format!("click {comments}")).await?;
            let top = again_until(d, "ls", first_dir).await?;
            d.sh(&format!("text {top}")).await?;
            d.sh(&format!("navigate {base}/news")).await?;
            let more = again_until(d, "find more --type link -n 1", |out| {
                shell_rig::first_path(out, "[x]")
            })
            .await?;
            d.sh(&format!("click {more}")).await?;
            let top = again_until(d, "ls", first_dir).await?;
            d.sh(&format!("text {top}")).await?;
        }
        "form" => {
            let found = d
                .sh(&format!(
                    "open {base}/signup\nfind --type textbox\nfind --type combobox\nfind --type checkbox\nfind --type button"
                ))
                .await?;
            let fields = paths_of(&found);
            let [name, email, plan, terms, button] = pick(
                &fields,
                [
                    "full_name_input",
                    "email_input",
                    "plan_select",
                    "_chk",
                    "create_account_btn",
                ],
            )?;
            d.sh(&format!(
                "focus {name}\ntype Ada Lovelace\nfocus {email}\ntype ada@example.org\nfocus {plan}\ntype Pro\nclick {terms}\nclick {button}"
            ))
            .await?;
            let main = again_until(d, "ls", shell_rig::main_dir).await?;
            d.sh(&format!("text {main}")).await?;
        }
        other => bail!("no plan for {other}"),
    }
    Ok(())
}

/// Runs `line` until `read` finds what it needs in the reply (a page may still be loading
/// after a click that did not wait for it), at most three times.
async fn again_until(
    d: &mut Driver<'_>,
    line: &str,
    read: impl Fn(&str) -> Result<String>,
) -> Result<String> {
    let mut last = None;
    for _ in 0..3 {
        let out = d.sh(line).await?;
        match read(&out) {
            Ok(found) => return Ok(found),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("`{line}` found nothing")))
}

/// The first directory of a listing.
fn first_dir(listing: &str) -> Result<String> {
    listing
        .lines()
        .map(str::trim)
        .find(|l| l.ends_with('/'))
        .map(|l| l.trim_end_matches('/').to_string())
        .with_context(|| format!("no directory in {listing:.300}"))
}

/// Playwright MCP's plans: a navigation or an action saves the page's snapshot to a file and
/// replies with a short summary, `browser_snapshot` returns the snapshot, and elements are
/// addressed by the refs a snapshot showed.
async fn plan_playwright(
    task: &str,
    d: &mut Driver<'_>,
    base: &str,
    fill_form: bool,
) -> Result<()> {
    let navigate = |url: String| json!({ "url": url });
    let snapshot = json!({});
    match task {
        "article" => {
            d.call("browser_navigate", navigate(format!("{base}/wiki/Comet")))
                .await?;
            d.call("browser_snapshot", snapshot.clone()).await?;
        }
        "search" => {
            d.call(
                "browser_navigate",
                navigate(format!("{base}/wiki/Main_Page")),
            )
            .await?;
            let page = d.call("browser_snapshot", snapshot.clone()).await?;
            let search = ref_of(&page, "searchbox", "Search Open Encyclopedia")?;
            d.call(
                "browser_type",
                json!({"element": "Search Open Encyclopedia", "target": search, "text": "Oort cloud", "submit": true}),
            )
            .await?;
            let page = d.call("browser_snapshot", snapshot.clone()).await?;
            let result = ref_of(&page, "link", "Oort cloud")?;
            d.call(
                "browser_click",
                json!({"element": "Oort cloud", "target": result}),
            )
            .await?;
            d.call("browser_snapshot", snapshot.clone()).await?;
        }
        "table" => {
            d.call("browser_navigate", navigate(format!("{base}/models")))
                .await?;
            let page = d.call("browser_snapshot", snapshot.clone()).await?;
            let alpha = ref_of(&page, "link", "Alpha")?;
            d.call(
                "browser_click",
                json!({"element": "Alpha", "target": alpha}),
            )
            .await?;
            d.call("browser_snapshot", snapshot.clone()).await?;
        }
        "news" => {
            d.call("browser_navigate", navigate(format!("{base}/news")))
                .await?;
            let page = d.call("browser_snapshot", snapshot.clone()).await?;
            let more = ref_of(&page, "link", "More")?;
            d.call("browser_click", json!({"element": "More", "target": more}))
                .await?;
            d.call("browser_snapshot", snapshot.clone()).await?;
            // The first page's snapshot showed the thread's address (`/url: /item?id=1`).
            d.call("browser_navigate", navigate(format!("{base}/item?id=1")))
                .await?;
            d.call("browser_snapshot", snapshot.clone()).await?;
        }
        "form" => {
            d.call("browser_navigate", navigate(format!("{base}/signup")))
                .await?;
            let page = d.call("browser_snapshot", snapshot.clone()).await?;
            let name = ref_of(&page, "textbox", "Full name")?;
            let email = ref_of(&page, "textbox", "Email")?;
            let plan = ref_of(&page, "combobox", "Plan")?;
            let terms = ref_of(&page, "checkbox", "I accept the terms")?;
            let button = ref_of(&page, "button", "Create account")?;
            if fill_form {
                d.call(
                    "browser_fill_form",
                    json!({"fields": [
                        {"name": "Full name", "type": "textbox", "target": name, "value": "Ada Lovelace"},
                        {"name": "Email", "type": "textbox", "target": email, "value": "ada@example.org"},
                        {"name": "Plan", "type": "combobox", "target": plan, "value": "Pro"},
                        {"name": "I accept the terms", "type": "checkbox", "target": terms, "value": "true"}
                    ]}),
                )
                .await?;
            } else {
                d.call(
                    "browser_type",
                    json!({"element": "Full name", "target": name, "text": "Ada Lovelace"}),
                )
                .await?;
                d.call(
                    "browser_type",
                    json!({"element": "Email", "target": email, "text": "ada@example.org"}),
                )
                .await?;
                d.call(
                    "browser_select_option",
                    json!({"element": "Plan", "target": plan, "values": ["Pro"]}),
                )
                .await?;
                d.call(
                    "browser_click",
                    json!({"element": "I accept the terms", "target": terms}),
                )
                .await?;
            }
            d.call(
                "browser_click",
                json!({"element": "Create account", "target": button}),
            )
            .await?;
            d.call("browser_snapshot", snapshot.clone()).await?;
        }
        other => bail!("no plan for {other}"),
    }
    Ok(())
}

/// The entry listed after `name` in an `ls` (the list a heading introduces).
fn after_line(listing: &str, name: &str) -> Result<String> {
    let mut lines = listing.lines().map(str::trim);
    lines
        .by_ref()
        .find(|l| l.split_whitespace().next().map(|w| w.trim_end_matches('/')) == Some(name))
        .with_context(|| format!("no {name} in {listing:.400}"))?;
    lines
        .next()
        .and_then(|l| l.split_whitespace().next())
        .map(|l| l.trim_end_matches('/').to_string())
        .with_context(|| format!("nothing after {name} in {listing:.400}"))
}

/// The paths of every `[x]` result line.
fn paths_of(found: &str) -> Vec<String> {
    found
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("[x]"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(str::to_string)
        .collect()
}

/// For each ending, the first path that ends with it.
fn pick<const N: usize>(paths: &[String], endings: [&str; N]) -> Result<[String; N]> {
    let mut out: [String; N] = std::array::from_fn(|_| String::new());
    for (slot, ending) in out.iter_mut().zip(endings) {
        *slot = paths
            .iter()
            .find(|p| p.ends_with(ending))
            .cloned()
            .with_context(|| format!("no path ending in {ending} among {paths:?}"))?;
    }
    Ok(out)
}

/// The ref of the element a Playwright snapshot shows as `- role "name" [ref=e12]`.
fn ref_of(snapshot: &str, role: &str, name: &str) -> Result<String> {
    let wanted = format!("{role} \"{name}\"");
    snapshot
        .lines()
        .filter(|l| l.contains(&wanted))
        .find_map(|l| {
            let start = l.find("[ref=")? + "[ref=".len();
            let end = l[start..].find(']')? + start;
            Some(l[start..end].to_string())
        })
        .with_context(|| format!("no {wanted} with a ref in the snapshot {snapshot:.400}"))
}

/// What `initialize` and `tools/list` cost a host before any task: their JSON, in characters.
/// Also the tools' names, which pick a plan's variant.
async fn fixed_cost(client: &Client) -> Result<((usize, usize), Vec<String>)> {
    let info = client.peer_info().context("no initialize result")?;
    let initialize = serde_json::to_string(&*info)?.chars().count();
    let tools = client.peer().list_all_tools().await.context("tools/list")?;
    let listed = serde_json::to_string(&tools)?.chars().count();
    let names = tools.iter().map(|t| t.name.to_string()).collect();
    Ok(((initialize, listed), names))
}

/// One tool's results: the fixed cost and each task's outcome.
struct Run {
    tool: Tool,
    fixed: (usize, usize),
    outcomes: Vec<Outcome>,
}

async fn run_tasks(
    tool: Tool,
    client: &Client,
    group_id: Option<&'static str>,
    base: &str,
) -> Result<Run> {
    let (fixed, tools) = fixed_cost(client).await?;
    let fill_form = tools.iter().any(|t| t == "browser_fill_form");
    let mut outcomes = Vec::new();
    for task in &TASKS {
        eprintln!("bench-tasks: {} on {}…", tool.label(), task.name);
        let mut d = Driver {
            client,
            group_id,
            outcome: Outcome::default(),
        };
        let result = match tool {
            Tool::Domshell => plan_domshell(task.name, &mut d, base).await,
            Tool::DomShell2010 => plan_domshell_2010(task.name, &mut d, base).await,
            Tool::Playwright => plan_playwright(task.name, &mut d, base, fill_form).await,
        };
        let mut outcome = d.outcome;
        if let Err(e) = result {
            outcome.failure = Some(format!("{e:#}"));
        }
        if !outcome.correct(task) {
            let why = outcome
                .failure
                .clone()
                .unwrap_or_else(|| format!("missing {:?}", outcome.missing(task)));
            if tool == Tool::Domshell {
                bail!(
                    "domshell got task {} wrong: {why}\n{}",
                    task.name,
                    outcome.transcript
                );
            }
            eprintln!(
                "bench-tasks: {} got {} wrong: {why:.500}",
                tool.label(),
                task.name
            );
        }
        outcomes.push(outcome);
    }
    Ok(Run {
        tool,
        fixed,
        outcomes,
    })
}

struct Options {
    /// Where each tool's replies per task are written (`<tool>-<task>.txt`), when given.
    transcripts: Option<PathBuf>,
    peer_extension: Option<PathBuf>,
    peer_dir: Option<PathBuf>,
    peer_missing: Option<String>,
    playwright: bool,
}

const USAGE: &str =
    "usage: bench-tasks [--no-peer] [--no-playwright] [--peer-extension DIR] [--peer-dir NPM_PREFIX] [--transcripts DIR]";

fn parse_args() -> Result<Options> {
    let mut peer = shell_rig::PeerArgs::default();
    let mut playwright = true;
    let mut transcripts = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if peer.take(&arg, &mut args)? {
            continue;
        }
        match arg.as_str() {
            "--no-playwright" => playwright = false,
            "--transcripts" => {
                transcripts = Some(PathBuf::from(
                    args.next().context("--transcripts needs a directory")?,
                ))
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    let (peer_extension, peer_missing) = peer.extension()?;
    Ok(Options {
        transcripts,
        peer_extension,
        peer_dir: peer.dir,
        peer_missing,
        playwright,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    tokio::select! {
        result = bench() => result,
        _ = domshell_tests::process::interrupted() => bail!("interrupted; every process started was stopped"),
    }
}

async fn bench() -> Result<()> {
    let opts = parse_args()?;
    let addr = domshell_tests::html_server::serve("127.0.0.1", |target| {
        replica_sites::page(target).map(String::into_bytes)
    })
    .await?;
    let base = format!("http://{addr}");
    // Installed before anything runs, so a failing npm costs no browser time.
    let install = match &opts.peer_extension {
        Some(_) => Some(peer::Install::get(opts.peer_dir.clone()).await?),
        None => None,
    };
    let playwright = if opts.playwright {
        Some(playwright_peer::Install::get().await?)
    } else {
        None
    };

    let mut runs = Vec::new();
    {
        let rig = Rig::ours().await?;
        runs.push(run_tasks(Tool::Domshell, &rig.client, rig.group_id, &base).await?);
    }
    if let (Some(extension), Some(install)) = (&opts.peer_extension, &install) {
        let run_dir = tempfile::Builder::new()
            .prefix("domshell-bench-tasks-")
            .tempdir()
            .context("creating a temp dir for DOMShell's audit log")?;
        let rig = Rig::peer(install, extension, run_dir.path()).await?;
        runs.push(run_tasks(Tool::DomShell2010, &rig.client, rig.group_id, &base).await?);
    }
    if let Some(install) = &playwright {
        let server = playwright_peer::Server::start(install, &chromium_binary()?).await?;
        runs.push(run_tasks(Tool::Playwright, &server.client, None, &base).await?);
    }

    if let Some(dir) = &opts.transcripts {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for run in &runs {
            for (task, outcome) in TASKS.iter().zip(&run.outcomes) {
                let file = dir.join(format!(
                    "{}-{}.txt",
                    run.tool.label().replace([' ', '.'], "_"),
                    task.name
                ));
                let failure = outcome.failure.as_deref().unwrap_or("");
                std::fs::write(&file, format!("{}\n{failure}\n", outcome.transcript))
                    .with_context(|| format!("writing {}", file.display()))?;
            }
        }
    }
    println!();
    println!("bench-tasks: replica sites on 127.0.0.1; every call a tools/call through rmcp; characters are those of the text the tool returned");
    if let Some(install) = &playwright {
        println!(
            "Playwright MCP: {} {} (playwright {}), headless on {}",
            playwright_peer::PACKAGE,
            playwright_peer::VERSION,
            install
                .version_of("playwright")
                .unwrap_or_else(|| "?".into()),
            chromium_binary()?.display()
        );
    }
    if let Some(looked) = &opts.peer_missing {
        println!("DOMShell: not run (no built extension at {looked}; pass --peer-extension DIR)");
    }
    print!("| task |");
    for run in &runs {
        print!(" {} calls | chars | ok |", run.tool.label());
    }
    println!();
    print!("| --- |");
    for _ in &runs {
        print!(" ---: | ---: | :-: |");
    }
    println!();
    for (i, task) in TASKS.iter().enumerate() {
        print!("| {} |", task.name);
        for run in &runs {
            let o = &run.outcomes[i];
            print!(
                " {} | {} | {} |",
                o.calls,
                o.chars,
                if o.correct(task) { "yes" } else { "no" }
            );
        }
        println!();
    }
    print!("| all tasks |");
    for run in &runs {
        let calls: usize = run.outcomes.iter().map(|o| o.calls).sum();
        let chars: usize = run.outcomes.iter().map(|o| o.chars).sum();
        let correct = TASKS
            .iter()
            .zip(&run.outcomes)
            .filter(|(t, o)| o.correct(t))
            .count();
        print!(" {calls} | {chars} | {correct}/{} |", TASKS.len());
    }
    println!();
    print!("| `initialize` + `tools/list` |");
    for run in &runs {
        print!(" | {} + {} | |", run.fixed.0, run.fixed.1);
    }
    println!();
    let total = |tool: Tool| {
        runs.iter()
            .find(|r| r.tool == tool)
            .map(|r| r.outcomes.iter().map(|o| o.chars).sum::<usize>())
    };
    if let Some(ours) = total(Tool::Domshell) {
        for other in [Tool::DomShell2010, Tool::Playwright] {
            if let Some(theirs) = total(other).filter(|t| *t > 0) {
                println!(
                    "domshell ÷ {}: {:.2}× the characters",
                    other.label(),
                    ours as f64 / theirs as f64
                );
            }
        }
    }
    for task in &TASKS {
        println!(
            "- {}: {} (answer holds {:?})",
            task.name, task.asks, task.facts
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_read_what_replies_show() {
        let listing =
            "comet_heading\r\ncomet/\r\nsee_also_heading\r\nlist_4/\r\nreferences_heading";
        assert_eq!(after_line(listing, "see_also_heading").unwrap(), "list_4");
        assert!(after_line(listing, "nothing").is_err());
        let found =
            "[x] main/full_name_input (textbox)\r\n[x] main/email_input (textbox)\r\nNo matches";
        assert_eq!(
            paths_of(found),
            ["main/full_name_input", "main/email_input"]
        );
        let [name] = pick(&paths_of(found), ["name_input"]).unwrap();
        assert_eq!(name, "main/full_name_input");
        assert!(pick(&paths_of(found), ["_chk"]).is_err());
        let snapshot = "- searchbox \"Search Open Encyclopedia\" [ref=e7]\n- link \"Oort cloud\" [ref=e21] [cursor=pointer]:";
        assert_eq!(ref_of(snapshot, "link", "Oort cloud").unwrap(), "e21");
        assert_eq!(
            ref_of(snapshot, "searchbox", "Search Open Encyclopedia").unwrap(),
            "e7"
        );
        assert!(ref_of(snapshot, "button", "Go").is_err());
    }

    #[test]
    fn an_answer_is_correct_only_with_every_fact_and_no_failure() {
        let task = &TASKS[0];
        let mut outcome = Outcome {
            transcript: "icy small Solar System body Sun, warms and begins to release gases".into(),
            ..Outcome::default()
        };
        assert!(outcome.correct(task));
        outcome.failure = Some("click failed".into());
        assert!(!outcome.correct(task));
        let partial = Outcome {
            transcript: "icy".into(),
            ..Outcome::default()
        };
        assert!(!partial.correct(task));
        assert!(partial.missing(task).contains(&"Sun"));
    }
}
