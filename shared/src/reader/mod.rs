//! The reader's HTML: a message's HTML body made safe to show in a sandboxed iframe's `srcdoc`.
//!
//! Three layers, each enough on its own against script: the iframe is sandboxed without
//! `allow-scripts` (the web app's job), the document carries a Content-Security-Policy with no
//! script source at all ([`csp`]), and the body is sanitised here with ammonia against an
//! allow-list of tags and attributes. The sanitiser also keeps the mail from phoning home:
//! remote images are removed (and counted, so the reader can offer to load them), `cid:` images
//! are inlined as `data:` URLs, and `style` attributes lose anything that could load a URL.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;

/// How to render a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RenderOptions {
    /// Keep `http:`/`https:` images (the user clicked "Load images"). Off by default: a remote
    /// image tells the sender when and where the message was read.
    pub load_remote_images: bool,
}

/// A sanitised message, ready for an iframe's `srcdoc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeHtml {
    /// A whole HTML document: the CSP meta first in its head, then a default style, then the
    /// sanitised body.
    pub document: String,
    /// How many distinct remote image addresses were removed (0 when they were loaded).
    pub remote_images_blocked: usize,
}

/// What a `cid:` reference resolves to: the part's content type and its decoded bytes.
pub type InlinePart = (String, Vec<u8>);

/// The Content-Security-Policy for a message document: nothing may run, and nothing may load
/// except `data:` images and fonts, plus `http(s):` images when `load_remote_images`.
pub fn csp(load_remote_images: bool) -> String {
    let images = if load_remote_images {
        "data: https: http:"
    } else {
        "data:"
    };
    format!(
        "default-src 'none'; img-src {images}; style-src 'unsafe-inline'; font-src data:; \
         form-action 'none'; base-uri 'none'"
    )
}

/// A readable default that mail's own inline styles override. Always light: HTML mail is
/// written for a white page, and its own colours would be unreadable on a dark one (the reader
/// frame sits on a white background in dark mode too).
const DEFAULT_STYLE: &str = ":root{color-scheme:light;background:#fff;color:#1b1f24}\
body{margin:0;padding:16px;font:15px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;\
overflow-wrap:break-word}\
img{max-width:100%;height:auto}\
table{max-width:100%}\
pre{white-space:pre-wrap}\
blockquote{margin:0 0 0 .5em;padding-left:.75em;border-left:3px solid #8888}";

/// Everything of the document before the sanitised body. The CSP comes first so that it
/// governs everything after it.
fn document_head(load_remote_images: bool) -> String {
    format!(
        "<!doctype html><html><head>\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\
         <meta charset=\"utf-8\"><base target=\"_blank\"><style>{DEFAULT_STYLE}</style>\
         </head><body>",
        csp(load_remote_images)
    )
}

const DOCUMENT_TAIL: &str = "</body></html>";

/// The mail's HTML body as a safe document.
///
/// `html`: the message's HTML body; `inline`: resolves a `cid:` reference (without "cid:",
/// no angle brackets) to (content type, bytes).
pub fn safe_html(
    html: &str,
    inline: &dyn Fn(&str) -> Option<InlinePart>,
    options: RenderOptions,
) -> SafeHtml {
    let policy = Arc::new(Policy {
        load_remote_images: options.load_remote_images,
        inlined: inline_images(html, inline),
        blocked: Mutex::new(HashSet::new()),
    });
    let filter_policy = Arc::clone(&policy);
    let mut builder = builder();
    builder.attribute_filter(move |element, attribute, value| {
        filter_policy.filter(element, attribute, value)
    });
    let body = builder.clean(html).to_string();
    let remote_images_blocked = policy
        .blocked
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len();
    let mut document = document_head(options.load_remote_images);
    document.push_str(&body);
    document.push_str(DOCUMENT_TAIL);
    SafeHtml {
        document,
        remote_images_blocked,
    }
}

