use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

use super::*;

fn no_inline(_: &str) -> Option<(String, Vec<u8>)> {
    None
}

const BLOCK: RenderOptions = RenderOptions {
    load_remote_images: false,
};
const LOAD: RenderOptions = RenderOptions {
    load_remote_images: true,
};

/// The sanitised body of `html` (remote images blocked), checked to sit in the expected
/// document.
fn clean(html: &str) -> String {
    body(&safe_html(html, &no_inline, BLOCK), BLOCK).to_owned()
}

fn body(safe: &SafeHtml, options: RenderOptions) -> &str {
    safe.document
        .strip_prefix(document_head(options.load_remote_images).as_str())
        .and_then(|rest| rest.strip_suffix(DOCUMENT_TAIL))
        .expect("the document is our head, the body, our tail")
}

/// Collects what a browser's tokenizer makes of the sanitised HTML.
#[derive(Default)]
struct Tokens(RefCell<Vec<Token>>);

impl TokenSink for Tokens {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        self.0.borrow_mut().push(token);
        TokenSinkResult::Continue
    }
}

/// `html` read by html5ever's tokenizer, starting in the data state as a browser does for a
/// body. No tree builder is attached, so nothing ever switches it into a raw-text state: it
/// sees every tag-like thing a browser could see, and more.
fn tokens(html: &str) -> Vec<Token> {
    let queue = BufferQueue::default();
    queue.push_back(StrTendril::from(html));
    let tokenizer = Tokenizer::new(Tokens::default(), TokenizerOpts::default());
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    tokenizer.sink.0.take()
}

fn start_tags(html: &str) -> Vec<Tag> {
    tokens(html)
        .into_iter()
        .filter_map(|token| match token {
            Token::TagToken(tag) if tag.kind == TagKind::StartTag => Some(tag),
            _ => None,
        })
        .collect()
}

/// `(tag, attribute, value)` for every attribute in `html`.
fn attributes(html: &str) -> Vec<(String, String, String)> {
    start_tags(html)
        .into_iter()
        .flat_map(|tag| {
            let name = tag.name.to_string();
            tag.attrs
                .into_iter()
                .map(move |a| (name.clone(), a.name.local.to_string(), a.value.to_string()))
        })
        .collect()
}

fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    attributes(html)
        .into_iter()
        .filter(|(_, name, _)| name == attribute)
        .map(|(_, _, value)| value)
        .collect()
}

/// Ammonia's default allow-list plus [`EXTRA_TAGS`], written out so that a change in either
/// shows up here.
const ALLOWED_TAGS: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "area",
    "article",
    "aside",
    "b",
    "bdi",
    "bdo",
    "blockquote",
    "br",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "data",
    "dd",
    "del",
    "details",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "map",
    "mark",
    "nav",
    "ol",
    "p",
    "pre",
    "q",
    "rp",
    "rt",
    "rtc",
    "ruby",
    "s",
    "samp",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "time",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
    "wbr",
    "font",
    "big",
];

/// Never in a sanitised body, whatever the allow-list says.
const FORBIDDEN_TAGS: &[&str] = &[
    "<script",
    "<style",
    "<iframe",
    "<frame",
    "<object",
    "<embed",
    "<applet",
    "<svg",
    "<math",
    "<form",
    "<input",
    "<button",
    "<select",
    "<textarea",
    "<meta",
    "<link",
    "<base",
    "<noscript",
    "<template",
    "<title",
    "<xmp",
    "<plaintext",
    "<noembed",
    "<noframes",
    "<portal",
    "<video",
    "<audio",
    "<source",
    "<picture",
    "<isindex",
    "<keygen",
    "<param",
];

/// Checks that a sanitised body is harmless: only allowed tags, no handlers, links only to
/// http(s)/mailto, images only `data:` raster images unless remote ones are loaded, styles
/// without anything that loads or runs, no comments or doctypes.
fn assert_harmless(body: &str, options: RenderOptions, input: &str) {
    let lower = body.to_lowercase();
    for forbidden in FORBIDDEN_TAGS {
        assert!(
            !lower.contains(forbidden),
            "{forbidden} survived\n input: {input}\noutput: {body}"
        );
    }
    for token in tokens(body) {
        match token {
            Token::CommentToken(_) | Token::DoctypeToken(_) | Token::NullCharacterToken => {
                panic!("comment, doctype or NUL survived\n input: {input}\noutput: {body}")
            }
            Token::TagToken(tag) => assert_tag_harmless(&tag, options, input, body),
            _ => {}
        }
    }
}

