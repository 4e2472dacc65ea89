//! The demo's sample messages.

use mail_builder::headers::address::Address;
use mail_builder::MessageBuilder;
use std::sync::Arc;
use webpop_shared::pop3::server_side::ServedMessage;

/// The messages every demo session starts from. It never changes: the demo is shared by every
/// visitor of a relay, so one visitor's deletions must never show to another. Each POP3
/// connection gets its own copy, and its deletions (applied at QUIT) end with it.
#[derive(Debug)]
pub(super) struct Mailbox {
    messages: Vec<ServedMessage>,
}

impl Mailbox {
    pub(super) fn new(messages: Vec<Vec<u8>>) -> Self {
        let messages = messages
            .into_iter()
            .enumerate()
            .map(|(i, m)| (format!("demo-{:04}", i + 1), Arc::from(m)))
            .collect();
        Self { messages }
    }

    /// A fresh copy for one POP3 connection: (uid, bytes) in message-number order.
    pub(super) fn snapshot(&self) -> Vec<ServedMessage> {
        self.messages.clone()
    }
}

fn build(builder: MessageBuilder<'_>) -> Vec<u8> {
    builder.write_to_vec().unwrap_or_default()
}

/// The sample mail: plain text, HTML with a remote image and an inline `cid:` image, an
/// attachment, and non-ASCII text in headers and bodies. Built once per process (multipart
/// boundaries are random), with fixed dates so the list is stable.
pub fn sample_messages() -> &'static [Vec<u8>] {
    static SAMPLES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SAMPLES.get_or_init(build_samples)
}

fn build_samples() -> Vec<Vec<u8>> {
    let me = || Address::new_address(Some("You"), "you@demo.webpop.invalid");
    let at = |day: i64| 1_780_000_000 + day * 86_400;
    // A 1×1 transparent PNG.
    const PNG: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F,
        0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];
    vec![
        build(
            MessageBuilder::new()
                .from(("webpop", "hello@demo.webpop.invalid"))
                .to(me())
                .subject("Welcome to webpop")
                .date(at(0))
                .message_id("welcome@demo.webpop.invalid")
                .text_body(
                    "Hello!\n\nThis mailbox is a demo served by the relay on your machine. webpop \
                     downloaded it over POP3 and TLS, in your browser, and stored it in \
                     IndexedDB: it stays readable offline.\n\nTry the other messages: HTML mail, \
                     attachments, and text in other scripts.\n",
                ),
        ),
        build(
            MessageBuilder::new()
                .from(("Newsletter", "news@demo.webpop.invalid"))
                .to(me())
                .subject("This week: HTML mail, safely")
                .date(at(1))
                .message_id("news@demo.webpop.invalid")
                .text_body("HTML version only; your reader shows it sanitised.\n")
                .html_body(
                    "<html><body><h1>This week</h1><p>HTML mail is <b>sanitised</b> and shown \
                     in a sandbox.</p><p><img src=\"cid:logo@demo\" alt=\"logo\"> An inline \
                     image, shown.</p><p><img src=\"https://tracker.example/pixel.gif\" \
                     alt=\"remote\"> A remote image, blocked until you ask.</p>\
                     <script>alert('never runs')</script></body></html>",
                )
                .inline("image/png", "logo@demo", PNG),
        ),
        build(
            MessageBuilder::new()
                .from(("Accounts", "billing@demo.webpop.invalid"))
                .to(me())
                .subject("Your invoice (PDF attached)")
                .date(at(2))
                .message_id("invoice@demo.webpop.invalid")
                .text_body("Please find the invoice attached.\n")
                .attachment(
                    "application/pdf",
                    "invoice-2026-11.pdf",
                    b"%PDF-1.4\n% demo invoice\n".to_vec(),
                ),
        ),
        build(
            MessageBuilder::new()
                .from(("Jürgen Müller", "juergen@demo.webpop.invalid"))
                .to(me())
                .subject("Grüße aus Köln – schöne Feiertage!")
                .date(at(3))
                .message_id("koeln@demo.webpop.invalid")
                .text_body("Hallo,\n\nviele Grüße aus Köln. Bis bald!\n\nJürgen\n"),
        ),
        build(
            MessageBuilder::new()
                .from(("山田太郎", "yamada@demo.webpop.invalid"))
                .to(me())
                .subject("会議の資料について")
                .date(at(4))
                .message_id("yamada@demo.webpop.invalid")
                .text_body("お疲れ様です。\n\n明日の会議の資料を添付します。\n\n山田\n")
                .attachment(
                    "text/plain",
                    "資料.txt",
                    "議題: 第四四半期の計画\n".as_bytes().to_vec(),
                ),
        ),
        build(
            MessageBuilder::new()
                .from(("Zoë", "zoe@demo.webpop.invalid"))
                .to(me())
                .subject("Photos from the trip 📷")
                .date(at(5))
                .message_id("trip@demo.webpop.invalid")
                .text_body("Here are two of the photos.\n")
                .attachment("image/png", "beach.png", PNG.to_vec())
                .attachment("image/png", "hills.png", PNG.to_vec()),
        ),
    ]
}
