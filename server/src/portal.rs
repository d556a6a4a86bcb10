//! The server side of the portal UI: implements the UI crate's
//! [`PortalBackend`] on top of the store and settings.

use app::backend::{BackendError, PortalBackend};
use app::dto::PortalInfo;

use crate::config::VendorSettings;
use crate::db::Store;

/// Backend handed to Leptos server functions through context.
pub struct ServerBackend {
    #[allow(dead_code)] // used by portal sessions (next capability)
    store: Store,
    vendor: VendorSettings,
}

impl ServerBackend {
    pub fn new(store: Store, vendor: VendorSettings) -> Self {
        Self { store, vendor }
    }
}

#[async_trait::async_trait]
impl PortalBackend for ServerBackend {
    async fn portal_info(&self) -> Result<PortalInfo, BackendError> {
        Ok(PortalInfo { vendor_name: self.vendor.name.clone(), vendor_url: self.vendor.url.clone() })
    }
}
