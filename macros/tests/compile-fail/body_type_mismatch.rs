// A body whose type is not the return type is reported in the body, not on
// the attribute (the message is the compiler's: any error on that line).
#[baton::main]
async fn main() -> Result<(), String> {
    42 //~ ERROR
}
