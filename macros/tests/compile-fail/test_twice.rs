#[baton::test]
#[test] //~ ERROR #[baton::test] adds `#[test]` itself
async fn twice() {}

fn main() {}
