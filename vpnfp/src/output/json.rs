//! JSON lines on standard output, written with serde through one buffer:
//! one `write()` per buffer, not per record. A failed write (a full disk,
//! a reader that left the pipe) is counted and reported once; the caller
//! decides what it means (replay exits non-zero, `run` stops on a closed
//! pipe).

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    mem::ManuallyDrop,
    os::fd::FromRawFd,
};

/// 64 KiB: a few hundred records per write.
const BUFFER: usize = 64 << 10;

/// File descriptor 1, never closed by us.
struct Fd1(ManuallyDrop<File>);

impl Write for Fd1 {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub struct JsonLines {
    out: BufWriter<Fd1>,
    /// The first write error; after it nothing more is written.
    error: Option<io::Error>,
    /// Records that could not be written (the one that failed and every
    /// one after it).
    pub lost: u64,
    pub written: u64,
}

impl JsonLines {
    /// Standard output. Rust ignores SIGPIPE, so a closed pipe is an EPIPE
    /// error here, not a silent death.
    pub fn stdout() -> Self {
        // SAFETY: fd 1 stays open for the process's life; ManuallyDrop never
        // closes it, and nothing else writes to it but through this writer
        // (log lines go to stderr).
        let file = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
        Self {
            out: BufWriter::with_capacity(BUFFER, Fd1(file)),
            error: None,
            lost: 0,
            written: 0,
        }
    }

    pub fn write<T: serde::Serialize>(&mut self, record: &T) {
        if self.error.is_some() {
            self.lost += 1;
            return;
        }
        let result = serde_json::to_writer(&mut self.out, record)
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        match result {
            Ok(()) => self.written += 1,
            Err(e) => self.fail(e, 1),
        }
    }

    pub fn flush(&mut self) {
        if self.error.is_none()
            && let Err(e) = self.out.flush()
        {
            // What was buffered is lost with it.
            self.fail(e, 0);
        }
    }

    fn fail(&mut self, e: io::Error, records: u64) {
        self.lost += records;
        log::error!(
            "writing JSON to standard output failed: {e}; further records are counted as lost"
        );
        self.error = Some(e);
    }

    /// The write error, if one happened.
    pub fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    /// Whether the reader of standard output went away.
    pub fn broken_pipe(&self) -> bool {
        self.error
            .as_ref()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    }
}
