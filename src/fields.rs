//! The list of ContextVars that the `tracing` and `log` integrations add to
//! every event or record (shared by both).

use std::fmt;
use std::sync::Arc;

use baton_context::ContextVar;

/// Writes one variable's current value, if it has one (`Ok(false)` if not).
type WriteValue = dyn Fn(&mut dyn fmt::Write) -> Result<bool, fmt::Error> + Send + Sync;

#[derive(Clone)]
struct Field {
    name: &'static str,
    write: Arc<WriteValue>,
}

/// An ordered list of ContextVars, formatted as `name=value` pairs from the
/// calling thread's current context.
#[derive(Clone, Default)]
pub(crate) struct Fields {
    list: Vec<Field>,
}

impl Fields {
    pub(crate) fn push_display<T>(&mut self, var: &'static ContextVar<T>)
    where
        T: fmt::Display + Send + Sync + 'static,
    {
        self.push(var.name(), move |w: &mut dyn fmt::Write| {
            var.with(|v| match v {
                Some(v) => write!(w, "{v}").map(|()| true),
                None => Ok(false),
            })
        });
    }

    pub(crate) fn push_debug<T>(&mut self, var: &'static ContextVar<T>)
    where
        T: fmt::Debug + Send + Sync + 'static,
    {
        self.push(var.name(), move |w: &mut dyn fmt::Write| {
            var.with(|v| match v {
                Some(v) => write!(w, "{v:?}").map(|()| true),
                None => Ok(false),
            })
        });
    }

    fn push(
        &mut self,
        name: &'static str,
        write: impl Fn(&mut dyn fmt::Write) -> Result<bool, fmt::Error> + Send + Sync + 'static,
    ) {
        self.list.push(Field {
            name,
            write: Arc::new(write),
        });
    }

    pub(crate) fn names(&self) -> Vec<&'static str> {
        self.list.iter().map(|f| f.name).collect()
    }

    /// Writes ` name=value` (with a leading space) for every variable that has
    /// a value in the current context (its default included); variables
    /// without one are left out.
    pub(crate) fn write_each(&self, w: &mut dyn fmt::Write) -> fmt::Result {
        let mut value = String::new();
        for field in &self.list {
            value.clear();
            if (field.write)(&mut value)? {
                write!(w, " {}={}", field.name, value)?;
            }
        }
        Ok(())
    }

    /// The fields as `name=value name=value`, without a leading space.
    pub(crate) fn to_line(&self) -> String {
        let mut s = String::new();
        // Writing to a String only fails if a value's Display fails.
        let _ = self.write_each(&mut s);
        if s.starts_with(' ') {
            s.remove(0);
        }
        s
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
