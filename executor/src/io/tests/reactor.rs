//! The reactor's own paths — registration, an event found by its token,
//! state kept one turn after deregistration, shutdown — on a pipe: the one
//! kind of source Miri can run (it has epoll and pipes, not sockets), so
//! these tests run in `.ci/run`'s Miri step and check the `unsafe` token
//! dereference in `reactor.rs`.

use std::future::poll_fn;
use std::io::{Read, Write};

use mio::unix::pipe;

use crate::io::PollEvented;
use crate::io::scheduled_io::Direction;
use crate::{Builder, spawn, yield_now};

#[test]
fn events_reach_tasks_through_their_tokens_and_dropped_sources_are_released() {
    let rt = Builder::new().worker_threads(2).build().unwrap();
    rt.block_on(async {
        for round in 0..3u8 {
            let (sender, receiver) = pipe::new().unwrap();
            let receiver = PollEvented::new(receiver).unwrap();
            let sender = PollEvented::new(sender).unwrap();
            // The reader waits first, so its wake comes from an event that
            // the driving worker finds by the source's token.
            let reader = spawn(async move {
                let mut buf = [0; 2];
                let n =
                    poll_fn(|cx| receiver.poll_io(cx, Direction::Read, |r| (&*r).read(&mut buf)))
                        .await
                        .unwrap();
                assert_eq!(n, 2);
                buf[0] + buf[1]
            });
            yield_now().await;
            poll_fn(|cx| sender.poll_io(cx, Direction::Write, |s| (&*s).write(&[round, 1])))
                .await
                .unwrap();
            // The reader's source was dropped with the task: deregistered,
            // and its state freed a turn later.
            assert_eq!(reader.await.unwrap(), round + 1);
        }
    });
}

#[test]
fn a_source_outliving_its_runtime_fails_instead_of_hanging() {
    let rt = Builder::new().worker_threads(1).build().unwrap();
    let (receiver, _sender) = rt.block_on(async {
        let (sender, receiver) = pipe::new().unwrap();
        (PollEvented::new(receiver).unwrap(), sender)
    });
    drop(rt);
    let other = Builder::new().worker_threads(1).build().unwrap();
    let result = other.block_on(poll_fn(|cx| {
        receiver.poll_io(cx, Direction::Read, |r| (&*r).read(&mut [0; 1]))
    }));
    assert!(result.is_err());
}