fn assert_tag_harmless(tag: &Tag, options: RenderOptions, input: &str, body: &str) {
    let context = format!("\n input: {input}\noutput: {body}");
    let name = &*tag.name;
    assert!(ALLOWED_TAGS.contains(&name), "<{name}> survived{context}");
    let allowed_here = TAG_ATTRIBUTES
        .iter()
        .find(|(t, _)| *t == name)
        .map_or(&[][..], |(_, a)| a);
    for attribute in &tag.attrs {
        let attr = &*attribute.name.local;
        let value = &*attribute.value;
        let lower = value.to_lowercase();
        assert!(!attr.starts_with("on"), "handler {attr} survived{context}");
        assert!(
            GENERIC_ATTRIBUTES.contains(&attr)
                || allowed_here.contains(&attr)
                || (name == "a" && attr == "rel"),
            "{attr} on <{name}> survived{context}"
        );
        assert!(
            !has_script_scheme(value),
            "script URL in {attr}={value:?}{context}"
        );
        let remote = lower.starts_with("http:") || lower.starts_with("https:");
        match attr {
            "href" => assert!(
                remote || lower.starts_with("mailto:"),
                "href={value:?}{context}"
            ),
            "rel" => assert_eq!(value, "noopener noreferrer", "{context}"),
            "src" | "background" => assert!(
                (lower.starts_with("data:image/") && !lower.contains("svg"))
                    || (remote && options.load_remote_images),
                "{attr}={value:?}{context}"
            ),
            "srcset" => assert!(
                options.load_remote_images
                    && value
                        .split(',')
                        .all(|c| c.trim().starts_with("http:") || c.trim().starts_with("https:")),
                "srcset={value:?}{context}"
            ),
            "style" => {
                let squashed = squashed(value);
                assert!(
                    !value.contains('\\') && !BANNED_IN_STYLE.iter().any(|b| squashed.contains(b)),
                    "style={value:?}{context}"
                );
            }
            _ => {}
        }
    }
}

#[test]
fn the_harmlessness_check_catches_what_it_should() {
    for (bad, options) in [
        ("<script>alert(1)</script>", BLOCK),
        ("<img src=x onerror=alert(1)>", LOAD),
        ("<a href=\"javascript:alert(1)\">x</a>", BLOCK),
        ("<a href=\"/relative\">x</a>", BLOCK),
        (
            "<a href=\"https://ok.example/\" rel=\"opener\">x</a>",
            BLOCK,
        ),
        ("<img src=\"http://t.example/x.png\">", BLOCK),
        ("<img srcset=\"http://t.example/x.png\">", BLOCK),
        ("<img src=\"data:image/svg+xml,x\">", LOAD),
        (
            "<table background=\"http://t.example/x.png\"></table>",
            BLOCK,
        ),
        ("<p style=\"background:url(x)\">x</p>", BLOCK),
        ("<p style=\"color:\\72 ed\">x</p>", BLOCK),
        ("<p title=\"java script:x\">x</p>", BLOCK),
        ("<p class=\"x\">x</p>", BLOCK),
        ("<marquee>x</marquee>", BLOCK),
        ("<!-- x -->", BLOCK),
        ("<svg>", BLOCK),
    ] {
        let caught = std::panic::catch_unwind(|| assert_harmless(bad, options, bad)).is_err();
        assert!(caught, "not caught: {bad}");
    }
    assert_harmless(
        "<p style=\"color: red\"><a href=\"mailto:a@example.test\" rel=\"noopener noreferrer\">a</a></p>",
        BLOCK,
        "",
    );
}

/// Vectors from `shared/tests/fixtures/hostile/vectors.txt`, placeholders expanded.
fn hostile_vectors() -> Vec<String> {
    include_str!("../../tests/fixtures/hostile/vectors.txt")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            line.replace("{TAB}", "\t")
                .replace("{LF}", "\n")
                .replace("{CR}", "\r")
                .replace("{FF}", "\u{c}")
                .replace("{NUL}", "\0")
        })
        .collect()
}

