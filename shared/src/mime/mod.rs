//! Turning a raw message into what the reader and the message list show, with mail-parser
//! (and encoding_rs for charsets).
//!
//! [`display`] gives the reader's model: decoded headers, the plain-text and HTML bodies,
//! the attachments and an outline of the MIME structure. [`summary`] gives the message list's
//! row without decoding attachments. [`attachment`] decodes one attachment for download. Raw HTML is passed through as is:
//! it is sanitised where it is shown.

use mail_parser::{Address, Message, MessageParser, MimeHeaders, PartType};

mod summary;

pub use summary::{summary, Summary, SEARCH_CHARS, SNIPPET_CHARS};

/// Why a message could not be read at all. Malformed parts do not fail the whole message;
/// mail-parser recovers what it can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MimeError {
    /// The input holds no message (empty, or no header section).
    #[error("not an e-mail message")]
    NotAMessage,
}

/// One address: a display name and an e-mail address, either possibly missing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mailbox {
    /// The decoded display name.
    pub name: Option<String>,
    /// The address.
    pub address: Option<String>,
}

impl std::fmt::Display for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.name, &self.address) {
            (Some(name), Some(address)) => write!(f, "{name} <{address}>"),
            (Some(name), None) => f.write_str(name),
            (None, Some(address)) => f.write_str(address),
            (None, None) => Ok(()),
        }
    }
}

/// An attachment (or inline part such as a `cid:` image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The part's position in the message; pass it to [`attachment`] to get the bytes.
    pub part: u32,
    /// The file name (decoded), or a made-up one such as `attachment-3.bin`.
    pub name: String,
    /// `type/subtype`, lower-case.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: usize,
    /// The `Content-ID` without angle brackets, for `cid:` references.
    pub content_id: Option<String>,
    /// Whether it is meant to be shown inline rather than offered as a download.
    pub inline: bool,
}

/// One line of the MIME outline: a part's depth, type and decoded size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartOutline {
    /// Nesting depth (0 for the message itself).
    pub depth: usize,
    /// `type/subtype`, lower-case.
    pub content_type: String,
    /// Decoded size in bytes (0 for multiparts).
    pub size: usize,
}

/// What the reader shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Display {
    /// The decoded subject, or empty.
    pub subject: String,
    /// `From`.
    pub from: Vec<Mailbox>,
    /// `To`.
    pub to: Vec<Mailbox>,
    /// `Cc`.
    pub cc: Vec<Mailbox>,
    /// `Reply-To`.
    pub reply_to: Vec<Mailbox>,
    /// `Date`, in seconds since the Unix epoch.
    pub date: Option<i64>,
    /// `Message-ID` without angle brackets.
    pub message_id: Option<String>,
    /// The plain-text body (converted from HTML when the message has only HTML).
    pub text: Option<String>,
    /// The HTML body, unsanitised, when the message has one.
    pub html: Option<String>,
    /// Attachments and inline parts.
    pub attachments: Vec<Attachment>,
    /// The MIME structure, depth first.
    pub outline: Vec<PartOutline>,
}

fn parse(raw: &[u8]) -> Result<Message<'_>, MimeError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(MimeError::NotAMessage)?;
    if message.headers().is_empty() {
        return Err(MimeError::NotAMessage);
    }
    Ok(message)
}

fn mailboxes(address: Option<&Address<'_>>) -> Vec<Mailbox> {
    let Some(address) = address else {
        return Vec::new();
    };
    address
        .iter()
        .map(|a| Mailbox {
            name: a.name().map(str::to_owned),
            address: a.address().map(str::to_owned),
        })
        .collect()
}

fn content_type(part: &mail_parser::MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None => match part.body {
            PartType::Html(_) => "text/html".into(),
            PartType::Text(_) => "text/plain".into(),
            PartType::Message(_) => "message/rfc822".into(),
            PartType::Multipart(_) => "multipart/mixed".into(),
            _ => "application/octet-stream".into(),
        },
    }
}

