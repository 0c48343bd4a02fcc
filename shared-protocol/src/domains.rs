//! The domain allowlist (`--domains a.com,b.com`): one definition of host extraction and
//! matching for both sides. The server checks navigation targets with it before a command
//! is sent; the extension checks, with the same rules, what only it can see — where a page
//! redirected to, where `back`/`forward` or a clicked link led, which tab a command acts on.
//!
//! It must not decide tiers or do I/O.
//!
//! Rules:
//! * An empty allowlist allows everything and parses nothing.
//! * A target is first normalised exactly as the extension opens it
//!   ([`navigation_url`]: `example.com/x` means `https://example.com/x`), then parsed
//!   with the WHATWG URL rules browsers use, so `https://ok.com@evil.com` and
//!   `https://evil.com\@ok.com` are both `evil.com`.
//! * `http`, `https`, `ws` and `wss` URLs are allowed when their host equals an entry or
//!   ends with `.entry`, compared case-insensitively, ignoring a trailing dot, with
//!   international names in their punycode form. IP addresses must match exactly.
//! * `about:blank` is always allowed (it shows nothing); every other scheme (`data:`,
//!   `javascript:`, `file:`, `chrome:`, …) and anything unparsable is denied while an
//!   allowlist is set, because it has no host to vouch for.
//! * Entries may be written as `example.com`, `.example.com`, `*.example.com`,
//!   `Example.COM.` or a URL (`https://example.com:8443/x`); only the host counts.
//!
//! The URL parser is passed in ([`ParseUrl`]): the server uses the `url` crate (feature
//! `whatwg-url`, on by default, [`whatwg_parse`]); the extension uses the browser's own
//! `URL`, so its WASM carries no second copy of the URL and IDNA tables.

use crate::grammar::navigation_url;

const HOST_SCHEMES: [&str; 4] = ["http", "https", "ws", "wss"];

/// What the allowlist reads of a URL parsed by the WHATWG rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlHost {
    /// Lower-case, without the `:`.
    pub scheme: String,
    /// The host as serialised by the URL standard: a domain in lower-case punycode, an IPv4
    /// address in dotted decimal, an IPv6 address in brackets; `None` (or empty) when the
    /// URL has none.
    pub host: Option<String>,
}

/// A WHATWG URL parser; `Err` says why the text is not a URL.
pub type ParseUrl = fn(&str) -> Result<UrlHost, String>;

/// [`ParseUrl`] by the `url` crate.
#[cfg(feature = "whatwg-url")]
pub fn whatwg_parse(text: &str) -> Result<UrlHost, String> {
    let url = url::Url::parse(text).map_err(|e| e.to_string())?;
    let host = match url.host() {
        Some(url::Host::Domain(domain)) => Some(domain.to_string()),
        Some(url::Host::Ipv4(ip)) => Some(ip.to_string()),
        Some(url::Host::Ipv6(ip)) => Some(format!("[{ip}]")),
        None => None,
    };
    Ok(UrlHost {
        scheme: url.scheme().to_string(),
        host,
    })
}

/// Normalised allowlist entries (lower-case ASCII hosts, no trailing dot).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainAllowlist {
    entries: Vec<String>,
}

/// Why a navigation target is outside the allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDenied {
    /// The target as written.
    pub target: String,
    /// The host it resolved to, when it has one.
    pub host: Option<String>,
    /// A sentence fragment: "host evil.com is not in the allowlist".
    pub why: String,
}

impl DomainAllowlist {
    /// Builds the allowlist from `--domains` values; blank entries are ignored.
    #[cfg(feature = "whatwg-url")]
    pub fn new<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::new_with(entries, whatwg_parse)
    }

    /// [`DomainAllowlist::new`] with the given URL parser.
    pub fn new_with<I, S>(entries: I, parse: ParseUrl) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Vec::new();
        for entry in entries {
            if let Some(host) = normalise_entry(entry.as_ref(), parse) {
                if !list.contains(&host) {
                    list.push(host);
                }
            }
        }
        Self { entries: list }
    }

    /// No restriction at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The normalised entries, e.g. to forward to the extension.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// Whether a bare host name (or IP literal) is covered.
    pub fn allows_host(&self, host: &str) -> bool {
        if self.is_empty() {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        // An IP literal never matches as a suffix. IPv6 hosts come bracketed from URL
        // parsers, and a bare one has colons, which no domain name has (reading it as an
        // address would only add 4 KB of parser to the extension's WASM).
        let is_ip = host.starts_with('[')
            || host.contains(':')
            || host.parse::<std::net::Ipv4Addr>().is_ok();
        self.entries.iter().any(|entry| {
            host == *entry
                || (!is_ip
                    && host.len() > entry.len()
                    && host.ends_with(entry.as_str())
                    && host[..host.len() - entry.len()].ends_with('.'))
        })
    }

    /// Checks a navigation target as the extension will open it.
    #[cfg(feature = "whatwg-url")]
    pub fn check(&self, target: &str) -> Result<(), DomainDenied> {
        self.check_with(target, whatwg_parse)
    }

    /// [`DomainAllowlist::check`] with the given URL parser.
    pub fn check_with(&self, target: &str, parse: ParseUrl) -> Result<(), DomainDenied> {
        if self.is_empty() {
            return Ok(());
        }
        let url_text = navigation_url(target);
        let deny = |host: Option<String>, why: String| DomainDenied {
            target: target.to_string(),
            host,
            why,
        };
        if url_text.eq_ignore_ascii_case("about:blank") {
            return Ok(());
        }
        let url = parse(&url_text)
            .map_err(|e| deny(None, format!("`{url_text}` is not a valid URL ({e})")))?;
        let scheme = url.scheme.as_str();
        if !HOST_SCHEMES.contains(&scheme) {
            return Err(deny(
                None,
                format!(
                    "{scheme}: URLs have no host to check; only http(s), ws(s) and about:blank are allowed while a domain allowlist is set"
                ),
            ));
        }
        let host = match url.host.filter(|h| !h.is_empty()) {
            Some(host) => host.trim_end_matches('.').to_string(),
            None => return Err(deny(None, format!("`{url_text}` has no host"))),
        };
        if self.allows_host(&host) {
            Ok(())
        } else {
            let why = format!("host {host} is not in the domain allowlist");
            Err(deny(Some(host), why))
        }
    }
}

