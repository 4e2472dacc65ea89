//! What the web app hands to the user as files: mailboxes as mbox archives, messages as
//! `.eml` files, attachments under names that are safe on any file system.
//!
//! The mbox flavour is mboxrd: every line that looks like `From ` after any number of `>` gets
//! one more `>`, so a reader that removes one `>` from such lines gets every message back
//! exactly (with LF line ends). No clock is read: the envelope date is the message's own.

use mail_parser::MessageParser;

/// The envelope sender when a message names none (the traditional mbox convention).
const NO_SENDER: &str = "MAILER-DAEMON";

/// Appends `raw` to `out` as one mboxrd entry: the `From sender date` envelope line, the
/// message with CRLF turned into LF and `>*From ` lines quoted, and a blank line.
pub fn mbox_entry(raw: &[u8], out: &mut Vec<u8>) {
    let (sender, date) = envelope(raw);
    out.extend_from_slice(b"From ");
    out.extend_from_slice(sender.as_bytes());
    out.push(b' ');
    out.extend_from_slice(asctime(date).as_bytes());
    out.push(b'\n');
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let line = match line.strip_suffix(b"\n") {
            Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
            // The last line has no end: it gets one, or the separator would join it.
            None => line,
        };
        if is_from_line(line) {
            out.push(b'>');
        }
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// An mboxrd archive of `messages`, in the given order.
pub fn mbox<'a>(messages: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for raw in messages {
        mbox_entry(raw, &mut out);
    }
    out
}

/// Whether a line is `From ` after any number of `>`: what an mbox reader could take for a
/// message boundary, or for one that was quoted before.
fn is_from_line(line: &[u8]) -> bool {
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    line[quotes..].starts_with(b"From ")
}

/// The envelope sender (Return-Path, else From, else [`NO_SENDER`]) and date (seconds since
/// the Unix epoch; 0 when the message has no valid Date).
fn envelope(raw: &[u8]) -> (String, i64) {
    let Some(message) = MessageParser::default().parse_headers(raw) else {
        return (NO_SENDER.to_owned(), 0);
    };
    // The envelope line is split on spaces, so the sender must not contain any.
    let sender: String = message
        .return_address()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '<' | '>'))
        .collect();
    let sender = if sender.is_empty() {
        NO_SENDER.to_owned()
    } else {
        sender
    };
    let date = message
        .date()
        .filter(|d| d.is_valid())
        .map_or(0, |d| d.to_timestamp());
    (sender, date)
}

/// `timestamp` (UTC) as C's `asctime` writes it: `Thu Nov 26 09:01:02 2026`.
fn asctime(timestamp: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = timestamp.div_euclid(86_400);
    let seconds = timestamp.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    format!(
        "{weekday} {} {day:>2} {:02}:{:02}:{:02} {year}",
        MONTHS[month as usize - 1],
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// The proleptic Gregorian (year, month 1–12, day 1–31) of a count of days since 1970-01-01.
///
/// Counts in 400-year eras starting on 1 March, so that the leap day is the last day of a
/// year and every month before it has a fixed length.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    const DAYS_PER_ERA: i64 = 146_097;
    // 0000-03-01 is 719 468 days before 1970-01-01.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(DAYS_PER_ERA);
    let day_of_era = shifted.rem_euclid(DAYS_PER_ERA);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March; their lengths 31 30 31 30 31 31 30 31 30 31 31 (29|28)
    // follow 153 days per 5 months.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// The longest file name we produce, in characters (file systems allow 255 bytes; this leaves
/// room for multi-byte characters and keeps names readable).
const MAX_NAME_CHARS: usize = 80;

/// A file name for a message saved as `.eml`, from its subject: safe as for
/// [`safe_file_name`], at most 80 characters, `message.eml` when the subject gives nothing.
pub fn eml_file_name(subject: &str) -> String {
    const EXTENSION: &str = ".eml";
    let name = clean_name(subject).unwrap_or_default();
    let name = match name.len().checked_sub(EXTENSION.len()) {
        Some(stem)
            if name.is_char_boundary(stem) && name[stem..].eq_ignore_ascii_case(EXTENSION) =>
        {
            &name[..stem]
        }
        _ => &name,
    };
    let stem = truncate(name, MAX_NAME_CHARS - EXTENSION.len());
    let stem = if stem.is_empty() { "message" } else { stem };
    format!("{stem}{EXTENSION}")
}

/// `name` (an attachment's file name, as the mail gives it) made safe to save: no path
/// separators, control or invisible formatting characters, characters Windows reserves, or
/// leading and trailing dots and spaces; no Windows device name; at most 80 characters, the
/// extension kept when shortened. `fallback` when nothing usable is left.
pub fn safe_file_name(name: &str, fallback: &str) -> String {
    let Some(name) = clean_name(name) else {
        return fallback.to_owned();
    };
    if name.chars().count() <= MAX_NAME_CHARS {
        return name;
    }
    match extension(&name) {
        Some(extension) => {
            let stem = &name[..name.len() - extension.len()];
            let stem = truncate(stem, MAX_NAME_CHARS - extension.chars().count());
            format!("{stem}{extension}")
        }
        None => truncate(&name, MAX_NAME_CHARS).to_owned(),
    }
}

/// Characters no file name gets: Windows' reserved ones and path separators everywhere.
fn is_reserved(c: char) -> bool {
    c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
}

/// Characters that draw nothing but can disguise a name (a right-to-left override turns
/// `gpj.exe` into what looks like `exe.jpg`).
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}')
}

/// `name` with reserved characters replaced, invisible ones removed, whitespace collapsed,
/// dots and spaces trimmed from both ends, a device name defused; `None` when nothing but
/// replacement characters is left.
fn clean_name(name: &str) -> Option<String> {
    let mut cleaned = String::with_capacity(name.len());
    for c in name.chars() {
        if is_invisible(c) {
            continue;
        }
        let c = if c.is_whitespace() {
            ' '
        } else if is_reserved(c) {
            '_'
        } else {
            c
        };
        if c == ' ' && cleaned.ends_with(' ') {
            continue;
        }
        cleaned.push(c);
    }
    let trimmed = cleaned.trim_matches(|c| c == ' ' || c == '.');
    if trimmed.chars().all(|c| matches!(c, '_' | ' ' | '.')) {
        return None;
    }
    let mut name = trimmed.to_owned();
    if is_device_name(&name) {
        name.insert(0, '_');
    }
    Some(name)
}

/// Whether Windows takes `name` for a device (`CON`, `nul.txt`, `COM1`…), whatever follows
/// the first dot.
fn is_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or_default().trim_end();
    let upper = stem.to_ascii_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" => true,
        _ => {
            let (prefix, digit) = (upper.get(..3), upper.get(3..));
            matches!(prefix, Some("COM" | "LPT"))
                && digit.is_some_and(|d| d.len() == 1 && d.as_bytes()[0].is_ascii_digit())
        }
    }
}

/// The extension worth keeping when shortening `name`: `.` and 1–10 letters or digits.
fn extension(name: &str) -> Option<&str> {
    let dot = name.rfind('.').filter(|&dot| dot > 0)?;
    let extension = &name[dot..];
    let letters = extension[1..].chars().count();
    ((1..=10).contains(&letters) && extension[1..].chars().all(char::is_alphanumeric))
        .then_some(extension)
}

/// At most `max` characters of `name`, without the spaces and dots the cut may leave at the end.
fn truncate(name: &str, max: usize) -> &str {
    let end = name.char_indices().nth(max).map_or(name.len(), |(i, _)| i);
    name[..end].trim_end_matches([' ', '.'])
}

#[cfg(test)]
mod tests;
