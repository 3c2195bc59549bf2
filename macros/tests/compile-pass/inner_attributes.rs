// `#![...]` at the top of the body stays at the top of the body; items
// and `use`s in the body work as in any `fn`.
#[baton::main]
async fn main() {
    #![allow(unused_variables)]
    use baton::yield_now;

    fn helper() -> u32 {
        2
    }

    let unused = helper();
    yield_now().await;
}
