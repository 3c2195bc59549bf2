#[baton::main(worker_threads)] //~ ERROR `worker_threads` takes a value: write `worker_threads = 4`
async fn main() {}