fn normalise_entry(entry: &str, parse: ParseUrl) -> Option<String> {
    let trimmed = entry.trim();
    let bare = trimmed
        .strip_prefix("*.")
        .unwrap_or(trimmed)
        .trim_start_matches('.');
    if bare.is_empty() {
        return None;
    }
    let as_url = if bare.contains("://") {
        bare.to_string()
    } else {
        format!("https://{bare}")
    };
    let host = match parse(&as_url)
        .ok()
        .and_then(|u| u.host)
        .filter(|h| !h.is_empty())
    {
        Some(host) => host,
        // Not a host the URL parser accepts; keep it literally so it can still match
        // nothing by accident rather than everything.
        None => bare.to_ascii_lowercase(),
    };
    let host = host.trim_end_matches('.').to_string();
    (!host.is_empty()).then_some(host)
}

#[cfg(all(test, feature = "whatwg-url"))]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> DomainAllowlist {
        DomainAllowlist::new(entries.iter().copied())
    }

    #[test]
    fn empty_allows_everything() {
        let l = list(&[]);
        assert!(l.is_empty());
        assert!(l.check("javascript:alert(1)").is_ok());
        assert!(l.check("not a url at all").is_ok());
        assert!(list(&["", "  "]).is_empty());
    }

    #[test]
    fn host_and_subdomains_match() {
        let l = list(&["example.com"]);
        for ok in [
            "https://example.com",
            "http://EXAMPLE.com./x",
            "example.com/path?q=1",
            "https://a.b.example.com:8443/",
            "ws://example.com/socket",
            "wss://sub.example.com",
            "Example.Com",
            "about:blank",
            "ABOUT:BLANK",
            "https://ex%61mple.com/",
        ] {
            assert!(l.check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://evil.com",
            "https://notexample.com",
            "https://example.com.evil.com",
            "https://example.co",
            "https://example.com@evil.com/",
            "https://evil.com\\@example.com",
            "https://evil.com#@example.com",
            "evil.com/?u=https://example.com",
        ] {
            let denied = l.check(bad).unwrap_err();
            assert_eq!(denied.target, bad);
            assert!(
                denied.why.contains("not in the domain allowlist"),
                "{bad}: {denied:?}"
            );
        }
    }

    #[test]
    fn other_schemes_are_denied_when_a_list_is_set() {
        let l = list(&["example.com"]);
        for bad in [
            "javascript:alert(1)",
            "data:text/html,<h1>x",
            "file:///etc/passwd",
            "chrome://settings",
            "about:config",
            "view-source:https://example.com",
            "ftp://example.com",
        ] {
            let denied = l.check(bad).unwrap_err();
            assert!(denied.host.is_none(), "{bad}");
        }
        assert!(l.check("https://").is_err());
        assert!(l.check("https://exa mple.com").is_err());
    }

    #[test]
    fn entries_are_normalised() {
        let l = list(&[
            " *.Example.COM. ",
            ".docs.rs",
            "https://news.ycombinator.com:443/x",
            "Example.com",
        ]);
        assert_eq!(
            l.entries(),
            ["example.com", "docs.rs", "news.ycombinator.com"]
        );
        assert!(l.allows_host("WWW.EXAMPLE.COM."));
        assert!(l.allows_host("docs.rs"));
        assert!(!l.allows_host("rs"));
    }

    #[test]
    fn ip_addresses_match_exactly() {
        let l = list(&["127.0.0.1", "[::1]", "0.0.1"]);
        assert!(l.check("http://127.0.0.1:8080/").is_ok());
        assert!(l.check("http://[::1]/").is_ok());
        assert!(l.check("http://10.127.0.0.1/").is_err());
        assert!(l.check("http://1.0.0.1/").is_err());
        assert!(l.check("localhost:3000").is_err());
    }

    #[test]
    fn unicode_hosts_compare_in_punycode() {
        let l = list(&["bücher.de"]);
        assert_eq!(l.entries(), ["xn--bcher-kva.de"]);
        assert!(l.check("https://BÜCHER.de/x").is_ok());
        assert!(l.check("shop.bücher.de").is_ok());
        assert!(l.check("https://bucher.de").is_err());
        assert!(l.check("https://☃.net").is_err());
        assert!(list(&["☃☃☃..", "%%%"]).check("x").is_err());
    }
}
