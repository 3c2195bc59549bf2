#[baton::test]
async fn generic<T: Default>() -> T { //~ ERROR #[baton::test] functions cannot be generic
    T::default()
}

fn main() {}
