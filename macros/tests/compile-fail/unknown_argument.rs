#[baton::main(flavor = "current_thread")] //~ ERROR unknown argument `flavor` to #[baton::main]; the valid arguments are `worker_threads = N` and `crate = "path"`
async fn main() {}
