//! Readers that watch bytes go by: hashing and counting them, or copying them aside.

use std::io::{self, Read, Write};

use berth_content::Hasher;

use crate::progress::Throttled;

/// Hashes and counts what passes through, reporting progress.
pub(crate) struct Counted<'a, R> {
    inner: R,
    pub hasher: Hasher,
    read: u64,
    meter: &'a Throttled,
}

impl<'a, R> Counted<'a, R> {
    pub fn new(inner: R, meter: &'a Throttled) -> Self {
        Counted {
            inner,
            hasher: Hasher::new(),
            read: 0,
            meter,
        }
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if n > 0 {
            self.meter.update(self.read);
        }
        Ok(n)
    }
}

/// Copies what is read into a writer (the content store) on the way.
pub(crate) struct Tee<R, W> {
    pub inner: R,
    pub out: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}