fn attachments(message: &Message<'_>) -> Vec<Attachment> {
    message
        .attachments
        .iter()
        .filter_map(|&id| message.parts.get(id as usize).map(|p| (id, p)))
        .map(|(id, part)| {
            let content_type = content_type(part);
            let name = part.attachment_name().map_or_else(
                || format!("attachment-{id}.{}", extension(&content_type)),
                str::to_owned,
            );
            let inline = part
                .content_disposition()
                .map_or(part.content_id().is_some(), |d| d.is_inline());
            Attachment {
                part: id,
                name,
                content_type,
                size: part.contents().len(),
                content_id: part
                    .content_id()
                    .map(|c| c.trim_matches(|ch| ch == '<' || ch == '>').to_owned()),
                inline,
            }
        })
        .collect()
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "message/rfc822" => "eml",
        "text/plain" => "txt",
        "text/html" => "html",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "application/pdf" => "pdf",
        _ => "bin",
    }
}

fn outline(message: &Message<'_>) -> Vec<PartOutline> {
    let mut out = Vec::new();
    let mut stack = vec![(0u32, 0usize)];
    while let Some((id, depth)) = stack.pop() {
        let Some(part) = message.parts.get(id as usize) else {
            continue;
        };
        let size = if part.is_multipart() {
            0
        } else {
            part.contents().len()
        };
        out.push(PartOutline {
            depth,
            content_type: content_type(part),
            size,
        });
        if let PartType::Multipart(children) = &part.body {
            // Guard against a part listing itself or an ancestor (mail-parser builds a tree,
            // but never trust a structure enough to loop on it).
            if depth < 64 {
                stack.extend(children.iter().rev().map(|c| (*c, depth + 1)));
            }
        }
    }
    out
}

/// The reader's model of `raw`.
pub fn display(raw: &[u8]) -> Result<Display, MimeError> {
    let message = parse(raw)?;
    let has_html = message
        .html_bodies()
        .any(|p| matches!(p.body, PartType::Html(_)));
    Ok(Display {
        subject: message.subject().unwrap_or_default().to_owned(),
        from: mailboxes(message.from()),
        to: mailboxes(message.to()),
        cc: mailboxes(message.cc()),
        reply_to: mailboxes(message.reply_to()),
        date: message.date().map(|d| d.to_timestamp()),
        message_id: message.message_id().map(str::to_owned),
        text: message.body_text(0).map(|t| t.into_owned()),
        html: if has_html {
            message.body_html(0).map(|h| h.into_owned())
        } else {
            None
        },
        attachments: attachments(&message),
        outline: outline(&message),
    })
}

/// Whitespace collapsed, cut to `chars` characters.
fn collapsed(text: &str, chars: usize) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(chars)
        .collect()
}

/// The decoded bytes of part `part` of `raw` (see [`Attachment::part`]).
pub fn attachment(raw: &[u8], part: u32) -> Option<Vec<u8>> {
    let message = parse(raw).ok()?;
    let part = message.parts.get(part as usize)?;
    if part.is_multipart() {
        return None;
    }
    Some(part.contents().to_vec())
}

/// The raster image types a browser only ever decodes as a picture, never as a document that
/// could run script (so not SVG, HTML or XML). An attachment of one of these may be shown
/// through `<img>` with its own type; every other attachment, and every link to mail bytes,
/// must be typed `application/octet-stream`, because an object URL belongs to the app's origin
/// and a browser renders whatever type it is given there. `None` for anything else.
pub fn inert_image_type(content_type: &str) -> Option<&'static str> {
    const INERT: &[&str] = &[
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
    ];
    let essence = content_type.split(';').next().unwrap_or("").trim();
    INERT
        .iter()
        .find(|t| t.eq_ignore_ascii_case(essence))
        .copied()
}

/// The type for every object URL of mail bytes that is not an inert picture: a browser saves
/// it, and never renders it in the app's origin.
pub const DOWNLOAD_TYPE: &str = "application/octet-stream";

#[cfg(test)]
mod tests;