/// Convenience: [`safe_html`] for a raw message, with its `cid:` parts inlined (see
/// [`crate::mime::display`]); `None` when the message has no HTML body.
pub fn safe_html_of(raw: &[u8], options: RenderOptions) -> Option<SafeHtml> {
    let display = crate::mime::display(raw).ok()?;
    let html = display.html.as_deref()?;
    let inline = |cid: &str| {
        let part = display
            .attachments
            .iter()
            .find(|a| a.content_id.as_deref() == Some(cid))?;
        let bytes = crate::mime::attachment(raw, part.part)?;
        Some((part.content_type.clone(), bytes))
    };
    Some(safe_html(html, &inline, options))
}

/// Tags whose content goes with them. Anything else outside the allow-list is unwrapped
/// (its text stays), which for these would show code, a page title or plugin fallbacks.
const DROP_WITH_CONTENT: &[&str] = &[
    "script", "style", "title", "template", "noscript", "svg", "math", "iframe", "object", "embed",
    "applet", "frameset", "noframes", "noembed",
];

/// Attributes allowed on any allowed tag: presentational ones that mail layouts rely on.
const GENERIC_ATTRIBUTES: &[&str] = &[
    "lang", "title", "dir", "style", "align", "valign", "width", "height", "bgcolor",
];

/// Tags added to ammonia's default allow-list because mail uses them for layout.
const EXTRA_TAGS: &[&str] = &["font", "big"];

/// Tag-specific attributes. Ammonia's defaults are replaced, not extended, so that every
/// URL-bearing attribute that survives is one [`Policy::filter`] knows about.
const TAG_ATTRIBUTES: &[(&str, &[&str])] = &[
    ("a", &["href", "hreflang"]),
    (
        "img",
        &["src", "srcset", "alt", "border", "hspace", "vspace"],
    ),
    (
        "table",
        &[
            "border",
            "cellpadding",
            "cellspacing",
            "background",
            "summary",
            "frame",
            "rules",
        ],
    ),
    (
        "td",
        &[
            "colspan",
            "rowspan",
            "background",
            "nowrap",
            "headers",
            "abbr",
        ],
    ),
    (
        "th",
        &[
            "colspan",
            "rowspan",
            "background",
            "nowrap",
            "headers",
            "abbr",
            "scope",
        ],
    ),
    ("col", &["span"]),
    ("colgroup", &["span"]),
    ("font", &["color", "face", "size"]),
    ("ol", &["start", "type", "reversed"]),
    ("ul", &["type"]),
    ("li", &["value", "type"]),
    ("hr", &["size", "noshade", "color"]),
    ("time", &["datetime"]),
    ("data", &["value"]),
    ("del", &["datetime"]),
    ("ins", &["datetime"]),
];

/// Tags whose `background` attribute is an image (see [`TAG_ATTRIBUTES`]).
const BACKGROUND_TAGS: &[&str] = &["table", "td", "th"];

/// The sanitiser without its attribute filter (ammonia takes one filter per builder).
fn builder() -> ammonia::Builder<'static> {
    let mut builder = ammonia::Builder::default();
    builder
        .add_tags(EXTRA_TAGS)
        .clean_content_tags(DROP_WITH_CONTENT.iter().copied().collect())
        .generic_attributes(GENERIC_ATTRIBUTES.iter().copied().collect())
        .tag_attributes(
            TAG_ATTRIBUTES
                .iter()
                .map(|(tag, attributes)| (*tag, attributes.iter().copied().collect()))
                .collect(),
        )
        // Ammonia's own scheme check runs before our filter: let through only what the
        // filter then decides on per element (links: http, https, mailto; images: cid, data,
        // and http(s) when loaded).
        .url_schemes(
            ["http", "https", "mailto", "cid", "data"]
                .into_iter()
                .collect(),
        )
        // Relative URLs have nothing to be relative to in a srcdoc (they would resolve against
        // the web app); the filter drops them, except `//host/…`, which it makes `https:`.
        .url_relative(ammonia::UrlRelative::PassThrough)
        .link_rel(Some("noopener noreferrer"))
        .strip_comments(true);
    builder
}

/// What a URL attribute points at, as a browser would parse it.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// `http:` or `https:` (scheme-relative `//host` made `https:`), the URL cleaned.
    Web(String),
    /// `mailto:`, cleaned.
    Mailto(String),
    /// `cid:`, what follows the scheme.
    Cid(String),
    /// `data:`, what follows the scheme.
    Data(String),
    /// Anything else: another scheme, a relative URL, garbage.
    Other,
}

