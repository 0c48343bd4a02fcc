//! The owner's lifecycle: what a process that holds the bridge port starts (the bridge, the
//! MCP state, the relay door, the listeners on the bridge port and on `--mcp-port`, the
//! background tasks) and how it stops them — sessions ended and the extension told (4006),
//! then the listeners drained and every background task awaited, within bounds.
//!
//! Every task it spawns is tracked ([`JoinSet`] for listeners, [`TaskTracker`] for the rest)
//! and awaited by [`stop_services`]. It must not decide policy or speak MCP itself.

use std::future::IntoFuture;
use std::sync::Arc;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bridge::{self, Bridge};
use crate::config::{self, ServeArgs};
use crate::mcp::{self, McpShared};
use crate::relay_door::RelayDoor;
use crate::{host_check, http, policy};

/// The owner's services, running on their own tasks.
pub struct Services {
    pub shared: Arc<McpShared>,
    bridge: Bridge,
    /// Cancelled at shutdown: the listeners' graceful stop and the background tasks.
    pub shutdown: CancellationToken,
    /// The listeners; one ending early ends the owner.
    pub servers: JoinSet<std::io::Result<()>>,
    /// Background tasks (link-event fan-out, idle-session reaper), awaited at shutdown.
    background: TaskTracker,
}

/// Everything an owner serves on the bridge listener it holds (and on `--mcp-port`).
pub async fn start_services(args: &ServeArgs, listener: TcpListener) -> anyhow::Result<Services> {
    let bridge_config = args.bridge_config()?;
    let mcp_token = args.mcp_token(&bridge_config.token)?;
    // Without a relay key the owner still serves everything else; relays are told why.
    let relay_door = match args.relay_key() {
        Ok(key) => Some(Arc::new(RelayDoor::new(key))),
        Err(e) => {
            tracing::warn!("this owner admits no relays (stdio servers of other MCP hosts cannot attach): {e:#}");
            None
        }
    };
    let local = listener.local_addr().context("reading the bound address")?;
    let mcp_listener = match args.mcp_port {
        Some(port) => Some(
            TcpListener::bind((args.host.as_str(), port))
                .await
                .with_context(|| {
                    format!(
                        "cannot listen on {}:{port} for MCP (--mcp-port / MCP_PORT)",
                        args.host
                    )
                })?,
        ),
        None => None,
    };

    let policy = policy::Policy::new(args.policy_config());
    let audit = args.open_audit_log()?;
    let bridge = bridge::Bridge::new(bridge_config);
    let shutdown = CancellationToken::new();
    let background = TaskTracker::new();
    let shared = McpShared::new(
        bridge.clone(),
        policy,
        audit,
        mcp::McpConfig {
            call_budget: std::time::Duration::from_millis(args.command_timeout_ms),
            progress_interval: std::time::Duration::from_millis(args.progress_interval_ms.max(10)),
            session_idle_ttl: std::time::Duration::from_millis(args.session_idle_ttl_ms),
            transport: args.transport.label(),
            bridge_port: local.port(),
        },
    );
    shared.spawn_background(&background, shutdown.child_token());
    let http_options = mcp::transport::HttpOptions {
        allowed_hosts: args.mcp_allowed_hosts(),
        allowed_origins: args.mcp_allowed_origins(),
        session_idle_ttl: std::time::Duration::from_millis(args.session_idle_ttl_ms),
        token: mcp_token.clone(),
        bridge_token: bridge.config().token.clone(),
        relay_door: relay_door.clone(),
    };
    if http_options.allowed_hosts.is_empty() {
        tracing::warn!(host = %args.host, "Host header validation is off (--allowed-host '*'): any Host is accepted");
    }
    let app = http::AppState {
        bridge: bridge.clone(),
        shared: shared.clone(),
        debug_api: args.debug_api,
        mcp_token,
        relay_door,
        debug_sessions: Default::default(),
    };
    // One Host/Origin check in front of every route of both listeners.
    let guard =
        host_check::HostGuard::new(&http_options.allowed_hosts, &http_options.allowed_origins);
    let router = guard
        .clone()
        .protect(http::router(app.clone()).merge(mcp::transport::router(
            shared.clone(),
            &http_options,
            shutdown.child_token(),
        )));

    tracing::info!(
        "listening on {local}: extension bridge ws://{local}{}, MCP http://{local}/mcp, health http://{local}/health (transport: {})",
        shared_protocol::BRIDGE_PATH,
        args.transport.label()
    );
    let mut servers = tokio::task::JoinSet::new();
    let graceful = {
        let shutdown = shutdown.clone();
        move || {
            let shutdown = shutdown.clone();
            async move { shutdown.cancelled().await }
        }
    };
    servers.spawn(
        axum::serve(listener.tap_io(no_delay), router)
            .with_graceful_shutdown(graceful())
            .into_future(),
    );
    if let Some(mcp_listener) = mcp_listener {
        let mcp_local = mcp_listener
            .local_addr()
            .context("reading the MCP address")?;
        tracing::info!("MCP also on http://{mcp_local}/mcp");
        let router = guard.protect(http::health_router(app).merge(mcp::transport::router(
            shared.clone(),
            &http_options,
            shutdown.child_token(),
        )));
        servers.spawn(
            axum::serve(mcp_listener.tap_io(no_delay), router)
                .with_graceful_shutdown(graceful())
                .into_future(),
        );
    }
    if let Some(path) = &args.ready_file {
        config::write_ready_file(path, local.port())
            .with_context(|| format!("writing the ready file {}", path.display()))?;
    }
    shared.set_state(mcp::OwnerState::Ready);
    Ok(Services {
        shared,
        bridge,
        shutdown,
        servers,
        background,
    })
}

/// End the sessions, tell the extension (4006) and close the listeners.
pub async fn stop_services(mut services: Services) {
    services.shared.set_state(mcp::OwnerState::Draining);
    // Sessions ended and the extension told (4006) before the sockets close.
    services.bridge.shutdown();
    if !services
        .bridge
        .connections_closed(std::time::Duration::from_secs(2))
        .await
    {
        tracing::warn!("extension connections still open 2 s after the shutdown close");
    }
    services.shutdown.cancel();
    services.background.close();
    let drain = async {
        while services.servers.join_next().await.is_some() {}
        services.background.wait().await;
    };
    if tokio::time::timeout(std::time::Duration::from_secs(3), drain)
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 3 s; exiting anyway");
    }
}

/// Replies go out in several small writes (SSE priming event, then the result); with Nagle's
/// algorithm on, the second waits for the client's delayed ACK, about 40 ms per call on a
/// kept-alive connection.
fn no_delay(stream: &mut tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("cannot set TCP_NODELAY: {e}");
    }
}
