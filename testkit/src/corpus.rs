//! A deterministic mail corpus that exercises what a POP3 client must carry byte-for-byte.
//!
//! Every message uses CRLF line endings throughout and ends with CRLF. The kind of message `i`
//! depends only on `i` (see [`kind`]), and its contents only on `(i, seed)` and the size scale, so
//! `generate(10, s)` is a prefix of `generate(500, s)`. Any 12 consecutive messages contain one of
//! each small kind; every 167th message (indices 83, 250, 417, …) is a [`Kind::LargeAttachment`] of
//! 2–5 MB. Across 500 messages the corpus therefore contains:
//!
//! - plain text (7bit, quoted-printable and base64 UTF-8 bodies, built with `mail-builder`);
//! - `multipart/alternative` (text + HTML) and `multipart/mixed` with base64 attachments;
//! - three base64 attachments of 2–5 MB;
//! - `iso-8859-1` and `shift_jis` bodies: real non-UTF-8 bytes, declared charset, `8bit`;
//! - RFC 2047 encoded words, both `Q` and `B`, in subjects and display names;
//! - unencoded lines of 20,000+ octets (`8bit` UTF-8 and `7bit` ASCII);
//! - body lines that are exactly `.`, `..`, `.x`, lines starting `From ` and `>From `, a body whose
//!   first line is `.` and one whose last line is `.`.
//!
//! Multipart boundaries, `Message-ID` and `Date` are derived from the seed and index, never from the
//! clock, so the output is stable across runs and machines.

use std::fmt::Write as _;

use base64::Engine as _;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;
use mail_builder::MessageBuilder;

/// Number of messages in the benchmark mailbox.
pub const BENCH_MESSAGES: usize = 2_000;
/// Approximate total size in bytes of the benchmark mailbox.
pub const BENCH_TOTAL_BYTES: usize = 100_000_000;

/// Length in octets of the long unencoded lines in [`Kind::LongLine`] messages (without CRLF).
pub const LONG_LINE_LEN: usize = 20_480;

/// What a corpus message is made of. [`kind`] tells which one message `i` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `text/plain`, ASCII, `7bit`, assembled by hand.
    PlainRaw,
    /// `text/plain; charset=utf-8` built by `mail-builder` (it picks 7bit, QP or base64).
    PlainBuilt,
    /// `multipart/alternative` with a UTF-8 text part and an HTML part.
    Alternative,
    /// `text/plain; charset=iso-8859-1`, `8bit`, Q-encoded ISO-8859-1 subject and name.
    Latin1,
    /// `text/plain; charset=shift_jis`, `8bit`, B-encoded Shift_JIS subject and name.
    ShiftJis,
    /// `multipart/mixed`: text plus a base64 binary attachment of 10–200 KB (before scaling).
    Attachment,
    /// `multipart/mixed` of a `multipart/alternative` and an attachment with a non-ASCII name.
    Mixed,
    /// A `text/plain` body with unencoded lines of [`LONG_LINE_LEN`] octets (8bit or 7bit).
    LongLine,
    /// A `text/plain` body with lines `.`, `..`, `.x`, `From …`, `>From …`.
    DotLines,
    /// Many and folded header fields, `Received` chain, long `To` list.
    HeaderHeavy,
    /// `multipart/mixed` with one base64 attachment; the whole message is 2–5 MB.
    LargeAttachment,
}

/// The kind of message number `index` (0-based) — independent of the seed and the corpus size.
pub fn kind(index: usize) -> Kind {
    if index % 167 == 83 {
        return Kind::LargeAttachment;
    }
    match index % 12 {
        0 => Kind::PlainRaw,
        1 => Kind::Alternative,
        2 => Kind::Latin1,
        3 => Kind::ShiftJis,
        4 => Kind::Attachment,
        5 => Kind::LongLine,
        6 => Kind::DotLines,
        7 => Kind::PlainBuilt,
        8 => Kind::LongLine,
        9 => Kind::Mixed,
        10 => Kind::DotLines,
        _ => Kind::HeaderHeavy,
    }
}

