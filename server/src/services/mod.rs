//! Services: what runs between the HTTP edge and the store (workers, the
//! login flow, outbound calls). They use `store` and model code, never
//! `http`.

pub mod delivery;
pub mod scim_log;
