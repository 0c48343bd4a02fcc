//! The domshell extension's service worker, compiled to WebAssembly.
//!
//! `settings`, `link`, `shell` and `ax` are plain Rust, tested on the host; `worker` (timers,
//! sockets, storage, alarms), `chrome` (tabs, windows, debugger), `lane_keeper` and `panel`
//! (the side panel's entry points) are the thin glue that binds them to the browser, and
//! are only meaningful inside it.

pub mod ax;
mod chrome;
mod lane_keeper;
pub mod link;
mod panel;
pub mod settings;
pub mod shell;
mod worker;
