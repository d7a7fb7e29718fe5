//! fild: a supervisord-compatible process supervisor built to run small etcd clusters.
//!
//! # Layout
//! - [`config`]: ini text to a checked [`config::Config`]. Pure: reads files, never spawns.
//! - [`supervisor`]: the daemon core. One event loop owns the process table; the state
//!   machine in [`supervisor::state`] is pure; spawning, log capture and the guard that kills
//!   programs when fild dies sit beside it.
//! - [`api`]: the wire types of the control protocol, shared by server and client.
//! - [`control`]: the HTTP server on the Unix socket and the client `filc` uses.
//! - [`daemon`]: fild's start-up and shutdown around the loop (socket, pidfile, logging).
//! - [`render`]: what filc prints (tables, sizes), as pure functions.
//! - [`alert`]: the `on_change` hook: events on a bounded queue, one command run at a time.
//! - [`command`]: a shell command fild runs beside its programs (hooks), never waited on.
//! - [`etcd`]: etcd cluster operations (status, membership, backups, guards) over
//!   `etcd-client`, driving programs through the same control API as a person.
//!
//! The binaries `fild` and `filc` are thin layers over this library.

pub mod alert;
pub mod api;
pub mod command;
pub mod config;
pub mod control;
pub mod daemon;
pub mod etcd;
pub mod render;
pub mod supervisor;
