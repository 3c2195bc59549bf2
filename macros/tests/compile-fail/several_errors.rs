// Every mistake is reported, not just the first.
#[baton::test(
    worker_threads = 0, //~ ERROR `worker_threads` must be at least 1
    threads = 2, //~ ERROR unknown argument `threads` to #[baton::test]
)]
fn sync_with_parameter(n: u32) {} //~ ERROR #[baton::test] needs an `async fn`
//~^ ERROR #[baton::test] functions take no parameters

fn main() {}
