//! Out of file descriptors, `accept` returns `EMFILE` as an `io::Error`
//! (no panic, no spin), and the same listener accepts once fds are free.
//!
//! Alone in this test binary: it lowers the process's `RLIMIT_NOFILE` and
//! fills every fd slot below it for a moment, which would fail any test
//! running beside it.
#![cfg(all(target_os = "linux", not(baton_loom), not(miri)))]

use baton_executor::Builder;
use baton_executor::net::TcpListener;

fn nofile() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `rlimit` for the call's duration.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    limit
}

fn set_nofile(limit: libc::rlimit) {
    // SAFETY: `limit` is a valid `rlimit`, read for the call's duration.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

/// Restores the fd limit when dropped (an assertion failing included).
struct Restore(libc::rlimit);

impl Drop for Restore {
    fn drop(&mut self) {
        set_nofile(self.0);
    }
}

fn highest_fd() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .max()
        .unwrap()
}

#[test]
fn accept_out_of_fds_is_an_error_and_the_listener_recovers() {
    let rt = Builder::new().worker_threads(1).build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        // Completed by the kernel, waiting in the backlog.
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();

        let original = nofile();
        let restore = Restore(original);
        // A few slots above the highest fd in use, then fill every free one.
        set_nofile(libc::rlimit {
            rlim_cur: highest_fd() + 8,
            rlim_max: original.rlim_max,
        });
        let mut fillers = Vec::new();
        let full = loop {
            match std::fs::File::open("/dev/null") {
                Ok(file) => fillers.push(file),
                Err(e) => break e,
            }
            assert!(fillers.len() < 1_000, "the lowered limit did not apply");
        };
        assert_eq!(full.raw_os_error(), Some(libc::EMFILE));

        let err = listener.accept().await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        // Still out of fds: the same error again, not a hang.
        let err = listener.accept().await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");

        drop(fillers);
        drop(restore);
        let (stream, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(stream.peer_addr().unwrap(), peer);
    });
}
