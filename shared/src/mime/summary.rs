//! The message list's row for a message, from its header and its first text part.
//!
//! The sync computes one summary per message it stores, so this must not cost what reading a
//! message costs. Attachments are recognised by their part headers and skipped: a 20 MB
//! attachment costs a scan for the next boundary, never a base64 decode. Which part is the
//! text, and which parts count as attachments, follows mail-parser's rules (what [`display`]
//! shows), checked against a full parse in `tests/mime_corpus.rs`.
//!
//! [`display`]: super::display

use mail_parser::{ContentType, MessageParser, MimeHeaders};
use memchr::memmem;

use super::{collapsed, mailboxes, MimeError};

/// What the message list shows for one message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// The first `From` mailbox, as `Name <address>`.
    pub from: String,
    /// The `To` mailboxes, comma-separated.
    pub to: String,
    /// The decoded subject.
    pub subject: String,
    /// `Date`, in seconds since the Unix epoch.
    pub date: Option<i64>,
    /// Raw size in bytes.
    pub size: u64,
    /// Whether the message has attachments (not counting inline images).
    pub has_attachments: bool,
    /// The start of the text, whitespace collapsed, at most [`SNIPPET_CHARS`] characters.
    pub snippet: String,
    /// More of the text for search, whitespace collapsed, at most [`SEARCH_CHARS`] characters.
    pub text: String,
}

/// The longest snippet in a [`Summary`].
pub const SNIPPET_CHARS: usize = 160;

/// The most body text a [`Summary`] keeps for search: enough to find most mail by a word in
/// it, small enough that 50,000 messages stay searchable in memory as you type.
pub const SEARCH_CHARS: usize = 1_000;

/// Multiparts nested deeper than this are not looked into (their parts are neither text nor
/// attachments): hostile mail can nest thousands deep.
const MAX_DEPTH: usize = 32;

/// The message list's row for `raw`.
pub fn summary(raw: &[u8]) -> Result<Summary, MimeError> {
    let head = MessageParser::default()
        .parse_headers(raw)
        .ok_or(MimeError::NotAMessage)?;
    if head.headers().is_empty() {
        return Err(MimeError::NotAMessage);
    }
    let from = mailboxes(head.from())
        .first()
        .map(ToString::to_string)
        .unwrap_or_default();
    let to = mailboxes(head.to())
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");

    let mut scan = Scan::default();
    let mut root = Container::root();
    scan.entity(raw, &mut root, 0);
    let text = scan
        .preview()
        .map(|p| collapsed(&p, SEARCH_CHARS))
        .unwrap_or_default();
    let snippet = text.chars().take(SNIPPET_CHARS).collect();
    Ok(Summary {
        from,
        to,
        subject: head.subject().unwrap_or_default().to_owned(),
        date: head.date().map(|d| d.to_timestamp()),
        size: raw.len() as u64,
        has_attachments: scan.has_attachments,
        snippet,
        text,
    })
}

/// mail-parser's classes of MIME types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mime {
    Mixed,
    Alternative,
    Related,
    Digest,
    OtherMultipart,
    Plain,
    Html,
    OtherText,
    /// image, audio, video: inline unless said otherwise.
    Media,
    Message,
    Other,
}

impl Mime {
    /// The class of a part with `content_type`, in a container of class `parent`.
    fn of(content_type: Option<&ContentType<'_>>, parent: Mime) -> Self {
        let Some(ct) = content_type else {
            return if parent == Mime::Digest {
                Mime::Message
            } else {
                Mime::Plain
            };
        };
        let sub = ct.subtype();
        match ct.ctype() {
            "multipart" => match sub {
                Some("mixed") => Mime::Mixed,
                Some("alternative") => Mime::Alternative,
                Some("related") => Mime::Related,
                Some("digest") => Mime::Digest,
                _ => Mime::OtherMultipart,
            },
            "text" => match sub {
                Some("plain") => Mime::Plain,
                Some("html") => Mime::Html,
                _ => Mime::OtherText,
            },
            "image" | "audio" | "video" => Mime::Media,
            "message" if matches!(sub, Some("rfc822" | "global")) => Mime::Message,
            _ => Mime::Other,
        }
    }

