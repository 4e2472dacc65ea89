use super::*;

/// An mboxrd reader, the inverse of [`mbox`]: messages split at `From ` lines that follow a
/// blank line (or start the file), one `>` removed from `>+From ` lines, the separator's blank
/// line dropped.
fn unmbox(archive: &[u8]) -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut previous_blank = true;
    for line in archive.split_inclusive(|&b| b == b'\n') {
        if previous_blank && line.starts_with(b"From ") {
            if let Some(last) = messages.last_mut() {
                assert_eq!(
                    last.pop(),
                    Some(b'\n'),
                    "a blank line before each From line"
                );
            }
            messages.push(Vec::new());
            previous_blank = false;
            continue;
        }
        let message = messages.last_mut().expect("an archive starts with From");
        let quotes = line.iter().take_while(|&&b| b == b'>').count();
        if quotes > 0 && line[quotes..].starts_with(b"From ") {
            message.extend_from_slice(&line[1..]);
        } else {
            message.extend_from_slice(line);
        }
        previous_blank = line == b"\n";
    }
    if let Some(last) = messages.last_mut() {
        assert_eq!(
            last.pop(),
            Some(b'\n'),
            "the archive ends with a blank line"
        );
    }
    messages
}

fn envelope_line(archive: &[u8]) -> &str {
    let end = archive.iter().position(|&b| b == b'\n').unwrap();
    std::str::from_utf8(&archive[..end]).unwrap()
}

const QUOTING: &[u8] = b"From: Ann <ann@example.test>\r\n\
Subject: quoting\r\n\
Date: Thu, 26 Nov 2026 10:01:02 +0100\r\n\
\r\n\
From the start of a line.\r\n\
>From once quoted.\r\n\
>>From twice quoted.\r\n\
\x20From indented, left alone.\r\n\
From\r\n\
Fromage, left alone.\r\n\
>From\r\n\
\r\n\
From the end\r\n";

#[test]
fn from_lines_are_quoted_one_level_deeper() {
    let archive = mbox([QUOTING]);
    let text = String::from_utf8(archive).unwrap();
    let body = text.split_once("\n\n").unwrap().1;
    assert_eq!(
        body,
        ">From the start of a line.\n\
         >>From once quoted.\n\
         >>>From twice quoted.\n \
         From indented, left alone.\n\
         From\n\
         Fromage, left alone.\n\
         >From\n\
         \n\
         >From the end\n\
         \n"
    );
}

#[test]
fn quoting_round_trips_with_lf_line_ends() {
    let second = b"Return-Path: <bounce@example.test>\nSubject: two\n\nFrom here\n\n\nFrom there\n";
    let archive = mbox([QUOTING, &second[..]]);
    let messages = unmbox(&archive);
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[0],
        String::from_utf8(QUOTING.to_vec())
            .unwrap()
            .replace("\r\n", "\n")
            .into_bytes()
    );
    assert_eq!(messages[1], second);
}

#[test]
fn envelope_has_sender_and_asctime_date_in_utc() {
    let archive = mbox([QUOTING]);
    assert_eq!(
        envelope_line(&archive),
        "From ann@example.test Thu Nov 26 09:01:02 2026"
    );
}

#[test]
fn return_path_is_preferred_over_from() {
    let raw = b"Return-Path: <bounce+x@lists.example.test>\r\nFrom: ann@example.test\r\nDate: Mon, 6 Jan 2025 00:00:00 +0000\r\n\r\nhi\r\n";
    assert_eq!(
        envelope_line(&mbox([&raw[..]])),
        "From bounce+x@lists.example.test Mon Jan  6 00:00:00 2025"
    );
}

#[test]
fn a_message_without_sender_or_date_gets_mailer_daemon_and_the_epoch() {
    let raw = b"Subject: nothing else\r\n\r\nbody\r\n";
    assert_eq!(
        envelope_line(&mbox([&raw[..]])),
        "From MAILER-DAEMON Thu Jan  1 00:00:00 1970"
    );
    let null_sender = b"Return-Path: <>\r\nSubject: bounce\r\n\r\nbody\r\n";
    assert!(envelope_line(&mbox([&null_sender[..]])).starts_with("From MAILER-DAEMON "));
}

#[test]
fn an_invalid_date_counts_as_none() {
    let raw = b"From: a@example.test\r\nDate: yesterday, around noon\r\n\r\nbody\r\n";
    assert!(envelope_line(&mbox([&raw[..]])).ends_with(" Thu Jan  1 00:00:00 1970"));
}

#[test]
fn a_message_not_ending_in_a_newline_gets_one_before_the_separator() {
    let raw = b"From: a@example.test\r\n\r\nno newline at the end";
    let archive = mbox([&raw[..], &raw[..]]);
    assert!(archive.ends_with(b"no newline at the end\n\n"));
    let messages = unmbox(&archive);
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[0],
        b"From: a@example.test\n\nno newline at the end\n"
    );
}

#[test]
fn non_utf8_bytes_and_lone_carriage_returns_are_kept() {
    let raw = b"From: a@example.test\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nGr\xfc\xdfe\r\nhalf\rline\r\n\xff\xfe\r\n";
    let archive = mbox([&raw[..]]);
    let messages = unmbox(&archive);
    assert_eq!(
        messages[0],
        b"From: a@example.test\nContent-Type: text/plain; charset=iso-8859-1\n\nGr\xfc\xdfe\nhalf\rline\n\xff\xfe\n"
    );
}

