#[baton::main(4)] //~ ERROR #[baton::main] takes arguments of the form `name = value`
async fn main() {}
