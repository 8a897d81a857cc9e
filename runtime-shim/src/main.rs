//! `carapace`: the OCI runtime, `carapace do`, and the sandbox's own processes.

fn main() {
    println!("carapace: not built yet");
}
