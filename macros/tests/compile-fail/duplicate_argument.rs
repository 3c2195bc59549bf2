#[baton::main(
    worker_threads = 1,
    worker_threads = 2, //~ ERROR duplicate argument `worker_threads` to #[baton::main]
)]
async fn main() {}
