//! The files the hub hands out, and its own OpenVPN server configurations.
//!
//! Every artifact is a template in the workspace's `templates/` directory, compiled in with
//! `include_str!` and filled here by pure functions:
//!
//! | function | file | for |
//! | --- | --- | --- |
//! | [`secrets_fragment`] | `openvpn_secrets.conf` | what `POST /api/bootstrap/decrypt` returns, and what the installers carry sealed |
//! | [`server_client_config`] | `/etc/openvpn/client/evon.conf` | a server's OpenVPN client configuration, as `bootstrap.sh` installs it |
//! | [`bootstrap_sh`] | `bootstrap.sh` | the Linux installer |
//! | [`bootstrap_ps1`] | `bootstrap.ps1` | the Windows installer |
//! | [`raw_server_config`] | `openvpn_client-evon_server.conf` | a server's client configuration with the secrets inline |
//! | [`user_config`] | `EvonHub.ovpn` | people's OpenVPN profile |
//! | [`hub_server_config`] | the hub's two OpenVPN servers | servers over TCP, people over UDP |
//!
//! Contracts with the rest of the hub:
//!
//! - The hub's server certificate has the account domain ([`HubEndpoints::domain`]) as its
//!   common name (clients check it with `verify-x509-name <domain> name`) and the TLS Web Server
//!   Authentication extended key usage (`remote-cert-tls server`). Client certificates carry TLS
//!   Web Client Authentication (`remote-cert-tls client` on the hub).
//! - Servers authenticate with username = their UUID and password = their hostname; people with
//!   their own username and password. The hub's OpenVPN servers run `<evon-hub binary> openvpn
//!   server-auth | server-connect | server-disconnect | user-auth | user-connect`: the auth hooks
//!   read `username`/`password` from the environment (`via-env`), the connect hooks write
//!   `ifconfig-push` (and anything else) into the file whose path OpenVPN passes as their last
//!   argument. There is no address pool: a client the connect hook gives no address gets none.
//! - The installers upload the sealed string exactly as given to them (no trailing newline) as
//!   the file field `data` of a multipart request to `<api_url>/api/bootstrap/decrypt`, with
//!   `Authorization: Token <deploy key>`. They treat 200 with a body containing `<ca>` as success,
//!   401 and 403 as a refused key, anything else as a failure to decrypt.
//!
//! Values from the context are trusted hub settings, but they are still quoted for where they go
//! (OpenVPN arguments, POSIX shell and PowerShell single-quoted strings) and control characters
//! are dropped from them, so that no value can add a directive, a command or a line to a file.
//! The exception is the secrets' text, which is inserted verbatim between the inline tags.

use std::fmt;
use std::net::Ipv4Addr;

use crate::address::SubnetKey;

const SECRETS_TEMPLATE: &str = include_str!("../../../templates/secrets.conf");
const SECRETS_BLOCKS_TEMPLATE: &str = include_str!("../../../templates/secrets_blocks.conf");
const SERVER_CLIENT_DIRECTIVES_TEMPLATE: &str =
    include_str!("../../../templates/server_client_directives.conf");
const SERVER_CLIENT_TEMPLATE: &str = include_str!("../../../templates/server_client.conf");
const RAW_SERVER_TEMPLATE: &str = include_str!("../../../templates/raw_server.conf");
const USER_TEMPLATE: &str = include_str!("../../../templates/user.ovpn");
const BOOTSTRAP_SH_TEMPLATE: &str = include_str!("../../../templates/bootstrap.sh");
const BOOTSTRAP_PS1_TEMPLATE: &str = include_str!("../../../templates/bootstrap.ps1");
const HUB_SERVERS_TEMPLATE: &str = include_str!("../../../templates/hub_servers.conf");
const HUB_USERS_TEMPLATE: &str = include_str!("../../../templates/hub_users.conf");

/// The TCP port servers connect to unless configured otherwise.
pub const DEFAULT_SERVER_PORT: u16 = 1194;
/// The UDP port people connect to unless configured otherwise (UDP and TCP ports are distinct).
pub const DEFAULT_USER_PORT: u16 = 1194;
/// The data channel ciphers, for OpenVPN 2.5 and later on both ends.
pub const DATA_CIPHERS: &str = "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305";

