//! The security headers on every response the relay serves: the web app's pages, its files,
//! error pages, `/healthz`, `/metrics` and refused `/relay` requests alike.
//!
//! The Content-Security-Policy is the one that matters. The app is a wasm module started by
//! one inline `<script type="module">` that trunk writes into `index.html`; that script is
//! allowed by its hash, read from the web root's `index.html` (and read again whenever that file
//! changes, so a new build deployed under a running relay still starts), never by
//! `'unsafe-inline'`. Everything else the app runs comes from the relay itself (`'self'`), and
//! WebAssembly needs `'wasm-unsafe-eval'`, which allows compiling wasm and nothing like `eval`.
//!
//! The reader shows a message in an `<iframe sandbox srcdoc=…>`, and a `srcdoc` document is
//! governed by its parent's policy as well as its own (`webpop_shared::reader::csp`). So the
//! app's policy must allow what a message may show: inline styles, `data:` images and fonts,
//! and, once the person clicks "Load images", `http:`/`https:` images. Styles may be inline;
//! scripts never. `blob:` images are the app's own previews of inert picture attachments
//! (`webpop_shared::mime::inert_image_type`), shown through `<img>` only.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use http::{header, HeaderMap, HeaderName, HeaderValue};

/// HSTS lifetime when the relay serves TLS itself: one year, the usual minimum for preload
/// lists. No `includeSubDomains`: the relay cannot know what else runs under its domain.
pub const HSTS: &str = "max-age=31536000";

/// Lets a window this page opens (a provider's sign-in page) keep its `window.opener` and report
/// back, while no other site's window can reach into the app.
pub const COOP: &str = "same-origin-allow-popups";

/// The headers for the web app in `web_root`, served over TLS or not.
#[derive(Debug)]
pub struct SecurityHeaders {
    index: PathBuf,
    tls: bool,
    scripts: Mutex<InlineScripts>,
}

/// The inline scripts' hashes of one version of `index.html`.
#[derive(Debug, Default)]
struct InlineScripts {
    /// Modification time and length of the file they were read from; `None` if it was missing.
    stamp: Option<(SystemTime, u64)>,
    /// `'sha256-…'` sources, one per inline script.
    hashes: Vec<String>,
}

impl SecurityHeaders {
    /// Reads `web_root/index.html` now (at start-up) and hashes its inline scripts. A missing
    /// or unreadable file only means no inline script is allowed until it appears.
    pub fn new(web_root: &Path, tls: bool) -> Self {
        let index = web_root.join("index.html");
        let scripts = read_inline_scripts(&index);
        if scripts.stamp.is_some() {
            tracing::debug!(
                inline_scripts = scripts.hashes.len(),
                "Content-Security-Policy allows the inline scripts of index.html by hash"
            );
        }
        Self {
            index,
            tls,
            scripts: Mutex::new(scripts),
        }
    }

    /// The `'sha256-…'` sources of the inline scripts allowed right now.
    pub fn inline_script_hashes(&self) -> Vec<String> {
        self.scripts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .hashes
            .clone()
    }

    /// The Content-Security-Policy for a request addressed to `host` (its `Host` header).
    ///
    /// `connect-src` names the relay's own WebSocket endpoint explicitly: CSP Level 3 lets
    /// `'self'` match `ws:`/`wss:` on the same host and port, but older browsers do not, and the
    /// page reaches the relay at exactly `ws[s]://<its own host>/relay`. A `host` that is not a
    /// plain host name or address (with an optional port) is left out rather than copied into
    /// the header.
    pub fn content_security_policy(&self, host: Option<&str>) -> String {
        let mut script_src = String::from("'self' 'wasm-unsafe-eval'");
        for hash in self.inline_script_hashes() {
            script_src.push(' ');
            script_src.push_str(&hash);
        }
        let mut connect_src = String::from("'self'");
        if let Some(host) = host.filter(|h| is_plain_host(h)) {
            // Over TLS the page is https: and reaches wss: only; behind a TLS reverse proxy the
            // relay cannot tell, so both.
            let schemes: &[&str] = if self.tls { &["wss"] } else { &["ws", "wss"] };
            for scheme in schemes {
                connect_src.push_str(&format!(" {scheme}://{host}"));
            }
        }
        format!(
            "default-src 'none'; \
             script-src {script_src}; \
             style-src 'self' 'unsafe-inline'; \
             img-src 'self' data: blob: https: http:; \
             font-src 'self' data:; \
             connect-src {connect_src}; \
             worker-src 'self'; \
             manifest-src 'self'; \
             object-src 'none'; \
             base-uri 'none'; \
             form-action 'none'; \
             frame-ancestors 'none'"
        )
    }

