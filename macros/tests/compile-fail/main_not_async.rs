#[baton::main]
fn main() {} //~ ERROR #[baton::main] needs an `async fn`
