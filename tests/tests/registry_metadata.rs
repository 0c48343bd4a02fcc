//! The metadata shipped for registries and ToolHive, checked against the rules their readers
//! apply:
//!
//! - `packaging/registry/server.json` and the `target/package/server.json` that
//!   `cargo xtask package` fills in: the MCP registry's server.json (schema 2025-12-11) —
//!   name, description, version, package shapes, the `.mcpb` hash of the bundle shipped next to
//!   it, and the image label the registry uses to verify an OCI package;
//! - `packaging/toolhive/registry.json`: ToolHive's registry file (the upstream format: servers
//!   are server.json entries, ToolHive's own fields under `_meta` publisher-provided
//!   `io.github.stacklok`, keyed by image) as ToolHive's converter reads it — one OCI package,
//!   target port from the transport URL, extension fields it knows;
//! - `packaging/toolhive/run-config.json`: a `thv run --from-config` file, whose keys must be
//!   RunConfig's, with values that fit the image and the registry entry.
//!
//! Every environment variable these files set must be one the server reads (its `--help`).
//! The rules are written here from those projects' documented schemas and source; no file of
//! theirs is copied.

use std::collections::BTreeSet;
use std::path::PathBuf;

use domshell_tests::workspace_root;
use serde_json::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const SERVER_SCHEMA: &str =
    "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json";
const PUBLISHER_PROVIDED: &str = "io.modelcontextprotocol.registry/publisher-provided";
const TOOLHIVE_NAMESPACE: &str = "io.github.stacklok";