    /// Every security header for a request addressed to `host`, on `headers`.
    pub fn apply(&self, host: Option<&str>, headers: &mut HeaderMap) {
        // Built from fixed text, hashes (base64) and a checked host: always a valid value.
        if let Ok(csp) = HeaderValue::from_str(&self.content_security_policy(host)) {
            headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static(COOP),
        );
        // frame-ancestors' older form, for browsers without CSP Level 2.
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        if self.tls {
            headers.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(HSTS),
            );
        }
    }

    /// Reads `index.html` again if it changed since it was last read (a new build deployed).
    async fn refresh(&self) {
        let stamp = stamp_of(tokio::fs::metadata(&self.index).await.ok());
        let current = self
            .scripts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stamp;
        if stamp == current {
            return;
        }
        let index = self.index.clone();
        let Ok(scripts) = tokio::task::spawn_blocking(move || read_inline_scripts(&index)).await
        else {
            return;
        };
        tracing::debug!(
            inline_scripts = scripts.hashes.len(),
            "index.html changed; inline script hashes read again"
        );
        *self.scripts.lock().unwrap_or_else(PoisonError::into_inner) = scripts;
    }
}

/// Middleware: puts the security headers on every response. An HTML response first checks
/// that the hashes are those of the `index.html` on disk now.
pub async fn middleware(
    State(headers): State<Arc<SecurityHeaders>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if html {
        headers.refresh().await;
    }
    headers.apply(host.as_deref(), response.headers_mut());
    response
}

fn stamp_of(metadata: Option<std::fs::Metadata>) -> Option<(SystemTime, u64)> {
    let metadata = metadata?;
    Some((metadata.modified().ok()?, metadata.len()))
}

fn read_inline_scripts(index: &Path) -> InlineScripts {
    // Stamp first: if the file changes while it is read, the next request reads it again.
    let stamp = stamp_of(std::fs::metadata(index).ok());
    match std::fs::read(index) {
        Ok(bytes) => InlineScripts {
            stamp,
            hashes: inline_script_hashes(&String::from_utf8_lossy(&bytes)),
        },
        Err(e) => {
            if stamp.is_some() {
                tracing::warn!(file = %index.display(), error = %e, "cannot read index.html");
            }
            InlineScripts::default()
        }
    }
}

/// The CSP hash source (`'sha256-<base64>'`) of every inline `<script>` in `html`, in order.
///
/// `html` is read by html5ever's tokenizer, switched into script data at each `<script>` as a
/// browser's parser is, so the text hashed is exactly the text the browser hashes: line
/// breaks normalised to LF, character references left as written. A script with a `src`
/// attribute is loaded, not inline, and has no hash.
pub fn inline_script_hashes(html: &str) -> Vec<String> {
    let queue = BufferQueue::default();
    queue.push_back(StrTendril::from(html));
    let tokenizer = Tokenizer::new(ScriptCollector::default(), TokenizerOpts::default());
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    tokenizer
        .sink
        .scripts
        .take()
        .iter()
        .map(|text| {
            let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
            format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
            )
        })
        .collect()
}

/// Collects the text of inline scripts.
#[derive(Default)]
struct ScriptCollector {
    /// The text of the inline script being read, if inside one.
    current: std::cell::RefCell<Option<String>>,
    /// Every inline script's text seen so far.
    scripts: std::cell::RefCell<Vec<String>>,
}

