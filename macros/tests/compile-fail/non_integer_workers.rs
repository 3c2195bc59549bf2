#[baton::test(worker_threads = "4")] //~ ERROR `worker_threads` takes a positive integer literal
async fn a_string() {}

#[baton::test(worker_threads = 2.5)] //~ ERROR `worker_threads` takes a positive integer literal
async fn a_float() {}

#[baton::test(worker_threads = -1)] //~ ERROR `worker_threads` takes a positive integer literal
async fn negative() {}

const N: usize = 2;

#[baton::test(worker_threads = N)] //~ ERROR `worker_threads` takes a positive integer literal
async fn a_constant() {}

#[baton::test(worker_threads = 99999999999999999999999)] //~ ERROR `worker_threads` takes a positive integer literal
async fn too_large() {}

fn main() {}
