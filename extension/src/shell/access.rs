//! Which URLs the shell may open and which pages it may read: the extension's second line
//! of defence behind the server's policy.
//!
//! It owns three rules, each in one place so every command (and the page commands still to
//! come) applies them the same way:
//! * navigation targets must be `http(s)` or `about:blank`;
//! * browser-internal pages (`chrome://`, `devtools://`, `view-source:`, other extensions'
//!   pages, …) are never read or driven;
//! * while the server sends a domain allowlist (in every `EXECUTE`), only pages on those
//!   hosts (and their subdomains) may be opened, and reading a tab outside it is refused —
//!   the server cannot see redirects, `back`/`forward` targets or which tab a command acts on.
//!
//! Host matching is the server's own ([`shared_protocol::domains`]): exact host or a
//! subdomain of it, IP literals exactly. URLs are parsed by the browser's own `URL` (so the
//! WASM carries no URL/IDNA tables); off the browser, by the `url` crate under the same
//! WHATWG rules. It must not do I/O.

use shared_protocol::domains::{DomainAllowlist, UrlHost};

/// Schemes whose pages belong to the browser or to another extension.
const INTERNAL_SCHEMES: [&str; 7] = [
    "chrome",
    "chrome-extension",
    "chrome-untrusted",
    "devtools",
    "view-source",
    "chrome-search",
    "edge",
];

/// The domain allowlist of one command (empty: anywhere), matched by the same rules as the
/// server's ([`shared_protocol::domains`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainList {
    allowlist: DomainAllowlist,
}

/// Why a URL may not be opened or read. The message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{url} is a browser-internal page ({scheme}:); domshell cannot open or read it. Use an http(s) page (e.g. `open https://example.com`), or pick another tab with `tabs`")]
    Internal { url: String, scheme: String },
    #[error("{url}: only http(s) URLs and about:blank can be opened (got a {scheme}: URL)")]
    Scheme { url: String, scheme: String },
    #[error("{url} is not a valid URL ({why})")]
    Invalid { url: String, why: String },
    #[error("{url} is outside the domain allowlist ({host} is not one of: {allowed}); the server's --domains list decides which sites are reachable")]
    Domain {
        url: String,
        host: String,
        allowed: String,
    },
}

/// Parses `text` with the browser's `URL`, as the page itself would.
#[cfg(target_arch = "wasm32")]
fn parse_url(text: &str) -> Result<UrlHost, String> {
    let url = web_sys::Url::new(text).map_err(|e| {
        js_sys::Error::from(e)
            .message()
            .as_string()
            .unwrap_or_else(|| "the browser's URL parser refused it".into())
    })?;
    let scheme = url.protocol();
    let host = url.hostname();
    Ok(UrlHost {
        scheme: scheme.trim_end_matches(':').to_ascii_lowercase(),
        host: (!host.is_empty()).then_some(host),
    })
}

/// Off the browser (unit tests), the `url` crate implements the same standard.
#[cfg(not(target_arch = "wasm32"))]
fn parse_url(text: &str) -> Result<UrlHost, String> {
    shared_protocol::domains::whatwg_parse(text)
}

impl DomainList {
    pub fn new<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        DomainList {
            allowlist: DomainAllowlist::new_with(entries, parse_url),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.allowlist.is_empty()
    }

    /// Whether what concerns `url` (a request the page made) may be shown: any URL without
    /// an allowlist, else one on a listed host.
    pub fn allows_host(&self, url: &str) -> bool {
        self.is_empty() || check_domain(url, self).is_ok()
    }

    fn describe(&self) -> String {
        self.allowlist.entries().join(", ")
    }
}

fn scheme_of(url: &str) -> String {
    url.split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default()
}

fn is_about_blank(url: &str) -> bool {
    url.eq_ignore_ascii_case("about:blank")
}

fn check_domain(url_text: &str, domains: &DomainList) -> Result<(), Refusal> {
    domains
        .allowlist
        .check_with(url_text, parse_url)
        .map_err(|denied| Refusal::Domain {
            url: url_text.to_string(),
            host: denied.host.unwrap_or_else(|| "(no host)".into()),
            allowed: domains.describe(),
        })
}

