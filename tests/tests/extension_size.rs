//! The extension's WebAssembly stays within its download budget: at most 406 KB (406,000
//! bytes) gzipped at level 9, the form a browser fetches it in from the Web Store and the
//! figure `cargo xtask bench-shell` prints. It reads the worker the browser tests load
//! (`extension/pkg/`, written by `cargo xtask dist` or `build-extension`).
//!
//! The budget was 300 KB until lanes (tab groups per agent, their book, the confined
//! browser port, reaping) came in: they took the build from 298 KB to 324 KB, and the side
//! panel's entry points and Tab completion to 332 KB, `js`/`functions`/`call` with the
//! command table to 342 KB, the loops (`for`, `each`, `watch`) to 346 KB, scripts and
//! bookmarks to 351 KB, and `debug` with the granular tools' operands in the command table
//! to 358 KB, loops' progress reports (the `PROGRESS` frame) to 361 KB, `console`,
//! `network` and the page waits to 374 KB, sized screenshots and `pdf` to 378 KB,
//! downloads to 382 KB, `upload` to 385 KB, and the blank-first `open`, actions' accounts
//! with `diff`, and listings that leave out what a name already says to 402 KB, and short
//! names that say each text once to 404 KB, and waiting for a form's late navigation with
//! reads tried again when their node left with its document to 405 KB.
//! Lowering it again is open work, not a licence to grow.

use std::io::Write;

use domshell_tests::workspace_root;

/// The gzipped size the WASM may reach.
const BUDGET_GZIPPED_BYTES: usize = 406_000;

#[test]
fn the_wasm_is_at_most_330_kb_gzipped() {
    let path = workspace_root().join("extension/pkg/domshell_extension_bg.wasm");
    let raw = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "reading {} ({e}): build the extension first with `cargo xtask build-extension`",
            path.display()
        )
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&raw).expect("gzip into memory");
    let gzipped = gz.finish().expect("gzip into memory").len();
    assert!(
        gzipped <= BUDGET_GZIPPED_BYTES,
        "{}: {gzipped} bytes gzipped ({} raw) is over the {BUDGET_GZIPPED_BYTES}-byte budget; \
         look for a dependency that brought tables or generic code (the `name` section of a \
         `--profile wasm` build before wasm-bindgen says which functions are largest)",
        path.display(),
        raw.len()
    );
}

#[test]
fn the_shipped_wasm_carries_no_debug_sections() {
    // The name and producers sections were a fifth of the file; bindgen drops them.
    let path = workspace_root().join("extension/pkg/domshell_extension_bg.wasm");
    let raw = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "reading {} ({e}): build the extension first with `cargo xtask build-extension`",
            path.display()
        )
    });
    let custom = custom_sections(&raw);
    for dropped in ["name", "producers"] {
        assert!(
            !custom.iter().any(|s| s == dropped),
            "{} still has a `{dropped}` section (custom sections: {custom:?})",
            path.display()
        );
    }
}

/// The names of a WASM module's custom sections, in order.
fn custom_sections(wasm: &[u8]) -> Vec<String> {
    assert!(
        wasm.len() >= 8 && &wasm[..4] == b"\0asm",
        "not a WebAssembly module"
    );
    let mut names = Vec::new();
    let mut at = 8;
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let (size, after) = leb128(wasm, at);
        let end = after + size;
        assert!(end <= wasm.len(), "section at byte {at} runs past the end");
        if id == 0 {
            let (len, name_at) = leb128(wasm, after);
            names.push(String::from_utf8_lossy(&wasm[name_at..name_at + len]).into_owned());
        }
        at = end;
    }
    names
}

/// An unsigned LEB128 number at `at`: its value and the offset after it.
fn leb128(bytes: &[u8], mut at: usize) -> (usize, usize) {
    let mut value = 0usize;
    let mut shift = 0;
    loop {
        let byte = bytes[at];
        at += 1;
        value |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return (value, at);
        }
        shift += 7;
        assert!(shift < 35, "a section size longer than five bytes");
    }
}