impl TokenSink for ScriptCollector {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        match token {
            Token::TagToken(tag) if &*tag.name == "script" => match tag.kind {
                TagKind::StartTag => {
                    // A `<script src>`'s content is not run: not collected.
                    let external = tag.attrs.iter().any(|a| &*a.name.local == "src");
                    *self.current.borrow_mut() = (!external).then(String::new);
                    return TokenSinkResult::RawData(RawKind::ScriptData);
                }
                _ => {
                    if let Some(text) = self.current.borrow_mut().take() {
                        self.scripts.borrow_mut().push(text);
                    }
                }
            },
            Token::CharacterTokens(text) => {
                if let Some(current) = self.current.borrow_mut().as_mut() {
                    current.push_str(&text);
                }
            }
            Token::NullCharacterToken => {
                // Script data keeps U+0000 as U+FFFD.
                if let Some(current) = self.current.borrow_mut().as_mut() {
                    current.push('\u{FFFD}');
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// Whether `host` (a `Host` header) is a DNS name, an IPv4 address or a bracketed IPv6 address,
/// with an optional port, and so safe to write into a CSP source.
fn is_plain_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        // `[::1]` holds colons but no port; `[::1]:8080` and `example.com:8080` hold one.
        Some((name, port)) if !name.starts_with('[') || name.ends_with(']') => (name, Some(port)),
        _ => (host, None),
    };
    let name_ok = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        None => {
            !name.is_empty()
                && name.len() <= 253
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        }
    };
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    name_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inline_script_is_hashed_as_the_browser_hashes_it() {
        // The CSP specification's own example: sha256 of `alert(1)`.
        assert_eq!(
            inline_script_hashes("<script>alert(1)</script>"),
            ["'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"]
        );
        // The parser turns CRLF and CR into LF before the script's text exists.
        let lf = inline_script_hashes("<script>a\nb</script>");
        assert_eq!(
            lf,
            ["'sha256-fhj3NzEbLcOy8mndeDlrA1HxT7Zu+oefdoyyMYGIPHg='"]
        );
        assert_eq!(inline_script_hashes("<script>a\r\nb</script>"), lf);
        assert_eq!(inline_script_hashes("<script>a\rb</script>"), lf);
    }

    #[test]
    fn only_inline_scripts_are_hashed_each_one_whole() {
        let html = "<!doctype html><head>\
            <script type=\"module\" src=\"/app.js\"></script>\
            <script type=\"module\">import x from '/a.js'; if (1 < 2) { x('</p>'); }</script>\
            <SCRIPT>alert(1)</SCRIPT >\
            <p>alert(1)</p>\
            </head>";
        let hashes = inline_script_hashes(html);
        assert_eq!(hashes.len(), 2, "{hashes:?}");
        let first = "import x from '/a.js'; if (1 < 2) { x('</p>'); }";
        let digest = ring::digest::digest(&ring::digest::SHA256, first.as_bytes());
        assert_eq!(
            hashes[0],
            format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        );
        assert_eq!(
            hashes[1],
            "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"
        );
        assert!(inline_script_hashes("<p>no scripts</p>").is_empty());
    }

    #[test]
    fn the_policy_runs_only_the_apps_scripts_and_lets_the_reader_show_mail() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<script>alert(1)</script>").unwrap();
        let headers = SecurityHeaders::new(dir.path(), false);
        let csp = headers.content_security_policy(Some("mail.example.com:8080"));
        let directive = |name: &str| {
            csp.split(';')
                .map(str::trim)
                .find_map(|d| d.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("no {name} in {csp}"))
                .to_owned()
        };
        assert_eq!(
            directive("script-src"),
            "'self' 'wasm-unsafe-eval' 'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"
        );
        assert!(!csp.contains("'unsafe-eval'"), "{csp}");
        assert_eq!(directive("default-src"), "'none'");
        assert_eq!(directive("object-src"), "'none'");
        assert_eq!(directive("base-uri"), "'none'");
        assert_eq!(directive("frame-ancestors"), "'none'");
        assert_eq!(directive("style-src"), "'self' 'unsafe-inline'");
        assert_eq!(directive("img-src"), "'self' data: blob: https: http:");
        assert_eq!(
            directive("connect-src"),
            "'self' ws://mail.example.com:8080 wss://mail.example.com:8080"
        );
        let tls = SecurityHeaders::new(dir.path(), true);
        assert!(tls
            .content_security_policy(Some("mail.example.com"))
            .contains("connect-src 'self' wss://mail.example.com;"));
    }

    #[test]
    fn a_host_header_that_is_not_a_host_stays_out_of_the_policy() {
        for good in [
            "example.com",
            "example.com:443",
            "127.0.0.1:8080",
            "[::1]",
            "[::1]:8080",
            "xn--bcher-kva.example",
        ] {
            assert!(is_plain_host(good), "{good}");
        }
        for bad in [
            "",
            "example.com; script-src *",
            "example.com:80:80",
            "example.com:",
            "example.com:123456",
            "*.example.com",
            "evil.com/x",
            "[::1",
            "[]",
            "[::1]x",
            "a b",
            "'self'",
        ] {
            assert!(!is_plain_host(bad), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let headers = SecurityHeaders::new(dir.path(), false);
        assert!(headers
            .content_security_policy(Some("x; script-src *"))
            .contains("connect-src 'self';"));
    }
}
