//! Reading an agent's stdout one line at a time, safely.
//!
//! The agent is not trusted to print well-formed output: a line may be
//! enormous, may not be UTF-8, and the reader may be cancelled (it runs inside
//! `select!`) at any point. [`LineReader`] keeps draining in every case, so
//! the agent can never block on a full pipe while the session looks alive
//! (the seed stopped reading at its first 10 MiB line).

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One line of agent output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawLine {
    /// A complete UTF-8 line, without its newline.
    Text(String),
    /// A line that could not be used: longer than the limit (the rest was
    /// read and discarded) or not UTF-8. Holds a short description.
    Bad(String),
}

/// A cancel-safe, length-capped line reader.
pub(crate) struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Bytes of the current line dropped because it passed `max`.
    dropped: usize,
    max: usize,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub(crate) fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            buf: Vec::new(),
            dropped: 0,
            max,
        }
    }

    /// The next line, or `None` at end of file. Cancel-safe: a partial line
    /// stays buffered for the next call.
    pub(crate) async fn next(&mut self) -> io::Result<Option<RawLine>> {
        loop {
            let avail = self.inner.fill_buf().await?;
            if avail.is_empty() {
                if self.buf.is_empty() && self.dropped == 0 {
                    return Ok(None);
                }
                return Ok(Some(self.take()));
            }
            let (chunk, used, end) = match memchr::memchr(b'\n', avail) {
                Some(i) => (&avail[..i], i + 1, true),
                None => (avail, avail.len(), false),
            };
            let room = self.max.saturating_sub(self.buf.len());
            let keep = chunk.len().min(room);
            self.buf.extend_from_slice(&chunk[..keep]);
            self.dropped += chunk.len() - keep;
            self.inner.consume(used);
            if end {
                return Ok(Some(self.take()));
            }
        }
    }

    fn take(&mut self) -> RawLine {
        let bytes = std::mem::take(&mut self.buf);
        let dropped = std::mem::replace(&mut self.dropped, 0);
        if dropped > 0 {
            return RawLine::Bad(format!(
                "line of {} bytes exceeds the {}-byte limit",
                bytes.len() + dropped,
                self.max
            ));
        }
        match String::from_utf8(bytes) {
            Ok(s) => RawLine::Text(s),
            Err(e) => RawLine::Bad(format!("line is not UTF-8: {}", e.utf8_error())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: &[u8], max: usize) -> Vec<RawLine> {
        let mut r = LineReader::new(tokio::io::BufReader::with_capacity(4, input), max);
        let mut out = Vec::new();
        while let Some(l) = r.next().await.unwrap() {
            out.push(l);
        }
        out
    }

    #[tokio::test]
    async fn lines_split_across_reads_come_back_whole() {
        let got = all(b"hello world\nsecond\nlast-without-newline", 100).await;
        assert_eq!(
            got,
            [
                RawLine::Text("hello world".into()),
                RawLine::Text("second".into()),
                RawLine::Text("last-without-newline".into())
            ]
        );
    }

    #[tokio::test]
    async fn an_oversized_line_is_reported_and_the_next_line_survives() {
        let mut input = vec![b'x'; 50];
        input.extend_from_slice(b"\nok\n");
        let got = all(&input, 10).await;
        assert!(matches!(&got[0], RawLine::Bad(m) if m.contains("50 bytes")));
        assert_eq!(got[1], RawLine::Text("ok".into()));
    }

    #[tokio::test]
    async fn invalid_utf8_is_reported_not_lost() {
        let got = all(b"\xff\xfe\nok\n", 100).await;
        assert!(matches!(&got[0], RawLine::Bad(m) if m.contains("UTF-8")));
        assert_eq!(got[1], RawLine::Text("ok".into()));
    }
}
