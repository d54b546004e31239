//! Reading an agent's stdout one line at a time, safely.
//!
//! The agent is not trusted to print well-formed output: a line may be
//! enormous, may not be UTF-8, and the reader may be cancelled (it runs inside
//! `select!`) at any point. [`LineReader`] keeps draining in every case, so
//! the agent can never block on a full pipe while the session looks alive
//! (the seed stopped reading at its first 10 MiB line).

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::protocol::{looks_like_result, RESULT_TAG};

/// One line of agent output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawLine {
    /// A complete line, without its newline. Bytes that are not UTF-8 are
    /// replaced by U+FFFD: a line whose only fault is one bad byte (a cut
    /// multi-byte character) keeps the rest of what it says.
    Text(String),
    /// A line longer than the limit: read to its end and dropped.
    TooLong {
        /// Its length.
        bytes: usize,
        /// It carried the `"type":"result"` pair (see
        /// [`looks_like_result`]): a turn's end that cannot be read.
        result_like: bool,
    },
}

/// A cancel-safe, length-capped line reader.
pub(crate) struct LineReader<R> {
    inner: R,
    /// The current line. Grows only as a line needs and is handed over
    /// with it, so no buffer stays allocated between lines.
    buf: Vec<u8>,
    /// Bytes of the current line dropped because it passed `max`.
    dropped: usize,
    /// The dropped part of the current line showed [`RESULT_TAG`].
    dropped_result: bool,
    /// The last bytes before the dropped part so far, to find the tag
    /// across the boundary of two reads.
    carry: Vec<u8>,
    max: usize,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub(crate) fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            buf: Vec::new(),
            dropped: 0,
            dropped_result: false,
            carry: Vec::new(),
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
            if keep < chunk.len() {
                let rest = &chunk[keep..];
                if self.dropped == 0 {
                    // The line just overflowed: the kept part ends where
                    // the dropped part begins.
                    let tail = self.buf.len().saturating_sub(RESULT_TAG.len());
                    self.carry = self.buf[tail..].to_vec();
                }
                scan_dropped(&mut self.carry, &mut self.dropped_result, rest);
                self.dropped += rest.len();
            }
            self.inner.consume(used);
            if end {
                return Ok(Some(self.take()));
            }
        }
    }

    fn take(&mut self) -> RawLine {
        let bytes = std::mem::take(&mut self.buf);
        let dropped = std::mem::replace(&mut self.dropped, 0);
        let dropped_result = std::mem::replace(&mut self.dropped_result, false);
        self.carry = Vec::new();
        if dropped > 0 {
            return RawLine::TooLong {
                bytes: bytes.len() + dropped,
                result_like: dropped_result || looks_like_result(&bytes),
            };
        }
        RawLine::Text(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }
}

/// Looks for the result tag in `part`, dropped bytes of a line, and across
/// the boundary with the bytes before it (`carry`, which it updates).
fn scan_dropped(carry: &mut Vec<u8>, found: &mut bool, part: &[u8]) {
    if *found {
        return;
    }
    let n = RESULT_TAG.len();
    let mut joint = std::mem::take(carry);
    joint.extend_from_slice(&part[..part.len().min(n)]);
    *found = looks_like_result(&joint) || looks_like_result(part);
    *carry = if part.len() >= n {
        part[part.len() - n..].to_vec()
    } else {
        joint[joint.len().saturating_sub(n)..].to_vec()
    };
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
        assert_eq!(
            got[0],
            RawLine::TooLong {
                bytes: 50,
                result_like: false
            }
        );
        assert_eq!(got[1], RawLine::Text("ok".into()));
    }

    #[tokio::test]
    async fn invalid_utf8_is_replaced_and_the_line_kept() {
        let got = all(b"a\xff\xfeb\nok\n", 100).await;
        assert_eq!(got[0], RawLine::Text("a\u{fffd}\u{fffd}b".into()));
        assert_eq!(got[1], RawLine::Text("ok".into()));
    }

    #[tokio::test]
    async fn an_oversized_result_line_is_recognised_wherever_its_type_is() {
        // The tag before the cut, after it, and split across reads of 4
        // bytes (the reader's buffer in `all`) at every offset.
        for pad in 0..8 {
            let mut line = vec![b'{'];
            line.extend(std::iter::repeat(b' ').take(pad));
            line.extend_from_slice(br#""result":""#);
            line.extend(std::iter::repeat(b'x').take(60));
            line.extend_from_slice(br#"","type":"result"}"#);
            line.push(b'\n');
            for max in [5, 20, 40, 75] {
                let got = all(&line, max).await;
                assert!(
                    matches!(
                        got[0],
                        RawLine::TooLong {
                            result_like: true,
                            ..
                        }
                    ),
                    "pad {pad} max {max}: {got:?}"
                );
            }
            let got = all(
                b"{\"type\":\"assistant\",\"x\":\"yyyyyyyyyyyyyyyyyy\"}\n",
                10,
            )
            .await;
            assert!(matches!(
                got[0],
                RawLine::TooLong {
                    result_like: false,
                    ..
                }
            ));
        }
    }
}
