// Tests with every argument and the attributes they keep; the crate that
// uses them depends on `baton` alone.
#[baton::test]
async fn plain() {}

/// A doc comment.
#[baton::test(worker_threads = 3, crate = "::baton")]
#[should_panic(expected = "boom")]
async fn panics() {
    panic!("boom");
}

#[baton::test]
#[ignore = "slow"]
async fn ignored() -> Result<(), std::fmt::Error> {
    Ok(())
}

fn main() {}
