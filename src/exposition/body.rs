//! A body kept in pieces of at most [`CHUNK`] bytes: written by appending (text with
//! `fmt::Write`, gzip output with `io::Write`), and shared by every response that serves it
//! (the server sends it without a copy: `server::body`).
//!
//! Why pieces: at 10,000 clusters the exposition is megabytes and is rebuilt many times a minute.
//! One contiguous buffer per render made glibc's allocator raise its mmap threshold (it does that
//! whenever a large mapped block is freed), after which every body landed in the heap arenas and
//! was never given back, and peak memory grew under load (measured in BENCHMARKS.md). Pieces
//! below the allocator's default 128 KiB threshold are reused from its free lists render after
//! render.

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::Bytes;

/// Size of a full piece: well below glibc's default mmap threshold (128 KiB), large enough that
/// a 10,000-cluster body is well under a hundred pieces.
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

    /// The pieces, shared (for sending without a copy).
    pub fn shared_parts(&self) -> Arc<[Bytes]> {
        self.parts.clone()
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

#[cfg(test)]
mod tests {
    use super::*;
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
}
