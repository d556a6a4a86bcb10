//! One module per page of the portal.

pub mod common;
pub mod directories;
pub mod domains;
pub mod landing;
pub mod not_found;
pub mod portal;
pub mod sso;
