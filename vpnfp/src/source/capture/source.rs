//! A read buffer that knows the file offset of every byte it holds.

use std::io::{self, Read};

/// 1 MiB reads keep syscalls rare without holding much memory.
const CHUNK: usize = 1 << 20;

pub struct Source<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[0]`.
    base: u64,
}

impl<R: Read> Source<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            base: 0,
        }
    }

    /// File offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    pub fn available(&self) -> usize {
        self.end - self.start
    }

    /// Makes at least `need` bytes available if the file has them; returns
    /// how many are (fewer only at the end of the file).
    pub fn fill(&mut self, need: usize) -> io::Result<usize> {
        if self.available() >= need {
            return Ok(self.available());
        }
        // Move what is left to the front.
        self.buf.copy_within(self.start..self.end, 0);
        self.base += self.start as u64;
        self.end -= self.start;
        self.start = 0;
        while self.end < need {
            if self.end == self.buf.len() {
                // Grow for an oversized record only as its bytes arrive
                // (at most doubling, never past what is needed): a header
                // that announces a huge record costs nothing until the
                // file really holds it.
                let grown = (self.buf.len() * 2).min(need).max(self.buf.len() + 1);
                self.buf.resize(grown, 0);
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => break,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.available())
    }

    /// The next `n` bytes (call `fill(n)` first).
    #[inline]
    pub fn peek(&self, n: usize) -> &[u8] {
        &self.buf[self.start..self.start + n]
    }

    /// The unread bytes the buffer holds (what lies ahead of the next
    /// unread byte, for reading without consuming).
    #[inline]
    pub fn buffered(&self) -> Buffered<'_> {
        Buffered {
            offset: self.offset(),
            bytes: &self.buf[self.start..self.end],
        }
    }

    #[inline]
    pub fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// Skips `n` bytes (which may be more than the buffer holds); false if
    /// the file ended first.
    pub fn skip(&mut self, mut n: u64) -> io::Result<bool> {
        loop {
            let here = (self.available() as u64).min(n);
            self.start += here as usize;
            n -= here;
            if n == 0 {
                return Ok(true);
            }
            if self.fill(1)? == 0 {
                return Ok(false);
            }
        }
    }
}

/// Bytes of the read buffer and the file offset of the first.
#[derive(Clone, Copy)]
pub struct Buffered<'a> {
    offset: u64,
    bytes: &'a [u8],
}

impl<'a> Buffered<'a> {
    /// `n` bytes at file offset `at`, if they are all here.
    #[inline]
    pub fn at(&self, at: u64, n: usize) -> Option<&'a [u8]> {
        let from = usize::try_from(at.checked_sub(self.offset)?).ok()?;
        self.bytes.get(from..from.checked_add(n)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_survive_refills_and_growth() {
        let data: Vec<u8> = (0..=255u8).cycle().take(3 * CHUNK + 17).collect();
        let mut s = Source::new(&data[..]);
        assert_eq!(s.fill(10).unwrap(), CHUNK);
        s.consume(CHUNK - 3);
        assert_eq!(s.offset(), (CHUNK - 3) as u64);
        // A record larger than the buffer.
        assert!(s.fill(2 * CHUNK).unwrap() >= 2 * CHUNK);
        assert_eq!(s.peek(1)[0], data[CHUNK - 3]);
        assert!(s.skip(2 * CHUNK as u64).unwrap());
        assert_eq!(s.offset(), (3 * CHUNK - 3) as u64);
        assert_eq!(s.fill(100).unwrap(), 20, "only 20 bytes are left");
        assert!(!s.skip(21).unwrap());
    }

    #[test]
    fn an_announced_huge_record_allocates_only_what_arrives() {
        let data = [7u8; 90];
        let mut s = Source::new(&data[..]);
        assert_eq!(s.fill(256 << 20).unwrap(), 90);
        assert_eq!(s.buf.len(), CHUNK, "no growth for bytes that never came");
    }
}
