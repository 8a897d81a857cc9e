//! Confinement of the sandbox's host processes, called by `boot` once the sentry holds
//! every host resource it needs and by `gofer` once it has opened its root, each before
//! serving anything. The namespaces, `pivot_root`, capability drops and seccomp
//! allow-lists of DESIGN.md §1 go here; NOTHING IS CONFINED YET (next step of issue 7).

/// Confine the sentry (`carapace boot`). Not implemented yet: does nothing.
pub fn sentry() -> anyhow::Result<()> {
    Ok(())
}

/// Confine the gofer. Not implemented yet: does nothing.
pub fn gofer() -> anyhow::Result<()> {
    Ok(())
}
