//! `containerd-shim-carapace-v1`: containerd's runtime v2 shim for Carapace
//! (`--runtime io.containerd.carapace.v1`). It serves containerd's task API (v2, as
//! containerd 1.6 and 1.7 speak it) on the `containerd-shim` crate and drives the `carapace`
//! OCI CLI, as containerd's runc shim drives runc. See docs/containerd.md.

mod console;
mod host;
mod options;
mod service;

fn main() {
    containerd_shim::run::<service::Service>("io.containerd.carapace.v1", None);
}
