//! Configuration: supervisord-style ini text in, a checked [`Config`] out.
//!
//! Pure: this module reads files (the main file and its includes) and nothing else. It never
//! spawns, signals or listens. The environment used for expansion is passed in, so a load is a
//! function of (files, environment).

mod error;
mod model;

pub use error::{ConfigError, ConfigErrors};
pub use model::*;
