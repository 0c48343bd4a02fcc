//! DNS-rebinding protection for every route on a listener: the `Host` header must name an
//! allowed host, and a browser `Origin`, when present, must be an allowed origin.
//!
//! A web page on another site can make the browser send requests to 127.0.0.1 under its own
//! host name (DNS rebinding) and read the answers; checking `Host` and `Origin` on every route
//! (`/health` shows the pid, the policy and the link state) closes that. This is the one
//! implementation: the MCP transport's own checks are switched off in favour of it. The
//! WebSocket upgrade keeps its stricter extension-origin rule (`auth::OriginPolicy`), so
//! only `Host` is checked here for it. It must not look at bodies or tokens.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use shared_protocol::BRIDGE_PATH;

/// The allowed `Host` and `Origin` values of one listener.
#[derive(Debug, Clone)]
pub struct HostGuard {
    /// Empty: any host (a server bound to a non-loopback address without --allowed-host).
    hosts: Vec<Authority>,
    origins: Vec<AllowedOrigin>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority {
    host: String,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AllowedOrigin {
    Null,
    Tuple {
        scheme: String,
        host: String,
        /// `None`: any port (`:*`, or no port given).
        port: Option<u16>,
    },
}

fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

fn parse_authority(text: &str) -> Option<Authority> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match axum::http::uri::Authority::try_from(text) {
        Ok(a) => Some(Authority {
            host: normalize_host(a.host()),
            port: a.port_u16(),
        }),
        Err(_) => Some(Authority {
            host: normalize_host(text),
            port: None,
        }),
    }
}

/// `scheme://host[:port]` (or `null`) as sent in an `Origin` header.
fn parse_origin(text: &str) -> Option<(String, String, Option<u16>)> {
    let uri = Uri::try_from(text.trim()).ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    Some((
        scheme,
        normalize_host(authority.host()),
        authority.port_u16(),
    ))
}

fn parse_allowed_origin(text: &str) -> Option<AllowedOrigin> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("null") {
        return Some(AllowedOrigin::Null);
    }
    let (base, any_port) = match text.strip_suffix(":*") {
        Some(base) => (base, true),
        None => (text, false),
    };
    let (scheme, host, port) = parse_origin(base)?;
    if any_port && port.is_some() {
        return None;
    }
    Some(AllowedOrigin::Tuple { scheme, host, port })
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl HostGuard {
    pub fn new(allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        let origins = allowed_origins
            .iter()
            .filter_map(|o| {
                let parsed = parse_allowed_origin(o);
                if parsed.is_none() {
                    tracing::warn!(
                        origin = o.as_str(),
                        "ignoring an --allowed-origin that is not scheme://host[:port|:*]"
                    );
                }
                parsed
            })
            .collect();
        Self {
            hosts: allowed_hosts
                .iter()
                .filter_map(|h| parse_authority(h))
                .collect(),
            origins,
        }
    }

    /// `Err(why)` when the `Host` header is missing, malformed or not allowed.
    pub fn check_host(&self, headers: &HeaderMap) -> Result<(), String> {
        if self.hosts.is_empty() {
            return Ok(());
        }
        let Some(value) = headers.get(header::HOST) else {
            return Err("missing Host header".into());
        };
        let Some(host) = value.to_str().ok().and_then(parse_authority) else {
            return Err("malformed Host header".into());
        };
        let allowed = self
            .hosts
            .iter()
            .any(|a| a.host == host.host && a.port.is_none_or(|port| host.port == Some(port)));
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "Host {:?} is not allowed (DNS-rebinding protection); start the server with --allowed-host to admit it",
                host.host
            ))
        }
    }

    /// `Err(why)` when an `Origin` header is present and not allowed. Clients that are not
    /// browsers send none.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), String> {
        let Some(value) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let text = value
            .to_str()
            .map_err(|_| "malformed Origin header".to_string())?;
        let allowed = if text.trim().eq_ignore_ascii_case("null") {
            self.origins.contains(&AllowedOrigin::Null)
        } else {
            let Some((scheme, host, port)) = parse_origin(text) else {
                return Err("malformed Origin header".into());
            };
            let port = port.or_else(|| default_port(&scheme));
            self.origins.iter().any(|allowed| match allowed {
                AllowedOrigin::Null => false,
                AllowedOrigin::Tuple {
                    scheme: s,
                    host: h,
                    port: p,
                } => *s == scheme && *h == host && p.is_none_or(|p| Some(p) == port),
            })
        };
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "Origin {text} is not allowed; start the server with --allowed-origin to admit it"
            ))
        }
    }

    /// Apply the checks to every route of `router`.
    pub fn protect(self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(Arc::new(self), guard))
    }
}

async fn guard(State(guard): State<Arc<HostGuard>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let mut verdict = guard.check_host(headers);
    if verdict.is_ok() && request.uri().path() != BRIDGE_PATH {
        verdict = guard.check_origin(headers);
    }
    match verdict {
        Ok(()) => next.run(request).await,
        Err(why) => {
            tracing::warn!(path = request.uri().path(), "request refused: {why}");
            (
                StatusCode::FORBIDDEN,
                Json(serde_json::json!({ "error": why })),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> HostGuard {
        HostGuard::new(
            &["localhost".into(), "127.0.0.1".into(), "::1".into()],
            &[
                "http://localhost:*".into(),
                "http://127.0.0.1:*".into(),
                "http://[::1]:*".into(),
            ],
        )
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn hosts_are_matched_by_name_and_optional_port() {
        let g = loopback();
        for ok in ["127.0.0.1:9876", "localhost", "LOCALHOST:1", "[::1]:9876"] {
            assert!(g.check_host(&headers(&[("host", ok)])).is_ok(), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:9876",
            "127.0.0.1.evil.example",
        ] {
            let err = g.check_host(&headers(&[("host", bad)])).unwrap_err();
            assert!(err.contains("--allowed-host"), "{bad}: {err}");
        }
        assert!(g.check_host(&HeaderMap::new()).is_err());
        let pinned = HostGuard::new(&["example.com:8080".into()], &[]);
        assert!(pinned
            .check_host(&headers(&[("host", "example.com:8080")]))
            .is_ok());
        assert!(pinned
            .check_host(&headers(&[("host", "example.com:9090")]))
            .is_err());
        let open = HostGuard::new(&[], &[]);
        assert!(open.check_host(&headers(&[("host", "anything")])).is_ok());
    }

    #[test]
    fn origins_are_matched_by_scheme_host_and_port() {
        let g = loopback();
        assert!(
            g.check_origin(&HeaderMap::new()).is_ok(),
            "no Origin: not a browser"
        );
        for ok in [
            "http://127.0.0.1:5173",
            "http://localhost",
            "http://[::1]:3000",
        ] {
            assert!(g.check_origin(&headers(&[("origin", ok)])).is_ok(), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "http://evil.example:80",
            "https://127.0.0.1:5173",
            "null",
            "chrome-extension://abcdefghijklmnopabcdefghijklmnop",
            "garbage",
        ] {
            assert!(
                g.check_origin(&headers(&[("origin", bad)])).is_err(),
                "{bad}"
            );
        }
        let exact = HostGuard::new(&[], &["https://app.example:443".into(), "null".into()]);
        assert!(exact
            .check_origin(&headers(&[("origin", "https://app.example")]))
            .is_ok());
        assert!(exact
            .check_origin(&headers(&[("origin", "https://app.example:8443")]))
            .is_err());
        assert!(exact.check_origin(&headers(&[("origin", "null")])).is_ok());
    }
}
