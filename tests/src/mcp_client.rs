//! The benchmarks' MCP client: rmcp (the SDK the server itself is built on) from the client
//! side, over streamable HTTP, negotiating one fixed protocol revision so that domshell and
//! DOMShell 2.0.10 are driven alike.
//!
//! It owns the client configuration and the HTTP client choices (no proxies: all traffic stays
//! on 127.0.0.1 whatever HTTP_PROXY says). It must not talk to anything but the URL given.

use std::time::Duration;

use anyhow::{Context, Result};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    JsonObject, ProtocolVersion,
};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};

/// The protocol era both servers are driven in. DOMShell 2.0.10 (TS SDK 1.x) speaks the
/// 2025 revisions with `Mcp-Session-Id` sessions; domshell also speaks the stateless
/// 2026-07-28 revision, which would not be a like-for-like comparison. 2025-11-25 is the newest
/// revision both implement, and a session fails if either server negotiates anything else.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

pub type Client = RunningService<RoleClient, ClientConfig>;

pub fn client_config() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("domshell-bench", env!("CARGO_PKG_VERSION")),
    )
    .with_protocol_version(ProtocolVersion::V_2025_11_25)
}

/// The negotiated version must be the one asked for, or the comparison is not like for like.
pub fn check_protocol(client: &Client, server: &str) -> Result<()> {
    let info = client
        .peer_info()
        .with_context(|| format!("{server}: no initialize result"))?;
    anyhow::ensure!(
        info.protocol_version.as_str() == PROTOCOL_VERSION,
        "{server} negotiated protocol {} instead of {PROTOCOL_VERSION}",
        info.protocol_version
    );
    Ok(())
}

/// Open one MCP session over streamable HTTP with a bearer token (a fresh HTTP client, so
/// sessions do not share connections). `keep_alive: false` opens a connection per POST.
pub async fn connect_http(
    url: &str,
    token: &str,
    keep_alive: bool,
    server: &str,
    bound: Duration,
) -> Result<Client> {
    let mut http = reqwest013::Client::builder().no_proxy();
    if !keep_alive {
        http = http.pool_max_idle_per_host(0);
    }
    let http = http.build().context("building the HTTP client")?;
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_string())
        .auth_header(token.to_string());
    let transport = StreamableHttpClientTransport::with_client(http, config);
    let client = tokio::time::timeout(bound, client_config().serve(transport))
        .await
        .with_context(|| format!("{server}: initialize timed out"))?
        .with_context(|| format!("{server}: initialize over HTTP"))?;
    check_protocol(&client, server)?;
    Ok(client)
}

/// `tools/call domshell_execute` with `arguments`, bounded. A tool error (`isError`) is a
/// result, not an `Err`: callers decide what it means.
pub async fn execute(
    client: &Client,
    arguments: JsonObject,
    bound: Duration,
) -> Result<CallToolResult> {
    let params = CallToolRequestParams::new("domshell_execute").with_arguments(arguments);
    tokio::time::timeout(bound, client.peer().call_tool(params))
        .await
        .with_context(|| format!("no reply within {bound:?}"))?
        .context("tools/call domshell_execute")
}

/// The text blocks of a tool result, joined.
pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.as_str())
        .collect()
}
