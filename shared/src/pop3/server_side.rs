//! The server's side of multi-line replies, for the POP3 servers webpop runs itself (the demo
//! mailbox, test servers): dot-stuffing a message and cutting it for `TOP`.

/// Appends `body` dot-stuffed (RFC 1939 §3: a line starting with `.` gets another), ending in
/// CRLF, then the terminating `.` line.
pub fn dot_stuff(out: &mut Vec<u8>, body: &[u8]) {
    for line in body.split_inclusive(|b| *b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !body.is_empty() && !body.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// The headers, the blank line and the first `lines` body lines of `message` (what `TOP n
/// lines` returns).
pub fn top(message: &[u8], lines: usize) -> Vec<u8> {
    let split = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(message.len(), |p| p + 4);
    let mut out = message[..split].to_vec();
    for line in message[split..]
        .split_inclusive(|b| *b == b'\n')
        .take(lines)
    {
        out.extend_from_slice(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_dot_stuffed_and_terminated() {
        let mut out = Vec::new();
        dot_stuff(&mut out, b"a\r\n.b\r\n..\r\nend");
        assert_eq!(out, b"a\r\n..b\r\n...\r\nend\r\n.\r\n");
        let mut empty = Vec::new();
        dot_stuff(&mut empty, b"");
        assert_eq!(empty, b".\r\n");
    }

    #[test]
    fn top_gives_headers_and_the_first_lines() {
        let m = b"Subject: x\r\n\r\none\r\ntwo\r\nthree\r\n";
        assert_eq!(top(m, 0), b"Subject: x\r\n\r\n");
        assert_eq!(top(m, 2), b"Subject: x\r\n\r\none\r\ntwo\r\n");
        assert_eq!(top(b"no blank line", 5), b"no blank line");
    }
}
