//! A response body kept in pieces of at most [`CHUNK`] bytes: written by appending (text with
//! `fmt::Write`, gzip output with `io::Write`), shared by every response that serves it, and sent
//! without a copy as one hyper frame whose pieces go out in vectored writes (up to 64 per
//! `writev`), so a many-piece body costs the same syscalls as one buffer.
//!
//! Why pieces: at 10,000 clusters the exposition is ~5.6 MB and is rebuilt many times a minute.
//! One contiguous buffer per render made glibc's allocator raise its mmap threshold (it does that
//! whenever a large mapped block is freed), after which every body landed in the heap arenas and
//! was never given back: VmHWM grew by ~30 MiB under `wrk` (BENCHMARKS.md). Pieces below the
//! allocator's default 128 KiB threshold are reused from its free lists render after render.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Frame, SizeHint};

/// Size of a full piece: well below glibc's default mmap threshold (128 KiB), large enough that
/// a 5.6 MB body is ~90 pieces.
pub const CHUNK: usize = 64 * 1024;

/// Appends bytes into pieces of [`CHUNK`] bytes; [`Chunks::finish`] makes the [`Body`].
#[derive(Debug, Default)]
pub struct Chunks {
    done: Vec<Bytes>,
    current: Vec<u8>,
    len: usize,
}

impl Chunks {
    /// An empty builder; allocates on the first write.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `s`.
    #[inline]
    pub fn push_str(&mut self, s: &str) {
        self.push_bytes(s.as_bytes());
    }

    /// Appends `c`.
    #[inline]
    pub fn push(&mut self, c: char) {
        self.push_str(c.encode_utf8(&mut [0; 4]));
    }

    /// Appends `b`, starting a new piece whenever the current one is full.
    #[inline]
    pub fn push_bytes(&mut self, b: &[u8]) {
        // The common case, a short string that fits in the current piece without filling it.
        if self.current.capacity() - self.current.len() > b.len() {
            self.current.extend_from_slice(b);
            self.len += b.len();
        } else {
            self.push_across(b);
        }
    }

    #[cold]
    fn push_across(&mut self, mut b: &[u8]) {
        self.len += b.len();
        while !b.is_empty() {
            if self.current.capacity() == 0 {
                self.current = Vec::with_capacity(CHUNK);
            }
            let n = (CHUNK - self.current.len()).min(b.len());
            self.current.extend_from_slice(&b[..n]);
            b = &b[n..];
            if self.current.len() == CHUNK {
                self.done
                    .push(Bytes::from(std::mem::take(&mut self.current)));
            }
        }
    }

    /// Bytes appended so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The body as written.
    pub fn finish(mut self) -> Body {
        if !self.current.is_empty() {
            self.done.push(Bytes::from(self.current));
        }
        Body {
            parts: self.done.into(),
            len: self.len,
        }
    }
}

