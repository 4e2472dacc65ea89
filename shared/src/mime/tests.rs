use super::*;

fn crlf(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

#[test]
fn encoded_word_headers_and_addresses_are_decoded() {
    let raw = crlf(
        "From: =?iso-8859-1?Q?J=FCrgen_M=FCller?= <jm@example.test>\n\
         To: a@example.test, \"B. Person\" <b@example.test>\n\
         Cc: =?utf-8?B?w6lsw6g=?= <c@example.test>\n\
         Subject: =?utf-8?B?R3LDvMOfZQ==?= and =?iso-8859-1?Q?caf=E9?=\n\
         Date: Thu, 26 Nov 2026 10:00:00 +0100\n\
         Message-ID: <id-1@example.test>\n\
         \n\
         Hello\n",
    );
    let d = display(&raw).unwrap();
    assert_eq!(d.subject, "Grüße and café");
    assert_eq!(d.from[0].to_string(), "Jürgen Müller <jm@example.test>");
    assert_eq!(d.to.len(), 2);
    assert_eq!(d.to[1].name.as_deref(), Some("B. Person"));
    assert_eq!(d.cc[0].name.as_deref(), Some("élè"));
    assert_eq!(d.date, Some(1_795_683_600));
    assert_eq!(d.message_id.as_deref(), Some("id-1@example.test"));
    assert_eq!(d.text.as_deref().map(str::trim_end), Some("Hello"));
    assert_eq!(d.html, None);
}

#[test]
fn legacy_charsets_are_decoded() {
    let mut latin1 = crlf("From: a@example.test\nSubject: x\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n");
    latin1.extend_from_slice(b"Gr\xfc\xdfe aus K\xf6ln\r\n");
    assert_eq!(
        display(&latin1).unwrap().text.unwrap().trim_end(),
        "Grüße aus Köln"
    );

    let mut sjis = crlf("From: =?shift_jis?B?jlKTY5G+mFk=?= <y@example.test>\nSubject: x\nContent-Type: text/plain; charset=shift_jis\nContent-Transfer-Encoding: 8bit\n\n");
    sjis.extend_from_slice(b"\x8eR\x93c\x91\xbe\x98Y\r\n");
    let d = display(&sjis).unwrap();
    assert_eq!(d.from[0].name.as_deref(), Some("山田太郎"));
    assert_eq!(d.text.unwrap().trim_end(), "山田太郎");
}

const MIXED: &str = "From: a@example.test\n\
Subject: structure\n\
MIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"outer\"\n\
\n\
--outer\n\
Content-Type: multipart/related; boundary=\"rel\"\n\
\n\
--rel\n\
Content-Type: multipart/alternative; boundary=\"alt\"\n\
\n\
--alt\n\
Content-Type: text/plain; charset=utf-8\n\
\n\
Plain   words\n\
   and more.\n\
--alt\n\
Content-Type: text/html; charset=utf-8\n\
\n\
<p>HTML <img src=\"cid:logo@x\"></p>\n\
--alt--\n\
--rel\n\
Content-Type: image/png\n\
Content-ID: <logo@x>\n\
Content-Transfer-Encoding: base64\n\
\n\
iVBORw0KGgo=\n\
--rel--\n\
--outer\n\
Content-Type: application/pdf; name=\"=?utf-8?Q?R=C3=A9sum=C3=A9.pdf?=\"\n\
Content-Disposition: attachment; filename=\"=?utf-8?Q?R=C3=A9sum=C3=A9.pdf?=\"\n\
Content-Transfer-Encoding: base64\n\
\n\
JVBERi0xLjQK\n\
--outer\n\
Content-Type: message/rfc822\n\
\n\
From: inner@example.test\n\
Subject: forwarded\n\
\n\
Inner body\n\
--outer--\n";

#[test]
fn multipart_structure_bodies_and_attachments() {
    let raw = crlf(MIXED);
    let d = display(&raw).unwrap();
    assert_eq!(
        d.text.as_deref().map(str::trim),
        Some("Plain   words\r\nand more.")
    );
    assert!(d.html.as_deref().unwrap().contains("cid:logo@x"));
    let names: Vec<&str> = d.attachments.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names.len(), 3, "{:?}", d.attachments);
    let logo = d
        .attachments
        .iter()
        .find(|a| a.content_type == "image/png")
        .unwrap();
    assert_eq!(logo.content_id.as_deref(), Some("logo@x"));
    assert!(logo.inline);
    assert_eq!(attachment(&raw, logo.part).unwrap(), b"\x89PNG\r\n\x1a\n");
    let pdf = d
        .attachments
        .iter()
        .find(|a| a.content_type == "application/pdf")
        .unwrap();
    assert_eq!(pdf.name, "Résumé.pdf");
    assert!(!pdf.inline);
    assert_eq!(pdf.size, 9);
    assert_eq!(attachment(&raw, pdf.part).unwrap(), b"%PDF-1.4\n");
    let inner = d
        .attachments
        .iter()
        .find(|a| a.content_type == "message/rfc822")
        .unwrap();
    assert!(inner.name.ends_with(".eml"), "{}", inner.name);
    let types: Vec<(usize, &str)> = d
        .outline
        .iter()
        .map(|p| (p.depth, p.content_type.as_str()))
        .collect();
    assert_eq!(
        &types[..6],
        [
            (0, "multipart/mixed"),
            (1, "multipart/related"),
            (2, "multipart/alternative"),
            (3, "text/plain"),
            (3, "text/html"),
            (2, "image/png"),
        ]
    );

    let s = summary(&raw).unwrap();
    assert!(s.has_attachments);
    assert_eq!(s.snippet, "Plain words and more.");
    assert_eq!(s.size, raw.len() as u64);
    // The container parts are not attachments.
    assert_eq!(attachment(&raw, 0), None);
}

