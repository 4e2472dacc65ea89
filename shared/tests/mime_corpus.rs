//! The MIME display model on the generated corpus: every message reads, and each kind's
//! headers, charsets, bodies and attachments come out as the generator made them.

use webpop_shared::mime::{attachment, display, summary, SEARCH_CHARS};
use webpop_testkit::corpus::{self, Kind};

#[test]
fn every_corpus_message_reads_as_generated() {
    let mail = corpus::generate(300, 2026);
    let mut seen_kinds = std::collections::HashSet::new();
    for (i, raw) in mail.iter().enumerate() {
        let kind = corpus::kind(i);
        seen_kinds.insert(kind);
        let d = display(raw).unwrap_or_else(|e| panic!("message {i} ({kind:?}): {e}"));
        let s = summary(raw).unwrap();
        assert!(
            !d.subject.is_empty(),
            "message {i} ({kind:?}) has no subject"
        );
        assert!(!s.from.is_empty(), "message {i} ({kind:?}) has no sender");
        assert!(d.date.is_some(), "message {i} ({kind:?}) has no date");
        assert!(d.text.is_some(), "message {i} ({kind:?}) has no text");
        match kind {
            Kind::Latin1 => {
                assert_eq!(d.subject, format!("Grüße aus Köln, Nr. {i} - ça va?"));
                assert_eq!(d.from[0].name.as_deref(), Some("Jürgen Müller"));
                let text = d.text.as_deref().unwrap();
                assert!(
                    ["Grüße", "café", "naïve"].iter().any(|w| text.contains(w)),
                    "message {i}: {}",
                    &text[..text.len().min(200)]
                );
            }
            Kind::ShiftJis => {
                assert_eq!(d.from[0].name.as_deref(), Some("山田太郎"));
                assert!(d.subject.ends_with(&format!(" {i}")), "{}", d.subject);
                assert!(!d.subject.contains("=?"), "{}", d.subject);
                assert!(d.text.as_deref().unwrap().chars().any(|c| c > '\u{3000}'));
            }
            Kind::Attachment | Kind::Mixed | Kind::LargeAttachment => {
                assert!(s.has_attachments, "message {i} ({kind:?})");
                assert_eq!(d.attachments.len(), 1, "message {i} ({kind:?})");
                let a = &d.attachments[0];
                if kind == Kind::Mixed {
                    assert_eq!(a.name, format!("Übersicht-{i}.bin"));
                    assert!(d.html.is_some());
                    assert_eq!(
                        d.subject,
                        format!("Rapport trimestriel n° {i} (pièce jointe)")
                    );
                } else if kind == Kind::Attachment {
                    assert_eq!(a.name, format!("data-{i}.bin"));
                }
                let bytes = attachment(raw, a.part).unwrap();
                assert_eq!(bytes.len(), a.size);
                assert!(a.size >= 10_000, "message {i}: {} bytes", a.size);
            }
            Kind::Alternative => assert!(d.html.is_some(), "message {i}"),
            _ => assert!(!s.has_attachments, "message {i} ({kind:?})"),
        }
    }
    assert_eq!(seen_kinds.len(), 11, "the corpus slice covers every kind");
}

/// The list's summary without decoding attachments, and the same from a full parse (every part
/// decoded, as `display` reads a message): the same text and the same "has attachments".
fn full_parse(raw: &[u8]) -> Option<(String, bool)> {
    use mail_parser::{MessageParser, MimeHeaders};
    let message = MessageParser::default().parse(raw)?;
    if message.headers().is_empty() {
        return None;
    }
    let text = message
        .body_preview(SEARCH_CHARS * 2)
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .map(|p| p.chars().take(SEARCH_CHARS).collect())
        .unwrap_or_default();
    let has_attachments = message.attachments.iter().any(|&id| {
        message.parts.get(id as usize).is_some_and(|part| {
            !part
                .content_disposition()
                .map_or(part.content_id().is_some(), |d| d.is_inline())
        })
    });
    Some((text, has_attachments))
}

