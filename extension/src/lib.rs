//! The domshell extension's service worker, compiled to WebAssembly.
//!
//! `settings`, `link` and `shell` are plain Rust, tested on the host; `worker` is the thin
//! glue that binds them to `WebSocket`, timers, `chrome.storage`, `chrome.alarms` and
//! `chrome.tabs`, and is only meaningful inside the browser.

pub mod ax;
pub mod link;
pub mod settings;
pub mod shell;
mod worker;