/// `count` messages for `seed`, with the default (small) sizes: about 20 MB per 500 messages,
/// most of it in the large attachments.
pub fn generate(count: usize, seed: u64) -> Vec<Vec<u8>> {
    (0..count).map(|i| message(i, seed, 1.0)).collect()
}

/// `count` messages totalling about `total_bytes` (within ~2% when the target is reachable).
///
/// The 2–5 MB attachments keep their size; the filler of every other message is scaled until the
/// total fits. If even the smallest filler overshoots the target, the result is simply larger.
/// The benchmark mailbox is `generate_sized(BENCH_MESSAGES, BENCH_TOTAL_BYTES, seed)` —
/// see [`benchmark`].
pub fn generate_sized(count: usize, total_bytes: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut scale = 1.0_f64;
    let mut messages = Vec::new();
    for _ in 0..6 {
        messages = (0..count).map(|i| message(i, seed, scale)).collect();
        let fixed: usize = messages
            .iter()
            .enumerate()
            .filter(|(i, _)| kind(*i) == Kind::LargeAttachment)
            .map(|(_, m)| m.len())
            .sum();
        let total: usize = messages.iter().map(Vec::len).sum();
        let off = (total as f64 - total_bytes as f64).abs() / total_bytes.max(1) as f64;
        if off < 0.01 || total <= fixed {
            break;
        }
        let wanted = total_bytes.saturating_sub(fixed) as f64;
        let have = (total - fixed) as f64;
        let next = (scale * wanted / have).clamp(0.001, 10_000.0);
        if (next - scale).abs() < 1e-9 {
            break;
        }
        scale = next;
    }
    messages
}

/// The benchmark mailbox: [`BENCH_MESSAGES`] messages totalling about [`BENCH_TOTAL_BYTES`].
pub fn benchmark(seed: u64) -> Vec<Vec<u8>> {
    generate_sized(BENCH_MESSAGES, BENCH_TOTAL_BYTES, seed)
}

/// Message `index` of the corpus for `seed` at filler scale `scale` (1.0 = the default sizes).
pub fn message(index: usize, seed: u64, scale: f64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed ^ (index as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    let ctx = Ctx { index, seed, scale };
    let mut m = match kind(index) {
        Kind::PlainRaw => plain_raw(&ctx, &mut rng),
        Kind::PlainBuilt => plain_built(&ctx, &mut rng),
        Kind::Alternative => alternative(&ctx, &mut rng),
        Kind::Latin1 => latin1(&ctx, &mut rng),
        Kind::ShiftJis => shift_jis(&ctx, &mut rng),
        Kind::Attachment => attachment(&ctx, &mut rng, false),
        Kind::Mixed => attachment(&ctx, &mut rng, true),
        Kind::LongLine => long_line(&ctx, &mut rng),
        Kind::DotLines => dot_lines(&ctx, &mut rng),
        Kind::HeaderHeavy => header_heavy(&ctx, &mut rng),
        Kind::LargeAttachment => large_attachment(&ctx, &mut rng),
    };
    if !m.ends_with(b"\r\n") {
        m.extend_from_slice(b"\r\n");
    }
    debug_assert!(crlf_only(&m), "message {index} has a bare CR or LF");
    m
}

/// True if every CR in `m` is followed by LF and every LF preceded by CR.
pub fn crlf_only(m: &[u8]) -> bool {
    m.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => m.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && m[i - 1] == b'\r',
        _ => true,
    })
}

/// The splitmix64 generator: tiny, fast and good enough for test data.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi` (`lo` if the range is empty).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo {
            lo
        } else {
            lo + (self.next_u64() % (hi - lo) as u64) as usize
        }
    }

    /// One element of `items`.
    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.range(0, items.len())]
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

struct Ctx {
    index: usize,
    seed: u64,
    scale: f64,
}

impl Ctx {
    fn scaled(&self, n: usize) -> usize {
        ((n as f64) * self.scale).round().max(16.0) as usize
    }
    fn message_id(&self) -> String {
        format!("{:016x}.{}@corpus.webpop.test", self.seed, self.index)
    }
    fn boundary(&self, part: &str) -> String {
        format!("=_webpop_{:x}_{}_{part}", self.seed, self.index)
    }
    fn date(&self) -> i64 {
        1_700_000_000 + self.index as i64 * 3_607
    }
    fn to(&self) -> String {
        format!("user{}@example.test", self.index % 7)
    }
}