impl fmt::Write for Chunks {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

impl io::Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push_bytes(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A finished body: cheap to clone (one reference count), never copied when served.
#[derive(Clone, Debug, Default)]
pub struct Body {
    parts: Arc<[Bytes]>,
    len: usize,
}

impl Body {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty body.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces, in order.
    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// True when both are the same body (not just equal bytes).
    pub fn same(&self, other: &Body) -> bool {
        Arc::ptr_eq(&self.parts, &other.parts)
    }

    /// The whole body in one buffer (a copy unless it is a single piece).
    pub fn to_bytes(&self) -> Bytes {
        match &self.parts[..] {
            [] => Bytes::new(),
            [one] => one.clone(),
            parts => Bytes::from(parts.concat()),
        }
    }

    /// A hyper response body: the whole body as one frame.
    pub fn stream(&self) -> Stream {
        Stream(Some(Cursor {
            parts: self.parts.clone(),
            index: 0,
            offset: 0,
            remaining: self.len,
        }))
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        let len = b.len();
        let parts: Arc<[Bytes]> = if b.is_empty() {
            Arc::new([])
        } else {
            Arc::new([b])
        };
        Self { parts, len }
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Bytes::from_static(s.as_bytes()).into()
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Bytes::from(s).into()
    }
}

/// A [`Body`] being sent: implements `http_body::Body` with an exact size (hyper writes a
/// `Content-Length`) and yields the whole body as one frame, a [`Cursor`] over the pieces.
#[derive(Debug)]
pub struct Stream(Option<Cursor>);

impl http_body::Body for Stream {
    type Data = Cursor;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Cursor>, Self::Error>>> {
        Poll::Ready(self.0.take().map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(|c| c.remaining == 0)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.as_ref().map_or(0, |c| c.remaining as u64))
    }
}

/// The unsent rest of a [`Body`]: a `Buf` whose `chunks_vectored` hands every remaining piece
/// to one vectored write.
#[derive(Debug)]
pub struct Cursor {
    parts: Arc<[Bytes]>,
    /// The piece being sent.
    index: usize,
    /// Bytes of it already sent.
    offset: usize,
    remaining: usize,
}

impl Buf for Cursor {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.parts
            .get(self.index)
            .map_or(&[], |p| &p[self.offset..])
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advance past the end of the body");
        self.remaining -= cnt;
        while cnt > 0 {
            let left = self.parts[self.index].len() - self.offset;
            if cnt < left {
                self.offset += cnt;
                return;
            }
            cnt -= left;
            self.index += 1;
            self.offset = 0;
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [io::IoSlice<'a>]) -> usize {
        let mut n = 0;
        let mut offset = self.offset;
        for part in self.parts.iter().skip(self.index) {
            if n == dst.len() {
                break;
            }
            if part.len() > offset {
                dst[n] = io::IoSlice::new(&part[offset..]);
                n += 1;
            }
            offset = 0;
        }
        n
    }
}

impl From<Body> for Stream {
    fn from(b: Body) -> Self {
        b.stream()
    }
}

impl From<Bytes> for Stream {
    fn from(b: Bytes) -> Self {
        Body::from(b).stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use std::fmt::Write as _;

    #[test]
    fn pieces_are_full_except_the_last_and_add_up_to_the_input() {
        let mut c = Chunks::new();
        let mut expected = Vec::new();
        for i in 0..20_000u32 {
            let line = format!("line {i} {}\n", "x".repeat((i % 50) as usize));
            write!(c, "{line}").unwrap();
            expected.extend_from_slice(line.as_bytes());
        }
        let big = vec![b'y'; 3 * CHUNK + 5];
        io::Write::write_all(&mut c, &big).unwrap();
        expected.extend_from_slice(&big);
        let body = c.finish();
        assert_eq!(body.len(), expected.len());
        let (last, full) = body.parts().split_last().unwrap();
        assert!(full.iter().all(|p| p.len() == CHUNK));
        assert!(!last.is_empty() && last.len() <= CHUNK);
        assert_eq!(&body.to_bytes()[..], &expected[..]);
    }

    #[test]
    fn the_cursor_walks_and_vectors_across_pieces() {
        let mut c = Chunks::new();
        let expected: Vec<u8> = (0..(2 * CHUNK + 100)).map(|i| (i % 251) as u8).collect();
        c.push_bytes(&expected);
        let mut cur = c.finish().stream().0.unwrap();
        assert_eq!(cur.remaining(), expected.len());
        assert_eq!(cur.chunks_vectored(&mut [io::IoSlice::new(&[]); 8]), 3);
        // Advance into the middle of the first piece, then across the boundary.
        let mut got = Vec::new();
        for step in [10, CHUNK - 10 + 5, CHUNK, 95] {
            let mut iov = [io::IoSlice::new(&[]); 2];
            let n = cur.chunks_vectored(&mut iov);
            assert!(n >= 1 && iov[0].len() == cur.chunk().len());
            got.extend_from_slice(&cur.copy_to_bytes(step));
        }
        assert_eq!(cur.remaining(), 0);
        assert_eq!(cur.chunks_vectored(&mut [io::IoSlice::new(&[]); 8]), 0);
        assert!(cur.chunk().is_empty());
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn the_stream_sends_every_piece_with_an_exact_size() {
        let mut c = Chunks::new();
        c.push_bytes(&vec![7u8; 2 * CHUNK + 1]);
        let body = c.finish();
        let stream = body.stream();
        assert_eq!(
            http_body::Body::size_hint(&stream).exact(),
            Some(2 * CHUNK as u64 + 1)
        );
        let collected = stream.collect().await.unwrap().to_bytes();
        assert_eq!(collected, body.to_bytes());

        let empty = Body::from(Bytes::new()).stream();
        assert!(http_body::Body::is_end_stream(&empty));
        assert_eq!(empty.collect().await.unwrap().to_bytes().len(), 0);
    }
}
