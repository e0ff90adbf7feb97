//! What every handler shares: the store, the hub's fixed settings, and how to reach the hub.

use evon_domain::config::HubSettings;
use std::sync::Arc;

use evon_store::network::AccessCache;
use evon_store::{DbConnection, Store, StoreResult};

use crate::bootstrap::Bootstrap;
use crate::error::ApiError;

#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub settings: HubSettings,
    /// The URL clients reach the hub at, for pagination links. Without it links are built from
    /// the request's scheme and Host.
    pub public_url: Option<url::Url>,
    /// Who can reach what, rebuilt when the network changes.
    pub access: Arc<AccessCache>,
    /// The downloads for joining servers and people; `None` until loaded (the bootstrap routes
    /// then answer 503).
    pub bootstrap: Option<Arc<Bootstrap>>,
}

impl AppState {
    pub fn new(store: Store, settings: HubSettings, public_url: Option<url::Url>) -> Self {
        Self {
            store,
            settings,
            public_url,
            access: Arc::new(AccessCache::new()),
            bootstrap: None,
        }
    }

    pub fn with_bootstrap(mut self, bootstrap: Bootstrap) -> Self {
        self.bootstrap = Some(Arc::new(bootstrap));
        self
    }

    /// Runs a read on the blocking pool, inside one read transaction.
    pub async fn read<T, F>(&self, query: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> StoreResult<T> + Send + 'static,
    {
        let store = self.store.clone();
        Ok(actix_web::web::block(move || store.read(query)).await??)
    }

    /// Runs a change on the blocking pool, inside one write transaction.
    pub async fn write<T, F>(&self, change: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnMut(&mut DbConnection) -> StoreResult<T> + Send + 'static,
    {
        let store = self.store.clone();
        Ok(actix_web::web::block(move || store.write(change)).await??)
    }

    /// Runs CPU-heavy work (password hashing) on the blocking pool.
    pub async fn compute<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    {
        actix_web::web::block(work).await?
    }
}
