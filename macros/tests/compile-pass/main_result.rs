// `?` in the body converts errors into the return type's.
use std::error::Error;

/// Doc comments and other attributes are kept.
#[baton::main(worker_threads = 2)]
#[allow(clippy::needless_return)]
async fn main() -> Result<(), Box<dyn Error>> {
    let n: u32 = "2".parse()?;
    let workers = baton::Handle::current().metrics().workers;
    if workers as u32 != n {
        return Err(format!("{workers} workers").into());
    }
    let child = baton::spawn(async { 1 }).await?;
    assert_eq!(child, 1);
    Ok(())
}
