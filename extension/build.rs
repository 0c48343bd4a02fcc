//! Copies the page-side scripts (`src/shell/js/*.js`) into the build's output directory
//! without their whole-line `//` comments, which document them for people and would
//! otherwise ship in the WASM (a few KB). Only lines whose first non-blank characters are
//! `//` go; a script with a template literal over several lines (where such a line could be
//! inside a string) fails the build.
//! It must not change anything else in a script.

use std::path::Path;

fn main() {
    let source = Path::new("src/shell/js");
    println!("cargo:rerun-if-changed={}", source.display());
    let out = std::env::var_os("OUT_DIR").map(|d| Path::new(&d).join("js"));
    let Some(out) = out else {
        panic!("cargo did not set OUT_DIR for the extension's build script");
    };
    if let Err(e) = copy_scripts(source, &out) {
        panic!(
            "copying the page-side scripts from {} to {}: {e}",
            source.display(),
            out.display()
        );
    }
}

fn copy_scripts(source: &Path, out: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    for entry in std::fs::read_dir(source)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("js") {
            continue;
        }
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path)?;
        let kept: Vec<&str> = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect();
        // A template literal that spans lines could hold a line starting with `//`.
        if kept.iter().any(|line| line.matches('`').count() % 2 == 1) {
            return Err(std::io::Error::other(format!(
                "{} has a template literal over several lines: a `//` line in it could be part of a string",
                path.display()
            )));
        }
        let name = path.file_name().unwrap_or_default();
        std::fs::write(out.join(name), kept.join("\n"))?;
    }
    Ok(())
}