/// May the shell navigate a tab to `url` (already normalised by
/// [`shared_protocol::grammar::navigation_url`])?
pub fn check_navigation(url: &str, domains: &DomainList) -> Result<(), Refusal> {
    if is_about_blank(url) {
        return Ok(());
    }
    let scheme = scheme_of(url);
    if INTERNAL_SCHEMES.contains(&scheme.as_str()) {
        return Err(Refusal::Internal {
            url: url.to_string(),
            scheme,
        });
    }
    if scheme != "http" && scheme != "https" {
        return Err(Refusal::Scheme {
            url: url.to_string(),
            scheme,
        });
    }
    parse_url(url).map_err(|why| Refusal::Invalid {
        url: url.to_string(),
        why,
    })?;
    check_domain(url, domains)
}

/// May the shell read or drive the page a tab shows? Browser-internal pages never; with an
/// allowlist, only `about:blank` and `http(s)` pages on listed hosts.
pub fn check_page(url: &str, domains: &DomainList) -> Result<(), Refusal> {
    let scheme = scheme_of(url);
    if INTERNAL_SCHEMES.contains(&scheme.as_str()) {
        return Err(Refusal::Internal {
            url: url.to_string(),
            scheme,
        });
    }
    if domains.is_empty() || is_about_blank(url) {
        return Ok(());
    }
    if scheme != "http" && scheme != "https" {
        return Err(Refusal::Scheme {
            url: url.to_string(),
            scheme,
        });
    }
    parse_url(url).map_err(|why| Refusal::Invalid {
        url: url.to_string(),
        why,
    })?;
    check_domain(url, domains)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> DomainList {
        DomainList::new(entries.iter().copied())
    }

    #[test]
    fn internal_pages_are_refused_with_advice() {
        for url in [
            "chrome://settings",
            "devtools://devtools/bundled/inspector.html",
            "view-source:https://example.com",
            "chrome-extension://abcdefghijklmnop/options.html",
        ] {
            let err = check_navigation(url, &list(&[])).unwrap_err();
            assert!(matches!(err, Refusal::Internal { .. }), "{url}");
            assert!(err.to_string().contains("browser-internal"), "{err}");
            assert!(check_page(url, &list(&[])).is_err(), "{url}");
        }
    }

    #[test]
    fn only_http_and_about_blank_are_opened() {
        assert!(check_navigation("https://example.com/", &list(&[])).is_ok());
        assert!(check_navigation("http://127.0.0.1:8080/x", &list(&[])).is_ok());
        assert!(check_navigation("about:blank", &list(&["example.com"])).is_ok());
        for url in [
            "data:text/html,hi",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "ftp://x",
        ] {
            let err = check_navigation(url, &list(&[])).unwrap_err();
            assert!(matches!(err, Refusal::Scheme { .. }), "{url}: {err}");
        }
        assert!(matches!(
            check_navigation("https://", &list(&[])).unwrap_err(),
            Refusal::Invalid { .. }
        ));
    }

    #[test]
    fn allowlist_matches_hosts_and_subdomains_only() {
        let l = list(&["example.com", "127.0.0.1"]);
        assert!(check_navigation("https://example.com/a", &l).is_ok());
        assert!(check_navigation("https://www.EXAMPLE.com./a", &l).is_ok());
        assert!(check_navigation("http://127.0.0.1:9000/", &l).is_ok());
        for url in [
            "https://notexample.com/",
            "https://example.com.evil.io/",
            "https://example.com@evil.io/",
            "http://localhost:9000/",
            "http://127.0.0.2/",
        ] {
            let err = check_navigation(url, &l).unwrap_err();
            assert!(matches!(err, Refusal::Domain { .. }), "{url}: {err}");
            assert!(err.to_string().contains("outside the domain allowlist"));
        }
    }

    #[test]
    fn reading_pages_follows_the_same_list() {
        let l = list(&["example.com"]);
        assert!(check_page("https://example.com/", &l).is_ok());
        assert!(check_page("about:blank", &l).is_ok());
        assert!(check_page("https://other.org/", &l).is_err());
        assert!(check_page("data:text/html,x", &l).is_err());
        // Without a list, anything but internal pages may be read.
        assert!(check_page("data:text/html,x", &list(&[])).is_ok());
        assert!(check_page("chrome://newtab/", &list(&[])).is_err());
    }
}
