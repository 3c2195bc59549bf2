// The path given by `crate` is the one the expansion names: a wrong one
// fails to resolve (the compiler's message names it).
#[baton::main(crate = "nonexistent")] //~ ERROR nonexistent
async fn main() {}