#[test]
fn hostile_vectors_stay_harmless() {
    let vectors = hostile_vectors();
    assert!(vectors.len() > 250, "the corpus is there");
    // One at a time, so that a failure names its vector, and all together, so that vectors
    // can interfere with each other as they would in one mail.
    let mut inputs = vectors.clone();
    inputs.push(vectors.join("\n"));
    for input in &inputs {
        for options in [BLOCK, LOAD] {
            let safe = safe_html(input, &no_inline, options);
            let cleaned = body(&safe, options);
            assert_harmless(cleaned, options, input);
            // What a browser builds from the output may be shaped differently from the tree
            // ammonia cleaned (a nested <a> closes the outer one), but sanitising it again
            // finds nothing more to remove.
            let again = safe_html(cleaned, &no_inline, options);
            assert_eq!(
                distinct_start_tags(body(&again, options)),
                distinct_start_tags(cleaned),
                "sanitising twice removes something\n input: {input}"
            );
            assert_eq!(again.remote_images_blocked, 0);
        }
    }
}

/// Start tags with their attributes, each once, in order.
fn distinct_start_tags(html: &str) -> std::collections::BTreeSet<String> {
    start_tags(html)
        .into_iter()
        .map(|tag| {
            let mut text = tag.name.to_string();
            for attribute in &tag.attrs {
                text.push_str(&format!(" {}={:?}", attribute.name.local, attribute.value));
            }
            text
        })
        .collect()
}

#[test]
fn sanitising_twice_changes_nothing_for_well_formed_mail() {
    let html =
        "<div style=\"color: red\"><p>a <b>b</b> <a href=\"https://example.test/\">c</a></p>\
                <table><tbody><tr><td><img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"x\">\
                </td></tr></tbody></table><ul><li>d</li></ul></div>";
    let once = safe_html(html, &no_inline, BLOCK);
    let twice = safe_html(body(&once, BLOCK), &no_inline, BLOCK);
    assert_eq!(once, twice);
}

#[test]
fn hostile_vectors_with_remote_images_have_them_counted() {
    // One by one: together, an unclosed <plaintext> or <xmp> turns the rest into text.
    let mut blocked = 0;
    let mut loaded = 0;
    for vector in hostile_vectors() {
        blocked += safe_html(&vector, &no_inline, BLOCK).remote_images_blocked;
        let safe = safe_html(&vector, &no_inline, LOAD);
        assert_eq!(safe.remote_images_blocked, 0);
        loaded += attribute_values(body(&safe, LOAD), "src")
            .iter()
            .filter(|src| src.starts_with("http"))
            .count();
    }
    assert!(blocked >= 10, "{blocked} remote images counted");
    assert!(loaded >= 5, "{loaded} remote images kept when loaded");
}

#[test]
fn scripts_are_removed_with_their_content() {
    let body =
        clean("<p>before</p><script>alert('x')</script><SCRIPT SRC=x.js></SCRIPT><p>after</p>");
    assert_eq!(body, "<p>before</p><p>after</p>");
}

#[test]
fn event_handlers_are_removed() {
    let body = clean(
        "<img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\" onerror=\"alert(1)\" onload=alert(2)>\
         <p onmouseover=\"alert(3)\" ONCLICK=alert(4) onfocus=alert(5)>text</p>\
         <details open ontoggle=alert(6)><summary>s</summary></details>",
    );
    assert!(!body.to_lowercase().contains(" on"), "{body}");
    assert!(body.contains("<p>text</p>"), "{body}");
    assert!(body.contains("<img src=\"data:image/gif;base64,"), "{body}");
}

#[test]
fn script_urls_are_removed_from_links() {
    for href in [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "java&#x09;script:alert(1)",
        "java\tscript:alert(1)",
        "&#106;avascript:alert(1)",
        "javascript&colon;alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "data:text/html,<script>alert(1)</script>",
    ] {
        let body = clean(&format!("<a href=\"{href}\">link</a>"));
        assert_eq!(
            body, "<a rel=\"noopener noreferrer\">link</a>",
            "href {href:?}"
        );
    }
}

