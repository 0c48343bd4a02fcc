//! `cargo xtask package`: the files a person installs without building anything.
//!
//! - `<target dir>/package/domshell-<version>.mcpb` — an MCP Bundle (manifest + the server
//!   binary) packed and validated by the official `@anthropic-ai/mcpb` CLI, which is installed
//!   from npm at the version pinned in `packaging/mcpb/package-lock.json` into
//!   `<target dir>/mcpb-cli`;
//! - `<target dir>/package/domshell-extension-<version>.zip` — the Chrome extension: `manifest.json`,
//!   `extension/static/` and `extension/pkg/`, nothing else, loadable unpacked once extracted
//!   (with the pinned id), and `…-webstore.zip`, the same without the manifest's `key`, which
//!   the Chrome Web Store refuses;
//! - `<target dir>/package/server.json` — the MCP registry entry (`packaging/registry/server.json`)
//!   with the `.mcpb`'s SHA-256 filled in, ready to publish next to that exact file.
//!
//! `<target dir>` is cargo's target directory ([`crate::paths::target_dir`]). It owns those
//! outputs and the staging directory `<target dir>/package/stage`; it must not change the
//! checked-in manifests (it fills a copy) and must not publish anything.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::{root, status, target_dir};

/// The pinned CLI version (must match `packaging/mcpb/package.json`).
pub const MCPB_CLI_VERSION: &str = "2.1.2";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What `package` produced.
#[derive(Debug, Clone)]
pub struct Packages {
    pub mcpb: PathBuf,
    pub extension_zip: PathBuf,
    /// The same without the manifest's `key`, for a Chrome Web Store upload.
    pub web_store_zip: PathBuf,
    /// The registry entry describing the image and this `.mcpb`.
    pub server_json: PathBuf,
    /// `node <cli.js>` of the pinned mcpb CLI, for tests that validate the bundle again.
    pub mcpb_cli: PathBuf,
}

fn out_dir() -> Result<PathBuf> {
    Ok(target_dir()?.join("package"))
}

/// The mcpb platform name of the machine building the bundle.
fn mcpb_platform() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        _ => "linux",
    }
}

/// Install the pinned mcpb CLI into `<target dir>/mcpb-cli` (once) and return its `cli.js`.
pub fn ensure_mcpb_cli() -> Result<PathBuf> {
    let dir = target_dir()?.join("mcpb-cli");
    let package_dir = dir.join("node_modules").join("@anthropic-ai").join("mcpb");
    let cli = package_dir.join("dist").join("cli").join("cli.js");
    let installed = std::fs::read_to_string(package_dir.join("package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|doc| doc["version"].as_str().map(str::to_string));
    if installed.as_deref() == Some(MCPB_CLI_VERSION) && cli.is_file() {
        return Ok(cli);
    }
    let pins = root().join("packaging").join("mcpb");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(pins.join(file), dir.join(file))
            .with_context(|| format!("copying {} into {}", file, dir.display()))?;
    }
    crate::prereq::ensure(&[crate::prereq::NPM])?;
    let mut install = Command::new("npm");
    install
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir);
    status(install, "npm ci (the MCP Bundle CLI)")?;
    anyhow::ensure!(cli.is_file(), "{} missing after npm ci", cli.display());
    Ok(cli)
}

fn mcpb(cli: &Path, args: &[&Path], verb: &str) -> Result<()> {
    let mut cmd = Command::new("node");
    cmd.arg(cli)
        .arg(verb)
        .args(args)
        .stdin(std::process::Stdio::null());
    status(cmd, &format!("mcpb {verb}"))
}

/// The checked-in bundle manifest with this build's version and platform filled in.
pub fn bundle_manifest(template: &str, platform: &str) -> Result<Value> {
    let mut manifest: Value =
        serde_json::from_str(template).context("parsing packaging/mcpb/manifest.json")?;
    manifest["version"] = Value::String(VERSION.to_string());
    manifest["compatibility"]["platforms"] = serde_json::json!([platform]);
    if platform == "win32" {
        manifest["server"]["entry_point"] = "server/domshell.exe".into();
        manifest["server"]["mcp_config"]["command"] = "${__dirname}/server/domshell.exe".into();
    }
    Ok(manifest)
}

/// Pack `server` (the binary the bundle runs) into the `.mcpb`.
pub fn build_mcpb(server: &Path, cli: &Path) -> Result<PathBuf> {
    let stage = out_dir()?.join("stage").join("mcpb");
    if stage.exists() {
        std::fs::remove_dir_all(&stage).with_context(|| format!("clearing {}", stage.display()))?;
    }
    std::fs::create_dir_all(stage.join("server"))
        .with_context(|| format!("creating {}", stage.display()))?;
    let template_path = root().join("packaging").join("mcpb").join("manifest.json");
    let template = std::fs::read_to_string(&template_path)
        .with_context(|| format!("reading {}", template_path.display()))?;
    let manifest = bundle_manifest(&template, mcpb_platform())?;
    let entry = manifest["server"]["entry_point"]
        .as_str()
        .context("the bundle manifest has no server.entry_point")?
        .to_string();
    std::fs::write(
        stage.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).context("serializing the bundle manifest")?,
    )
    .context("writing the staged bundle manifest")?;
    std::fs::copy(server, stage.join(&entry))
        .with_context(|| format!("copying {} into the bundle", server.display()))?;

    mcpb(cli, &[&stage.join("manifest.json")], "validate")?;
    let out = out_dir()?.join(format!("domshell-{VERSION}.mcpb"));
    mcpb(cli, &[&stage, &out], "pack")?;
    Ok(out)
}

