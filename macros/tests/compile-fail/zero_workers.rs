#[baton::main(worker_threads = 0)] //~ ERROR `worker_threads` must be at least 1
async fn main() {}