/// Download names (`Content-Disposition`) of the artifacts.
pub const BOOTSTRAP_SH_FILENAME: &str = "bootstrap.sh";
pub const BOOTSTRAP_PS1_FILENAME: &str = "bootstrap.ps1";
pub const RAW_SERVER_CONFIG_FILENAME: &str = "openvpn_client-evon_server.conf";
pub const USER_CONFIG_FILENAME: &str = "EvonHub.ovpn";
pub const SECRETS_FRAGMENT_FILENAME: &str = "openvpn_secrets.conf";

/// Where `bootstrap.sh` installs on Linux (each under `$EVON_ROOT`, empty but in tests).
pub const LINUX_UUID_FILE: &str = "/etc/openvpn/evon.uuid";
pub const LINUX_CLIENT_CONFIG_FILE: &str = "/etc/openvpn/client/evon.conf";
pub const LINUX_AUTH_FILE: &str = "/etc/openvpn/client/evon.auth";
pub const LINUX_SECRETS_FILE: &str = "/etc/openvpn/client/evon_secrets.conf";
/// The systemd unit that runs the connection (`openvpn-client@.service` reads
/// `/etc/openvpn/client/evon.conf`).
pub const LINUX_SERVICE: &str = "openvpn-client@evon";

// Markers the installers replace with their own paths.
const AUTH_FILE_MARKER: &str = "@EVON_AUTH_FILE@";
const SECRETS_FILE_MARKER: &str = "@EVON_SECRETS_FILE@";

/// How clients reach the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubEndpoints {
    /// The account domain: servers are named `<hostname>.<domain>`, and it is the common name of
    /// the hub's server certificate.
    pub domain: String,
    /// What clients' `remote` points at: a host name or an address.
    pub public_host: String,
    /// The base URL of the hub's API, such as `https://hub.example.com` (no trailing slash needed).
    pub api_url: String,
    /// The TCP port of the servers' OpenVPN server.
    pub server_port: u16,
    /// The UDP port of the users' OpenVPN server.
    pub user_port: u16,
    pub subnet_key: SubnetKey,
}

impl HubEndpoints {
    /// Endpoints on the default ports.
    pub fn new(
        domain: impl Into<String>,
        public_host: impl Into<String>,
        api_url: impl Into<String>,
        subnet_key: SubnetKey,
    ) -> Self {
        Self {
            domain: domain.into(),
            public_host: public_host.into(),
            api_url: api_url.into(),
            server_port: DEFAULT_SERVER_PORT,
            user_port: DEFAULT_USER_PORT,
            subnet_key,
        }
    }
}

/// The TLS material a client joins with: PEM certificates and key, and the OpenVPN static key
/// text of the tls-crypt key.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecrets {
    pub ca_cert: String,
    pub cert: String,
    pub key: String,
    pub tls_crypt_key: String,
}

impl fmt::Debug for ClientSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecrets")
            .field("ca_cert", &format_args!("<{} bytes>", self.ca_cert.len()))
            .field("cert", &format_args!("<{} bytes>", self.cert.len()))
            .field("key", &format_args!("<redacted>"))
            .field("tls_crypt_key", &format_args!("<redacted>"))
            .finish()
    }
}

/// Which of the hub's two OpenVPN servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubInstance {
    /// Servers (spokes): TCP, `100.K.224.0/19`.
    Servers,
    /// People: UDP, `100.K.208.0/20`.
    Users,
}

/// Files and programs a hub OpenVPN server uses; one set per instance (the management socket
/// and the status file must differ between the two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubServerPaths {
    pub ca: String,
    pub cert: String,
    pub key: String,
    pub tls_crypt: String,
    pub ccd_dir: String,
    pub management_socket: String,
    /// The `evon-hub` command the hooks run: its executable, possibly followed by global options
    /// (`/usr/bin/evon-hub --data-dir /var/lib/evon-hub`); `openvpn <hook>` is appended. OpenVPN
    /// splits hook commands on white space and checks that the first word is an executable file,
    /// so no word may contain white space.
    pub evon_hub_binary: String,
    pub status_file: String,
}

