//! The gofer server, protocol and client.
//!
//! The gofer is the only Carapace process that touches container files. It serves a tree
//! over a `SOCK_SEQPACKET` socketpair ([`protocol`]); the sentry talks to it through
//! [`client::Client`] and [`server::serve`] runs in the `carapace gofer` process.

pub mod client;
pub mod protocol;
pub mod server;
mod sys;

pub use server::{serve, ServeOptions};