    fn is_multipart(self) -> bool {
        matches!(
            self,
            Mime::Mixed | Mime::Alternative | Mime::Related | Mime::Digest | Mime::OtherMultipart
        )
    }

    fn is_text(self) -> bool {
        matches!(self, Mime::Plain | Mime::Html | Mime::OtherText)
    }

    fn is_inline(self) -> bool {
        matches!(self, Mime::Plain | Mime::Html | Mime::Media)
    }
}

/// The state of the container a part is in (mail-parser's parser state, what of it decides
/// which parts are bodies).
struct Container {
    mime: Mime,
    in_alternative: bool,
    need_text: bool,
    need_html: bool,
    /// Parts seen in this container so far, this one included.
    parts: usize,
}

impl Container {
    fn root() -> Self {
        Self {
            mime: Mime::Message,
            in_alternative: false,
            need_text: true,
            need_html: true,
            parts: 0,
        }
    }
}

/// A body part: the whole entity (its headers and body), decoded only if it is the one shown.
#[derive(Clone, Copy)]
struct Body<'a> {
    entity: &'a [u8],
    is_text: bool,
}

#[derive(Default)]
struct Scan<'a> {
    text_bodies: Vec<Body<'a>>,
    html_bodies: Vec<Body<'a>>,
    has_attachments: bool,
}

impl<'a> Scan<'a> {
    /// One MIME entity (headers and body) inside `parent`.
    fn entity(&mut self, entity: &'a [u8], parent: &mut Container, depth: usize) {
        parent.parts += 1;
        let (head, body) = split_head(entity);
        let headers = MessageParser::default().parse_headers(head);
        let part = headers.as_ref().and_then(|m| m.parts.first());
        let content_type = part.and_then(|p| p.content_type());
        let mut mime = Mime::of(content_type, parent.mime);

        if mime.is_multipart() {
            let children = content_type
                .and_then(|ct| ct.attribute("boundary"))
                .and_then(|b| split_parts(body, b.as_bytes()));
            match children {
                Some(children) if depth < MAX_DEPTH => {
                    self.multipart(mime, children, &*parent, depth);
                    return;
                }
                Some(_) => return,
                // A multipart without a boundary found is text to mail-parser.
                None => mime = Mime::OtherText,
            }
        }

        let disposition = part.and_then(|p| p.content_disposition());
        let content_id = part.and_then(|p| p.content_id()).is_some();
        // Whether an attachment is shown inline (as `display`'s attachments say).
        let shown_inline = disposition.map_or(content_id, |d| d.is_inline());

        if mime == Mime::Message {
            self.has_attachments |= !shown_inline;
            return;
        }

        let is_inline = mime.is_inline()
            && !disposition.is_some_and(|d| d.is_attachment())
            && (parent.parts == 1
                || parent.mime != Mime::Related
                    && (mime == Mime::Media
                        || content_type.is_none_or(|ct| !ct.has_attribute("name"))));
        let (to_html, to_text) = if parent.mime == Mime::Alternative {
            match mime {
                Mime::Html => (true, false),
                Mime::Plain => (false, true),
                _ => (false, false),
            }
        } else if is_inline {
            if parent.in_alternative && (parent.need_text || parent.need_html) {
                match mime {
                    Mime::Html => parent.need_text = false,
                    Mime::Plain => parent.need_html = false,
                    _ => {}
                }
            }
            (parent.need_html, parent.need_text)
        } else {
            (false, false)
        };
        let body = Body {
            entity,
            is_text: mime.is_text(),
        };
        if to_html {
            self.html_bodies.push(body);
        }
        if to_text {
            self.text_bodies.push(body);
        }
        let is_html = mime == Mime::Html;
        let attachment = if mime.is_text() {
            !to_html && is_html || !to_text && !is_html
        } else {
            true
        };
        if attachment {
            self.has_attachments |= !shown_inline;
        }
    }

