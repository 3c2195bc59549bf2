//! Every [`tracing`](https://docs.rs/tracing) event carries the current values of chosen
//! [`ContextVar`]s (feature `tracing`).
//!
//! Python adds a request's trace id to every log record with a
//! `logging.Filter` that reads a `ContextVar`. [`ContextFields`] is that for
//! `tracing-subscriber`'s `fmt` subscriber: an event formatter that wraps
//! another one (the default `Format` unless you give one) and appends
//! `name=value` for each chosen variable, read from the context current
//! where the event is emitted — the emitting task's own context, on
//! whichever worker it runs.
//!
//! ```
//! use baton::tracing::ContextFields;
//! use baton::{ContextVar, Runtime};
//! # use std::sync::{Arc, Mutex};
//! # #[derive(Clone, Default)]
//! # struct Capture(Arc<Mutex<Vec<u8>>>);
//! # impl std::io::Write for Capture {
//! #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().write(b) }
//! #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! # }
//! # let capture = Capture::default();
//! # let writer = { let c = capture.clone(); move || c.clone() };
//!
//! static TRACE_ID: ContextVar<String> =
//!     ContextVar::with_default_fn("trace_id", || "no-trace".to_string());
//!
//! let format = tracing_subscriber::fmt::format().without_time().with_target(false);
//! let subscriber = tracing_subscriber::fmt()
//!     .event_format(ContextFields::new().with(&TRACE_ID).format(format))
//! #   .with_writer(writer)
//!     .finish();
//! // In an application: `tracing::subscriber::set_global_default(subscriber)`,
//! // so that every worker thread uses it.
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!("starting up");
//!     Runtime::new().block_on(async {
//!         let _token = TRACE_ID.set("3f2a9c".to_string());
//!         tracing::info!(user = "alice", "Starting request");
//!     });
//! });
//! # let out = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
//! # assert_eq!(out, " INFO starting up trace_id=no-trace\n INFO Starting request user=\"alice\" trace_id=3f2a9c\n");
//! // Prints:
//! //  INFO starting up trace_id=no-trace
//! //  INFO Starting request user="alice" trace_id=3f2a9c
//! ```
//!
//! The inner formatter writes into a buffer (so that the fields can be put
//! at the end of its line), without ANSI colours, and the colour codes that
//! the subscriber put into span fields when they were recorded (with
//! `with_ansi(true)`, its default on a terminal) are stripped: the output is
//! plain text, as log files and collectors want. The fields are appended as text, so wrap text formats
//! (`full`, `compact`, `pretty`), not `json`.

use std::cell::RefCell;
use std::fmt;

use ::tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::ContextVar;
use crate::fields::Fields;

/// A `tracing-subscriber` event formatter that appends the current values of
/// chosen [`ContextVar`]s to every event, as `name=value`.
///
/// Build it with [`ContextFields::new`], add variables with
/// [`with`](ContextFields::with) (values shown with `Display`) or
/// [`with_debug`](ContextFields::with_debug), choose the formatter it wraps
/// with [`format`](ContextFields::format), and install it with
/// `tracing_subscriber::fmt().event_format(..)`. A variable with no value in
/// the current context and no default is left out of the line. See the
/// [module docs](self) for an example.
#[derive(Clone, Debug)]
pub struct ContextFields<F = Format> {
    fields: Fields,
    inner: F,
}

impl ContextFields {
    /// A formatter that adds no variables yet and wraps `tracing-subscriber`'s
    /// default [`Format`].
    pub fn new() -> ContextFields {
        ContextFields {
            fields: Fields::default(),
            inner: Format::default(),
        }
    }
}

impl Default for ContextFields {
    fn default() -> Self {
        ContextFields::new()
    }
}

