//! One try for the bridge port, as the driver runs it in the background: bind it, or find out
//! who holds it, and — when that is a domshell owner — have it prove the relay key before
//! this relay tells it anything.
//!
//! It owns the probing and binding of one try (jitter between contenders, the bounded wait
//! for an owner that says it is starting). It must not decide what the relay does with the
//! result; the core does, when the result arrives as an event.

use std::time::Duration;

use tokio::net::TcpListener;

use super::attach::{authenticate, AttachError};
use super::core::Found;
use super::RelayConfig;
use crate::election::{probe, Holder};
use crate::relay_door::HostClaim;

/// What a try found, with the listener or the owner's claim it won.
pub type Attempt = Found<TcpListener, HostClaim>;

/// What a contender decides about a port it could not bind, at start or after a loss.
pub async fn inspect(host: &str, port: u16) -> Holder {
    let ours = shared_protocol::PROTOCOL_VERSION;
    let mut holder = probe(
        host,
        port,
        3,
        Duration::from_secs(1),
        Duration::from_millis(500),
        ours,
    )
    .await;
    // An owner that says it is starting gets a bounded while to finish.
    for _ in 0..20 {
        if !matches!(holder, Holder::Starting(_)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        holder = probe(host, port, 1, Duration::from_secs(1), Duration::ZERO, ours).await;
    }
    holder
}

/// Bind the port, or find out who holds it.
pub async fn try_for_port(config: &RelayConfig) -> Attempt {
    let (host, port) = (config.host.as_str(), config.port);
    // Spread simultaneous contenders a little so one binds before the others probe.
    let jitter = u64::from(std::process::id()) % 250;
    tokio::time::sleep(Duration::from_millis(jitter)).await;
    if let Ok(listener) = TcpListener::bind((host, port)).await {
        return Found::Bound(listener);
    }
    let holder = inspect(host, port).await;
    if holder == Holder::Gone {
        // Freed between bind and probe: one more try.
        if let Ok(listener) = TcpListener::bind((host, port)).await {
            return Found::Bound(listener);
        }
    }
    attach_to(config, holder).await
}

/// A holder that says it is a domshell owner is asked to prove it.
pub async fn attach_to(config: &RelayConfig, holder: Holder) -> Attempt {
    if !matches!(holder, Holder::Owner(_)) {
        return Found::Held(holder);
    }
    let key = match &config.relay_key {
        Ok(key) => key,
        Err(why) => {
            return Found::Held(Holder::Unproven {
                detail: format!("this server cannot prove it is this user's: {why}"),
            })
        }
    };
    match authenticate(&config.host, config.port, key, &config.me).await {
        Ok(claim) => Found::Attached(claim),
        Err(AttachError::Unproven(detail)) | Err(AttachError::Refused(detail)) => {
            tracing::warn!(
                "the holder of port {} is not believed: {detail}",
                config.port
            );
            Found::Held(Holder::Unproven { detail })
        }
        Err(AttachError::Unreachable(detail)) => {
            tracing::debug!("relay challenge of port {}: {detail}", config.port);
            Found::Held(Holder::Unresponsive)
        }
    }
}
