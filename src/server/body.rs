//! Response bodies as hyper sends them: a [`Body`] (in pieces, shared) as one frame whose
//! pieces go out in vectored writes (up to 64 per `writev`), so a many-piece body costs the same
//! syscalls as one buffer.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Frame, SizeHint};

use crate::exposition::body::Body;

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
        Stream(Some(Cursor {
            parts: b.shared_parts(),
            index: 0,
            offset: 0,
            remaining: b.len(),
        }))
    }
}

impl From<Bytes> for Stream {
    fn from(b: Bytes) -> Self {
        Body::from(b).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::body::{CHUNK, Chunks};
    use http_body_util::BodyExt as _;

    #[test]
    fn the_cursor_walks_and_vectors_across_pieces() {
        let mut c = Chunks::new();
        let expected: Vec<u8> = (0..(2 * CHUNK + 100)).map(|i| (i % 251) as u8).collect();
        c.push_bytes(&expected);
        let mut cur = Stream::from(c.finish()).0.unwrap();
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
        let stream = Stream::from(body.clone());
        assert_eq!(
            http_body::Body::size_hint(&stream).exact(),
            Some(2 * CHUNK as u64 + 1)
        );
        let collected = stream.collect().await.unwrap().to_bytes();
        assert_eq!(collected, body.to_bytes());

        let empty = Stream::from(Bytes::new());
        assert!(http_body::Body::is_end_stream(&empty));
        assert_eq!(empty.collect().await.unwrap().to_bytes().len(), 0);
    }
}
