//! What every handler shares: the store, the hub's fixed settings, and how to reach the hub.

use evon_domain::config::HubSettings;
use std::fmt::Debug;
use std::sync::Arc;

use evon_store::auth::TokenCache;
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
    /// Principals of warm tokens, valid while the store's generation watch stands still.
    pub tokens: Arc<TokenCache>,
    /// The downloads for joining servers and people; `None` until loaded (the bootstrap routes
    /// then answer 503).
    pub bootstrap: Option<Arc<Bootstrap>>,
    /// Ends the OpenVPN sessions of servers and users that lost their access; `None` when the
    /// hub runs no OpenVPN (tests).
    pub disconnect: Option<Arc<dyn Disconnect>>,
}

/// Disconnects clients from the hub's OpenVPN servers. Handlers call it after the change that
/// withdrew access is committed, off the request's path; it reports its own failures (a hub
/// whose OpenVPN is not running is no error for the API).
pub trait Disconnect: Send + Sync + Debug {
    /// Ends the session of the server with this UUID (its common name).
    fn server(&self, uuid: &str);
    /// Ends the session of the user with this username (their common name).
    fn user(&self, username: &str);
}

/// Who to disconnect.
#[derive(Debug, Clone)]
pub enum Client {
    Server(String),
    User(String),
}

impl AppState {
    pub fn new(store: Store, settings: HubSettings, public_url: Option<url::Url>) -> Self {
        let tokens = Arc::new(TokenCache::new(Arc::clone(store.generation_watch())));
        Self {
            store,
            settings,
            public_url,
            access: Arc::new(AccessCache::new()),
            tokens,
            bootstrap: None,
            disconnect: None,
        }
    }

    pub fn with_disconnect(mut self, disconnect: Arc<dyn Disconnect>) -> Self {
        self.disconnect = Some(disconnect);
        self
    }

    /// Disconnects `clients` on the blocking pool without waiting for it: the change is
    /// committed and the response does not depend on OpenVPN.
    pub fn disconnect(&self, clients: Vec<Client>) {
        let Some(disconnect) = self.disconnect.clone() else {
            return;
        };
        if clients.is_empty() {
            return;
        }
        // Dropping the handle does not cancel the task.
        drop(actix_web::rt::task::spawn_blocking(move || {
            for client in &clients {
                match client {
                    Client::Server(uuid) => disconnect.server(uuid),
                    Client::User(username) => disconnect.user(username),
                }
            }
        }));
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
