#[baton::test]
async fn with_a_parameter(n: u32) { //~ ERROR #[baton::test] functions take no parameters
    assert_eq!(n, 1);
}

fn main() {}