const ASCII_WORDS: &[&str] = &[
    "the",
    "message",
    "server",
    "mailbox",
    "client",
    "protocol",
    "download",
    "quota",
    "retrieve",
    "delete",
    "pipeline",
    "octet",
    "line",
    "header",
    "body",
    "attachment",
    "charset",
    "meeting",
    "tomorrow",
    "report",
    "invoice",
    "please",
    "thanks",
    "regards",
    "schedule",
    "budget",
    "draft",
    "review",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "for",
    "with",
    "on",
    "at",
    "by",
    "from",
];

const UTF8_WORDS: &[&str] = &[
    "naïve",
    "café",
    "Grüße",
    "Ångström",
    "façade",
    "Zoë",
    "déjà",
    "vu",
    "smörgåsbord",
    "jalapeño",
    "€100",
    "Привет",
    "мир",
    "Ελλάδα",
    "日本語",
    "テスト",
    "😀",
    "señor",
    "coöperate",
    "mail",
    "message",
    "and",
    "the",
    "with",
];

const LATIN1_WORDS: &[&str] = &[
    "Grüße",
    "café",
    "naïve",
    "Ångström",
    "façade",
    "Müller",
    "¡Olé!",
    "señor",
    "Øresund",
    "Æble",
    "crème",
    "brûlée",
    "über",
    "Straße",
    "§3",
    "½",
    "£5",
    "©",
    "the",
    "and",
    "message",
    "für",
];

/// Shift_JIS sentences (real bytes; some second bytes are 0x5C, the ASCII backslash).
const SJIS_SENTENCES: &[&[u8]] = &[
    // 日本語のテストメッセージです。
    b"\x93\xfa\x96{\x8c\xea\x82\xcc\x83e\x83X\x83g\x83\x81\x83b\x83Z\x81[\x83W\x82\xc5\x82\xb7\x81B",
    // 表示とソフトウェアの予定表。
    b"\x95\x5c\x8e\xa6\x82\xc6\x83\x5c\x83t\x83g\x83E\x83F\x83A\x82\xcc\x97\x5c\x92\xe8\x95\x5c\x81B",
    // こんにちは、世界。メールの本文はシフトJISで書かれています。
    b"\x82\xb1\x82\xf1\x82\xc9\x82\xbf\x82\xcd\x81A\x90\xa2\x8aE\x81B\x83\x81\x81[\x83\x8b\x82\xcc\x96{\x95\xb6\x82\xcd\x83V\x83t\x83gJIS\x82\xc5\x8f\x91\x82\xa9\x82\xea\x82\xc4\x82\xa2\x82\xdc\x82\xb7\x81B",
    // 能力と構文、十分な申請。
    b"\x94\x5c\x97\xcd\x82\xc6\x8d\x5c\x95\xb6\x81A\x8f\x5c\x95\xaa\x82\xc8\x90\x5c\x90\xbf\x81B",
];
/// 山田太郎 in Shift_JIS.
const SJIS_NAME: &[u8] = b"\x8eR\x93c\x91\xbe\x98Y";

const NAMES: &[&str] = &[
    "José Müller",
    "Zoë Ångström",
    "Renée Faßbender",
    "山田太郎",
    "Алиса Петрова",
    "Plain Ascii",
    "O'Brien, Pat",
];

/// UTF-8 text to ISO-8859-1 bytes (every char used here is below U+0100).
fn latin1_bytes(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("corpus Latin-1 words are below U+0100"))
        .collect()
}

/// Appends CRLF-terminated lines of words until at least `bytes` octets were added.
fn filler<W: AsRef<[u8]>>(rng: &mut SplitMix64, out: &mut Vec<u8>, bytes: usize, words: &[W]) {
    let start = out.len();
    while out.len() - start < bytes {
        let width = rng.range(40, 77);
        let line_start = out.len();
        while out.len() - line_start < width {
            if out.len() > line_start {
                out.push(b' ');
            }
            out.extend_from_slice(words[rng.range(0, words.len())].as_ref());
        }
        out.extend_from_slice(b"\r\n");
        if rng.range(0, 8) == 0 {
            out.extend_from_slice(b"\r\n");
        }
    }
}

