//! Services: what runs between the HTTP edge and the store (workers, the
//! login flow, outbound calls). They use `store` and model code, never
//! `http`.

pub mod certificates;
pub mod delivery;
pub mod dns;
pub mod domains;
pub mod login;
pub mod scim_log;
