//! Integration tests: one binary, each test against both SQLite and
//! PostgreSQL (see `helpers::both_backends!`).

mod auth;
mod browser;
mod cli;
mod domains;
mod egress;
mod helpers;
mod limits;
mod logs;
mod mail;
mod migrations;
mod orgs;
#[path = "../peers/peers.rs"]
#[allow(dead_code)]
mod peers;
mod portal;
mod resilience;
mod scim;
mod site;
mod sso;
mod webhooks;
