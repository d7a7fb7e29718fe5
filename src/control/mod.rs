//! The control plane: the HTTP server fild runs on its socket and the client filc uses.
//! Both speak the types in [`crate::api`]; the server only forwards to the supervisor loop.

pub mod admission;
pub mod client;
pub mod follow;
pub mod metrics;
pub mod page;
pub mod server;
pub mod tls;
