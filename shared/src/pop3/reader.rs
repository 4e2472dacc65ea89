//! Splits the server's byte stream into lines, scanning every byte once.
//!
//! Two kinds of line: a status line ends at LF (a bare LF is tolerated, as many servers send
//! one), but a line inside a multi-line reply ends only at CRLF. There a bare LF is content:
//! servers that pass 8-bit bodies through unchanged also pass bare LFs through, and splitting at
//! them would let a message body hold `\n.\n`, end its own reply and forge the next one.

/// Buffered input with a cursor. Consumed lines stay in the buffer until it is compacted, which
/// happens only when the consumed part is at least half of it: each byte is copied O(1) times
/// on average, and a long line that arrives in many reads is scanned once, not once per read.
#[derive(Debug, Default)]
pub(crate) struct LineReader {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes.
    start: usize,
    /// Bytes after `start` already searched without finding the end of a line (of the kind
    /// `scanned_crlf` says).
    scanned: usize,
    /// Whether `scanned` counts bytes searched for CRLF (rather than any LF).
    scanned_crlf: bool,
}

/// Why no line could be taken.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NoLine {
    /// The buffered part of the current line is shorter than the limit; more input may end it.
    NeedMore,
    /// The current line is already longer than the limit (length so far).
    TooLong(usize),
}

impl LineReader {
    /// Appends newly received bytes.
    pub(crate) fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Takes the next complete status line, LF (and CR, if any) included. A line longer than
    /// `limit` (terminator excluded) is refused, whether complete or not.
    pub(crate) fn next_line(&mut self, limit: usize) -> Result<&[u8], NoLine> {
        self.take(limit, false)
    }

    /// Takes the next complete line of a multi-line reply, CRLF included: a bare LF does not end
    /// it. A line longer than `limit` (CRLF excluded) is refused, whether complete or not.
    pub(crate) fn next_crlf_line(&mut self, limit: usize) -> Result<&[u8], NoLine> {
        self.take(limit, true)
    }

    fn take(&mut self, limit: usize, crlf: bool) -> Result<&[u8], NoLine> {
        if self.scanned_crlf != crlf {
            // Bytes searched for CRLF may hold a bare LF that ends a status line.
            self.scanned = 0;
            self.scanned_crlf = crlf;
        }
        let pending = &self.buf[self.start..];
        let mut from = self.scanned;
        while let Some(i) = memchr::memchr(b'\n', &pending[from..]) {
            let len = from + i + 1;
            let cr = len >= 2 && pending[len - 2] == b'\r';
            if crlf && !cr {
                from = len;
                continue;
            }
            let content = len - 1 - usize::from(cr);
            if content > limit {
                return Err(NoLine::TooLong(content));
            }
            let line_start = self.start;
            self.start += len;
            self.scanned = 0;
            return Ok(&self.buf[line_start..line_start + len]);
        }
        self.scanned = pending.len();
        // A trailing CR may still become part of the terminator.
        let content = pending.len() - usize::from(pending.last() == Some(&b'\r'));
        if content > limit {
            Err(NoLine::TooLong(content))
        } else {
            Err(NoLine::NeedMore)
        }
    }

    /// Bytes received but not yet consumed as lines.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_across_reads() {
        let mut r = LineReader::default();
        r.push(b"+OK a\r");
        assert_eq!(r.next_line(100), Err(NoLine::NeedMore));
        r.push(b"\n+OK b\nrest");
        assert_eq!(r.next_line(100), Ok(b"+OK a\r\n".as_slice()));
        assert_eq!(r.next_line(100), Ok(b"+OK b\n".as_slice()));
        assert_eq!(r.next_line(100), Err(NoLine::NeedMore));
        assert_eq!(r.buffered(), 4);
    }

    #[test]
    fn reply_lines_end_only_at_crlf_even_across_reads() {
        let mut r = LineReader::default();
        r.push(b"a\n.\n");
        assert_eq!(r.next_crlf_line(100), Err(NoLine::NeedMore));
        r.push(b"b\r");
        assert_eq!(r.next_crlf_line(100), Err(NoLine::NeedMore));
        r.push(b"\n.\r\n+OK\n");
        assert_eq!(r.next_crlf_line(100), Ok(b"a\n.\nb\r\n".as_slice()));
        assert_eq!(r.next_crlf_line(100), Ok(b".\r\n".as_slice()));
        // The status line after the reply may end at a bare LF, though CRLF lines were sought.
        assert_eq!(r.next_crlf_line(100), Err(NoLine::NeedMore));
        assert_eq!(r.next_line(100), Ok(b"+OK\n".as_slice()));
        // Bare LFs count towards the line's length.
        r.push(b"1\n2\n3\n");
        assert_eq!(r.next_crlf_line(5), Err(NoLine::TooLong(6)));
    }

    #[test]
    fn limit_excludes_the_terminator() {
        let mut r = LineReader::default();
        r.push(b"12345\r\n");
        assert_eq!(r.next_line(5), Ok(b"12345\r\n".as_slice()));
        r.push(b"123456");
        assert_eq!(r.next_line(5), Err(NoLine::TooLong(6)));
        let mut r = LineReader::default();
        r.push(b"12345\r");
        assert_eq!(r.next_line(5), Err(NoLine::NeedMore));
    }

    #[test]
    fn compaction_keeps_the_partial_line() {
        let mut r = LineReader::default();
        for i in 0..1000u32 {
            r.push(format!("line {i}\r\npart").as_bytes());
            assert_eq!(
                r.next_line(100).unwrap(),
                format!("line {i}\r\n").as_bytes()
            );
            r.push(b"ial\r\n");
            assert_eq!(r.next_line(100).unwrap(), b"partial\r\n");
        }
        assert!(r.buf.len() < 64, "buffer grew to {}", r.buf.len());
    }
}
