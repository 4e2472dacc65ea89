//! The HTTP routes: the relay endpoint, health, metrics, and the web app's static files.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use http::{header, HeaderValue};
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use crate::host::{self, AllowedHosts};
use crate::relay::{self, Relay};
use crate::security_headers::{self, SecurityHeaders};

/// Builds the application: `/relay` (see [`webpop_shared::relay`]), `/healthz`, `/metrics`,
/// and every other path as a file under `web_root`, answered only for `allowed_hosts`
/// ([`crate::host`]). Every response, errors and refusals included, carries `headers`
/// ([`crate::security_headers`]).
pub fn app(
    relay: Arc<Relay>,
    web_root: impl Into<PathBuf>,
    allowed_hosts: AllowedHosts,
    headers: Arc<SecurityHeaders>,
) -> Router {
    let files = ServiceBuilder::new()
        .layer(middleware::from_fn(cache_headers))
        .layer(CompressionLayer::new())
        .service(ServeDir::new(web_root.into()));
    Router::new()
        .route(webpop_shared::relay::PATH, any(relay::handle))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/demo.json", get(demo))
        .with_state(relay)
        .fallback_service(files)
        // Spans carry the path only: a relay request's query holds its access token.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            tracing::debug_span!("http", method = %request.method(), path = %request.uri().path())
        }))
        // Outside every route (the relay's upgrade included): no route answers a rebound name.
        .layer(middleware::from_fn_with_state(allowed_hosts, host::check))
        // Outermost, so that nothing answers without them, the host check's refusal included.
        .layer(middleware::from_fn_with_state(
            headers,
            security_headers::middleware,
        ))
}

async fn demo(State(relay): State<Arc<Relay>>) -> Response {
    match relay.demo() {
        Some(demo) => axum::Json(demo.clone()).into_response(),
        None => (
            http::StatusCode::NOT_FOUND,
            "no demo mailbox on this relay\n",
        )
            .into_response(),
    }
}

async fn metrics(State(relay): State<Arc<Relay>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        relay.metrics().render(),
    )
}

/// Caching for the web app: file names trunk stamped with a content hash never change, so they
/// are cached for a year; everything else (`index.html`, the service worker) is revalidated.
/// (`nosniff` and the other security headers are added to every response, not only here.)
async fn cache_headers(request: Request, next: Next) -> Response {
    let immutable = is_hashed(request.uri().path());
    let mut response = next.run(request).await;
    if response.status().is_success() {
        let value = if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    response
}

/// Whether the last path segment carries a trunk content hash: `name-<hex digits>` before the
/// extension (or before `_bg`). trunk writes its 64-bit hash without leading zeros, so one name
/// in sixteen has 15 digits (`webpop-frontend-e22928d3467dab9.js`) and rarer ones fewer; fewer
/// than 12 is taken for a plain name.
fn is_hashed(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or("");
    let stem = file.split('.').next().unwrap_or("");
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        (12..=16).contains(&hash.len()) && hash.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::is_hashed;

    #[test]
    fn trunk_hashed_names_are_recognised() {
        assert!(is_hashed("/webpop-frontend-5b4a1e3fd2c8a9b0_bg.wasm"));
        assert!(is_hashed("/webpop-frontend-5b4a1e3fd2c8a9b0.js"));
        assert!(is_hashed("/style-0123456789abcdef.css"));
        assert!(!is_hashed("/index.html"));
        assert!(!is_hashed("/"));
        assert!(!is_hashed("/sw.js"));
        assert!(!is_hashed("/webpop-frontend-xyz.js"));
        assert!(!is_hashed("/app-1.js"));
        assert!(!is_hashed("/app-0123456789abcdef0.js"));
    }

    /// A release build named its JS and wasm `webpop-frontend-e22928d3467dab9` (15 digits:
    /// trunk drops the hash's leading zero), and they were revalidated on every load instead of
    /// cached as immutable.
    #[test]
    fn a_trunk_hash_with_its_leading_zeros_dropped_is_still_a_hash() {
        assert!(is_hashed("/webpop-frontend-e22928d3467dab9.js"));
        assert!(is_hashed("/webpop-frontend-e22928d3467dab9_bg.wasm"));
        assert!(is_hashed("/webpop-frontend-2928d3467dab.js"));
    }
}