/// The clear-text secrets: `<ca>`, `<cert>`, `<key>` and `<tls-crypt>` blocks. This is what the
/// installers carry sealed and what `POST /api/bootstrap/decrypt` returns.
pub fn secrets_fragment(secrets: &ClientSecrets) -> String {
    fill(
        SECRETS_TEMPLATE,
        &[("blocks", secrets_blocks(secrets).trim_end())],
    )
}

/// The four inline blocks alone, for the configurations that carry them.
fn secrets_blocks(secrets: &ClientSecrets) -> String {
    fill(
        SECRETS_BLOCKS_TEMPLATE,
        &[
            ("ca_cert", secrets.ca_cert.trim()),
            ("cert", secrets.cert.trim()),
            ("key", secrets.key.trim()),
            ("tls_crypt_key", secrets.tls_crypt_key.trim()),
        ],
    )
}

/// A server's OpenVPN client configuration without secrets, exactly as `bootstrap.sh` installs
/// it at [`LINUX_CLIENT_CONFIG_FILE`] (before any `--extra-config`): it reads its username and
/// password from [`LINUX_AUTH_FILE`] and includes [`LINUX_SECRETS_FILE`].
pub fn server_client_config(endpoints: &HubEndpoints) -> String {
    server_client_with(
        endpoints,
        &ovpn_arg(LINUX_AUTH_FILE),
        &ovpn_arg(LINUX_SECRETS_FILE),
    )
}

fn server_client_with(endpoints: &HubEndpoints, auth_file: &str, secrets_file: &str) -> String {
    fill(
        SERVER_CLIENT_TEMPLATE,
        &[
            ("domain_comment", &comment(&endpoints.domain)),
            (
                "directives",
                server_client_directives(endpoints, auth_file).trim_end(),
            ),
            ("secrets_file", secrets_file),
        ],
    )
}

fn server_client_directives(endpoints: &HubEndpoints, auth_file: &str) -> String {
    fill(
        SERVER_CLIENT_DIRECTIVES_TEMPLATE,
        &[
            ("public_host", &ovpn_arg(&endpoints.public_host)),
            ("server_port", &endpoints.server_port.to_string()),
            ("domain", &ovpn_arg(&endpoints.domain)),
            ("data_ciphers", DATA_CIPHERS),
            ("auth_file", auth_file),
        ],
    )
}

/// `bootstrap.sh`, the Linux installer, carrying `sealed_secrets` (the sealed
/// [`secrets_fragment`]) and reporting `version`.
pub fn bootstrap_sh(endpoints: &HubEndpoints, sealed_secrets: &str, version: &str) -> String {
    let client_config = server_client_with(endpoints, AUTH_FILE_MARKER, SECRETS_FILE_MARKER);
    fill(
        BOOTSTRAP_SH_TEMPLATE,
        &[
            ("domain_comment", &comment(&endpoints.domain)),
            ("version_comment", &comment(version)),
            ("version", &sh_quote(version)),
            ("domain", &sh_quote(&endpoints.domain)),
            ("api_url", &sh_quote(api_base(&endpoints.api_url))),
            ("hub_address", &sh_quote(&hub_address(endpoints))),
            ("sealed_secrets", &sh_quote(sealed_secrets)),
            ("client_config", client_config.trim_end_matches('\n')),
        ],
    )
}

/// `bootstrap.ps1`, the Windows installer, carrying `sealed_secrets` and reporting `version`.
pub fn bootstrap_ps1(endpoints: &HubEndpoints, sealed_secrets: &str, version: &str) -> String {
    let client_config = server_client_with(endpoints, AUTH_FILE_MARKER, SECRETS_FILE_MARKER);
    fill(
        BOOTSTRAP_PS1_TEMPLATE,
        &[
            ("domain_comment", &comment(&endpoints.domain)),
            ("version_comment", &comment(version)),
            ("version", &ps_quote(version)),
            ("domain", &ps_quote(&endpoints.domain)),
            ("api_url", &ps_quote(api_base(&endpoints.api_url))),
            ("hub_address", &ps_quote(&hub_address(endpoints))),
            ("sealed_secrets", &ps_quote(sealed_secrets)),
            ("client_config", client_config.trim_end_matches('\n')),
        ],
    )
}