#[test]
fn html_only_mail_gets_a_text_version_and_inline_images_are_not_attachments() {
    let raw = crlf(
        "From: a@example.test\nSubject: h\nContent-Type: text/html\n\n<p>Hi <b>there</b></p>\n",
    );
    let d = display(&raw).unwrap();
    assert!(d.html.unwrap().contains("<b>there</b>"));
    assert!(d.text.unwrap().contains("Hi there"));
    let s = summary(&raw).unwrap();
    assert!(!s.has_attachments);
    assert_eq!(s.snippet, "Hi there");
}

#[test]
fn snippets_collapse_whitespace_and_stop_at_the_limit() {
    let body = "word ".repeat(100);
    let raw = crlf(&format!("From: a@example.test\nSubject: s\n\n{body}\n"));
    let s = summary(&raw).unwrap();
    assert_eq!(s.snippet.chars().count(), SNIPPET_CHARS);
    assert!(s.snippet.starts_with("word word"));
}

#[test]
fn search_text_reaches_past_the_snippet_and_stops_at_its_limit() {
    let body = format!("{}needle {}", "word ".repeat(100), "more ".repeat(400));
    let raw = crlf(&format!("From: a@example.test\nSubject: s\n\n{body}\n"));
    let s = summary(&raw).unwrap();
    assert!(!s.snippet.contains("needle"));
    assert!(s.text.contains("needle"));
    assert_eq!(s.text.chars().count(), SEARCH_CHARS);
}

#[test]
fn garbage_is_an_error_or_a_best_effort_never_a_panic() {
    assert_eq!(display(b""), Err(MimeError::NotAMessage));
    assert_eq!(summary(b"\r\n\r\n"), Err(MimeError::NotAMessage));
    let mut seed = 7u64;
    for len in [1usize, 10, 100, 1000, 10_000] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 56) as u8
            })
            .collect();
        let _ = display(&bytes);
        let _ = summary(&bytes);
        let _ = attachment(&bytes, 3);
    }
    // Unterminated multipart, missing boundary, bad base64.
    let broken = crlf("From: a@example.test\nContent-Type: multipart/mixed\n\n--x\nContent-Transfer-Encoding: base64\n\n!!!!\n");
    let d = display(&broken).unwrap();
    assert!(d.outline[0].content_type.starts_with("multipart/"));
}

#[test]
fn an_html_or_svg_attachment_is_never_an_inert_image() {
    // bug: attachments became object URLs of the sender's type, so an HTML or SVG attachment
    // opened in a new tab ran its script in the app's origin.
    for active in [
        "text/html",
        "image/svg+xml",
        "application/xhtml+xml",
        "text/xml",
        "application/pdf",
        "image/svg+xml; charset=utf-8",
        "multipart/related",
        "",
        "image/png-but-not-really",
        "image/x-icon",
    ] {
        assert_eq!(super::inert_image_type(active), None, "{active}");
    }
    assert_eq!(super::inert_image_type("IMAGE/PNG"), Some("image/png"));
    assert_eq!(
        super::inert_image_type("image/jpeg; name=a.jpg"),
        Some("image/jpeg")
    );
}
