//! One module per page of the portal.

pub mod landing;
pub mod not_found;
pub mod portal;