#[test]
fn script_and_html_urls_are_removed_from_images() {
    for src in [
        "javascript:alert(1)",
        "jav\nascript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+",
        "DATA:image/SVG+xml,<svg onload=alert(1)>",
        "file:///etc/passwd",
        "x.png",
    ] {
        let body = clean(&format!("<img src=\"{src}\" alt=\"a\">"));
        assert_eq!(body, "<img alt=\"a\">", "src {src:?}");
    }
}

#[test]
fn links_keep_web_and_mailto_addresses_and_get_noopener() {
    let body = clean(
        "<a href=\"https://example.test/a?b=1&amp;c=2\" target=\"_self\" rel=\"opener\">web</a>\
         <a href=\"mailto:ann@example.test\">mail</a><a href=\"http://example.test/\">plain</a>",
    );
    assert_eq!(
        body,
        "<a href=\"https://example.test/a?b=1&amp;c=2\" rel=\"noopener noreferrer\">web</a>\
         <a href=\"mailto:ann@example.test\" rel=\"noopener noreferrer\">mail</a>\
         <a href=\"http://example.test/\" rel=\"noopener noreferrer\">plain</a>"
    );
}

#[test]
fn relative_links_are_dropped_and_scheme_relative_ones_made_https() {
    let body =
        clean("<a href=\"/inbox\">a</a><a href=\"#top\">b</a><a href=\"//example.test/x\">c</a>");
    assert_eq!(
        attribute_values(&body, "href"),
        vec!["https://example.test/x".to_owned()]
    );
}

#[test]
fn style_attributes_lose_expression_url_import_and_bindings() {
    let body = clean(
        "<p style=\"color: red; width: expression(alert(1)); background: url(http://t.example/x); \
         font-weight: bold\">a</p>\
         <p style=\"behavior: url(x.htc)\">b</p>\
         <p style=\"-moz-binding: url(http://x.example/b.xml#x)\">c</p>\
         <p style=\"@import 'http://x.example/a.css'\">d</p>\
         <p style=\"background: URL (http://t.example/x)\">e</p>\
         <p style=\"x: JavaScript:alert(1)\">f</p>",
    );
    assert_eq!(
        body,
        "<p style=\"color: red; font-weight: bold\">a</p><p>b</p><p>c</p><p>d</p><p>e</p><p>f</p>"
    );
}

#[test]
fn a_banned_style_declaration_goes_whole_even_with_semicolons_inside() {
    let body = clean(
        "<p style=\"x:expression(eval('r=1;alert(1)')); color: blue\">a</p>\
         <p style=\"font-family: 'a;b'; background: url('x;y')\">b</p>\
         <p style=\"width:ｅｘｐｒｅｓｓｉｏｎ(alert(1)); not a declaration\">c</p>",
    );
    assert_eq!(
        body,
        "<p style=\"color: blue\">a</p><p style=\"font-family: 'a;b'\">b</p><p>c</p>"
    );
}

#[test]
fn style_attributes_with_css_escapes_or_comments_are_dropped_whole() {
    let body = clean(
        "<p style=\"color: red; background: \\75 rl(http://t.example/x)\">a</p>\
         <p style=\"color: red; width: expr/**/ession(alert(1))\">b</p>",
    );
    assert_eq!(body, "<p>a</p><p>b</p>");
}

#[test]
fn presentational_markup_mail_relies_on_is_kept() {
    let html = "<table width=\"600\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" \
                align=\"center\" bgcolor=\"#ffffff\"><tbody><tr><td valign=\"top\" \
                style=\"padding: 8px; font-family: Arial, sans-serif\">\
                <font color=\"#333333\" face=\"Georgia\" size=\"3\">Hello</font></td></tr></tbody></table>";
    assert_eq!(clean(html), html);
}

#[test]
fn style_elements_are_removed_with_their_content() {
    let body = clean(
        "<style>body { background: url(http://t.example/x) }</style><p>text</p>\
         <STYLE>@import 'http://x.example/a.css';</STYLE>",
    );
    assert_eq!(body, "<p>text</p>");
}

#[test]
fn meta_refresh_is_removed() {
    let body = clean(
        "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">\
         <META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=http://phish.example/\"><p>x</p>",
    );
    assert_eq!(body, "<p>x</p>");
}

