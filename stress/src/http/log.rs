//! The gateway's log: a sink that, like a logging filter adding context
//! fields to every record, stamps each line with the request id, user and
//! trace id read from the context where the line is written; and a thread
//! that checks every line.
//!
//! A line's message names the request it is about (the values the handler
//! took from the headers); its fields are what the context said. A line
//! whose fields belong to another request (or to none) is a leak — the
//! failure the issue describes, where one request's log lines carry another
//! request's id.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::checks::{Stats, Who};
use crate::http::check::{HttpChecker, Seen};
use crate::http::protocol::Ident;
use crate::vars::Mode;

/// One log line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogLine {
    /// Where it was written (the message).
    pub site: &'static str,
    /// The request the message is about (from its headers).
    pub about: Ident,
    /// Who wrote it.
    pub who: Who,
    /// The fields stamped from the context.
    pub fields: Seen,
}

/// Where the gateway writes its lines.
#[derive(Debug)]
pub(crate) struct LogSink {
    mode: Mode,
    lines: Mutex<Vec<LogLine>>,
    written: AtomicU64,
}

impl LogSink {
    /// A sink that reads the request-scoped values where `mode` keeps them.
    pub(crate) fn new(mode: Mode) -> LogSink {
        LogSink {
            mode,
            lines: Mutex::new(Vec::new()),
            written: AtomicU64::new(0),
        }
    }

    /// Writes a line about `about`, stamped with the current context's
    /// values.
    pub(crate) fn line(&self, site: &'static str, who: Who, about: &Ident) {
        let line = LogLine {
            site,
            about: *about,
            who,
            fields: Seen::now(self.mode),
        };
        self.written.fetch_add(1, Relaxed);
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    /// Lines written so far.
    pub(crate) fn written(&self) -> u64 {
        self.written.load(Relaxed)
    }

    fn take(&self) -> Vec<LogLine> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The thread that checks the lines as they come (so that they need not
/// all be kept), and once more when stopped.
pub(crate) struct LogChecker {
    stop: &'static AtomicBool,
    thread: JoinHandle<u64>,
}

/// How often the checker drains the sink.
const DRAIN_EVERY: Duration = Duration::from_millis(50);

impl LogChecker {
    /// Starts checking `sink`'s lines; leaks go to `stats`.
    pub(crate) fn start(sink: &'static LogSink, stats: &'static Stats) -> std::io::Result<Self> {
        let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let thread = std::thread::Builder::new()
            .name("stress-log-check".into())
            .spawn(move || {
                let mut checked = 0;
                loop {
                    let done = stop.load(Relaxed);
                    let lines = sink.take();
                    checked += lines.len() as u64;
                    for line in &lines {
                        check(stats, line);
                    }
                    if done {
                        return checked;
                    }
                    std::thread::sleep(DRAIN_EVERY);
                }
            })?;
        Ok(LogChecker { stop, thread })
    }

    /// Checks what is left and returns the number of lines checked.
    pub(crate) fn finish(self) -> u64 {
        self.stop.store(true, Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

fn check(stats: &'static Stats, line: &LogLine) {
    HttpChecker::new(stats, line.who).seen(line.site, &line.about, line.fields);
}
