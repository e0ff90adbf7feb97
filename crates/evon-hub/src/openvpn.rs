//! What the binary needs to hand out OpenVPN material: the hub's endpoints, its PKI, the
//! rendered downloads, and the hub's own OpenVPN server configs.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use anyhow::{Context, Result};
use evon_crypto::pki::Pki;
use evon_crypto::HubKey;
use evon_domain::artifacts::{self, HubEndpoints, HubInstance, HubServerPaths};
use evon_domain::config::HubSettings;
use evon_http::bootstrap::Bootstrap;

use crate::cli::{Instance, OpenVpnArgs};
use crate::settings::{Resolved, DEFAULT_OPENVPN_PORT};

/// Where clients reach the hub: flags, environment, then `evon-hub.toml`, then defaults. The
/// API URL is the public URL, or the listening address when none is configured.
pub fn endpoints(
    resolved: &Resolved,
    hub: &HubSettings,
    args: &OpenVpnArgs,
    public_url: Option<&url::Url>,
    bind: &str,
) -> HubEndpoints {
    let file = &resolved.file;
    let public_host = args
        .openvpn_host
        .clone()
        .or_else(|| file.openvpn_host.clone())
        .or_else(|| public_url.and_then(|u| u.host_str().map(str::to_owned)))
        .unwrap_or_else(|| hub.domain.clone());
    let api_url = match public_url {
        Some(url) => url.as_str().trim_end_matches('/').to_owned(),
        None => format!("http://{bind}"),
    };
    HubEndpoints {
        domain: hub.domain.clone(),
        public_host,
        api_url,
        server_port: args
            .openvpn_server_port
            .or(file.openvpn_server_port)
            .unwrap_or(DEFAULT_OPENVPN_PORT),
        user_port: args
            .openvpn_user_port
            .or(file.openvpn_user_port)
            .unwrap_or(DEFAULT_OPENVPN_PORT),
        subnet_key: hub.subnet_key,
    }
}

/// The hub's PKI, made on first use for its account domain.
pub fn pki(resolved: &Resolved, hub: &HubSettings) -> Result<Pki> {
    let dir = resolved.pki_dir();
    Pki::load_or_create(&dir, &hub.domain).with_context(|| format!("hub PKI in {}", dir.display()))
}

/// Every download, rendered once for this run of the hub.
pub fn bootstrap(
    resolved: &Resolved,
    key: HubKey,
    pki: &Pki,
    endpoints: &HubEndpoints,
) -> Result<Bootstrap> {
    Bootstrap::render(key, pki, endpoints, env!("CARGO_PKG_VERSION"))
        .map_err(anyhow::Error::msg)
        .with_context(|| {
            format!(
                "rendering the bootstrap downloads of the hub in {}",
                resolved.data_dir.display()
            )
        })
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// One of the hub's OpenVPN server configs, with the paths of this installation: certificates
/// in the data directory's `pki/`, a client-config dir, status file and management socket per
/// instance beside them, and hooks that call this binary with this data directory.
pub fn server_config(
    resolved: &Resolved,
    endpoints: &HubEndpoints,
    instance: Instance,
) -> Result<String> {
    let (which, name) = match instance {
        Instance::Servers => (HubInstance::Servers, "servers"),
        Instance::Users => (HubInstance::Users, "users"),
    };
    let pki = resolved.pki_dir();
    // OpenVPN refuses to start without its client-config dir; the connect hook writes there.
    let ccd = resolved.data_dir.join(format!("ccd-{name}"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&ccd)
        .with_context(|| format!("cannot create {}", ccd.display()))?;
    let binary = std::env::current_exe().context("cannot tell where the evon-hub binary is")?;
    let paths = HubServerPaths {
        ca: absolute(&pki.join("ca.crt")),
        cert: absolute(&pki.join("server.crt")),
        key: absolute(&pki.join("server.key")),
        tls_crypt: absolute(&pki.join("tls-crypt.key")),
        ccd_dir: absolute(&ccd),
        management_socket: absolute(&crate::management::socket_path(&resolved.data_dir, name)),
        status_file: absolute(&resolved.data_dir.join(format!("openvpn-{name}.status"))),
        evon_hub_binary: format!(
            "{} --data-dir {}",
            absolute(&binary),
            absolute(&resolved.data_dir)
        ),
    };
    Ok(artifacts::hub_server_config(endpoints, which, &paths))
}
