//! Portico server: vendor REST API, portal backend, storage.
//! `main.rs` is a thin CLI over [`cli::run`].

pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domains;
pub mod egress;
pub mod events;
pub mod fields;
pub mod http;
pub mod mail;
pub mod net;
pub mod orgs;
pub mod portal;
pub mod scim;
pub mod secrets;
pub mod services;
pub mod sso;
pub mod startup;
pub mod store;
pub mod telemetry;
