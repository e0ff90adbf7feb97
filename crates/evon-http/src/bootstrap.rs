//! What a joining server and a person download: the installers, the raw configs, and the one
//! route that opens the installers' sealed secrets.
//!
//! Everything is rendered once, when the hub starts (the PKI and the endpoints do not change
//! while it runs); the installers embed the endpoint secrets sealed with the hub key, so a leaked
//! installer is useless without a token allowed to call `/api/bootstrap/decrypt`.

use std::fmt;

use evon_crypto::pki::Pki;
use evon_crypto::seal::{self, Purpose};
use evon_crypto::HubKey;
use evon_domain::artifacts::{self, ClientSecrets, HubEndpoints};

/// The rendered downloads and the key that opens what they seal.
pub struct Bootstrap {
    key: HubKey,
    pub linux: String,
    pub windows: String,
    pub raw: String,
    pub user_config: String,
}

impl fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bootstrap").finish_non_exhaustive()
    }
}

impl Bootstrap {
    /// Renders every download for this hub. `version` is the hub's version, printed by
    /// `bootstrap.sh --version`.
    pub fn render(
        key: HubKey,
        pki: &Pki,
        endpoints: &HubEndpoints,
        version: &str,
    ) -> Result<Self, String> {
        let endpoint = ClientSecrets {
            ca_cert: pki.ca_cert.clone(),
            cert: pki.endpoint_cert.clone(),
            key: pki.endpoint_key().to_owned(),
            tls_crypt_key: pki.static_key().to_owned(),
        };
        let user = ClientSecrets {
            ca_cert: pki.ca_cert.clone(),
            cert: pki.user_cert.clone(),
            key: pki.user_key().to_owned(),
            tls_crypt_key: pki.static_key().to_owned(),
        };
        let sealed = seal::seal(
            &key,
            Purpose::BootstrapSecrets,
            artifacts::secrets_fragment(&endpoint).as_bytes(),
        )
        .map_err(|e| e.to_string())?;
        Ok(Self {
            linux: artifacts::bootstrap_sh(endpoints, &sealed, version),
            windows: artifacts::bootstrap_ps1(endpoints, &sealed, version),
            raw: artifacts::raw_server_config(endpoints, &endpoint),
            user_config: artifacts::user_config(endpoints, &user),
            key,
        })
    }

    /// Opens a sealed payload from an installer; `None` for anything that does not open.
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let text = std::str::from_utf8(sealed).ok()?;
        seal::open(&self.key, Purpose::BootstrapSecrets, text).ok()
    }
}
