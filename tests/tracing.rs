//! The `tracing` and `log` integrations: every line carries the trace id of
//! the task that logged it, also when tasks interleave and migrate between
//! workers. Also checks the `logging` example.
//!
//! One subscriber and one logger per process: this binary installs both
//! once (through the example's `install`), writing to a shared buffer, and
//! each test picks out its own lines.
#![cfg(all(feature = "tracing", feature = "log"))]

#[allow(dead_code)]
#[path = "../examples/logging.rs"]
mod logging;

use std::io::{self, Write};
use std::sync::{Mutex, Once};

use baton::tracing::ContextFields;
use baton::{Builder, ContextVar, TaskGroup, yield_now};
use futures::StreamExt;

static CAPTURED: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        CAPTURED.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| logging::install(|| Capture));
}

/// The captured lines that contain `marker`.
fn captured_lines(marker: &str) -> Vec<String> {
    String::from_utf8(CAPTURED.lock().unwrap().clone())
        .unwrap()
        .lines()
        .filter(|l| l.contains(marker))
        .map(str::to_string)
        .collect()
}

/// The value of `key=` in a line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn logging_example_every_line_carries_its_requests_trace_id() {
    install();
    let requests = 8;
    logging::serve(requests);

    let lines = captured_lines("request");
    // Per request: start, three steps, the `log` line, complete.
    assert_eq!(lines.len(), 6 * requests as usize + 1, "{lines:#?}");
    for line in &lines {
        if line.contains("serving") {
            assert!(line.ends_with("trace_id=no-trace"), "{line}");
            continue;
        }
        let n: u32 = field(line, "request")
            .unwrap_or_else(|| panic!("no request field: {line}"))
            .parse()
            .unwrap();
        let expected = logging::trace_id_for(n);
        assert_eq!(field(line, "trace_id"), Some(expected.as_str()), "{line}");
    }
    for n in 0..requests {
        let id = logging::trace_id_for(n);
        let of_n: Vec<_> = lines
            .iter()
            .filter(|l| l.contains(&format!("request={n} ")))
            .collect();
        assert_eq!(of_n.len(), 6, "{of_n:#?}");
        assert_eq!(
            *of_n[0],
            format!(" INFO Starting request request={n} trace_id={id}")
        );
        assert!(of_n.contains(&&format!(
            " INFO [log] cache warmed for request={n} trace_id={id}"
        )));
        assert_eq!(
            **of_n.last().unwrap(),
            format!(" INFO Request complete request={n} trace_id={id}")
        );
    }
}

#[test]
fn lines_of_interleaved_migrating_tasks_carry_their_own_ids() {
    install();
    let tasks = 64;
    let rt = Builder::new().worker_threads(2).build().unwrap();
    let handle = rt.handle();

    // Each task waits on a channel fed by a foreign thread: its wake-ups come
    // from outside, so any worker may poll it next.
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..tasks)
        .map(|_| futures::channel::mpsc::unbounded::<u32>())
        .unzip();
    // Whether a task moves depends on scheduling: feed rounds (at least 10)
    // until the runtime reports a migration, within a generous bound.
    let feeder = std::thread::spawn(move || {
        let mut rounds = 0u32;
        while rounds < 10 || (handle.metrics().migrations == 0 && rounds < 100_000) {
            for tx in &senders {
                tx.unbounded_send(rounds).unwrap();
            }
            rounds += 1;
            std::thread::yield_now();
        }
        rounds
    });
    rt.block_on(async {
        let mut group = TaskGroup::new();
        for (i, mut rx) in receivers.into_iter().enumerate() {
            group.spawn(async move {
                let _token = logging::TRACE_ID.set(format!("mig-{i}"));
                while let Some(round) = rx.next().await {
                    tracing::info!(task = i, round, "migstep");
                    yield_now().await;
                    log::info!("migstep task={i} round={round}");
                    yield_now().await;
                }
            });
        }
        group.join_all().await.unwrap();
    });
    let rounds = feeder.join().unwrap();

    let lines = captured_lines("migstep");
    assert_eq!(lines.len(), tasks * rounds as usize * 2);
    for line in &lines {
        let task = field(line, "task").unwrap_or_else(|| panic!("no task field: {line}"));
        assert_eq!(
            field(line, "trace_id"),
            Some(format!("mig-{task}").as_str()),
            "{line}"
        );
    }
    let m = rt.metrics();
    assert!(m.migrations > 0, "no task moved between workers: {m:?}");
}

#[test]
fn context_fields_leave_out_unset_vars_and_use_the_given_format() {
    static USER: ContextVar<&str> = ContextVar::new("user");
    static ROLES: ContextVar<Vec<&str>> = ContextVar::new("roles");

    #[derive(Clone, Default)]
    struct Local(std::sync::Arc<Mutex<Vec<u8>>>);
    impl Write for Local {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let out = Local::default();
    let writer = {
        let out = out.clone();
        move || out.clone()
    };
    let format = tracing_subscriber::fmt::format()
        .compact()
        .without_time()
        .with_target(false)
        .with_level(false);
    let subscriber = tracing_subscriber::fmt()
        .event_format(
            ContextFields::new()
                .with(&USER)
                .with_debug(&ROLES)
                .format(format),
        )
        .with_writer(writer)
        .finish();
    // A scoped subscriber for this thread: it takes precedence over the
    // process-wide one the other tests install.
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("nobody");
        USER.scope("alice", || {
            tracing::info!(n = 1, "alice");
            ROLES.scope(vec!["admin", "ops"], || tracing::info!("roles"));
        });
    });
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text,
        "nobody\nalice n=1 user=alice\nroles user=alice roles=[\"admin\", \"ops\"]\n"
    );
}
