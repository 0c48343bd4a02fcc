//! The `domshell` binary: command-line parsing, logging setup, and the serve loop with
//! graceful shutdown. Logs go to stderr only; stdout is reserved for MCP over stdio.

mod auth;
mod bridge;
mod config;
mod http;

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;

use crate::config::{Cli, Command, ServeArgs};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("domshell: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Token(args) => {
                let (token, _) =
                    config::resolve_token(args.token.as_deref(), args.token_file.as_deref())?;
                println!("{token}");
                Ok(())
            }
        }
    });
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
    let bridge_config = args.bridge_config()?;
    let address = (args.host.as_str(), args.ws_port);
    let listener = TcpListener::bind(address).await.with_context(|| {
        format!(
            "cannot listen on {}:{} — another program holds the port; stop it or pass --ws-port <port> (and set the same port in the extension options)",
            args.host, args.ws_port
        )
    })?;
    let local = listener.local_addr().context("reading the bound address")?;
    tracing::info!(
        "bridge listening on ws://{local}{} (health: http://{local}/health)",
        shared_protocol::BRIDGE_PATH
    );
    if let Some(path) = &args.ready_file {
        config::write_ready_file(path, local.port())
            .with_context(|| format!("writing the ready file {}", path.display()))?;
    }

    let bridge = bridge::Bridge::new(bridge_config);
    let app = http::AppState {
        bridge: bridge.clone(),
        started_at: Instant::now(),
        debug_api: args.debug_api,
    };
    let router = http::router(app);
    let shutdown_bridge = bridge.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: closing the extension link");
            shutdown_bridge.shutdown();
            // Let the close frame reach the extension before connections are dropped.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        })
        .await
        .context("serving the bridge listener")?;
    Ok(())
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