fn ascii_text(rng: &mut SplitMix64, bytes: usize) -> String {
    let mut v = Vec::new();
    filler(rng, &mut v, bytes, ASCII_WORDS);
    String::from_utf8(v).expect("ASCII words make UTF-8")
}

fn utf8_text(rng: &mut SplitMix64, bytes: usize) -> String {
    let mut v = Vec::new();
    filler(rng, &mut v, bytes, UTF8_WORDS);
    String::from_utf8(v).expect("UTF-8 words make UTF-8")
}

/// An RFC 2047 `Q` encoded word (or several, folded) for `bytes` in `charset`.
pub fn encode_q(charset: &str, bytes: &[u8]) -> String {
    let mut words = Vec::new();
    let mut cur = String::new();
    let overhead = charset.len() + 7; // =?cs?Q?...?=
    for &b in bytes {
        let piece = match b {
            b' ' => "_".to_string(),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'!' | b'*' | b'+' | b'-' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("={b:02X}"),
        };
        if overhead + cur.len() + piece.len() > 75 {
            words.push(std::mem::take(&mut cur));
        }
        cur.push_str(&piece);
    }
    words.push(cur);
    words
        .iter()
        .map(|w| format!("=?{charset}?Q?{w}?="))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// An RFC 2047 `B` encoded word for `bytes` in `charset` (callers keep it under 75 octets).
pub fn encode_b(charset: &str, bytes: &[u8]) -> String {
    format!("=?{charset}?B?{}?=", base64(bytes))
}

fn base64(input: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(input)
}

/// Base64 in 76-character lines, each ending in CRLF.
fn base64_lines(input: &[u8], out: &mut Vec<u8>) {
    for chunk in input.chunks(57) {
        out.extend_from_slice(base64(chunk).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

fn rfc822_date(ts: i64) -> String {
    mail_builder::headers::date::Date::new(ts).to_rfc822()
}

/// The common header block of hand-assembled messages (without the blank line).
fn raw_headers(ctx: &Ctx, from: &str, subject: &str, out: &mut Vec<u8>) {
    let mut h = String::new();
    let _ = write!(
        h,
        "Return-Path: <sender{i}@example.test>\r\n\
         From: {from}\r\n\
         To: {to}\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <{mid}>\r\n\
         MIME-Version: 1.0\r\n",
        i = ctx.index % 5,
        to = ctx.to(),
        date = rfc822_date(ctx.date()),
        mid = ctx.message_id(),
    );
    out.extend_from_slice(h.as_bytes());
}

fn plain_raw(ctx: &Ctx, rng: &mut SplitMix64) -> Vec<u8> {
    let mut m = Vec::new();
    let subject = format!("Plain report {} {}", ctx.index, rng.pick(ASCII_WORDS));
    raw_headers(ctx, "Plain Sender <plain@example.test>", &subject, &mut m);
    m.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii\r\n");
    m.extend_from_slice(b"Content-Transfer-Encoding: 7bit\r\n\r\n");
    let size = rng.range(500, 8_000);
    filler(rng, &mut m, ctx.scaled(size), ASCII_WORDS);
    m
}

fn builder<'x>(ctx: &Ctx, rng: &mut SplitMix64, subject: String) -> MessageBuilder<'x> {
    let name = rng.pick(NAMES).to_string();
    MessageBuilder::new()
        .from(Address::new_address(
            Some(name),
            format!("sender{}@example.test", ctx.index % 5),
        ))
        .to(Address::new_address(None::<String>, ctx.to()))
        .subject(subject)
        .date(ctx.date())
        .message_id(ctx.message_id())
}

fn build(b: MessageBuilder<'_>) -> Vec<u8> {
    b.write_to_vec()
        .expect("writing a message into a Vec cannot fail")
}

fn plain_built(ctx: &Ctx, rng: &mut SplitMix64) -> Vec<u8> {
    let subject = format!("Grüße {} — {}", ctx.index, rng.pick(UTF8_WORDS));
    let size = rng.range(500, 8_000);
    // Alternate between ASCII (7bit or QP for long words) and UTF-8 (QP or base64) bodies.
    let body = if rng.range(0, 2) == 0 {
        ascii_text(rng, ctx.scaled(size))
    } else {
        utf8_text(rng, ctx.scaled(size))
    };
    build(builder(ctx, rng, subject).text_body(body))
}

fn alternative(ctx: &Ctx, rng: &mut SplitMix64) -> Vec<u8> {
    let subject = format!("Newsletter #{} ✉ {}", ctx.index, rng.pick(UTF8_WORDS));
    let size = rng.range(1_000, 10_000);
    let text = utf8_text(rng, ctx.scaled(size));
    let html = format!(
        "<html><body><h1>Newsletter {}</h1>\r\n<p>{}</p>\r\n</body></html>\r\n",
        ctx.index,
        text.replace("\r\n\r\n", "</p>\r\n<p>")
    );
    let body = MimePart::new(
        ContentType::new("multipart/alternative").attribute("boundary", ctx.boundary("alt")),
        vec![
            MimePart::new("text/plain", text),
            MimePart::new("text/html", html),
        ],
    );
    build(builder(ctx, rng, subject).body(body))
}

fn latin1(ctx: &Ctx, rng: &mut SplitMix64) -> Vec<u8> {
    let mut m = Vec::new();
    let subject = encode_q(
        "ISO-8859-1",
        &latin1_bytes(&format!("Grüße aus Köln, Nr. {} - ça va?", ctx.index)),
    );
    let from = format!(
        "{} <mueller@example.test>",
        encode_q("iso-8859-1", &latin1_bytes("Jürgen Müller"))
    );
    raw_headers(ctx, &from, &subject, &mut m);
    m.extend_from_slice(b"Content-Type: text/plain; charset=iso-8859-1\r\n");
    m.extend_from_slice(b"Content-Transfer-Encoding: 8bit\r\n\r\n");
    let words: Vec<Vec<u8>> = LATIN1_WORDS.iter().map(|w| latin1_bytes(w)).collect();
    let size = rng.range(500, 6_000);
    filler(rng, &mut m, ctx.scaled(size), &words);
    m
}

fn shift_jis(ctx: &Ctx, rng: &mut SplitMix64) -> Vec<u8> {
    let mut m = Vec::new();
    let subject = format!(
        "{} {}",
        // The long sentence would make an encoded word over 75 octets.
        encode_b(
            "shift_jis",
            rng.pick(&[SJIS_SENTENCES[0], SJIS_SENTENCES[1], SJIS_SENTENCES[3]])
        ),
        ctx.index
    );
    let from = format!("{} <yamada@example.test>", encode_b("shift_jis", SJIS_NAME));
    raw_headers(ctx, &from, &subject, &mut m);
    m.extend_from_slice(b"Content-Type: text/plain; charset=shift_jis\r\n");
    m.extend_from_slice(b"Content-Transfer-Encoding: 8bit\r\n\r\n");
    let target = ctx.scaled(rng.range(500, 6_000));
    let start = m.len();
    while m.len() - start < target {
        for _ in 0..rng.range(1, 4) {
            m.extend_from_slice(rng.pick(SJIS_SENTENCES));
        }
        m.extend_from_slice(b"\r\n");
    }
    m
}

fn attachment(ctx: &Ctx, rng: &mut SplitMix64, mixed: bool) -> Vec<u8> {
    let size = ctx.scaled(rng.range(10_000, 200_000));
    let mut data = vec![0u8; size];
    rng.fill(&mut data);
    let text = ascii_text(rng, 600);
    let (subject, first) = if mixed {
        let html = format!("<html><body><pre>{text}</pre></body></html>\r\n");
        (
            format!("Rapport trimestriel n° {} (pièce jointe)", ctx.index),
            MimePart::new(
                ContentType::new("multipart/alternative")
                    .attribute("boundary", ctx.boundary("alt")),
                vec![
                    MimePart::new("text/plain", text),
                    MimePart::new("text/html", html),
                ],
            ),
        )
    } else {
        (
            format!("Attachment {} for you", ctx.index),
            MimePart::new("text/plain", text),
        )
    };
    let name = if mixed {
        format!("Übersicht-{}.bin", ctx.index)
    } else {
        format!("data-{}.bin", ctx.index)
    };
    let body = MimePart::new(
        ContentType::new("multipart/mixed").attribute("boundary", ctx.boundary("mixed")),
        vec![
            first,
            MimePart::new("application/octet-stream", data).attachment(name),
        ],
    );
    build(builder(ctx, rng, subject).body(body))
}

fn long_line(ctx: &Ctx, rng: &mut SplitMix64) -> Vec<u8> {
    let mut m = Vec::new();
    let eight_bit = ctx.index % 12 == 5;
    let subject = format!(
        "Long lines {} ({})",
        ctx.index,
        if eight_bit { "8bit" } else { "7bit" }
    );
    raw_headers(ctx, "Long Liner <long@example.test>", &subject, &mut m);
    if eight_bit {
        m.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
        m.extend_from_slice(b"Content-Transfer-Encoding: 8bit\r\n\r\n");
    } else {
        m.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii\r\n");
        m.extend_from_slice(b"Content-Transfer-Encoding: 7bit\r\n\r\n");
    }
    filler(rng, &mut m, 300, ASCII_WORDS);
    let lines = rng.range(1, 3);
    for _ in 0..lines {
        let start = m.len();
        while m.len() - start < LONG_LINE_LEN {
            if m.len() > start {
                m.push(b' ');
            }
            let w = if eight_bit {
                rng.pick(UTF8_WORDS)
            } else {
                rng.pick(ASCII_WORDS)
            };
            m.extend_from_slice(w.as_bytes());
        }
        m.extend_from_slice(b"\r\n");
        filler(rng, &mut m, 200, ASCII_WORDS);
    }
    let size = rng.range(0, 3_000);
    filler(rng, &mut m, ctx.scaled(size), ASCII_WORDS);
    m
}

fn dot_lines(ctx: &Ctx, rng: &mut SplitMix64) -> Vec<u8> {
    let mut m = Vec::new();
    let variant = ctx.index % 12 == 6;
    let subject = format!("Dots and From lines {}", ctx.index);
    raw_headers(ctx, "Dotty <dots@example.test>", &subject, &mut m);
    m.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii\r\n\r\n");
    if !variant {
        // The body's very first line is a lone dot.
        m.extend_from_slice(b".\r\n");
    }
    m.extend_from_slice(b"From the desk of the postmaster:\r\n");
    let size = rng.range(200, 3_000);
    filler(rng, &mut m, ctx.scaled(size) / 2, ASCII_WORDS);
    for line in [
        &b"."[..],
        b"..",
        b".x",
        b"...",
        b". ",
        b".\t.",
        b"From someone@example.test Mon Jan  1 00:00:00 2024",
        b"From ",
        b">From here on",
        b"From",
        b"",
    ] {
        m.extend_from_slice(line);
        m.extend_from_slice(b"\r\n");
    }
    filler(rng, &mut m, ctx.scaled(size) / 2, ASCII_WORDS);
    m.extend_from_slice(b"..\r\n.x\r\n");
    if variant {
        // The body's very last line is a lone dot.
        m.extend_from_slice(b".\r\n");
    }
    m
}

fn header_heavy(ctx: &Ctx, rng: &mut SplitMix64) -> Vec<u8> {
    let mut m = Vec::new();
    let mut h = String::new();
    for hop in 0..rng.range(3, 9) {
        let _ = write!(
            h,
            "Received: from relay{hop}.example.test (relay{hop}.example.test [192.0.2.{hop}])\r\n\
             \tby mx.example.test with ESMTPS id {:016X}\r\n\
             \tfor <{}>; {}\r\n",
            rng.next_u64(),
            ctx.to(),
            rfc822_date(ctx.date() - hop as i64 * 13)
        );
    }
    m.extend_from_slice(h.as_bytes());
    let subject = format!(
        "{} {}",
        encode_b("UTF-8", format!("Réunion {} 🗓", ctx.index).as_bytes()),
        encode_q("UTF-8", "équipe élargie".as_bytes())
    );
    raw_headers(
        ctx,
        "\"Header, Heavy\" <heavy@example.test>",
        &subject,
        &mut m,
    );
    m.extend_from_slice(b"Cc: ");
    for k in 0..rng.range(10, 40) {
        if k > 0 {
            m.extend_from_slice(b",\r\n    ");
        }
        let name = encode_b("UTF-8", rng.pick(NAMES).as_bytes());
        m.extend_from_slice(format!("{name} <cc{k}@example.test>").as_bytes());
    }
    m.extend_from_slice(b"\r\nX-Long-Folded: ");
    for k in 0..50 {
        m.extend_from_slice(format!("token{k} ").as_bytes());
        if k % 8 == 7 {
            m.extend_from_slice(b"\r\n\t");
        }
    }
    m.extend_from_slice(b"end\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n");
    let size = rng.range(200, 4_000);
    filler(rng, &mut m, ctx.scaled(size), ASCII_WORDS);
    m
}

fn large_attachment(ctx: &Ctx, rng: &mut SplitMix64) -> Vec<u8> {
    // 1.5–3.7 MB of binary is 2.0–5.0 MB of base64 with line breaks.
    let size = rng.range(1_500_000, 3_700_000);
    let mut data = vec![0u8; size];
    rng.fill(&mut data);
    let mut m = Vec::new();
    let subject = format!("Large attachment {} ({} bytes)", ctx.index, size);
    raw_headers(ctx, "Big Sender <big@example.test>", &subject, &mut m);
    let b = ctx.boundary("big");
    m.extend_from_slice(
        format!(
            "Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n\
             This is a multi-part message in MIME format.\r\n\
             --{b}\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\r\n\
             See the attached file.\r\n\r\n\
             --{b}\r\n\
             Content-Type: application/octet-stream; name=\"large-{i}.bin\"\r\n\
             Content-Disposition: attachment; filename=\"large-{i}.bin\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n",
            i = ctx.index
        )
        .as_bytes(),
    );
    base64_lines(&data, &mut m);
    m.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(m: &[u8]) -> impl Iterator<Item = &[u8]> {
        m.split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    fn body(m: &[u8]) -> &[u8] {
        let pos = m
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("every message has a header/body separator");
        &m[pos + 4..]
    }

    fn corpus() -> &'static [Vec<u8>] {
        static CORPUS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
        CORPUS.get_or_init(|| generate(500, 42))
    }

    #[test]
    fn crlf_everywhere_and_final_crlf() {
        for (i, m) in corpus().iter().enumerate() {
            assert!(crlf_only(m), "message {i} has a bare CR or LF");
            assert!(m.ends_with(b"\r\n"), "message {i} does not end with CRLF");
            assert!(!m.contains(&0), "message {i} contains NUL");
        }
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let a = generate(40, 7);
        assert_eq!(a, generate(40, 7));
        assert_eq!(&a[..10], &generate(10, 7)[..]);
        assert_ne!(a, generate(40, 8));
    }

    #[test]
    fn contains_every_feature() {
        let c = corpus();
        let count = |f: &dyn Fn(&[u8]) -> bool| c.iter().filter(|m| f(m)).count();

        let plain =
            count(&|m| contains(m, b"Content-Type: text/plain") && !contains(m, b"multipart/"));
        assert!(plain >= 100, "plain text messages: {plain}");
        let alt = count(&|m| contains(m, b"Content-Type: multipart/alternative"));
        assert!(alt >= 40, "multipart/alternative: {alt}");
        let html = count(&|m| contains(m, b"text/html"));
        assert!(html >= 40, "text/html parts: {html}");

        let b64_attach = count(&|m| {
            contains(m, b"Content-Transfer-Encoding: base64")
                && contains(m, b"Content-Disposition: attachment")
        });
        assert!(b64_attach >= 80, "base64 attachments: {b64_attach}");
        let large: Vec<usize> = c
            .iter()
            .filter(|m| m.len() >= 2_000_000)
            .map(Vec::len)
            .collect();
        assert!(large.len() >= 3, "2–5 MB messages: {large:?}");
        assert!(large.iter().all(|&n| n <= 5_100_000), "{large:?}");

        let latin1 = count(&|m| {
            contains(m, b"charset=iso-8859-1")
                && contains(m, b"Content-Transfer-Encoding: 8bit")
                && body(m).iter().any(|&b| b >= 0x80)
                && std::str::from_utf8(body(m)).is_err()
        });
        assert!(latin1 >= 40, "iso-8859-1 8bit: {latin1}");
        let sjis = count(&|m| {
            contains(m, b"charset=shift_jis")
                && contains(m, b"Content-Transfer-Encoding: 8bit")
                && contains(body(m), SJIS_SENTENCES[0].split_at(6).0)
                && std::str::from_utf8(body(m)).is_err()
        });
        assert!(sjis >= 40, "shift_jis 8bit: {sjis}");

        let too_long = c
            .iter()
            .flat_map(|m| lines(m))
            .filter(|l| {
                l.windows(2).any(|w| w == b"=?")
                    && l.split(|&b| b == b' ')
                        .any(|w| w.starts_with(b"=?") && w.len() > 75)
            })
            .count();
        assert_eq!(too_long, 0, "encoded words longer than 75 octets");
        let q = count(&|m| contains(m, b"?Q?") && contains(m, b"Subject: =?"));
        assert!(q >= 40, "Q-encoded subjects: {q}");
        let b = count(&|m| contains(m, b"?B?"));
        assert!(b >= 40, "B-encoded words: {b}");
        assert!(count(&|m| contains(m, b"=?ISO-8859-1?Q?Gr=FC=DFe")) > 0);

        let long = count(&|m| lines(m).any(|l| l.len() >= 20_000));
        assert!(long >= 80, "20 KB lines: {long}");
        let long8 = count(&|m| lines(m).any(|l| l.len() >= 20_000 && l.iter().any(|&b| b >= 0x80)));
        assert!(long8 >= 40, "20 KB 8bit lines: {long8}");

        for want in [&b"."[..], b"..", b".x"] {
            let n = count(&|m| lines(body(m)).any(|l| l == want));
            assert!(
                n >= 40,
                "lines exactly {:?}: {n}",
                String::from_utf8_lossy(want)
            );
        }
        let from = count(&|m| lines(body(m)).any(|l| l.starts_with(b"From ")));
        assert!(from >= 40, "lines starting 'From ': {from}");
        let first_dot = count(&|m| body(m).starts_with(b".\r\n"));
        let last_dot = count(&|m| m.ends_with(b"\r\n.\r\n"));
        assert!(first_dot > 0 && last_dot > 0, "{first_dot} {last_dot}");
    }

    #[test]
    fn kinds_cycle() {
        let kinds: std::collections::HashSet<Kind> = (0..200).map(kind).collect();
        assert_eq!(kinds.len(), 11);
    }

    #[test]
    fn sized_hits_target() {
        let target = 12_000_000;
        let c = generate_sized(200, target, 3);
        assert_eq!(c.len(), 200);
        let total: usize = c.iter().map(Vec::len).sum();
        let off = (total as f64 - target as f64).abs() / target as f64;
        assert!(off < 0.02, "total {total} vs target {target}");
        assert!(c.iter().all(|m| crlf_only(m) && m.ends_with(b"\r\n")));
        // Long lines survive scaling.
        assert!(c.iter().any(|m| lines(m).any(|l| l.len() >= LONG_LINE_LEN)));
    }

    #[test]
    fn encoders() {
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(
            encode_q("ISO-8859-1", b"a b=\xfc"),
            "=?ISO-8859-1?Q?a_b=3D=FC?="
        );
        let long = encode_q("UTF-8", "é".repeat(40).as_bytes());
        assert!(long.split("\r\n ").all(|w| w.len() <= 75), "{long}");
    }
}
