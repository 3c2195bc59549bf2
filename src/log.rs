//! Every [`log`](https://docs.rs/log) record carries the current values of chosen
//! [`ContextVar`]s (feature `log`).
//!
//! [`ContextLogger`] wraps any `log::Log` (env_logger, simplelog, your own)
//! and appends `name=value` for each chosen variable to the message of every
//! record, read from the context current where the record is logged — the
//! logging task's own context, on whichever worker it runs. It is Python's
//! `logging.Filter` that sets `record.trace_id = trace_id.get()`.
//!
//! ```
//! use baton::ContextVar;
//! use baton::log::ContextLogger;
//! use std::sync::Mutex;
//!
//! static TRACE_ID: ContextVar<&str> = ContextVar::with_default("trace_id", "no-trace");
//!
//! /// A logger that keeps the formatted messages.
//! struct Keep(Mutex<Vec<String>>);
//! impl log::Log for Keep {
//!     fn enabled(&self, _: &log::Metadata<'_>) -> bool { true }
//!     fn log(&self, record: &log::Record<'_>) {
//!         self.0.lock().unwrap().push(format!("{} {}", record.level(), record.args()));
//!     }
//!     fn flush(&self) {}
//! }
//!
//! let logger = ContextLogger::new(Keep(Mutex::new(Vec::new()))).with(&TRACE_ID);
//! // In an application: `logger.init(log::LevelFilter::Info)`. Here, by hand:
//! let record = |msg: &str| {
//!     use log::Log;
//!     logger.log(&log::Record::builder().args(format_args!("{msg}")).level(log::Level::Info).build());
//! };
//! record("idle");
//! TRACE_ID.scope("abc-123", || record("Starting request"));
//! assert_eq!(
//!     *logger.inner().0.lock().unwrap(),
//!     ["INFO idle trace_id=no-trace", "INFO Starting request trace_id=abc-123"],
//! );
//! ```

use std::fmt;

use ::log::{LevelFilter, Log, Metadata, Record, SetLoggerError};

use crate::ContextVar;
use crate::fields::Fields;

/// A [`log::Log`](https://docs.rs/log/latest/log/trait.Log.html) that forwards every record to an inner logger
/// with the current values of chosen [`ContextVar`]s appended to its message
/// as `name=value` (variables with no value and no default are left out).
///
/// The record is rebuilt with the same level, target, module path, file and
/// line; its key-values (the `log/kv` feature) are not forwarded. See the
/// [module docs](self) for an example.
pub struct ContextLogger<L> {
    fields: Fields,
    inner: L,
}

impl<L: Log> ContextLogger<L> {
    /// Wraps `inner`, adding no variables yet.
    pub fn new(inner: L) -> ContextLogger<L> {
        ContextLogger {
            fields: Fields::default(),
            inner,
        }
    }

    /// Adds `var` (shown with `Display`) under its name. Fields appear in the
    /// order they were added.
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

    /// The fields as they would be appended now, from the calling thread's
    /// current context: `name=value` pairs separated by spaces (empty if no
    /// variable has a value).
    pub fn current(&self) -> String {
        self.fields.to_line()
    }

    /// The wrapped logger.
    pub fn inner(&self) -> &L {
        &self.inner
    }

    /// Installs this logger as the process's logger (`log::set_boxed_logger`)
    /// and sets the maximum level.
    ///
    /// # Errors
    ///
    /// If a logger was already installed.
    pub fn init(self, max_level: LevelFilter) -> Result<(), SetLoggerError>
    where
        L: 'static,
    {
        ::log::set_boxed_logger(Box::new(self))?;
        ::log::set_max_level(max_level);
        Ok(())
    }
}

/// The record's message followed by the context fields.
struct WithFields<'a> {
    args: &'a fmt::Arguments<'a>,
    fields: &'a Fields,
}

impl fmt::Display for WithFields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_fmt(*self.args)?;
        self.fields.write_each(f)
    }
}

impl<L: Log> Log for ContextLogger<L> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.inner.enabled(record.metadata()) {
            return;
        }
        let message = WithFields {
            args: record.args(),
            fields: &self.fields,
        };
        self.inner.log(
            &Record::builder()
                .args(format_args!("{message}"))
                .metadata(record.metadata().clone())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

impl<L> fmt::Debug for ContextLogger<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextLogger")
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}
