//! Arbitrary bytes as a stored message, through everything the reader does with one: the
//! display model, the list summary, each attachment, the sanitized HTML (remote images blocked
//! and loaded) and the mbox entry.
//!
//! Properties: nothing panics; the sanitized document starts with its CSP and holds no script
//! element and no tag with a `javascript:` URL; an mbox entry starts with `From ` and ends with
//! a blank line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webpop_shared::{export, mime, reader};

fuzz_target!(|raw: &[u8]| {
    if let Ok(display) = mime::display(raw) {
        for a in &display.attachments {
            let _ = mime::attachment(raw, a.part);
        }
    }
    let _ = mime::summary(raw);
    for load_remote_images in [false, true] {
        if let Some(html) = reader::safe_html_of(raw, reader::RenderOptions { load_remote_images })
        {
            let lower = html.document.to_ascii_lowercase();
            assert!(lower.starts_with(
                "<!doctype html><html><head><meta http-equiv=\"content-security-policy\""
            ));
            // Text may say anything ("javascript:" included: regressions/javascript-in-text-is-
            // not-a-url); the serializer escapes a text `<`, so every raw `<` opens a tag, and no
            // tag may be a script or carry a script URL.
            for tag in lower.split('<').skip(1) {
                let tag = tag.split('>').next().unwrap_or_default();
                assert!(!tag.starts_with("script"), "{}", html.document);
                assert!(!tag.contains("javascript:"), "{}", html.document);
            }
        }
    }
    let mut entry = Vec::new();
    export::mbox_entry(raw, &mut entry);
    assert!(entry.starts_with(b"From "));
    assert!(entry.ends_with(b"\n\n"));
});
