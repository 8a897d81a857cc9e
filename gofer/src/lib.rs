//! The gofer server, protocol and client.
