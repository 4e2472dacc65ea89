//! The HTTP half of the relay endpoint: validate the WebSocket upgrade, check the Origin, and
//! answer `101 Switching Protocols`. Everything the page should be able to explain (bad query,
//! token, limits, policy) is decided here but reported after the upgrade, as a close code.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use webpop_shared::relay::{self as wire, CloseReason, RelayRequest};
use webpop_shared::secret::Secret;

use super::{session, Relay};
use crate::metrics::Refused;
use crate::server::PeerAddr;

/// Why an upgrade request was refused at the HTTP level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BadUpgrade {
    NotGet,
    NotWebSocket,
    Version,
    Key,
}

impl IntoResponse for BadUpgrade {
    fn into_response(self) -> Response {
        let mut response = match self {
            Self::NotGet => (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, "GET")],
                "the relay endpoint takes a WebSocket upgrade (GET)\n",
            )
                .into_response(),
            Self::NotWebSocket => (
                StatusCode::UPGRADE_REQUIRED,
                [(header::UPGRADE, "websocket")],
                "the relay endpoint takes a WebSocket upgrade\n",
            )
                .into_response(),
            Self::Version => (
                StatusCode::UPGRADE_REQUIRED,
                [(header::SEC_WEBSOCKET_VERSION, "13")],
                "unsupported WebSocket version\n",
            )
                .into_response(),
            Self::Key => (
                StatusCode::BAD_REQUEST,
                "missing or malformed Sec-WebSocket-Key\n",
            )
                .into_response(),
        };
        // A client that got this far wrong gets no second try on the same connection.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The `Sec-WebSocket-Accept` value, if the request is a well-formed WebSocket upgrade.
