#[baton::main]
async fn main(args: Vec<String>) {} //~ ERROR #[baton::main] functions take no parameters