fn read_json(path: &std::path::Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn repo_file(path: &str) -> Value {
    read_json(&workspace_root().join(path))
}

fn is_match(text: &str, allowed: impl Fn(char) -> bool) -> bool {
    !text.is_empty() && text.chars().all(allowed)
}

/// A version the registry accepts: specific, not a range or `latest`.
fn is_specific_version(version: &str) -> bool {
    !version.is_empty()
        && version.len() <= 255
        && version != "latest"
        && !version.contains(['^', '~', '>', '<', '*', ' ', '|'])
        && !version.split('.').any(|part| part == "x" || part == "X")
}

/// The MCP registry's server.json rules; returns every violation.
fn server_json_violations(doc: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let mut fail = |message: String| errors.push(message);
    if doc["$schema"] != SERVER_SCHEMA {
        fail(format!("$schema must be {SERVER_SCHEMA}"));
    }
    let name = doc["name"].as_str().unwrap_or_default();
    let parts: Vec<&str> = name.split('/').collect();
    let name_ok = (3..=200).contains(&name.len())
        && parts.len() == 2
        && is_match(parts[0], |c| {
            c.is_ascii_alphanumeric() || c == '.' || c == '-'
        })
        && is_match(parts[1], |c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && parts[0].contains('.');
    if !name_ok {
        fail(format!(
            "name {name:?} is not namespace/name in reverse-DNS form"
        ));
    }
    for field in ["description", "title"] {
        if let Some(text) = doc.get(field) {
            let len = text.as_str().map(|t| t.chars().count()).unwrap_or(0);
            if !(1..=100).contains(&len) {
                fail(format!("{field} must be 1..=100 characters, is {len}"));
            }
        }
    }
    if doc.get("description").is_none() {
        fail("description is required".into());
    }
    match doc["version"].as_str() {
        Some(v) if is_specific_version(v) => {}
        other => fail(format!("version {other:?} is not a specific version")),
    }
    if let Some(repository) = doc.get("repository") {
        for field in ["url", "source"] {
            if !repository[field].is_string() {
                fail(format!("repository.{field} is required"));
            }
        }
    }
    for (i, package) in doc["packages"].as_array().into_iter().flatten().enumerate() {
        let kind = package["registryType"].as_str().unwrap_or_default();
        let transport = package["transport"]["type"].as_str().unwrap_or_default();
        match transport {
            "stdio" => {}
            "streamable-http" | "sse" => {
                if !package["transport"]["url"].is_string() {
                    fail(format!(
                        "packages[{i}]: a {transport} transport needs a url"
                    ));
                }
            }
            other => fail(format!("packages[{i}]: transport type {other:?}")),
        }
        let identifier = package["identifier"].as_str().unwrap_or_default();
        match kind {
            "oci" => {
                let last = identifier.rsplit('/').next().unwrap_or_default();
                if !(last.contains(':') || identifier.contains('@')) {
                    fail(format!(
                        "packages[{i}]: OCI {identifier:?} needs a tag or digest"
                    ));
                }
            }
            "mcpb" => {
                if !identifier.starts_with("https://") {
                    fail(format!(
                        "packages[{i}]: mcpb identifier must be an https URL"
                    ));
                }
                let hash = package["fileSha256"].as_str().unwrap_or_default();
                if hash.len() != 64
                    || !is_match(hash, |c| c.is_ascii_digit() || ('a'..='f').contains(&c))
                {
                    fail(format!(
                        "packages[{i}]: fileSha256 must be 64 lowercase hex digits"
                    ));
                }
            }
            "npm" | "pypi" | "nuget" => {
                if !package["version"].as_str().is_some_and(is_specific_version) {
                    fail(format!("packages[{i}]: needs a specific version"));
                }
            }
            other => fail(format!("packages[{i}]: registryType {other:?}")),
        }
        for variable in package["environmentVariables"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if !variable["name"].is_string() {
                fail(format!(
                    "packages[{i}]: an environment variable without a name"
                ));
            }
            for flag in ["isRequired", "isSecret"] {
                if variable.get(flag).is_some_and(|v| !v.is_boolean()) {
                    fail(format!("packages[{i}]: {flag} must be a boolean"));
                }
            }
            if let Some(format) = variable.get("format") {
                if !["string", "number", "boolean", "filepath"]
                    .contains(&format.as_str().unwrap_or(""))
                {
                    fail(format!("packages[{i}]: format {format}"));
                }
            }
        }
        for argument in package["runtimeArguments"]
            .as_array()
            .into_iter()
            .chain(package["packageArguments"].as_array())
            .flatten()
        {
            match argument["type"].as_str() {
                Some("named") if argument["name"].is_string() => {}
                Some("positional")
                    if argument.get("value").is_some() || argument.get("valueHint").is_some() => {}
                _ => fail(format!("packages[{i}]: malformed argument {argument}")),
            }
        }
    }
    errors
}

/// Environment variable names `domshell serve` reads (from its `--help`).
fn env_the_server_reads() -> BTreeSet<String> {
    let bin = domshell_tests::server::server_binary().unwrap();
    let out = std::process::Command::new(bin)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    help.split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split(['=', ']']).next())
        .map(str::to_string)
        .collect()
}

fn oci_package(server: &Value) -> &Value {
    let oci: Vec<&Value> = server["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["registryType"] == "oci")
        .collect();
    assert_eq!(oci.len(), 1, "exactly one OCI package");
    oci[0]
}

fn port_of(url: &str) -> u16 {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|authority| authority.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

#[test]
fn the_rules_catch_what_the_registry_refuses() {
    let good = serde_json::json!({"$schema": SERVER_SCHEMA, "name": "io.github.a/b",
        "description": "d", "version": "1.0.0"});
    assert!(server_json_violations(&good).is_empty());
    for (field, value) in [
        ("name", serde_json::json!("no-slash")),
        ("description", serde_json::json!("x".repeat(101))),
        ("version", serde_json::json!("^1.0.0")),
        ("version", serde_json::json!("latest")),
        (
            "$schema",
            serde_json::json!("https://example.com/other.json"),
        ),
    ] {
        let mut bad = good.clone();
        bad[field] = value;
        assert!(
            !server_json_violations(&bad).is_empty(),
            "{field} accepted: {bad}"
        );
    }
    let mut bad = good.clone();
    bad["packages"] = serde_json::json!([{"registryType": "mcpb", "identifier": "https://h/x.mcpb",
        "fileSha256": "XYZ", "transport": {"type": "stdio"}}]);
    assert!(!server_json_violations(&bad).is_empty());
}

#[test]
fn server_json_describes_this_version_of_the_image_and_the_bundle() {
    let doc = repo_file("packaging/registry/server.json");
    let errors = server_json_violations(&doc);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(doc["version"], VERSION);
    let oci = oci_package(&doc);
    assert!(
        oci["identifier"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{VERSION}")),
        "the image tag is this version"
    );
    let mcpb = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["registryType"] == "mcpb")
        .expect("an mcpb package");
    assert!(mcpb["identifier"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/domshell-{VERSION}.mcpb")));
    let reads = env_the_server_reads();
    for package in doc["packages"].as_array().unwrap() {
        for variable in package["environmentVariables"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let name = variable["name"].as_str().unwrap();
            assert!(
                reads.contains(name),
                "{name} is not read by the server: {reads:?}"
            );
        }
    }
    // The registry verifies an OCI package by this label on the image.
    let label = std::fs::read_to_string(workspace_root().join("packaging/container/Containerfile"))
        .unwrap();
    assert!(
        label.contains(&format!(
            "io.modelcontextprotocol.server.name=\"{}\"",
            doc["name"].as_str().unwrap()
        )),
        "the Containerfile labels the image with the server name"
    );
}

#[test]
fn the_packaged_server_json_carries_the_hash_of_the_shipped_bundle() {
    use sha2::Digest;
    let var = |name: &str| -> PathBuf {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("{name} is not set: run the suite with `cargo xtask test`"))
    };
    let doc = read_json(&var("DOMSHELL_TEST_SERVER_JSON"));
    let errors = server_json_violations(&doc);
    assert!(errors.is_empty(), "{errors:#?}");
    let bundle = std::fs::read(var("DOMSHELL_TEST_MCPB")).unwrap();
    let hash: String = sha2::Sha256::digest(&bundle)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mcpb = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["registryType"] == "mcpb")
        .unwrap();
    assert_eq!(mcpb["fileSha256"], hash);
    // Everything else is the checked-in entry.
    let mut template = repo_file("packaging/registry/server.json");
    for package in template["packages"].as_array_mut().unwrap() {
        if package["registryType"] == "mcpb" {
            package["fileSha256"] = Value::String(hash.clone());
        }
    }
    assert_eq!(doc, template);
}

#[test]
fn toolhive_registry_entry_reads_as_toolhive_reads_it() {
    let registry = repo_file("packaging/toolhive/registry.json");
    let version = registry["version"].as_str().unwrap();
    assert_eq!(
        version
            .split('.')
            .filter(|p| p.parse::<u32>().is_ok())
            .count(),
        3,
        "{version}"
    );
    let updated = registry["meta"]["last_updated"].as_str().unwrap();
    assert!(
        updated.len() == 20 && updated.ends_with('Z') && updated.contains('T'),
        "{updated}"
    );
    let servers = registry["data"]["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1);
    let server = &servers[0];
    let errors = server_json_violations(server);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(server["version"], VERSION);

    let oci = oci_package(server);
    let image = oci["identifier"].as_str().unwrap();
    assert_eq!(
        image,
        format!("localhost/domshell:{VERSION}"),
        "the image `cargo xtask image` builds"
    );
    assert_eq!(oci["transport"]["type"], "streamable-http");
    let target_port = port_of(oci["transport"]["url"].as_str().unwrap());

    let reads = env_the_server_reads();
    for variable in oci["environmentVariables"].as_array().unwrap() {
        let name = variable["name"].as_str().unwrap();
        assert!(reads.contains(name), "{name} is not read by the server");
        assert!(is_match(name, |c| c.is_ascii_alphanumeric() || c == '_'));
    }

    let extensions = &server["_meta"][PUBLISHER_PROVIDED][TOOLHIVE_NAMESPACE];
    let ext = extensions[image]
        .as_object()
        .expect("ToolHive's fields keyed by the image");
    let known: BTreeSet<&str> = [
        "status",
        "tier",
        "tools",
        "tags",
        "overview",
        "tool_definitions",
        "metadata",
        "permissions",
        "args",
        "provenance",
        "docker_tags",
        "proxy_port",
        "custom_metadata",
    ]
    .into();
    for key in ext.keys() {
        assert!(known.contains(key.as_str()), "ToolHive does not know {key}");
    }
    assert!(
        ["active", "deprecated", "Active", "Deprecated"].contains(&ext["status"].as_str().unwrap())
    );
    assert!(["Official", "Community"].contains(&ext["tier"].as_str().unwrap()));
    for tag in ext["tags"].as_array().unwrap() {
        let tag = tag.as_str().unwrap();
        assert!(
            is_match(tag, |c| c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == '-'
                || c == '_')
                && !tag.starts_with(['-', '_'])
                && !tag.ends_with(['-', '_']),
            "tag {tag}"
        );
    }
    // The tools are the ones the bundle manifest declares (and its test checks the server).
    let manifest = repo_file("packaging/mcpb/manifest.json");
    let declared: Vec<&Value> = manifest["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["name"])
        .collect();
    let listed: Vec<&Value> = ext["tools"].as_array().unwrap().iter().collect();
    assert_eq!(listed, declared);
    // The server needs no outbound network: the browser dials it.
    let permissions = ext["permissions"].as_object().unwrap();
    for key in permissions.keys() {
        assert!(
            ["name", "network", "read", "write", "privileged"].contains(&key.as_str()),
            "{key}"
        );
    }
    assert_eq!(
        ext["permissions"]["network"]["outbound"]["insecure_allow_all"],
        false
    );

    // The run-config file runs the same image on the same target port.
    let run = repo_file("packaging/toolhive/run-config.json");
    assert_eq!(run["image"], image);
    assert_eq!(run["target_port"], target_port);
}

#[test]
fn toolhive_run_config_has_only_runconfig_fields_and_values_that_fit() {
    let run = repo_file("packaging/toolhive/run-config.json");
    // RunConfig's JSON field names (ToolHive pkg/runner/config.go) that a hand-written file
    // may use; anything else would be silently ignored.
    let known: BTreeSet<&str> = [
        "schema_version",
        "image",
        "cmd_args",
        "name",
        "container_name",
        "base_name",
        "transport",
        "host",
        "port",
        "target_port",
        "target_host",
        "allowed_origins",
        "publish",
        "permission_profile_name_or_path",
        "permission_profile",
        "env_vars",
        "env_file_dir",
        "debug",
        "volumes",
        "container_labels",
        "secrets",
        "isolate_network",
        "proxy_mode",
        "group",
        "tools_filter",
        "stateless",
        "session_ttl",
    ]
    .into();
    for key in run.as_object().unwrap().keys() {
        assert!(
            known.contains(key.as_str()),
            "{key} is not a RunConfig field"
        );
    }
    assert_eq!(run["schema_version"], "v0.1.0");
    assert!(["stdio", "sse", "streamable-http"].contains(&run["transport"].as_str().unwrap()));
    assert!(run["port"].as_u64().is_some_and(|p| p > 0 && p < 65536));
    let reads = env_the_server_reads();
    for name in run["env_vars"].as_object().unwrap().keys() {
        assert!(reads.contains(name), "{name} is not read by the server");
        assert!(
            !name.contains("TOKEN"),
            "the token travels as a secret, not in the file"
        );
    }
    for secret in run["secrets"].as_array().unwrap() {
        let (name, target) = secret.as_str().unwrap().split_once(",target=").unwrap();
        assert!(!name.is_empty());
        assert!(reads.contains(target), "{target} is not read by the server");
    }
    let profile = &run["permission_profile"];
    let mode = profile["network"]["mode"].as_str().unwrap_or("");
    assert!(
        ["", "host", "bridge", "none", "default"].contains(&mode),
        "{mode}"
    );
    if mode == "host" {
        // ToolHive refuses isolation with host networking, and the bridge must stay on
        // the host's loopback.
        assert_eq!(run["isolate_network"], false);
        assert_eq!(run["env_vars"]["DOMSHELL_HOST"], "127.0.0.1");
    }
}
