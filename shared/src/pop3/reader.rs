//! Splits the server's byte stream into lines, scanning every byte once.

/// Buffered input with a cursor. Consumed lines stay in the buffer until it is compacted, which
/// happens only when the consumed part is at least half of it: each byte is copied O(1) times
/// on average, and a long line that arrives in many reads is scanned once, not once per read.
#[derive(Debug, Default)]
pub(crate) struct LineReader {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes.
    start: usize,
    /// Bytes after `start` already searched for LF without finding one.
    scanned: usize,
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

    /// Takes the next complete line, LF (and CR, if any) included. A line longer than `limit`
    /// (terminator excluded) is refused, whether complete or not.
    pub(crate) fn next_line(&mut self, limit: usize) -> Result<&[u8], NoLine> {
        let pending = &self.buf[self.start..];
        match memchr::memchr(b'\n', &pending[self.scanned..]) {
            Some(i) => {
                let len = self.scanned + i + 1;
                let content = len - 1 - usize::from(len >= 2 && pending[len - 2] == b'\r');
                if content > limit {
                    return Err(NoLine::TooLong(content));
                }
                let line_start = self.start;
                self.start += len;
                self.scanned = 0;
                Ok(&self.buf[line_start..line_start + len])
            }
            None => {
                self.scanned = pending.len();
                // A trailing CR may still become part of the terminator.
                let content = pending.len() - usize::from(pending.last() == Some(&b'\r'));
                if content > limit {
                    Err(NoLine::TooLong(content))
                } else {
                    Err(NoLine::NeedMore)
                }
            }
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
