// The plainest use, with a `return` and a `!Send` value held across an
// `.await` (the body is not spawned: it needs not be `Send`).
use std::rc::Rc;

#[baton::main]
pub async fn main() {
    let local = Rc::new(1);
    baton::yield_now().await;
    if *local == 1 {
        return;
    }
    unreachable!();
}
