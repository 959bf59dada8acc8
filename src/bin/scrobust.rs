//! The `scrobust` command line. See DESIGN.md for the contract.
fn main() {
    eprintln!("scrobust: no commands yet");
}