fn check_upgrade(method: &Method, headers: &HeaderMap) -> Result<String, BadUpgrade> {
    if method != Method::GET {
        return Err(BadUpgrade::NotGet);
    }
    if !has_token(headers, header::CONNECTION, "upgrade")
        || !has_token(headers, header::UPGRADE, "websocket")
    {
        return Err(BadUpgrade::NotWebSocket);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(BadUpgrade::Version);
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(HeaderValue::as_bytes)
        .ok_or(BadUpgrade::Key)?;
    // The key is 16 random bytes in base64: 24 characters ending in "==".
    let well_formed = key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/');
    if !well_formed {
        return Err(BadUpgrade::Key);
    }
    Ok(derive_accept_key(key))
}

/// Whether a `Host` header names an IP address or `localhost` (with or without a port).
fn is_local_host(host: Option<&HeaderValue>) -> bool {
    let Some(host) = host.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = match host.rsplit_once(':') {
        // `[v6]:port`, `v4:port` or `name:port`; a bare IPv6 address has more colons.
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty() => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// Compares secrets in time independent of where they differ and of their lengths: it compares
/// their SHA-256 digests, every byte.
fn same_secret(a: &str, b: &str) -> bool {
    let digest = |s: &str| ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    let (a, b) = (digest(a), digest(b));
    a.as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The relay endpoint's handler.
pub(crate) async fn handle(
    State(relay): State<Arc<Relay>>,
    Extension(PeerAddr(peer)): Extension<PeerAddr>,
    mut request: Request,
) -> Response {
    let headers = request.headers();
    let accept = match check_upgrade(request.method(), headers) {
        Ok(accept) => accept,
        Err(bad) => {
            relay.metrics.refused(Refused::BadUpgrade);
            return bad.into_response();
        }
    };
    if !relay
        .config
        .origins
        .allows(headers.get(header::ORIGIN), headers.get(header::HOST))
    {
        relay.metrics.refused(Refused::ForbiddenOrigin);
        tracing::info!(%peer, "refused a relay request from a foreign origin");
        return (
            StatusCode::FORBIDDEN,
            [(header::CONNECTION, "close")],
            "this page's origin may not use the relay\n",
        )
            .into_response();
    }
    // A relay that may reach private addresses and asks no token must not be usable from a
    // page whose name was rebound to it (DNS rebinding): only IP-literal or localhost hosts.
    if relay.config.policy.allows_reserved_ranges()
        && relay.config.token.is_none()
        && !is_local_host(headers.get(header::HOST))
    {
        relay.metrics.refused(Refused::ForbiddenOrigin);
        tracing::info!(%peer, "refused a relay request for a host name (private targets, no token)");
        return (
            StatusCode::FORBIDDEN,
            [(header::CONNECTION, "close")],
            "this relay reaches private addresses: use it by IP address or localhost, or set a token\n",
        )
            .into_response();
    }
    let client = relay.config.trusted_proxies.client_ip(peer.ip(), headers);
    let protocols = || {
        headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
    };
    // A browser that offered protocols fails a handshake that picks none, or one it did not
    // offer, and a handshake picks one: flow control when offered (the page then knows it may
    // acknowledge), else the plain protocol when offered; never the one carrying the token.
    let offers = |name: &str| {
        protocols()
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == name)
    };
    let flow = offers(wire::FLOW_PROTOCOL);
    let answer = if flow {
        Some(wire::FLOW_PROTOCOL)
    } else if offers(wire::PROTOCOL) {
        Some(wire::PROTOCOL)
    } else {
        None
    };
    let admission = match wire::token_from_protocols(protocols()) {
        Ok(token) => admit(&relay, request.uri().query().unwrap_or(""), token, client),
        Err(e) => {
            tracing::debug!(%client, error = %e, "malformed token subprotocol");
            Err(CloseReason::BadRequest)
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let task_relay = Arc::clone(&relay);
    relay.sessions.spawn(session::run(
        task_relay, on_upgrade, admission, client, flow,
    ));
    let mut response = (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
            (
                header::SEC_WEBSOCKET_ACCEPT,
                HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
            ),
        ],
    )
        .into_response();
    if let Some(answer) = answer {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(answer),
        );
    }
    response
}

/// Decides, before the upgrade completes, whether the session may start. The token comes
/// from the subprotocol (`protocol_token`) or, for older pages, the query string.
fn admit(
    relay: &Arc<Relay>,
    query: &str,
    protocol_token: Option<Secret>,
    client: std::net::IpAddr,
) -> Result<session::Admitted, CloseReason> {
    if relay.is_draining() {
        return Err(CloseReason::ShuttingDown);
    }
    let request = RelayRequest::from_query(query).map_err(|e| {
        tracing::debug!(%client, error = %e, "malformed relay request");
        CloseReason::BadRequest
    })?;
    // Before the token check, so guessing tokens is held to the same pace as passwords.
    if !relay.rate.allow(client) {
        tracing::info!(%client, "relay session rate limit reached");
        return Err(CloseReason::LimitReached);
    }
    if let Some(expected) = &relay.config.token {
        let given = protocol_token
            .as_ref()
            .or(request.token.as_ref())
            .map_or("", |t| t.expose());
        if !same_secret(given, expected.expose()) {
            tracing::info!(%client, "relay request without a valid token");
            return Err(CloseReason::Unauthorized);
        }
    }
    let permit = relay.limits.acquire(client).map_err(|hit| {
        tracing::info!(%client, limit = ?hit, "relay session limit reached");
        CloseReason::LimitReached
    })?;
    Ok(session::Admitted {
        target: request.target,
        permit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    const GOOD: &[(&str, &str)] = &[
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn a_good_upgrade_gets_rfc_6455s_accept_value() {
        assert_eq!(
            check_upgrade(&Method::GET, &headers(GOOD)).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn malformed_upgrades_are_refused() {
        let without = |name: &str| {
            headers(
                &GOOD
                    .iter()
                    .copied()
                    .filter(|(k, _)| *k != name)
                    .collect::<Vec<_>>(),
            )
        };
        let with = |name: &str, value: &str| {
            let mut h = without(name);
            h.insert(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
            h
        };
        assert_eq!(
            check_upgrade(&Method::POST, &headers(GOOD)),
            Err(BadUpgrade::NotGet)
        );
        assert_eq!(
            check_upgrade(&Method::GET, &without("upgrade")),
            Err(BadUpgrade::NotWebSocket)
        );
        assert_eq!(
            check_upgrade(&Method::GET, &with("upgrade", "h2c")),
            Err(BadUpgrade::NotWebSocket)
        );
        assert_eq!(
            check_upgrade(&Method::GET, &with("connection", "close")),
            Err(BadUpgrade::NotWebSocket)
        );
        assert_eq!(
            check_upgrade(&Method::GET, &without("sec-websocket-version")),
            Err(BadUpgrade::Version)
        );
        assert_eq!(
            check_upgrade(&Method::GET, &with("sec-websocket-version", "8")),
            Err(BadUpgrade::Version)
        );
        assert_eq!(
            check_upgrade(&Method::GET, &without("sec-websocket-key")),
            Err(BadUpgrade::Key)
        );
        assert_eq!(
            check_upgrade(&Method::GET, &with("sec-websocket-key", "short==")),
            Err(BadUpgrade::Key)
        );
        assert_eq!(
            check_upgrade(
                &Method::GET,
                &with("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ!=")
            ),
            Err(BadUpgrade::Key)
        );
    }

    #[test]
    fn only_ip_literals_and_localhost_are_local_hosts() {
        let local = |h: &str| is_local_host(Some(&HeaderValue::from_str(h).unwrap()));
        for yes in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "[::1]",
            "::1",
            "192.168.1.5:80",
        ] {
            assert!(local(yes), "{yes}");
        }
        for no in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io:80",
            "",
        ] {
            assert!(!local(no), "{no}");
        }
        assert!(!is_local_host(None));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }
}