    /// The parts of a multipart of class `mime`.
    fn multipart(&mut self, mime: Mime, children: Vec<&'a [u8]>, parent: &Container, depth: usize) {
        let mut inner = Container {
            mime,
            in_alternative: parent.in_alternative || mime == Mime::Alternative,
            need_text: parent.need_text,
            need_html: parent.need_html,
            parts: 0,
        };
        let (texts, htmls) = (self.text_bodies.len(), self.html_bodies.len());
        for child in children {
            self.entity(child, &mut inner, depth + 1);
        }
        // An alternative with only HTML (or only text) gives that as both.
        if mime == Mime::Alternative && inner.need_html && inner.need_text {
            if texts == self.text_bodies.len() && htmls != self.html_bodies.len() {
                let added = self.html_bodies[htmls..].to_vec();
                self.text_bodies.extend(added);
            }
            if htmls == self.html_bodies.len() && texts != self.text_bodies.len() {
                let added = self.text_bodies[texts..].to_vec();
                self.html_bodies.extend(added);
            }
        }
    }

    /// The start of the text shown: the first text body (HTML as text), decoded alone.
    fn preview(&self) -> Option<String> {
        let body = self
            .text_bodies
            .first()
            .or_else(|| self.html_bodies.first())?;
        if !body.is_text {
            return None;
        }
        let part = MessageParser::default().parse(body.entity)?;
        part.body_preview(SEARCH_CHARS * 2).map(|p| p.into_owned())
    }
}

/// An entity's header section (with its line ends) and its body. An entity that starts with a
/// blank line has no headers; one without a blank line has no body.
fn split_head(entity: &[u8]) -> (&[u8], &[u8]) {
    if let Some(rest) = entity
        .strip_prefix(b"\r\n")
        .or_else(|| entity.strip_prefix(b"\n"))
    {
        return (&[], rest);
    }
    let mut at = 0;
    while let Some(nl) = memchr::memchr(b'\n', &entity[at..]) {
        let end = at + nl + 1;
        let rest = &entity[end..];
        if let Some(body) = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
        {
            return (&entity[..end], body);
        }
        at = end;
    }
    (entity, &[])
}

/// The parts of a multipart `body` delimited by `boundary`, without the line end that belongs
/// to each delimiter; the preamble and epilogue are dropped. `None` when no delimiter starts a
/// line. A part not closed by a final delimiter runs to the end.
fn split_parts<'a>(body: &'a [u8], boundary: &[u8]) -> Option<Vec<&'a [u8]>> {
    let mut delimiter = Vec::with_capacity(boundary.len() + 3);
    delimiter.extend_from_slice(b"\n--");
    delimiter.extend_from_slice(boundary);
    let finder = memmem::Finder::new(&delimiter);
    // Positions of "--boundary" at the start of a line.
    let mut marks = body
        .starts_with(&delimiter[1..])
        .then_some(0)
        .into_iter()
        .chain(finder.find_iter(body).map(|at| at + 1));
    let first = marks.next()?;
    let mut parts = Vec::new();
    let mut start = line_end(body, first + delimiter.len() - 1);
    if is_close(body, first + delimiter.len() - 1) {
        return Some(parts);
    }
    for mark in marks {
        // The CR LF (or LF) before the delimiter belongs to it.
        let mut end = mark.saturating_sub(1);
        if end > start && body.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        parts.push(body.get(start..end.max(start)).unwrap_or_default());
        let after = mark + delimiter.len() - 1;
        if is_close(body, after) {
            return Some(parts);
        }
        start = line_end(body, after);
    }
    parts.push(body.get(start..).unwrap_or_default());
    Some(parts)
}

/// Whether the delimiter ending at `at` is the final one (`--boundary--`).
fn is_close(body: &[u8], at: usize) -> bool {
    body.get(at..).is_some_and(|rest| rest.starts_with(b"--"))
}

/// Just past the line end at or after `at` (the end of `body` when there is none).
fn line_end(body: &[u8], at: usize) -> usize {
    match body.get(at..).and_then(|rest| memchr::memchr(b'\n', rest)) {
        Some(nl) => at + nl + 1,
        None => body.len(),
    }
}
