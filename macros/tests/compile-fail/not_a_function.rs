#[baton::test] //~ ERROR #[baton::test] goes on an `async fn`
struct NotAFunction;

fn main() {}
