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
mod owner;
mod pipeline;
mod policy;
mod relay;
mod relay_door;
mod uploads;

use anyhow::Context;
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
    // Colour only for a person at a terminal: Claude Desktop's MCP log file and container
    // logs would otherwise be full of escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
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
    let services = owner::start_services(&args, listener).await?;
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
    owner::stop_services(services).await;
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
    let audit = args.open_audit_log()?.map(std::sync::Arc::new);
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
            let services = owner::start_services(&args, listener).await?;
            Ok(relay::Owned {
                shared: services.shared.clone(),
                stop: Box::pin(owner::stop_services(services)),
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
