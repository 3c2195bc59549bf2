#[baton::main(crate = "not a path")] //~ ERROR `crate` takes the path of the baton crate in a string
async fn main() {}