impl<F> ContextFields<F> {
    /// Adds `var` (shown with `Display`) under its name
    /// ([`ContextVar::name`]). Fields appear in the order they were added.
    pub fn with<T>(mut self, var: &'static ContextVar<T>) -> Self
    where
        T: fmt::Display + Send + Sync + 'static,
    {
        self.fields.push_display(var);
        self
    }

    /// Adds `var`, shown with `Debug`, under its name.
    pub fn with_debug<T>(mut self, var: &'static ContextVar<T>) -> Self
    where
        T: fmt::Debug + Send + Sync + 'static,
    {
        self.fields.push_debug(var);
        self
    }

    /// Wraps `inner` instead: the formatter that writes the event itself,
    /// e.g. `tracing_subscriber::fmt::format().compact().without_time()`.
    pub fn format<G>(self, inner: G) -> ContextFields<G> {
        ContextFields {
            fields: self.fields,
            inner,
        }
    }

    /// The fields as they would be appended now, from the calling thread's
    /// current context: `name=value` pairs separated by spaces (empty if no
    /// variable has a value). Handy for custom formatters and tests.
    ///
    /// ```
    /// use baton::ContextVar;
    /// use baton::tracing::ContextFields;
    ///
    /// static TRACE_ID: ContextVar<&str> = ContextVar::new("trace_id");
    /// static USER: ContextVar<&str> = ContextVar::with_default("user", "guest");
    ///
    /// let fields = ContextFields::new().with(&TRACE_ID).with_debug(&USER);
    /// assert_eq!(fields.current(), "user=\"guest\"");
    /// TRACE_ID.scope("abc-123", || {
    ///     assert_eq!(fields.current(), "trace_id=abc-123 user=\"guest\"");
    /// });
    /// ```
    pub fn current(&self) -> String {
        self.fields.to_line()
    }
}

thread_local! {
    /// A reusable buffer for the inner formatter's line.
    static BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<S, N, F> FormatEvent<S, N> for ContextFields<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut write = |buf: &mut String| -> fmt::Result {
            buf.clear();
            self.inner.format_event(ctx, Writer::new(buf), event)?;
            let line = buf.strip_suffix('\n');
            write_plain(&mut writer, line.unwrap_or(buf))?;
            self.fields.write_each(&mut writer)?;
            if line.is_some() {
                writer.write_char('\n')?;
            }
            Ok(())
        };
        // A value's `Display` could itself log (re-entering this function on
        // this thread): the nested call gets a fresh buffer.
        let pooled = BUFFER.try_with(|b| b.try_borrow_mut().ok().map(|mut buf| write(&mut buf)));
        match pooled {
            Ok(Some(result)) => result,
            _ => write(&mut String::new()),
        }
    }
}

/// Writes `text` without its ANSI SGR sequences (`ESC [ … m`): span fields
/// are formatted when the span is recorded, with the subscriber's colours.
fn write_plain(writer: &mut Writer<'_>, text: &str) -> fmt::Result {
    let mut rest = text;
    while let Some(start) = rest.find("\x1b[") {
        writer.write_str(&rest[..start])?;
        let after = &rest[start + 2..];
        match after.find(|c: char| !(c.is_ascii_digit() || c == ';')) {
            // A complete SGR sequence: drop it.
            Some(end) if after[end..].starts_with('m') => rest = &after[end + 1..],
            // Anything else is not ours to touch.
            _ => {
                writer.write_str("\x1b[")?;
                rest = after;
            }
        }
    }
    writer.write_str(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_codes_in_span_fields_are_stripped() {
        #[derive(Clone, Default)]
        struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Capture {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().write(b)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        static REQUEST: ContextVar<&str> = ContextVar::new("request_id");
        let capture = Capture::default();
        let writer = {
            let capture = capture.clone();
            move || capture.clone()
        };
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(true)
            .event_format(
                ContextFields::new()
                    .with(&REQUEST)
                    .format(tracing_subscriber::fmt::format().without_time()),
            )
            .with_writer(writer)
            .finish();
        ::tracing::subscriber::with_default(subscriber, || {
            REQUEST.scope("r-7", || {
                let span = ::tracing::info_span!("handler", user = "alice");
                let _entered = span.enter();
                ::tracing::info!(n = 1, "inside");
            });
        });
        let out = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        assert!(!out.contains('\x1b'), "ANSI escape in {out:?}");
        assert!(out.contains("handler{user=\"alice\"}"), "{out}");
        assert!(out.trim_end().ends_with("request_id=r-7"), "{out}");
    }
}