#[test]
fn base_tags_are_removed() {
    let body = clean("<base href=\"http://evil.example/\"><base target=\"_self\"><p>x</p>");
    assert_eq!(body, "<p>x</p>");
}

#[test]
fn forms_and_controls_are_removed_keeping_their_text() {
    let body = clean(
        "<form action=\"http://phish.example/\" method=\"post\">Password: \
         <input type=\"password\" name=\"p\"><button formaction=\"javascript:alert(1)\">Log in</button>\
         <select><option>one</option></select><textarea>t</textarea></form>",
    );
    assert_eq!(body, "Password: Log inonet");
}

#[test]
fn svg_is_removed_with_its_script_handlers_and_foreign_object() {
    for svg in [
        "<svg onload=alert(1)><circle r=1 /></svg>",
        "<svg><script>alert(1)</script></svg>",
        "<svg><foreignObject><img src=x onerror=alert(1)><iframe src=javascript:alert(1)></iframe></foreignObject></svg>",
        "<svg><a xlink:href=\"javascript:alert(1)\"><text>XSS</text></a></svg>",
        "<svg><style>*{fill:url(http://t.example/x)}</style><circle r=1 /></svg>",
    ] {
        assert_eq!(clean(&format!("<p>a</p>{svg}<p>b</p>")), "<p>a</p><p>b</p>", "{svg}");
    }
}

#[test]
fn mathml_is_removed_with_its_links() {
    for math in [
        "<math href=\"javascript:alert(1)\"><mi>x</mi></math>",
        "<math><a xlink:href=\"javascript:alert(1)\">x</a></math>",
        "<math><maction actiontype=\"statusline\" xlink:href=\"javascript:alert(1)\">x</maction></math>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>",
    ] {
        assert_eq!(clean(&format!("<p>a</p>{math}<p>b</p>")), "<p>a</p><p>b</p>", "{math}");
    }
}

#[test]
fn iframes_objects_and_embeds_are_removed() {
    let body = clean(
        "<iframe src=\"http://phish.example/\">fallback</iframe>\
         <iframe srcdoc=\"<script>alert(1)</script>\"></iframe>\
         <object data=\"javascript:alert(1)\"><param name=src value=x></object>\
         <embed src=\"data:image/svg+xml;base64,PHN2Zz4=\"><applet code=x></applet><p>x</p>",
    );
    assert_eq!(body, "<p>x</p>");
}

#[test]
fn mutation_xss_through_raw_text_elements_is_cleaned_as_a_browser_parses_it() {
    for (input, output) in [
        // With scripting on (as ammonia parses) <noscript> is raw text up to </noscript>, so
        // the <img> is real and is cleaned; the wrapper and its text go.
        (
            "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
            "<img>\"&gt;",
        ),
        (
            "<xmp><img title=\"</xmp><img src onerror=alert(1)>\"></xmp>",
            "&lt;img title=\"<img>\"&gt;",
        ),
        // Inside an attribute, markup is only text.
        (
            "<p title=\"</p><script>alert(1)</script>\">x</p>",
            "<p title=\"&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;\">x</p>",
        ),
        // <img> breaks out of SVG, so it is an HTML image, cleaned.
        (
            "<svg><style><img src=x onerror=alert(1)></style></svg>",
            "<img>",
        ),
    ] {
        let body = clean(input);
        assert_eq!(body, output, "{input}");
        assert_harmless(&body, BLOCK, input);
    }
}

#[test]
fn remote_images_are_blocked_and_counted() {
    let safe = safe_html(
        "<img src=\"http://t.example/a.png\" alt=\"A\">\
         <img src=\"https://t.example/b.png\" srcset=\"https://t.example/b.png 1x, https://t.example/b2.png 2x\">\
         <img src=\"//t.example/c.png\">\
         <table background=\"http://t.example/bg.png\"><tr><td background=\"https://t.example/td.png\">x</td></tr></table>\
         <img src=\"http://t.example/a.png\">",
        &no_inline,
        BLOCK,
    );
    let body = body(&safe, BLOCK);
    // a, b, b2, c, bg, td: each address once.
    assert_eq!(safe.remote_images_blocked, 6);
    assert!(!body.contains("t.example"), "{body}");
    assert!(body.contains("<img alt=\"A\">"), "{body}");
}

