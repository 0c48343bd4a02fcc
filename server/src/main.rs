//! The `domshell` binary: command-line parsing, logging setup, and the serve loop with
//! graceful shutdown. Logs go to stderr only; stdout is reserved for MCP over stdio.

mod auth;
mod bridge;
mod config;
mod credentials;
mod election;
mod health;
mod host_check;
mod http;
mod http_reader;
mod hygiene;
mod init;
mod labels;
mod mcp;
mod pipeline;
mod policy;
mod relay;
mod relay_door;

use std::future::IntoFuture;

use anyhow::Context;
use axum::serve::ListenerExt;
use clap::Parser;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Cli, Command, ServeArgs};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The one-shot commands need no runtime and no log setup.
    match &cli.command {
        Command::Health(args) => {
            return match health::run(args) {
                Ok(true) => std::process::ExitCode::SUCCESS,
                Ok(false) => std::process::ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("domshell health: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        Command::Init(args) => {
            return match init::run(args) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("domshell init: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        Command::Serve(_) | Command::Token(_) => {}
    }
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("domshell: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Command::Serve(args) = &cli.command {
        if args.watchdog_ms > 0 {
            let limit = std::time::Duration::from_millis(args.watchdog_ms);
            if let Err(e) = hygiene::start_watchdog(&runtime, limit) {
                eprintln!("domshell: {e:#}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(*args).await,
            Command::Token(args) => {
                println!("{}", args.secret()?.expose());
                Ok(())
            }
            Command::Health(_) | Command::Init(_) => Ok(()),
        }
    });
    // tokio reads stdin on a blocking thread that no shutdown can interrupt: do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("domshell: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOMSHELL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if let Some(ms) = args.stall_runtime_after_ms {
        hygiene::stall_runtime_after(std::time::Duration::from_millis(ms));
    }
    // A stdio server belongs to the host that started it: when that process dies, so do we,
    // even if a leaked copy of the stdin pipe keeps it open.
    let host_gone = CancellationToken::new();
    if args.transport == config::Transport::Stdio {
        hygiene::watch_parent(host_gone.clone());
    }
    // Binding the bridge port first is the ownership lock: the kernel frees it whatever way
    // its holder dies, so there is no lock file to go stale.
    let listener = match TcpListener::bind((args.host.as_str(), args.ws_port)).await {
        Ok(listener) => listener,
        Err(e)
            if e.kind() == std::io::ErrorKind::AddrInUse
                && args.transport == config::Transport::Stdio =>
        {
            return attach(args, host_gone).await;
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot listen on {}:{} — another program holds the port; stop it or pass --ws-port <port> (and set the same port in the extension options)",
                    args.host, args.ws_port
                )
            })
        }
    };
    let services = start_services(&args, listener).await?;
    let stdio_done = CancellationToken::new();
    if args.transport == config::Transport::Stdio {
        let (shared, shutdown, done) = (
            services.shared.clone(),
            services.shutdown.clone(),
            stdio_done.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) = mcp::transport::serve_stdio(shared, shutdown).await {
                tracing::error!("{e:#}");
            }
            done.cancel();
        });
    }
    let mut services = services;
    tokio::select! {
        _ = shutdown_signal() => tracing::info!("signal received: shutting down"),
        // The host closed stdin: it is done with us.
        _ = stdio_done.cancelled() => tracing::info!("the MCP client closed stdio: shutting down"),
        _ = host_gone.cancelled() => {}
        Some(result) = services.servers.join_next() => {
            if let Ok(Err(e)) = result {
                tracing::error!("listener failed: {e}");
            }
        }
    }
    stop_services(services).await;
    Ok(())
}

/// The bridge port is held: serve this host through a relay to the owner, or explain the
/// conflict over MCP (and to stderr) while retrying, taking the port over when it frees up.
async fn attach(args: ServeArgs, host_gone: CancellationToken) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let holder = relay::inspect(&args.host, args.ws_port).await;
    if std::io::stdin().is_terminal() {
        // A person at a terminal gets the explanation and a non-zero exit, not a relay that
        // waits for JSON-RPC on the keyboard.
        let text = match &holder {
            election::Holder::Owner(info) => format!(
                "domshell: another domshell (pid {}) already owns port {}; MCP hosts can use it at http://{}:{}/mcp, or start this one with --ws-port <other port>",
                info.pid.map_or("?".into(), |p| p.to_string()),
                args.ws_port,
                args.host,
                args.ws_port
            ),
            other => relay::Conflict::from_holder(other, args.ws_port).text(),
        };
        anyhow::bail!("{text}");
    }
    // The flags are checked as an owner would check them: this process may become one.
    args.bridge_config()?;
    let pid = std::process::id();
    let relay_key = args.relay_key().map_err(|e| format!("{e:#}"));
    if let Err(why) = &relay_key {
        tracing::warn!("no relay key, so this server cannot attach to another: {why}");
    }
    let audit = match args.audit_path()? {
        Some(path) => Some(std::sync::Arc::new(
            policy::audit::AuditLog::open(&path, args.audit_max_bytes).with_context(|| {
                format!(
                    "opening the audit log {} (or pass --no-audit)",
                    path.display()
                )
            })?,
        )),
        None => None,
    };
    let config = relay::RelayConfig {
        host: args.host.clone(),
        port: args.ws_port,
        relay_key,
        heal_interval: std::time::Duration::from_secs(2),
        // One shell session for this host across every owner it is served by.
        me: relay::RelayIdentity {
            identity: format!("stdio-{pid}-{}", auth::random_hex(6)?),
            client_id: format!("stdio-proxy/{pid}"),
            policy: args.policy_config(),
        },
        audit,
    };
    let starter_args = std::sync::Arc::new(args);
    let starter: relay::OwnerStarter = std::sync::Arc::new(move |listener| {
        let args = starter_args.clone();
        Box::pin(async move {
            let services = start_services(&args, listener).await?;
            Ok(relay::Owned {
                shared: services.shared.clone(),
                stop: Box::pin(stop_services(services)),
            })
        })
    });
    let shutdown = host_gone;
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("signal received: shutting down");
        on_signal.cancel();
    });
    relay::run(config, starter, holder, shutdown).await
}

/// The owner's services, running on their own tasks.
struct Services {
    shared: std::sync::Arc<mcp::McpShared>,
    bridge: bridge::Bridge,
    shutdown: CancellationToken,
    servers: tokio::task::JoinSet<std::io::Result<()>>,
}

/// Everything an owner serves on the bridge listener it holds (and on `--mcp-port`).
async fn start_services(args: &ServeArgs, listener: TcpListener) -> anyhow::Result<Services> {
    let bridge_config = args.bridge_config()?;
    let mcp_token = args.mcp_token(&bridge_config.token)?;
    // Without a relay key the owner still serves everything else; relays are told why.
    let relay_door = match args.relay_key() {
        Ok(key) => Some(std::sync::Arc::new(relay_door::RelayDoor::new(key))),
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
    let audit = match args.audit_path()? {
        Some(path) => Some(
            policy::audit::AuditLog::open(&path, args.audit_max_bytes).with_context(|| {
                format!(
                    "opening the audit log {} (or pass --no-audit)",
                    path.display()
                )
            })?,
        ),
        None => None,
    };
    let bridge = bridge::Bridge::new(bridge_config);
    let shared = mcp::McpShared::new(
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
    let shutdown = CancellationToken::new();
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
    })
}

/// End the sessions, tell the extension (4006) and close the listeners.
async fn stop_services(mut services: Services) {
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
    let drain = async { while services.servers.join_next().await.is_some() {} };
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

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
