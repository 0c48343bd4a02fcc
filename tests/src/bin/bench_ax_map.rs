//! `cargo run --release -p domshell-tests --bin bench-ax-map [-- --runs N]`: how long the
//! extension's accessibility-tree mapping takes natively on the recorded page of 2,000 list
//! items (18k AX nodes, `extension/tests/fixtures/ax/big.json.gz`).
//!
//! Per run it times parsing the CDP JSON, mapping the whole page, rebuilding one list item's
//! directory after a simulated re-read (what a DOM mutation costs), and applying the partial
//! re-read of an item appended to the list (what a click that adds a row costs). It prints the
//! median, minimum and maximum of each; it asserts nothing about speed.

use std::io::Read;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use domshell_extension::ax::{AxNode, PageSnapshot, PathContext, Resolved, Update, Vfs};
use domshell_tests::workspace_root;

const DEFAULT_RUNS: usize = 15;

fn main() -> Result<()> {
    let runs = parse_runs()?;
    let path = workspace_root().join("extension/tests/fixtures/ax/big.json.gz");
    let mut json = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?,
    )
    .read_to_string(&mut json)
    .with_context(|| format!("decompressing {}", path.display()))?;

    let mut parse = Vec::with_capacity(runs);
    let mut map = Vec::with_capacity(runs);
    let mut replace = Vec::with_capacity(runs);
    let mut append = Vec::with_capacity(runs);
    let mut shape = (0, 0);
    for _ in 0..runs {
        let started = Instant::now();
        let page: PageSnapshot = serde_json::from_str(&json).context("parsing the fixture")?;
        parse.push(started.elapsed());
        let page_again = page.clone();

        let item_nodes = one_item_subtree(&page)?;
        let started = Instant::now();
        let mut vfs = Vfs::from_page(page)?;
        map.push(started.elapsed());
        shape = (vfs.node_count(), vfs.len());

        let started = Instant::now();
        vfs.replace_subtree("", item_nodes.clone())?;
        replace.push(started.elapsed());
        check_item_still_there(&vfs)?;

        let update = one_item_appended(&page_again)?;
        let started = Instant::now();
        vfs.apply_update("", update)?;
        append.push(started.elapsed());
        check_item_still_there(&vfs)?;
    }
    println!(
        "bench-ax-map: {} AX nodes -> {} entries, {runs} runs (native, {} build)",
        shape.0,
        shape.1,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    print_row("parse CDP JSON", &mut parse);
    print_row("map whole page", &mut map);
    print_row("re-map one list item", &mut replace);
    print_row("append one list item", &mut append);
    Ok(())
}

/// The nodes of the 1234th list item, root first, as a re-read would deliver them.
fn one_item_subtree(page: &PageSnapshot) -> Result<Vec<domshell_extension::ax::AxNode>> {
    let by_id: std::collections::HashMap<&str, &domshell_extension::ax::AxNode> = page
        .main
        .nodes
        .iter()
        .map(|n| (n.node_id.as_str(), n))
        .collect();
    let item = page
        .main
        .nodes
        .iter()
        .find(|n| {
            n.role() == "listitem"
                && n.child_ids
                    .iter()
                    .filter_map(|c| by_id.get(c.as_str()))
                    .any(|child| child.name() == "Item 1234")
        })
        .ok_or_else(|| anyhow!("the fixture has no list item \"Item 1234\""))?;
    let mut out = Vec::new();
    let mut stack = vec![item.node_id.as_str()];
    while let Some(id) = stack.pop() {
        if let Some(node) = by_id.get(id) {
            out.push((*node).clone());
            stack.extend(node.child_ids.iter().rev().map(String::as_str));
        }
    }
    Ok(out)
}

/// What a partial re-read delivers after a script appends an item to the list: the list
/// node (its child list changed) and the new item's subtree.
fn one_item_appended(page: &PageSnapshot) -> Result<Update> {
    let list = page
        .main
        .nodes
        .iter()
        .find(|n| n.role() == "list" && n.child_ids.len() >= 2_000)
        .ok_or_else(|| anyhow!("the fixture has no list of 2,000 items"))?;
    let mut list = list.clone();
    list.child_ids.push("appended-item".into());
    let node = |id: &str, parent: &str, role: &str, name: &str, children: &[&str]| {
        serde_json::from_value::<AxNode>(serde_json::json!({
            "nodeId": id,
            "parentId": parent,
            "role": {"type": "role", "value": role},
            "name": {"type": "computedString", "value": name},
            "childIds": children,
        }))
    };
    let subtree = vec![
        node(
            "appended-item",
            &list.node_id,
            "listitem",
            "",
            &["appended-link"],
        )?,
        node(
            "appended-link",
            "appended-item",
            "link",
            "Item appended",
            &[],
        )?,
    ];
    Ok(Update {
        subtrees: vec![subtree],
        nodes: vec![list],
    })
}

fn check_item_still_there(vfs: &Vfs) -> Result<()> {
    let bookmarks = Default::default();
    let ctx = PathContext {
        cwd: &[],
        page_prefix: "",
        bookmarks: &bookmarks,
    };
    match vfs.resolve(&ctx, "/main/items/item_1234_add_1234/add_1234_btn") {
        Ok(Resolved::Entry { .. }) => Ok(()),
        other => bail!("the re-mapped item is not where it was: {other:?}"),
    }
}

fn print_row(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = samples.get(samples.len() / 2).copied().unwrap_or_default();
    let min = samples.first().copied().unwrap_or_default();
    let max = samples.last().copied().unwrap_or_default();
    println!(
        "  {what:<22} median {:>8.3} ms   min {:>8.3} ms   max {:>8.3} ms",
        ms(median),
        ms(min),
        ms(max)
    );
}

fn parse_runs() -> Result<usize> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(DEFAULT_RUNS),
        [flag, n] if flag == "--runs" => {
            let n: usize = n
                .parse()
                .with_context(|| format!("--runs {n}: not a number"))?;
            anyhow::ensure!(n > 0, "--runs must be at least 1");
            Ok(n)
        }
        _ => bail!("usage: bench-ax-map [--runs N]"),
    }
}