/// `openvpn_client-evon_server.conf`: a server's client configuration with the secrets inline,
/// for joining without the installer. Its header warns that it lets anyone join while discovery
/// mode is on, and tells how the auth-user-pass file must look.
pub fn raw_server_config(endpoints: &HubEndpoints, secrets: &ClientSecrets) -> String {
    fill(
        RAW_SERVER_TEMPLATE,
        &[
            ("domain_comment", &comment(&endpoints.domain)),
            ("public_host_comment", &comment(&endpoints.public_host)),
            ("server_port", &endpoints.server_port.to_string()),
            (
                "directives",
                server_client_directives(endpoints, &ovpn_arg(LINUX_AUTH_FILE)).trim_end(),
            ),
            ("secrets", secrets_blocks(secrets).trim_end()),
        ],
    )
}

/// `EvonHub.ovpn`: people's OpenVPN profile, asking for their username and password, with the
/// users' client certificate inline.
pub fn user_config(endpoints: &HubEndpoints, secrets: &ClientSecrets) -> String {
    fill(
        USER_TEMPLATE,
        &[
            ("domain_comment", &comment(&endpoints.domain)),
            ("public_host", &ovpn_arg(&endpoints.public_host)),
            ("user_port", &endpoints.user_port.to_string()),
            ("domain", &ovpn_arg(&endpoints.domain)),
            ("data_ciphers", DATA_CIPHERS),
            ("secrets", secrets_blocks(secrets).trim_end()),
        ],
    )
}

/// One of the hub's OpenVPN server configurations.
pub fn hub_server_config(
    endpoints: &HubEndpoints,
    which: HubInstance,
    paths: &HubServerPaths,
) -> String {
    let key = endpoints.subnet_key.get();
    let (template, port, third_octet, prefix_len, prefix) = match which {
        HubInstance::Servers => (
            HUB_SERVERS_TEMPLATE,
            endpoints.server_port,
            224,
            19,
            "server",
        ),
        HubInstance::Users => (HUB_USERS_TEMPLATE, endpoints.user_port, 208, 20, "user"),
    };
    let network = Ipv4Addr::new(100, key, third_octet, 0).to_string();
    let netmask = netmask(prefix_len).to_string();
    let overlay_network = Ipv4Addr::new(100, key, 0, 0).to_string();
    let hook = |name: &str| {
        ovpn_arg(&format!(
            "{} openvpn {prefix}-{name}",
            paths.evon_hub_binary
        ))
    };
    fill(
        template,
        &[
            ("domain_comment", &comment(&endpoints.domain)),
            ("port", &port.to_string()),
            ("network", &network),
            ("netmask", &netmask),
            ("prefix_len", &prefix_len.to_string()),
            ("overlay_network", &overlay_network),
            ("overlay_netmask", &netmask_of(16)),
            ("ca", &ovpn_arg(&paths.ca)),
            ("cert", &ovpn_arg(&paths.cert)),
            ("key", &ovpn_arg(&paths.key)),
            ("tls_crypt", &ovpn_arg(&paths.tls_crypt)),
            ("data_ciphers", DATA_CIPHERS),
            ("ccd_dir", &ovpn_arg(&paths.ccd_dir)),
            ("auth_hook", &hook("auth")),
            ("connect_hook", &hook("connect")),
            ("disconnect_hook", &hook("disconnect")),
            ("management_socket", &ovpn_arg(&paths.management_socket)),
            ("status_file", &ovpn_arg(&paths.status_file)),
        ],
    )
}

fn netmask(prefix_len: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::MAX << (32 - u32::from(prefix_len)))
}

fn netmask_of(prefix_len: u8) -> String {
    netmask(prefix_len).to_string()
}

/// The API base URL without trailing slashes, so that `$url/api/...` has exactly one.
fn api_base(api_url: &str) -> &str {
    api_url.trim_end_matches('/')
}

/// `host:port` for messages, with an IPv6 address in brackets.
fn hub_address(endpoints: &HubEndpoints) -> String {
    let host = strip_controls(&endpoints.public_host);
    if host.contains(':') {
        format!("[{host}]:{}", endpoints.server_port)
    } else {
        format!("{host}:{}", endpoints.server_port)
    }
}

fn strip_controls(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).collect()
}