/// The checked-in registry entry with the bundle's hash in every `mcpb` package.
pub fn registry_entry(template: &str, mcpb_sha256: &str) -> Result<Value> {
    let mut entry: Value =
        serde_json::from_str(template).context("parsing packaging/registry/server.json")?;
    let packages = entry["packages"]
        .as_array_mut()
        .context("packaging/registry/server.json has no packages")?;
    for package in packages.iter_mut() {
        if package["registryType"] == "mcpb" {
            package["fileSha256"] = Value::String(mcpb_sha256.to_string());
        }
    }
    Ok(entry)
}

fn sha256_hex(path: &Path) -> Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let digest = sha2::Sha256::digest(&bytes);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Write `<target dir>/package/server.json` for the bundle at `mcpb`.
pub fn write_registry_entry(mcpb: &Path) -> Result<PathBuf> {
    let template_path = root()
        .join("packaging")
        .join("registry")
        .join("server.json");
    let template = std::fs::read_to_string(&template_path)
        .with_context(|| format!("reading {}", template_path.display()))?;
    let entry = registry_entry(&template, &sha256_hex(mcpb)?)?;
    let out = out_dir()?.join("server.json");
    let mut text = serde_json::to_string_pretty(&entry).context("serializing server.json")?;
    text.push('\n');
    std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

/// The files of the extension zip: `(path in the zip, file on disk)`, sorted.
pub fn extension_files(repo: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut files = vec![("manifest.json".to_string(), repo.join("manifest.json"))];
    for dir in ["extension/static", "extension/pkg"] {
        let mut stack = vec![repo.join(dir)];
        while let Some(current) = stack.pop() {
            let entries = std::fs::read_dir(&current)
                .with_context(|| format!("reading {}", current.display()))?;
            for entry in entries {
                let path = entry
                    .with_context(|| format!("listing {}", current.display()))?
                    .path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let relative = path
                    .strip_prefix(repo)
                    .with_context(|| format!("{} is outside the repository", path.display()))?;
                let name: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let name = name.join("/");
                // wasm-bindgen's own bookkeeping is not part of the extension.
                if name.ends_with(".gitignore") || name.ends_with("package.json") {
                    continue;
                }
                files.push((name, path));
            }
        }
    }
    files.sort();
    anyhow::ensure!(
        files
            .iter()
            .any(|(name, _)| name.ends_with("domshell_extension_bg.wasm")),
        "extension/pkg holds no WebAssembly: run `cargo xtask build-extension` first"
    );
    Ok(files)
}

/// The extension's manifest without its `key`: the Chrome Web Store refuses a manifest that
/// carries one and gives the item its own id instead.
pub fn web_store_manifest(manifest: &str) -> Result<Vec<u8>> {
    let mut doc: Value = serde_json::from_str(manifest).context("parsing manifest.json")?;
    doc.as_object_mut()
        .context("manifest.json is not a JSON object")?
        .remove("key");
    let mut text = serde_json::to_vec_pretty(&doc).context("serializing manifest.json")?;
    text.push(b'\n');
    Ok(text)
}

/// Write one extension zip at `out`; `for_web_store` drops the manifest's `key`.
fn write_extension_zip(out: &Path, for_web_store: bool) -> Result<()> {
    let files = extension_files(&root())?;
    let tmp = out.with_extension("zip.tmp");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    for (name, path) in &files {
        let mut bytes =
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if for_web_store && name == "manifest.json" {
            bytes = web_store_manifest(&String::from_utf8_lossy(&bytes))?;
        }
        zip.start_file(name.as_str(), options)
            .with_context(|| format!("adding {name} to the zip"))?;
        zip.write_all(&bytes)
            .with_context(|| format!("writing {name} into the zip"))?;
    }
    zip.finish().context("finishing the extension zip")?;
    std::fs::rename(&tmp, out).with_context(|| format!("renaming onto {}", out.display()))
}

/// Write `domshell-extension-<version>.zip` (loaded unpacked, it keeps the pinned id the
/// server admits) and `domshell-extension-<version>-webstore.zip` (the same without `key`,
/// for a Web Store upload); returns both paths.
pub fn build_extension_zips() -> Result<(PathBuf, PathBuf)> {
    let unpacked = out_dir()?.join(format!("domshell-extension-{VERSION}.zip"));
    write_extension_zip(&unpacked, false)?;
    let web_store = out_dir()?.join(format!("domshell-extension-{VERSION}-webstore.zip"));
    write_extension_zip(&web_store, true)?;
    Ok((unpacked, web_store))
}

/// Build everything `package` ships. `server` is the binary the bundle carries.
pub fn build_packages(server: &Path) -> Result<Packages> {
    let out = out_dir()?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let cli = ensure_mcpb_cli()?;
    let mcpb = build_mcpb(server, &cli)?;
    let (extension_zip, web_store_zip) = build_extension_zips()?;
    let server_json = write_registry_entry(&mcpb)?;
    Ok(Packages {
        mcpb,
        extension_zip,
        web_store_zip,
        server_json,
        mcpb_cli: cli,
    })
}

/// `cargo xtask package`.
pub fn package() -> Result<()> {
    crate::build_extension()?;
    // On Linux the static binary runs on any distribution; elsewhere the host build.
    let server = if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        crate::image::build_static_server()?
    } else {
        crate::build_release_server()?
    };
    let packages = build_packages(&server)?;
    for path in [
        &packages.mcpb,
        &packages.extension_zip,
        &packages.web_store_zip,
        &packages.server_json,
    ] {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "xtask: wrote {} ({:.1} MB)",
            path.display(),
            size as f64 / 1e6
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"{"manifest_version": "0.3", "name": "domshell", "version": "0.0.0",
        "server": {"type": "binary", "entry_point": "server/domshell",
                   "mcp_config": {"command": "${__dirname}/server/domshell", "args": ["serve"]}},
        "compatibility": {"platforms": ["linux"]}}"#;

    #[test]
    fn the_bundle_manifest_takes_the_workspace_version_and_the_build_platform() {
        let manifest = bundle_manifest(TEMPLATE, "darwin").unwrap();
        assert_eq!(manifest["version"], VERSION);
        assert_eq!(
            manifest["compatibility"]["platforms"],
            serde_json::json!(["darwin"])
        );
        assert_eq!(manifest["server"]["entry_point"], "server/domshell");
        let windows = bundle_manifest(TEMPLATE, "win32").unwrap();
        assert_eq!(windows["server"]["entry_point"], "server/domshell.exe");
        assert_eq!(
            windows["server"]["mcp_config"]["command"],
            "${__dirname}/server/domshell.exe"
        );
    }

    #[test]
    fn the_registry_entry_gets_the_bundle_hash_and_keeps_the_rest() {
        let template = r#"{"name": "a/b", "packages": [
            {"registryType": "oci", "identifier": "x:1"},
            {"registryType": "mcpb", "identifier": "https://h/x.mcpb", "fileSha256": "0"}]}"#;
        let entry = registry_entry(template, &"ab".repeat(32)).unwrap();
        assert_eq!(entry["packages"][1]["fileSha256"], "ab".repeat(32));
        assert!(entry["packages"][0].get("fileSha256").is_none());
        assert_eq!(entry["name"], "a/b");
    }

    #[test]
    fn sha256_is_lowercase_hex_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_hex(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_checked_in_bundle_manifest_is_this_version() {
        let template =
            std::fs::read_to_string(root().join("packaging/mcpb/manifest.json")).unwrap();
        let manifest: Value = serde_json::from_str(&template).unwrap();
        assert_eq!(
            manifest["version"], VERSION,
            "bump packaging/mcpb/manifest.json"
        );
    }

    #[test]
    fn the_extension_zip_holds_the_manifest_static_and_pkg_only() {
        let repo = tempfile::tempdir().unwrap();
        let p = repo.path();
        for (path, body) in [
            ("manifest.json", "{}"),
            ("extension/static/background.js", ""),
            ("extension/static/sub/x.css", ""),
            ("extension/pkg/domshell_extension.js", ""),
            ("extension/pkg/domshell_extension_bg.wasm", ""),
            ("extension/pkg/.gitignore", "*"),
            ("extension/src/lib.rs", ""),
            ("README.md", ""),
        ] {
            std::fs::create_dir_all(p.join(path).parent().unwrap()).unwrap();
            std::fs::write(p.join(path), body).unwrap();
        }
        let names: Vec<String> = extension_files(p)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "extension/pkg/domshell_extension.js",
                "extension/pkg/domshell_extension_bg.wasm",
                "extension/static/background.js",
                "extension/static/sub/x.css",
                "manifest.json"
            ]
        );
    }

    #[test]
    fn the_web_store_manifest_drops_only_the_key() {
        let manifest =
            r#"{"manifest_version": 3, "name": "domshell", "key": "MIIB", "version": "1.0.0"}"#;
        let stripped: Value =
            serde_json::from_slice(&web_store_manifest(manifest).unwrap()).unwrap();
        assert_eq!(
            stripped,
            serde_json::json!({"manifest_version": 3, "name": "domshell", "version": "1.0.0"})
        );
    }

    #[test]
    fn an_unbuilt_extension_is_refused_with_the_command_that_builds_it() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(repo.path().join("extension/static")).unwrap();
        std::fs::create_dir_all(repo.path().join("extension/pkg")).unwrap();
        std::fs::write(repo.path().join("manifest.json"), "{}").unwrap();
        let err = extension_files(repo.path()).unwrap_err().to_string();
        assert!(err.contains("cargo xtask build-extension"), "{err}");
    }
}
