//! The MIME display model on the generated corpus: every message reads, and each kind's
//! headers, charsets, bodies and attachments come out as the generator made them.

use webpop_shared::mime::{attachment, display, summary};
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
