//! Which `Host` names the server answers for: a defence against DNS rebinding.
//!
//! A web page on `evil.example` can make its own name resolve to the relay's address (often
//! 127.0.0.1) a moment after it loaded. Its requests then reach the relay with
//! `Host: evil.example` and a matching `Origin`, so the Origin check passes. The relay answers
//! only for names it knows: `localhost` (and `*.localhost`, which browsers always resolve to
//! loopback), IP addresses, and the names given with `--public-host`. Everything else gets
//! `421 Misdirected Request` before any route runs, the relay's upgrade included.
//!
//! An IP address in `Host` is always accepted: a page can only produce one by being loaded
//! from that address, which needs no DNS and so cannot be rebound.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

/// The host names the server answers for, besides `localhost` and IP addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    names: Vec<String>,
}

impl AllowedHosts {
    /// Also answers for each of `names` (`mail.example.com`, without a port): the names users
    /// type to reach this server, or that a reverse proxy passes on in `Host`.
    pub fn with_names(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.names.extend(
            names
                .into_iter()
                .map(|n| normalise(&n).to_ascii_lowercase()),
        );
        self.names.retain(|n| !n.is_empty());
        self
    }

    /// Whether a request with this `Host` header may be answered. A request without one does
    /// not come from a browser (browsers always send it) and is let through.
    pub fn allows(&self, host: Option<&HeaderValue>) -> bool {
        let Some(host) = host else { return true };
        let Ok(host) = host.to_str() else {
            return false;
        };
        let name = normalise(strip_port(host));
        if name.parse::<std::net::IpAddr>().is_ok() {
            return true;
        }
        let name = name.to_ascii_lowercase();
        name == "localhost" || name.ends_with(".localhost") || self.names.contains(&name)
    }
}

/// `host:port`, `[v6]:port`, `[v6]` or a bare name or address, without the port.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(host, |(v6, _)| v6);
    }
    match host.rsplit_once(':') {
        // A bare IPv6 address has more than one colon.
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// Without surrounding space and one trailing dot (the root).
fn normalise(name: &str) -> &str {
    let name = name.trim();
    name.strip_suffix('.').unwrap_or(name)
}

/// Middleware: refuses requests for host names the server does not answer for.
pub(crate) async fn check(
    State(hosts): State<AllowedHosts>,
    request: Request,
    next: Next,
) -> Response {
    if hosts.allows(request.headers().get(header::HOST)) {
        return next.run(request).await;
    }
    tracing::info!(path = %request.uri().path(), "refused a request for an unknown host name");
    (
        StatusCode::MISDIRECTED_REQUEST,
        [(header::CONNECTION, "close")],
        "this server does not answer for that host name (its operator can add it with \
         --public-host)\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(hosts: &AllowedHosts, host: &str) -> bool {
        hosts.allows(Some(&HeaderValue::from_str(host).unwrap()))
    }

    #[test]
    fn localhost_ip_addresses_and_public_hosts_are_answered_and_nothing_else() {
        let hosts = AllowedHosts::default().with_names(["Mail.Example.com.".to_owned()]);
        for yes in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "192.0.2.7:443",
            "[::1]:8080",
            "[::1]",
            "::1",
            "localhost",
            "LOCALHOST:8080",
            "localhost.",
            "app.localhost:8080",
            "mail.example.com",
            "MAIL.example.com:443",
            "mail.example.com.:443",
        ] {
            assert!(allows(&hosts, yes), "{yes}");
        }
        for no in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io:80",
            "sub.mail.example.com",
            "example.com",
            "mail.example.com.evil",
            "",
            "[::1",
        ] {
            assert!(!allows(&hosts, no), "{no}");
        }
        assert!(hosts.allows(None));
        assert!(!allows(&AllowedHosts::default(), "mail.example.com"));
    }
}