fn classify(value: &str) -> Target {
    // What a browser's URL parser ignores: leading and trailing C0 controls and spaces, and
    // tabs and newlines anywhere. Decide on what the browser would see.
    let cleaned: String = value
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    if let Some(rest) = cleaned.strip_prefix("//") {
        return Target::Web(format!("https://{rest}"));
    }
    let Some((scheme, rest)) = cleaned.split_once(':') else {
        return Target::Other;
    };
    let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return Target::Other;
    }
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => Target::Web(cleaned),
        "mailto" => Target::Mailto(cleaned),
        "cid" => Target::Cid(rest.to_owned()),
        "data" => Target::Data(rest.to_owned()),
        _ => Target::Other,
    }
}

/// The `type/subtype` of an image format that cannot carry script (so not SVG), lower-cased;
/// `None` for anything else.
fn raster_image_type(content_type: &str) -> Option<String> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let subtype = essence.strip_prefix("image/")?;
    let token = !subtype.is_empty()
        && subtype
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'));
    (token && !subtype.contains("svg")).then_some(essence)
}

/// The image type of `bytes` by its magic number, for inline parts sent as
/// `application/octet-stream`.
fn sniff_image_type(bytes: &[u8]) -> Option<&'static str> {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"BM", "image/bmp"),
    ];
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    SIGNATURES
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
        .map(|(_, ty)| *ty)
}

