//! fild: a supervisord-compatible process supervisor built to run small etcd clusters.
pub mod config;