#[test]
fn an_empty_archive_is_empty() {
    assert!(mbox(std::iter::empty()).is_empty());
}

#[test]
fn asctime_matches_known_dates() {
    assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
    assert_eq!(asctime(951_782_400), "Tue Feb 29 00:00:00 2000");
    assert_eq!(asctime(1_795_683_600 + 62), "Thu Nov 26 09:01:02 2026");
    // 2100 is not a leap year.
    assert_eq!(asctime(4_107_542_399), "Sun Feb 28 23:59:59 2100");
    assert_eq!(asctime(4_107_542_400), "Mon Mar  1 00:00:00 2100");
    assert_eq!(asctime(-1), "Wed Dec 31 23:59:59 1969");
    assert_eq!(asctime(253_402_300_799), "Fri Dec 31 23:59:59 9999");
}

#[test]
fn civil_from_days_agrees_with_counting_days_one_by_one() {
    let mut date = (1970, 1, 1);
    for days in 0..(200 * 366) {
        assert_eq!(civil_from_days(days), date, "day {days}");
        let leap = date.0 % 4 == 0 && (date.0 % 100 != 0 || date.0 % 400 == 0);
        let length = match date.1 {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        date = if date.2 < length {
            (date.0, date.1, date.2 + 1)
        } else if date.1 < 12 {
            (date.0, date.1 + 1, 1)
        } else {
            (date.0 + 1, 1, 1)
        };
    }
}

#[test]
fn eml_names_come_from_the_subject() {
    assert_eq!(eml_file_name("Quarterly report"), "Quarterly report.eml");
    assert_eq!(eml_file_name("Re: a/b\\c"), "Re_ a_b_c.eml");
    assert_eq!(eml_file_name("Grüße aus Köln"), "Grüße aus Köln.eml");
    assert_eq!(eml_file_name("saved.EML"), "saved.eml");
}

#[test]
fn an_empty_or_unusable_subject_gives_message_eml() {
    assert_eq!(eml_file_name(""), "message.eml");
    assert_eq!(eml_file_name("   "), "message.eml");
    assert_eq!(eml_file_name("..."), "message.eml");
    assert_eq!(eml_file_name("???"), "message.eml");
    assert_eq!(eml_file_name("\u{202e}"), "message.eml");
}

#[test]
fn eml_names_are_at_most_80_characters() {
    let name = eml_file_name(&"ü".repeat(200));
    assert_eq!(name.chars().count(), 80);
    assert!(name.ends_with("ü.eml"));
    // A cut that lands on a space does not leave it before the extension.
    let name = eml_file_name(&format!("{} tail", "x".repeat(75)));
    assert_eq!(name, format!("{}.eml", "x".repeat(75)));
}

#[test]
fn file_names_lose_separators_controls_and_reserved_characters() {
    assert_eq!(safe_file_name("../../etc/passwd", "f"), "_.._etc_passwd");
    assert_eq!(
        safe_file_name("C:\\Windows\\x.dll", "f"),
        "C__Windows_x.dll"
    );
    assert_eq!(safe_file_name("a\0b\r\nc\td.txt", "f"), "a_b c d.txt");
    assert_eq!(safe_file_name("what?*<>|\".pdf", "f"), "what______.pdf");
    assert_eq!(
        safe_file_name("  many   spaces  .txt ", "f"),
        "many spaces .txt"
    );
}

#[test]
fn file_names_lose_invisible_characters_that_disguise_the_extension() {
    assert_eq!(
        safe_file_name("invoice\u{202e}fdp.exe", "f"),
        "invoicefdp.exe"
    );
    assert_eq!(safe_file_name("a\u{200b}b\u{feff}.png", "f"), "ab.png");
}

#[test]
fn file_names_lose_leading_and_trailing_dots() {
    assert_eq!(safe_file_name(".bashrc", "f"), "bashrc");
    assert_eq!(safe_file_name("report.pdf.", "f"), "report.pdf");
    assert_eq!(safe_file_name("..", "fallback.bin"), "fallback.bin");
    assert_eq!(safe_file_name("", "attachment-3.bin"), "attachment-3.bin");
}

#[test]
fn windows_device_names_are_defused() {
    assert_eq!(safe_file_name("CON", "f"), "_CON");
    assert_eq!(safe_file_name("nul.txt", "f"), "_nul.txt");
    assert_eq!(safe_file_name("com1.tar.gz", "f"), "_com1.tar.gz");
    assert_eq!(safe_file_name("lpt9", "f"), "_lpt9");
    assert_eq!(safe_file_name("console.log", "f"), "console.log");
    assert_eq!(safe_file_name("com10", "f"), "com10");
}

#[test]
fn long_file_names_keep_their_extension() {
    let name = safe_file_name(&format!("{}.pdf", "a".repeat(300)), "f");
    assert_eq!(name.chars().count(), 80);
    assert!(name.ends_with("a.pdf"));
    let no_extension = safe_file_name(&"b".repeat(300), "f");
    assert_eq!(no_extension, "b".repeat(80));
    let odd_extension = safe_file_name(&format!("{}.not an extension", "c".repeat(300)), "f");
    assert_eq!(odd_extension, "c".repeat(80));
}
