//! `domshell health`: ask a running server for `GET /health` and exit 0 when it answers 200,
//! 1 otherwise — the container image's health check, since a `scratch` image has no curl.
//!
//! It owns only this client side: a minimal HTTP/1.1 GET over a plain TCP socket with a
//! bounded wait, the answer read by [`crate::http_reader`]. It must not print the health document to stdout unless asked (`--print`),
//! must not retry (the container engine schedules retries), and must not speak to anything
//! but the address it was given.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use crate::http_reader;

/// Where the health check looks when neither `--url` nor `--port` is given: `MCP_PORT` (the
/// port a container host such as ToolHive assigned), else `DOMSHELL_WS_PORT`, else 9876.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Full URL of the health route, e.g. http://127.0.0.1:9876/health.
    #[arg(long, conflicts_with = "port")]
    pub url: Option<String>,

    /// Port on 127.0.0.1 (default: $MCP_PORT, else $DOMSHELL_WS_PORT, else 9876).
    #[arg(long)]
    pub port: Option<u16>,

    /// How long to wait for the answer, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    pub timeout_ms: u64,

    /// Print the health document on stdout.
    #[arg(long)]
    pub print: bool,
}

/// The target of the check, resolved from flags and environment values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Target {
    /// Resolve the target. `env` looks up an environment variable (injected for tests).
    pub fn resolve(
        url: Option<&str>,
        port: Option<u16>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Target> {
        if let Some(url) = url {
            return Target::from_url(url);
        }
        let port = match port {
            Some(port) => port,
            None => {
                let from_env = |name: &str| -> anyhow::Result<Option<u16>> {
                    match env(name).filter(|v| !v.trim().is_empty()) {
                        Some(value) => value
                            .trim()
                            .parse()
                            .map(Some)
                            .with_context(|| format!("{name}={value:?} is not a port")),
                        None => Ok(None),
                    }
                };
                match from_env("MCP_PORT")? {
                    Some(port) => port,
                    None => from_env("DOMSHELL_WS_PORT")?
                        .unwrap_or(shared_protocol::DEFAULT_BRIDGE_PORT),
                }
            }
        };
        Ok(Target {
            host: "127.0.0.1".into(),
            port,
            path: "/health".into(),
        })
    }

    fn from_url(text: &str) -> anyhow::Result<Target> {
        let url = url::Url::parse(text).with_context(|| format!("--url {text:?} is not a URL"))?;
        if url.scheme() != "http" {
            bail!("--url must be an http:// URL (the server speaks plain HTTP), not {text}");
        }
        let host = url
            .host_str()
            .with_context(|| format!("--url {text} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let path = match url.path() {
            "" | "/" => "/health".to_string(),
            path => path.to_string(),
        };
        Ok(Target { host, port, path })
    }
}

/// Largest answer read: a health document is a few KiB.
const MAX_ANSWER_BYTES: usize = 1 << 20;

fn fetch(target: &Target, timeout: Duration) -> anyhow::Result<(u16, String)> {
    let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {}", target.host))?
        .collect();
    let addr = addrs
        .first()
        .with_context(|| format!("{} resolves to no address", target.host))?;
    let mut stream = TcpStream::connect_timeout(addr, timeout)
        .with_context(|| format!("connecting to {addr}: is the server running?"))?;
    stream
        .set_read_timeout(Some(timeout))
        .context("setting a read timeout")?;
    stream
        .set_write_timeout(Some(timeout))
        .context("setting a write timeout")?;
    let host_header = if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host_header}\r\nAccept: application/json\r\nConnection: close\r\nUser-Agent: domshell-health\r\n\r\n",
        target.path
    );
    stream
        .write_all(request.as_bytes())
        .context("sending the request")?;
    let response = http_reader::read_response_blocking(&mut stream, MAX_ANSWER_BYTES)
        .with_context(|| format!("reading the answer from {addr}"))?;
    Ok((response.status, response.body))
}

