//! Request bodies that blocking code reads (archives, build contexts): a task moves the
//! body's chunks into a channel and the blocking side receives them, so a read is a
//! channel receive instead of a trip into the async runtime for every small chunk (that
//! bridge cost ~1 ms per MB of a build context).

use std::io::{self, Read};

use axum::body::{Body, Bytes};
use futures_util::StreamExt;
use tokio::sync::mpsc;

/// A blocking reader of a request body; must be read off the async threads.
pub(crate) struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

/// Starts moving `body` into a [`BodyReader`] (call from async code).
pub(crate) fn body_reader(body: Body) -> BodyReader {
    let (tx, rx) = mpsc::channel(32);
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let item = chunk.map_err(io::Error::other);
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    BodyReader {
        rx,
        current: Bytes::new(),
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}