/// Messages whose structure is unusual: the cases mail-parser's rules decide.
fn odd_structures() -> Vec<Vec<u8>> {
    let head = "From: a@example.test\r\nTo: b@example.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n";
    let b64 = "aGVsbG8gd29ybGQ=";
    let parts: Vec<String> = vec![
        // multipart/alternative with HTML only
        "Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/html\r\n\r\n<p>only <b>html</b></p>\r\n--b1--\r\n".into(),
        // alternative: text and HTML; mixed with an attachment
        format!("Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\npreamble\r\n--m\r\nContent-Type: multipart/alternative; boundary=\"a\"\r\n\r\n--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain words\r\n--a\r\nContent-Type: text/html\r\n\r\n<p>html words</p>\r\n--a--\r\n--m\r\nContent-Type: application/pdf; name=\"x.pdf\"\r\nContent-Disposition: attachment; filename=\"x.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--m--\r\nepilogue\r\n"),
        // related: HTML with a cid image; the image is inline
        format!("Content-Type: multipart/related; boundary=\"r\"\r\n\r\n--r\r\nContent-Type: text/html\r\n\r\n<img src=cid:x>hi\r\n--r\r\nContent-Type: image/png; name=x.png\r\nContent-ID: <x>\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--r--\r\n"),
        // an image first, then text, in mixed
        format!("Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--m\r\nContent-Type: text/plain\r\n\r\ntext after image\r\n--m--\r\n"),
        // two text parts, the second named
        "Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--m\r\nContent-Type: text/plain; name=notes.txt\r\n\r\nsecond\r\n--m--\r\n".into(),
        // a forwarded message
        "Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nsee below\r\n--m\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=\"i\"\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\ninner text\r\n--i\r\nContent-Type: application/zip\r\n\r\nPK\r\n--i--\r\n\r\n--m--\r\n".into(),
        // a digest: parts without a type are messages
        "Content-Type: multipart/digest; boundary=\"d\"\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\nbody one\r\n--d\r\n\r\nSubject: two\r\n\r\nbody two\r\n--d--\r\n".into(),
        // multipart without a boundary parameter, and one whose boundary never appears
        "Content-Type: multipart/mixed\r\n\r\nno boundary here\r\n".into(),
        "Content-Type: multipart/mixed; boundary=\"zz\"\r\n\r\nthe boundary never comes\r\n".into(),
        // never closed
        "Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nunclosed text\r\n--m\r\nContent-Type: application/octet-stream\r\n\r\nbinary".into(),
        // LF line ends only
        "Content-Type: multipart/alternative; boundary=\"a\"\n\n--a\nContent-Type: text/plain\n\nlf text\n--a\nContent-Type: text/html\n\n<p>lf html</p>\n--a--\n".into(),
        // quoted-printable, latin-1, inline disposition with a name
        "Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe =\r\naus K=F6ln\r\n--m\r\nContent-Type: image/jpeg; name=a.jpg\r\nContent-Disposition: inline; filename=a.jpg\r\n\r\nJPEG\r\n--m--\r\n".into(),
        // a text/calendar part and a text attachment by disposition
        "Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR\r\n--m\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nattached text\r\n--m--\r\n".into(),
        // no body at all, and a single HTML part
        "Content-Type: text/plain\r\n".into(),
        "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><h1>Title</h1><p>para&amp;graph</p></body></html>\r\n".into(),
        // alternative nested in related nested in mixed
        "Content-Type: multipart/mixed; boundary=\"1\"\r\n\r\n--1\r\nContent-Type: multipart/related; boundary=\"2\"\r\n\r\n--2\r\nContent-Type: multipart/alternative; boundary=\"3\"\r\n\r\n--3\r\nContent-Type: text/plain\r\n\r\ndeep plain\r\n--3\r\nContent-Type: text/html\r\n\r\n<p>deep html</p>\r\n--3--\r\n--2\r\nContent-Type: image/gif\r\nContent-ID: <g>\r\n\r\nGIF\r\n--2--\r\n--1\r\nContent-Type: application/octet-stream\r\n\r\nbin\r\n--1--\r\n".into(),
    ];
    parts
        .into_iter()
        .map(|p| format!("{head}{p}").into_bytes())
        .collect()
}

#[test]
fn the_summary_reads_like_a_full_parse_without_decoding_attachments() {
    let mut mail = corpus::generate(300, 7);
    mail.extend(odd_structures());
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../frontend/e2e/fixtures");
    for entry in std::fs::read_dir(fixtures).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "eml") {
            mail.push(std::fs::read(path).unwrap());
        }
    }
    // Every message cut short at a few places too (unclosed parts, as a message stored
    // headers-first is): these must read, but may differ. Where a cut falls inside a base64
    // text part, a full parse gives up on decoding it (mail-parser's "encoding problem"): it
    // shows the base64 as text and counts the part as an attachment, while the summary shows
    // the text decoded so far and no attachment.
    let whole = mail.len();
    for i in 0..whole {
        let raw = mail[i].clone();
        for cut in [raw.len() / 3, raw.len() / 2, raw.len() * 9 / 10] {
            mail.push(raw[..cut].to_vec());
        }
    }
    let mut differ = Vec::new();
    let mut cut_differ = 0;
    for (i, raw) in mail.iter().enumerate() {
        let ours = summary(raw).ok().map(|s| (s.text, s.has_attachments));
        let full = full_parse(raw);
        if ours != full {
            if i >= whole {
                cut_differ += 1;
                continue;
            }
            differ.push(format!(
                "message {i}: summary {ours:?}\n  full parse {full:?}"
            ));
        }
    }
    eprintln!(
        "cut short: {cut_differ} of {} read differently",
        mail.len() - whole
    );
    assert!(
        differ.is_empty(),
        "{} of {} messages differ:\n{}",
        differ.len(),
        mail.len(),
        differ[..differ.len().min(8)].join("\n")
    );
}