/// Run the check; `Ok(true)` when the server answered 200.
pub fn run(args: &HealthArgs) -> anyhow::Result<bool> {
    let target = Target::resolve(args.url.as_deref(), args.port, |name| {
        std::env::var(name).ok()
    })?;
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    match fetch(&target, timeout) {
        Ok((200, body)) => {
            if args.print {
                println!("{}", body.trim_end());
            }
            Ok(true)
        }
        Ok((code, _)) => {
            eprintln!(
                "domshell health: http://{}:{}{} answered {code}",
                target.host, target.port, target.path
            );
            Ok(false)
        }
        Err(e) => {
            eprintln!(
                "domshell health: http://{}:{}{}: {e:#}",
                target.host, target.port, target.path
            );
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_assigned_mcp_port_wins_over_the_bridge_port() {
        let target = Target::resolve(
            None,
            None,
            env_of(&[("MCP_PORT", "8080"), ("DOMSHELL_WS_PORT", "9000")]),
        )
        .unwrap();
        assert_eq!(target.port, 8080);
        let target = Target::resolve(None, None, env_of(&[("DOMSHELL_WS_PORT", "9000")])).unwrap();
        assert_eq!(target.port, 9000);
        let target = Target::resolve(None, None, env_of(&[])).unwrap();
        assert_eq!(target.port, shared_protocol::DEFAULT_BRIDGE_PORT);
        assert_eq!(target.host, "127.0.0.1");
        assert_eq!(target.path, "/health");
    }

    #[test]
    fn an_explicit_port_or_url_wins_over_the_environment() {
        let target = Target::resolve(None, Some(7000), env_of(&[("MCP_PORT", "8080")])).unwrap();
        assert_eq!(target.port, 7000);
        let target = Target::resolve(
            Some("http://localhost:4000/health"),
            None,
            env_of(&[("MCP_PORT", "8080")]),
        )
        .unwrap();
        assert_eq!(
            target,
            Target {
                host: "localhost".into(),
                port: 4000,
                path: "/health".into()
            }
        );
        let bare = Target::resolve(Some("http://[::1]:4000"), None, env_of(&[])).unwrap();
        assert_eq!((bare.host.as_str(), bare.path.as_str()), ("::1", "/health"));
    }

    #[test]
    fn bad_inputs_say_what_is_wrong() {
        let err = Target::resolve(None, None, env_of(&[("MCP_PORT", "eighty")])).unwrap_err();
        assert!(err.to_string().contains("MCP_PORT"), "{err}");
        let err = Target::resolve(Some("https://x/health"), None, env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
    }

    #[test]
    fn responses_are_parsed_for_status_and_body() {
        let response = http_reader::parse(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"a\":1}",
        )
        .unwrap();
        assert_eq!(
            (response.status, response.body.as_str()),
            (200, "{\"a\":1}")
        );
        let response = http_reader::parse(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").unwrap();
        assert_eq!(response.status, 503);
        assert!(http_reader::parse(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(http_reader::parse(b"").is_err());
    }

    #[test]
    fn a_live_listener_answering_200_is_healthy_and_a_closed_port_is_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = socket.read(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                .unwrap();
            request
        });
        let args = HealthArgs {
            url: None,
            port: Some(port),
            timeout_ms: 2_000,
            print: false,
        };
        assert!(run(&args).unwrap());
        let request = server.join().unwrap();
        assert!(request.starts_with("GET /health HTTP/1.1\r\n"), "{request}");

        // The listener is gone: nothing answers on that port now.
        assert!(!run(&args).unwrap());
    }

    #[test]
    fn a_sized_answer_is_read_without_waiting_for_the_server_to_close() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                .unwrap();
            // Open until the check is over: reading to the close would time out.
            let _ = wait.recv();
        });
        let args = HealthArgs {
            url: None,
            port: Some(port),
            timeout_ms: 2_000,
            print: false,
        };
        assert!(run(&args).unwrap());
        done.send(()).unwrap();
        server.join().unwrap();
    }
}
