// `crate = "path"`: the facade reached through another path, as a crate
// that renamed its `baton` dependency would.
mod runtime {
    pub use baton::*;
}

#[baton::main(crate = "runtime", worker_threads = 1)]
async fn main() {
    assert_eq!(runtime::Handle::current().metrics().workers, 1);
}