#[test]
fn remote_images_of_removed_elements_are_not_counted() {
    let safe = safe_html(
        "<input type=image src=\"http://t.example/i.png\"><video poster=\"http://t.example/p.png\"></video>\
         <svg><image href=\"http://t.example/s.png\"/></svg>",
        &no_inline,
        BLOCK,
    );
    assert_eq!(safe.remote_images_blocked, 0);
}

#[test]
fn remote_images_are_kept_when_loaded() {
    let safe = safe_html(
        "<img src=\"http://t.example/a.png\" srcset=\"https://t.example/a2.png 2x\">\
         <img src=\"//t.example/c.png\"><table background=\"https://t.example/bg.png\"></table>",
        &no_inline,
        LOAD,
    );
    assert_eq!(safe.remote_images_blocked, 0);
    let body = body(&safe, LOAD);
    assert_eq!(
        attribute_values(body, "src"),
        vec!["http://t.example/a.png", "https://t.example/c.png"]
    );
    assert_eq!(
        attribute_values(body, "srcset"),
        vec!["https://t.example/a2.png 2x"]
    );
    assert_eq!(
        attribute_values(body, "background"),
        vec!["https://t.example/bg.png"]
    );
}

#[test]
fn a_srcset_with_anything_but_web_images_is_dropped_even_when_loaded() {
    let safe = safe_html(
        "<img srcset=\"https://t.example/a.png 1x, data:image/png;base64,AAAA 2x\">\
         <img srcset=\"javascript:alert(1) 1x\">",
        &no_inline,
        LOAD,
    );
    assert_eq!(body(&safe, LOAD), "<img><img>");
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

fn inline_parts(cid: &str) -> Option<(String, Vec<u8>)> {
    match cid {
        "logo@example.test" => Some(("image/png".to_owned(), PNG.to_vec())),
        "octets@example.test" => Some(("application/octet-stream".to_owned(), PNG.to_vec())),
        "vector@example.test" => Some((
            "image/svg+xml".to_owned(),
            b"<svg onload=alert(1)/>".to_vec(),
        )),
        "notes@example.test" => Some(("text/html".to_owned(), b"<script>".to_vec())),
        _ => None,
    }
}

#[test]
fn cid_images_are_inlined_as_data_urls() {
    let png = base64::engine::general_purpose::STANDARD.encode(PNG);
    let safe = safe_html(
        "<img src=\"cid:logo@example.test\" alt=\"logo\">\
         <img src=\"CID:logo%40example.test\">\
         <img src=\"cid:octets@example.test\">\
         <table background=\"cid:logo@example.test\"></table>",
        &inline_parts,
        BLOCK,
    );
    let body = body(&safe, BLOCK);
    let expected = format!("data:image/png;base64,{png}");
    assert_eq!(attribute_values(body, "src"), vec![expected.clone(); 3]);
    assert_eq!(attribute_values(body, "background"), vec![expected]);
    assert_eq!(safe.remote_images_blocked, 0);
}

#[test]
fn cid_references_to_missing_svg_or_non_image_parts_are_dropped() {
    let body = clean_with_parts(
        "<img src=\"cid:missing@example.test\" alt=\"a\">\
         <img src=\"cid:vector@example.test\" alt=\"b\">\
         <img src=\"cid:notes@example.test\" alt=\"c\">\
         <a href=\"cid:logo@example.test\">d</a>",
    );
    assert_eq!(
        body,
        "<img alt=\"a\"><img alt=\"b\"><img alt=\"c\"><a rel=\"noopener noreferrer\">d</a>"
    );
}

fn clean_with_parts(html: &str) -> String {
    body(&safe_html(html, &inline_parts, BLOCK), BLOCK).to_owned()
}

#[test]
fn data_urls_in_the_mail_are_kept_only_for_raster_images() {
    let body = clean(
        "<img src=\"data:image/png;base64,iVBORw0KGgo=\">\
         <img src=\"data:image/jpeg;base64,/9j/4AAQ\">\
         <img src=\"data:image/svg+xml;base64,PHN2Zz4=\">\
         <img src=\"data:text/html,<b>x</b>\">\
         <img src=\"data:image/png\">",
    );
    assert_eq!(
        attribute_values(&body, "src"),
        vec![
            "data:image/png;base64,iVBORw0KGgo=",
            "data:image/jpeg;base64,/9j/4AAQ"
        ]
    );
}

#[test]
fn the_csp_meta_comes_first_in_head_and_allows_no_script() {
    for options in [BLOCK, LOAD] {
        let document = safe_html("<p>x</p>", &no_inline, options).document;
        let head = document
            .strip_prefix("<!doctype html><html><head>")
            .expect("doctype, html, head");
        let policy = csp(options.load_remote_images);
        assert!(head.starts_with(&format!(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\">"
        )));
        assert!(!policy.contains("script"), "{policy}");
        assert!(policy.starts_with("default-src 'none';"), "{policy}");
        for directive in [
            "form-action 'none'",
            "base-uri 'none'",
            "style-src 'unsafe-inline'",
        ] {
            assert!(policy.contains(directive), "{policy}");
        }
        assert!(document.contains("<base target=\"_blank\">"));
        assert!(document.ends_with("<p>x</p></body></html>"));
    }
}

#[test]
fn the_csp_allows_remote_images_only_when_loaded() {
    assert!(csp(false).contains("img-src data:;"));
    assert!(csp(true).contains("img-src data: https: http:;"));
    assert!(!csp(false).contains("http"));
}

#[test]
fn non_ascii_text_is_kept() {
    let body = clean("<p>Grüße aus Köln — 山田太郎 🙂 <b>Ελληνικά</b></p>");
    assert_eq!(body, "<p>Grüße aus Köln — 山田太郎 🙂 <b>Ελληνικά</b></p>");
}

#[test]
fn a_whole_html_document_is_reduced_to_its_body_content() {
    let body = clean(
        "<!DOCTYPE html><html><head><title>Newsletter</title><meta charset=\"utf-8\">\
         <style>p{color:red}</style></head><body bgcolor=\"#fff\" onload=\"alert(1)\">\
         <!-- a comment --><p>News</p></body></html>",
    );
    assert_eq!(body, "<p>News</p>");
}

fn related_message(html: &str) -> Vec<u8> {
    format!(
        "From: a@example.test\r\n\
         Subject: inline\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/related; boundary=\"rel\"\r\n\
         \r\n\
         --rel\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         \r\n\
         {html}\r\n\
         --rel\r\n\
         Content-Type: image/png\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-ID: <logo@example.test>\r\n\
         Content-Disposition: inline; filename=\"logo.png\"\r\n\
         \r\n\
         {}\r\n\
         --rel--\r\n",
        base64::engine::general_purpose::STANDARD.encode(PNG)
    )
    .into_bytes()
}

#[test]
fn safe_html_of_inlines_the_messages_cid_parts() {
    let raw = related_message(
        "<p>Hi</p><img src=\"cid:logo@example.test\"><img src=\"http://t.example/x.gif\"><script>x</script>",
    );
    let safe = safe_html_of(&raw, RenderOptions::default()).expect("an HTML body");
    assert_eq!(safe.remote_images_blocked, 1);
    let body = body(&safe, BLOCK);
    assert!(body.starts_with("<p>Hi</p>"), "{body}");
    let png = base64::engine::general_purpose::STANDARD.encode(PNG);
    assert_eq!(
        attribute_values(body, "src"),
        vec![format!("data:image/png;base64,{png}")]
    );
    assert!(!body.contains("script"), "{body}");
}

#[test]
fn safe_html_of_a_plain_text_message_is_none() {
    let raw = b"From: a@example.test\r\nSubject: plain\r\n\r\n<b>not html</b>\r\n";
    assert_eq!(safe_html_of(raw, RenderOptions::default()), None);
    assert_eq!(safe_html_of(b"", RenderOptions::default()), None);
}

#[test]
fn render_options_block_remote_images_by_default() {
    assert!(!RenderOptions::default().load_remote_images);
}

/// Bug: in dark mode, mail without its own colours showed light text on the reader's white
/// frame. HTML mail is written for a white page, so the document stays light.
#[test]
fn html_mail_stays_light_in_dark_mode() {
    let out = safe_html("<p>x</p>", &|_| None, RenderOptions::default());
    assert!(out.document.contains("color-scheme:light;"));
    assert!(!out.document.contains("light dark"));
    assert!(out.document.contains("background:#fff"));
}