/// Text for a comment line: control characters (line breaks above all) dropped.
fn comment(value: &str) -> String {
    strip_controls(value)
}

/// One OpenVPN argument: bare when it is made of harmless characters, else double-quoted with
/// `\` and `"` escaped. Control characters cannot be expressed and are dropped.
fn ovpn_arg(value: &str) -> String {
    let value = strip_controls(value);
    let bare = !value.is_empty()
        && !value.starts_with(['#', ';'])
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@+=,%~".contains(c));
    if bare {
        return value;
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if c == '\\' || c == '"' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// A POSIX shell single-quoted word. NUL cannot be passed and is dropped.
fn sh_quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars().filter(|&c| c != '\0') {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

/// A PowerShell single-quoted string. PowerShell takes the typographic single quotes for quotes
/// too; each is doubled like `'`. NUL is dropped.
fn ps_quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars().filter(|&c| c != '\0') {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            quoted.push(c);
        }
        quoted.push(c);
    }
    quoted.push('\'');
    quoted
}

/// Replaces each `{{name}}` in `template` with its value, in one pass: values are never scanned
/// for placeholders themselves. An unknown name is left as it is (the tests check that no
/// rendered artifact keeps one).
fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + vars.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let value = after.find("}}").and_then(|end| {
            let name = after[..end].trim();
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v, end + 2))
        });
        match value {
            Some((value, consumed)) => {
                out.push_str(value);
                rest = &after[consumed..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::{AddressPool, OverlayRange};

    fn endpoints() -> HubEndpoints {
        HubEndpoints::new(
            "hub.example.com",
            "vpn.example.com",
            "https://hub.example.com/",
            SubnetKey::new(111),
        )
    }

    fn secrets() -> ClientSecrets {
        ClientSecrets {
            ca_cert: "CA".into(),
            cert: "CERT".into(),
            key: "KEY".into(),
            tls_crypt_key: "TLS".into(),
        }
    }

    fn paths() -> HubServerPaths {
        HubServerPaths {
            ca: "/ca".into(),
            cert: "/cert".into(),
            key: "/key".into(),
            tls_crypt: "/tc".into(),
            ccd_dir: "/ccd".into(),
            management_socket: "/mgmt".into(),
            evon_hub_binary: "/bin/evon-hub".into(),
            status_file: "/status".into(),
        }
    }

    fn every_artifact() -> Vec<(&'static str, String)> {
        let e = endpoints();
        let s = secrets();
        vec![
            ("secrets", secrets_fragment(&s)),
            ("server_client", server_client_config(&e)),
            ("bootstrap.sh", bootstrap_sh(&e, "SEALED", "1.0")),
            ("bootstrap.ps1", bootstrap_ps1(&e, "SEALED", "1.0")),
            ("raw", raw_server_config(&e, &s)),
            ("user", user_config(&e, &s)),
            (
                "hub servers",
                hub_server_config(&e, HubInstance::Servers, &paths()),
            ),
            (
                "hub users",
                hub_server_config(&e, HubInstance::Users, &paths()),
            ),
        ]
    }

    #[test]
    fn no_placeholder_survives() {
        for (name, text) in every_artifact() {
            assert!(!text.contains("{{"), "{name} keeps a placeholder:\n{text}");
            assert!(!text.contains("}}"), "{name} keeps a placeholder:\n{text}");
            assert!(
                text.ends_with('\n') && !text.ends_with("\n\n"),
                "{name} ends badly"
            );
        }
    }

    #[test]
    fn markers_only_in_installers() {
        for (name, text) in every_artifact() {
            let has = text.contains(AUTH_FILE_MARKER) && text.contains(SECRETS_FILE_MARKER);
            assert_eq!(has, name.starts_with("bootstrap"), "{name}");
        }
    }

    #[test]
    fn fill_is_one_pass_and_keeps_unknown_names() {
        assert_eq!(
            fill("a {{x}} b {{ y }} {{z}} {{", &[("x", "{{y}}"), ("y", "Y")]),
            "a {{y}} b Y {{z}} {{"
        );
        assert_eq!(fill("{{x}}{{x}}", &[("x", "1")]), "11");
    }

    #[test]
    fn openvpn_arguments_are_quoted_when_needed() {
        assert_eq!(ovpn_arg("hub.example.com"), "hub.example.com");
        assert_eq!(ovpn_arg("2001:db8::1"), "2001:db8::1");
        assert_eq!(
            ovpn_arg("/bin/evon-hub openvpn x"),
            "\"/bin/evon-hub openvpn x\""
        );
        assert_eq!(ovpn_arg(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(ovpn_arg("#x"), "\"#x\"");
        assert_eq!(ovpn_arg(""), "\"\"");
        assert_eq!(ovpn_arg("evil\nup /bin/sh"), "\"evilup /bin/sh\"");
    }

    #[test]
    fn shell_and_powershell_quoting() {
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote("$(x) `y`"), "'$(x) `y`'");
        assert_eq!(ps_quote("it's"), "'it''s'");
        assert_eq!(ps_quote("a\u{2019}b $x"), "'a\u{2019}\u{2019}b $x'");
    }

    #[test]
    fn a_newline_in_a_value_adds_no_line() {
        let mut e = endpoints();
        e.domain = "hub.example.com\nup /bin/sh".into();
        e.public_host = "vpn\nscript-security 3".into();
        for text in [server_client_config(&e), user_config(&e, &secrets())] {
            assert!(!text.lines().any(|l| l.starts_with("up ")), "{text}");
            assert!(
                !text.lines().any(|l| l.starts_with("script-security")),
                "{text}"
            );
        }
        let sh = bootstrap_sh(&e, "x'; rm -rf /; '", "1");
        assert!(
            sh.contains(r"EVON_SEALED_SECRETS='x'\''; rm -rf /; '\'''"),
            "{sh}"
        );
    }

    #[test]
    fn hub_ranges_agree_with_the_address_pools() {
        let e = endpoints();
        for (which, range) in [
            (HubInstance::Servers, OverlayRange::Servers),
            (HubInstance::Users, OverlayRange::Users),
        ] {
            let cidr = AddressPool::new(e.subnet_key, range).cidr();
            let (network, prefix) = cidr.split_once('/').expect("cidr");
            let mask = netmask_of(prefix.parse().expect("prefix"));
            let text = hub_server_config(&e, which, &paths());
            assert!(
                text.contains(&format!("\nserver {network} {mask} nopool\n")),
                "{cidr}:\n{text}"
            );
        }
    }

    #[test]
    fn hooks_name_their_instance() {
        let e = endpoints();
        let servers = hub_server_config(&e, HubInstance::Servers, &paths());
        assert!(
            servers.contains("auth-user-pass-verify \"/bin/evon-hub openvpn server-auth\" via-env")
        );
        assert!(servers.contains("client-connect \"/bin/evon-hub openvpn server-connect\""));
        assert!(servers.contains("client-disconnect \"/bin/evon-hub openvpn server-disconnect\""));
        let users = hub_server_config(&e, HubInstance::Users, &paths());
        assert!(users.contains("auth-user-pass-verify \"/bin/evon-hub openvpn user-auth\" via-env"));
        assert!(users.contains("client-connect \"/bin/evon-hub openvpn user-connect\""));
        assert!(!users.contains("client-disconnect"));
        assert!(!users.lines().any(|l| l == "duplicate-cn"));
        assert!(servers.lines().any(|l| l == "duplicate-cn"));
    }

    #[test]
    fn api_url_loses_its_trailing_slash() {
        let sh = bootstrap_sh(&endpoints(), "S", "1");
        assert!(sh.contains("\nEVON_API_URL='https://hub.example.com'\n"));
        let ps1 = bootstrap_ps1(&endpoints(), "S", "1");
        assert!(ps1.contains("\n$EvonApiUrl = 'https://hub.example.com'\n"));
    }

    #[test]
    fn debug_redacts_the_keys() {
        let debug = format!("{:?}", secrets());
        assert!(!debug.contains("KEY") && !debug.contains("TLS") && !debug.contains("CERT"));
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn netmasks() {
        assert_eq!(netmask_of(19), "255.255.224.0");
        assert_eq!(netmask_of(20), "255.255.240.0");
        assert_eq!(netmask_of(16), "255.255.0.0");
    }
}
