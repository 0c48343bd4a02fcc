//! The side panel's way into the kernel: the person at the browser types lines that the
//! WASM kernel runs directly (no round trip through the server), completes words with
//! Tab, stops a command with Ctrl+C, and watches every lane.
//!
//! It owns the entry points the bootstrap calls for the panel's messages, and only those:
//! commands run in the worker's session table like an agent's ([`crate::worker`]), names
//! are completed by [`crate::shell::complete`], lanes are listed as `group list --json`
//! lists them. The panel page itself renders; it decides nothing.

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use crate::chrome::{to_js, ChromeBrowser};
use crate::lane_keeper;
use crate::shell::browser::Browser;
use crate::shell::{complete, group};
use crate::worker;

/// A promise `work` resolves. (Not `future_to_promise`: its machinery cost the WASM 14 KB
/// for what `spawn_local` does already.)
fn promise(work: impl FnOnce(js_sys::Function) + 'static) -> js_sys::Promise {
    let mut work = Some(work);
    js_sys::Promise::new(&mut |resolve, _reject| {
        if let Some(work) = work.take() {
            work(resolve);
        }
    })
}

/// Resolves `resolve` with `value` once `make` is done.
fn resolve_later(
    resolve: js_sys::Function,
    make: impl std::future::Future<Output = serde_json::Value> + 'static,
) {
    spawn_local(async move {
        let value = make.await;
        let _ = resolve.call1(&JsValue::NULL, &to_js(&value));
    });
}

/// Runs `line` in the person's session; resolves to `{ok, output, lane, cwd}`.
#[wasm_bindgen]
pub fn panel_run(line: String) -> js_sys::Promise {
    promise(move |resolve| worker::run_for_person(line, resolve))
}

/// Ctrl+C: stops the person's running command (its reply says it was cancelled). Whether
/// one was running.
#[wasm_bindgen]
pub fn panel_cancel() -> bool {
    worker::cancel_for_person()
}

/// Tab: resolves to `{start, candidates, common}` for the end of `line` (see
/// [`complete::Completion`]). While a command runs, only commands are completed.
#[wasm_bindgen]
pub fn panel_complete(line: String) -> js_sys::Promise {
    promise(move |resolve| resolve_later(resolve, complete_line(line)))
}

async fn complete_line(line: String) -> serde_json::Value {
    let completion = match worker::person_state() {
        Some(state) => {
            let ctx = worker::person_context();
            complete::complete(&state, &ChromeBrowser, &ctx, &line).await
        }
        None => complete::complete_word(&line).unwrap_or_default(),
    };
    // The page counts in UTF-16 units, as its input's selection does.
    let head = line.get(..completion.start).unwrap_or(&line);
    serde_json::json!({
        "start": head.encode_utf16().count(),
        "candidates": completion.candidates,
        "common": completion.common,
    })
}

/// Every lane, as `group list --json` lists them, `current` marking the person's; and the
/// person's place: `{lanes, cwd, lane}`.
#[wasm_bindgen]
pub fn panel_lanes() -> js_sys::Promise {
    promise(|resolve| resolve_later(resolve, lanes_view()))
}

async fn lanes_view() -> serde_json::Value {
    let tabs = ChromeBrowser.tabs().await.unwrap_or_default();
    let state = worker::person_state();
    let lane = state.as_ref().and_then(|s| s.lane);
    let book = lane_keeper::book();
    let lanes = group::lanes_json(&book.borrow(), &tabs, js_sys::Date::now() as u64, lane);
    serde_json::json!({
        "lanes": lanes,
        "cwd": state.map(|s| s.cwd.display()),
        "lane": lane,
    })
}
