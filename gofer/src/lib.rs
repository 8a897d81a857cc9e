//! The gofer server, protocol and client.

pub mod protocol;
