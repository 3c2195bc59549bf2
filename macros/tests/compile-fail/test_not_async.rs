#[baton::test]
fn sync_test() {} //~ ERROR #[baton::test] needs an `async fn`

fn main() {}