/// `%XX` sequences decoded (a `cid:` URL is the URL-encoded Content-ID, RFC 2392); `None`
/// when that leaves invalid UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&hi), Some(&lo)) if hex(hi).is_some() && hex(lo).is_some() => {
                out.push((hex(hi)? * 16 + hex(lo)?) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The `cid:` images the sanitised body would show, resolved to `data:` URLs, keyed by what
/// follows `cid:` in the attribute. Ammonia calls its attribute filter with no way to borrow
/// `inline`, so a first pass collects the references the filter will meet in the second.
fn inline_images(
    html: &str,
    inline: &dyn Fn(&str) -> Option<InlinePart>,
) -> HashMap<String, String> {
    if !contains_ignore_ascii_case(html, "cid:") {
        return HashMap::new();
    }
    let found = Arc::new(Mutex::new(HashSet::new()));
    let sink = Arc::clone(&found);
    let mut collector = builder();
    collector.attribute_filter(move |element, attribute, value| {
        if is_image_attribute(element, attribute) {
            if let Target::Cid(id) = classify(value) {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(id);
            }
        }
        None
    });
    collector.clean(html);
    let ids = std::mem::take(&mut *found.lock().unwrap_or_else(PoisonError::into_inner));
    ids.into_iter()
        .filter_map(|id| {
            let (content_type, bytes) = inline(&id).or_else(|| {
                let decoded = percent_decode(&id).filter(|d| *d != id)?;
                inline(&decoded)
            })?;
            let ty = raster_image_type(&content_type).or_else(|| {
                // Only sniff when the declared type says nothing: an SVG declared as SVG must
                // not come back in as something else.
                (!content_type.to_ascii_lowercase().contains("svg"))
                    .then(|| sniff_image_type(&bytes))
                    .flatten()
                    .map(str::to_owned)
            })?;
            let url = format!(
                "data:{ty};base64,{}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            );
            Some((id, url))
        })
        .collect()
}

fn is_image_attribute(element: &str, attribute: &str) -> bool {
    matches!((element, attribute), ("img", "src"))
        || (attribute == "background" && BACKGROUND_TAGS.contains(&element))
}

/// The attribute filter's state: what to keep, and what it removed.
struct Policy {
    load_remote_images: bool,
    /// `cid:` reference → `data:` URL.
    inlined: HashMap<String, String>,
    /// Remote image URLs removed.
    blocked: Mutex<HashSet<String>>,
}

impl Policy {
    /// Ammonia's attribute filter: the new value, or `None` to drop the attribute. Called for
    /// allowed attributes of allowed tags, and also for the attributes of tags about to be
    /// removed, so counting happens only for the tags that stay.
    fn filter<'v>(&self, element: &str, attribute: &str, value: &'v str) -> Option<Cow<'v, str>> {
        if has_script_scheme(value) {
            return None;
        }
        match (element, attribute) {
            ("a", "href") => match classify(value) {
                Target::Web(url) | Target::Mailto(url) => Some(url.into()),
                _ => None,
            },
            ("img", "srcset") => self.srcset(value).map(Cow::Owned),
            (element, attribute) if is_image_attribute(element, attribute) => {
                self.image(value).map(Cow::Owned)
            }
            (_, "style") => clean_style(value).map(Cow::Owned),
            _ => Some(value.into()),
        }
    }

    fn image(&self, value: &str) -> Option<String> {
        match classify(value) {
            Target::Web(url) => self.remote(url),
            Target::Cid(id) => self.inlined.get(&id).cloned(),
            Target::Data(rest) => {
                let ty = rest.split([';', ',']).next().unwrap_or_default();
                (raster_image_type(ty).is_some() && rest.contains(','))
                    .then(|| format!("data:{rest}"))
            }
            Target::Mailto(_) | Target::Other => None,
        }
    }

    /// A `srcset`: kept only when every candidate is a remote image and those are loaded.
    fn srcset(&self, value: &str) -> Option<String> {
        let mut kept = Vec::new();
        let mut all_remote = true;
        // A comma inside a candidate URL (a `data:` URL) splits it here; the pieces are then
        // not `http(s):` and the whole srcset goes, which is the safe direction.
        for candidate in value.split(',') {
            let mut words = candidate.split_ascii_whitespace();
            let Some(url) = words.next() else { continue };
            match classify(url) {
                Target::Web(url) => match self.remote(url) {
                    Some(url) => kept.push(
                        std::iter::once(url.as_str())
                            .chain(words)
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                    None => all_remote = false,
                },
                _ => all_remote = false,
            }
        }
        (all_remote && !kept.is_empty()).then(|| kept.join(", "))
    }

    /// `url` when remote images are loaded; otherwise it is counted and dropped.
    fn remote(&self, url: String) -> Option<String> {
        if self.load_remote_images {
            return Some(url);
        }
        self.blocked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(url);
        None
    }
}

/// `value` with whitespace and control characters removed, full-width forms made ASCII and
/// lower-cased, so that `java\tscript:`, `JaVaScRiPt :` and `ｅｘｐｒｅｓｓｉｏｎ(` (which old IE
/// honoured) look like what they are.
fn squashed(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .map(|c| match c {
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            _ => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `value` names a script URL anywhere, in any attribute: no legitimate attribute
/// of a mail needs to, and a value that does is dropped whole.
fn has_script_scheme(value: &str) -> bool {
    let value = squashed(value);
    ["javascript:", "vbscript:", "livescript:"]
        .iter()
        .any(|scheme| value.contains(scheme))
}

/// What must not appear in a style declaration: anything that loads a URL, runs code in old
/// engines, or binds behaviour. Matched against [`squashed`] text.
const BANNED_IN_STYLE: &[&str] = &[
    "url(",
    "image(",
    "image-set(",
    "cross-fade(",
    "element(",
    "src(",
    "expression(",
    "@",
    "behavior",
    "binding",
    "javascript:",
    "vbscript:",
];

/// A `style` attribute without the declarations that could load or execute anything, or that
/// are not `name: value`; `None` when nothing is left. A backslash (a CSS escape can spell any
/// of the banned words) or a comment (old IE ignored them inside words) drops the whole value.
fn clean_style(value: &str) -> Option<String> {
    if value.contains('\\') || value.contains("/*") {
        return None;
    }
    let kept: Vec<&str> = declarations(value)
        .into_iter()
        .map(str::trim)
        .filter(|declaration| {
            let declaration = squashed(declaration);
            declaration.contains(':') && !BANNED_IN_STYLE.iter().any(|b| declaration.contains(b))
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// `style` split into declarations at the semicolons that end one: not those inside quotes or
/// parentheses, so a banned declaration goes whole rather than leaving a tail behind.
fn declarations(style: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quote = None;
    let mut depth = 0usize;
    for (i, c) in style.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth = depth.saturating_sub(1),
            (None, ';') if depth == 0 => {
                out.push(&style[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&style[start..]);
    out
}

#[cfg(test)]
mod tests;
