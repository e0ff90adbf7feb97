//! The hub's PKI: the certificate authority and the certificates its OpenVPN server and clients
//! present, plus the static key that wraps the TLS handshake (`tls-crypt`).
//!
//! Four certificates, all ECDSA P-256 signed with SHA-256:
//!
//! - the CA, `CN=Evon Hub CA <domain>`, which may sign only end-entity certificates;
//! - the hub's server certificate, `CN=<domain>` with the domain as its subject alternative
//!   name, for TLS servers;
//! - the endpoint certificate, `CN=evon-endpoint`, for TLS clients. Every server that joins the
//!   overlay uses this one certificate; the hub tells servers apart by the UUID they send, not by
//!   their certificate;
//! - the user certificate, `CN=evon-user`, for TLS clients, embedded in `EvonHub.ovpn`.
//!
//! Everything is valid for ten years (3652 days), the CA and the leaves alike, and all share one
//! validity period so no leaf outlives its CA. The period is long because the hub has no renewal
//! mechanism yet: certificates that expired would silently cut every server and user off. Nothing
//! is lost by it, because certificates are not how access is withdrawn: every server shares one
//! certificate, so revoking it would cut them all off. The hub instead blacklists server UUIDs
//! and deactivates users. Validity starts a day in the past so that a joining server whose clock
//! runs behind still accepts the certificates.
//!
//! Serial numbers are 127 random bits. Key usages follow what OpenVPN's `remote-cert-tls` checks:
//! the server certificate has digitalSignature and keyAgreement (keyEncipherment applies to RSA
//! key transport, not to EC keys), the client certificates digitalSignature.
//!
//! On disk the PKI is a directory of PEM files (see the `*_FILE` constants). Keys are created
//! with mode 0600 and refused on load if anyone else may read them; certificates are 0644.
//! Nothing is ever overwritten, and `ca.crt` is written last, so a directory without it holds no
//! complete PKI.

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

pub const CA_CERT_FILE: &str = "ca.crt";
pub const CA_KEY_FILE: &str = "ca.key";
pub const SERVER_CERT_FILE: &str = "server.crt";
pub const SERVER_KEY_FILE: &str = "server.key";
pub const ENDPOINT_CERT_FILE: &str = "endpoint.crt";
pub const ENDPOINT_KEY_FILE: &str = "endpoint.key";
pub const USER_CERT_FILE: &str = "user.crt";
pub const USER_KEY_FILE: &str = "user.key";
pub const TLS_CRYPT_KEY_FILE: &str = "tls-crypt.key";

/// The common name of the certificate every joining server shares.
pub const ENDPOINT_CN: &str = "evon-endpoint";
/// The common name of the certificate in `EvonHub.ovpn`.
pub const USER_CN: &str = "evon-user";

/// How long every certificate is valid.
pub const VALIDITY_DAYS: i64 = 3652;
/// How far validity is backdated, for clocks that run behind.
const BACKDATE_DAYS: i64 = 1;

/// The size of the OpenVPN static key: OpenVPN's format holds 2048 bits.
const STATIC_KEY_LEN: usize = 256;
const STATIC_KEY_BEGIN: &str = "-----BEGIN OpenVPN Static key V1-----";
const STATIC_KEY_END: &str = "-----END OpenVPN Static key V1-----";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{domain:?} is not a domain name or IP address the hub's certificate can name")]
    BadDomain { domain: String },
    #[error("cannot generate the hub's PKI: {0}")]
    Generate(String),
    #[error("cannot create the PKI directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is readable by others (mode {mode:o}); run `chmod 600 {path}`")]
    LooseMode { path: PathBuf, mode: u32 },
    #[error("{path} is not a valid {what}")]
    Malformed { path: PathBuf, what: &'static str },
    #[error("the key {key} does not belong to the certificate {cert}")]
    Mismatch { cert: PathBuf, key: PathBuf },
}

fn generate_error(error: rcgen::Error) -> PkiError {
    PkiError::Generate(error.to_string())
}

/// The hub's certificates and keys, as PEM text (the static key in OpenVPN's own format).
pub struct Pki {
    pub ca_cert: String,
    ca_key: String,
    pub server_cert: String,
    server_key: String,
    pub endpoint_cert: String,
    endpoint_key: String,
    pub user_cert: String,
    user_key: String,
    static_key: String,
}

/// One file of the PKI directory.
struct PkiFile<'a> {
    name: &'static str,
    contents: &'a str,
    secret: bool,
}

impl Pki {
    /// Makes a new CA and signs the hub's server certificate for `domain` (a DNS name or an IP
    /// address) and the two shared client certificates with it.
    pub fn generate(domain: &str) -> Result<Self, PkiError> {
        check_domain(domain)?;
        let not_before = OffsetDateTime::now_utc() - Duration::days(BACKDATE_DAYS);
        let not_after = not_before + Duration::days(VALIDITY_DAYS);
        let params = |common_name: &str, subject_alt_names: Vec<String>| {
            let mut params = CertificateParams::new(subject_alt_names).map_err(generate_error)?;
            let mut name = DistinguishedName::new();
            name.push(DnType::CommonName, common_name);
            params.distinguished_name = name;
            params.not_before = not_before;
            params.not_after = not_after;
            params.serial_number = Some(random_serial());
            Ok::<_, PkiError>(params)
        };

        let ca_key = new_key()?;
        let mut ca_params = params(&format!("Evon Hub CA {domain}"), Vec::new())?;
        // Path length 0: the CA signs the hub's own leaves and never an intermediate.
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).map_err(generate_error)?;

        let issue = |mut params: CertificateParams,
                     key_usages: Vec<KeyUsagePurpose>,
                     extended_key_usage: ExtendedKeyUsagePurpose| {
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = key_usages;
            params.extended_key_usages = vec![extended_key_usage];
            params.use_authority_key_identifier_extension = true;
            let key = new_key()?;
            let cert = params
                .signed_by(&key, &ca, &ca_key)
                .map_err(generate_error)?;
            Ok::<_, PkiError>((cert.pem(), key.serialize_pem()))
        };
        let (server_cert, server_key) = issue(
            params(domain, vec![domain.to_owned()])?,
            vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyAgreement,
            ],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let client = |common_name| {
            issue(
                params(common_name, Vec::new())?,
                vec![KeyUsagePurpose::DigitalSignature],
                ExtendedKeyUsagePurpose::ClientAuth,
            )
        };
        let (endpoint_cert, endpoint_key) = client(ENDPOINT_CN)?;
        let (user_cert, user_key) = client(USER_CN)?;

        Ok(Self {
            ca_cert: ca.pem(),
            ca_key: ca_key.serialize_pem(),
            server_cert,
            server_key,
            endpoint_cert,
            endpoint_key,
            user_cert,
            user_key,
            static_key: generate_static_key(),
        })
    }

    pub fn ca_key(&self) -> &str {
        &self.ca_key
    }

    pub fn server_key(&self) -> &str {
        &self.server_key
    }

    pub fn endpoint_key(&self) -> &str {
        &self.endpoint_key
    }

    pub fn user_key(&self) -> &str {
        &self.user_key
    }

    /// The OpenVPN static key for `tls-crypt`, in OpenVPN's file format.
    pub fn static_key(&self) -> &str {
        &self.static_key
    }

    /// The files of the PKI directory, in the order they are written: `ca.crt` comes last so
    /// that its presence means the rest is there.
    fn files(&self) -> [PkiFile<'_>; 9] {
        fn file<'a>(name: &'static str, contents: &'a str, secret: bool) -> PkiFile<'a> {
            PkiFile {
                name,
                contents,
                secret,
            }
        }
        [
            file(CA_KEY_FILE, &self.ca_key, true),
            file(SERVER_KEY_FILE, &self.server_key, true),
            file(SERVER_CERT_FILE, &self.server_cert, false),
            file(ENDPOINT_KEY_FILE, &self.endpoint_key, true),
            file(ENDPOINT_CERT_FILE, &self.endpoint_cert, false),
            file(USER_KEY_FILE, &self.user_key, true),
            file(USER_CERT_FILE, &self.user_cert, false),
            file(TLS_CRYPT_KEY_FILE, &self.static_key, true),
            file(CA_CERT_FILE, &self.ca_cert, false),
        ]
    }

    /// Writes the PKI into `dir`, creating it with mode 0700 if it does not exist. Keys get mode
    /// 0600 and certificates 0644. Never overwrites: an existing file is an error, so a second
    /// `init` cannot replace the CA every server and user already trusts.
    pub fn save(&self, dir: &Path) -> Result<(), PkiError> {
        if !dir.exists() {
            let create_error = |source| PkiError::CreateDir {
                path: dir.to_owned(),
                source,
            };
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(create_error)?;
            // The mode above is filtered through the umask; this one is exact.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(create_error)?;
        }
        for file in self.files() {
            let mode = if file.secret { 0o600 } else { 0o644 };
            write_new(&dir.join(file.name), file.contents, mode)?;
        }
        Ok(())
    }

    /// Reads a PKI written by [`Pki::save`], refusing key files that anyone but their owner may
    /// read or write. Keys must parse and belong to their certificates; certificates are checked
    /// only for their PEM shape.
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        let ca_cert = read_cert(dir, CA_CERT_FILE)?;
        let ca_key = read_key(dir, CA_KEY_FILE, &ca_cert, CA_CERT_FILE)?;
        let server_cert = read_cert(dir, SERVER_CERT_FILE)?;
        let server_key = read_key(dir, SERVER_KEY_FILE, &server_cert, SERVER_CERT_FILE)?;
        let endpoint_cert = read_cert(dir, ENDPOINT_CERT_FILE)?;
        let endpoint_key = read_key(dir, ENDPOINT_KEY_FILE, &endpoint_cert, ENDPOINT_CERT_FILE)?;
        let user_cert = read_cert(dir, USER_CERT_FILE)?;
        let user_key = read_key(dir, USER_KEY_FILE, &user_cert, USER_CERT_FILE)?;
        let path = dir.join(TLS_CRYPT_KEY_FILE);
        let static_key = read_secret(&path)?;
        if parse_static_key(&static_key).is_none() {
            return Err(PkiError::Malformed {
                path,
                what: "OpenVPN static key",
            });
        }
        Ok(Self {
            ca_cert,
            ca_key,
            server_cert,
            server_key,
            endpoint_cert,
            endpoint_key,
            user_cert,
            user_key,
            static_key,
        })
    }

    /// Loads the PKI in `dir`, generating and saving one for `domain` first if there is none.
    /// The domain matters only then: an existing PKI is loaded as it is.
    pub fn load_or_create(dir: &Path, domain: &str) -> Result<Self, PkiError> {
        if dir.join(CA_CERT_FILE).exists() {
            Self::load(dir)
        } else {
            let pki = Self::generate(domain)?;
            pki.save(dir)?;
            Ok(pki)
        }
    }
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = format_args!("<redacted>");
        f.debug_struct("Pki")
            .field("ca_cert", &self.ca_cert)
            .field("ca_key", &redacted)
            .field("server_cert", &self.server_cert)
            .field("server_key", &redacted)
            .field("endpoint_cert", &self.endpoint_cert)
            .field("endpoint_key", &redacted)
            .field("user_cert", &self.user_cert)
            .field("user_key", &redacted)
            .field("static_key", &redacted)
            .finish()
    }
}

/// A DNS name of letters, digits and hyphens in dot-separated labels, or an IP address. Anything
/// else would make a certificate that no client matches, or fail deep inside rcgen.
fn check_domain(domain: &str) -> Result<(), PkiError> {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let ok = domain.parse::<IpAddr>().is_ok()
        || (domain.len() <= 253 && domain.split('.').all(label_ok));
    if ok {
        Ok(())
    } else {
        Err(PkiError::BadDomain {
            domain: domain.to_owned(),
        })
    }
}

fn new_key() -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate_error)
}

/// 127 random bits: positive, and with a non-zero first byte so the encoding is exactly 16 bytes.
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f).max(1);
    SerialNumber::from_slice(&bytes)
}

/// 256 random bytes in the format of `openvpn --genkey secret`: 16 lines of 32 hex digits
/// between the markers.
fn generate_static_key() -> String {
    let mut bytes = [0u8; STATIC_KEY_LEN];
    OsRng.fill_bytes(&mut bytes);
    let mut key = format!("# 2048 bit OpenVPN static key\n{STATIC_KEY_BEGIN}\n");
    for line in bytes.chunks(16) {
        key.push_str(&hex::encode(line));
        key.push('\n');
    }
    key.push_str(STATIC_KEY_END);
    key.push('\n');
    key
}

/// The bytes of an OpenVPN static key file, if it is one. Like OpenVPN, ignores what comes before
/// the first marker; unlike it, refuses anything but blank lines after the last.
fn parse_static_key(text: &str) -> Option<Vec<u8>> {
    let (hex_digits, rest_blank) = block(text, STATIC_KEY_BEGIN, STATIC_KEY_END)?;
    let bytes = hex::decode(hex_digits).ok()?;
    (rest_blank && bytes.len() == STATIC_KEY_LEN).then_some(bytes)
}

/// The DER body of the first PEM block with `label`.
fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let (body, _) = block(text, &begin, &end)?;
    STANDARD.decode(body).ok().filter(|der| !der.is_empty())
}

/// The lines between the first `begin` marker and the next `end` marker, trimmed and joined, and
/// whether only blank lines follow the end marker. `None` without both markers.
fn block(text: &str, begin: &str, end: &str) -> Option<(String, bool)> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .skip_while(|line| *line != begin)
        .skip(1);
    let mut body = String::new();
    loop {
        let line = lines.next()?;
        if line == end {
            break;
        }
        body.push_str(line);
    }
    Some((body, lines.all(str::is_empty)))
}

fn read_cert(dir: &Path, name: &str) -> Result<String, PkiError> {
    let path = dir.join(name);
    let text = fs::read_to_string(&path).map_err(|source| PkiError::Read {
        path: path.clone(),
        source,
    })?;
    if pem_body(&text, "CERTIFICATE").is_none() {
        return Err(PkiError::Malformed {
            path,
            what: "PEM certificate",
        });
    }
    Ok(text)
}

/// Reads a private key, checks that it parses and that its public half is the one in `cert`.
fn read_key(dir: &Path, name: &str, cert: &str, cert_name: &str) -> Result<String, PkiError> {
    let path = dir.join(name);
    let text = read_secret(&path)?;
    let key = KeyPair::from_pem(&text).map_err(|_| PkiError::Malformed {
        path: path.clone(),
        what: "PEM private key",
    })?;
    // The certificate's DER embeds its subject public key info verbatim.
    let public_key = key.public_key_der();
    let matches = pem_body(cert, "CERTIFICATE").is_some_and(|der| {
        der.windows(public_key.len())
            .any(|window| window == public_key.as_slice())
    });
    if !matches {
        return Err(PkiError::Mismatch {
            cert: dir.join(cert_name),
            key: path,
        });
    }
    Ok(text)
}

/// Reads a file only its owner may read or write.
fn read_secret(path: &Path) -> Result<String, PkiError> {
    let read_error = |source| PkiError::Read {
        path: path.to_owned(),
        source,
    };
    let mode = fs::metadata(path).map_err(read_error)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PkiError::LooseMode {
            path: path.to_owned(),
            mode,
        });
    }
    fs::read_to_string(path).map_err(read_error)
}

fn write_new(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    let write_error = |source| PkiError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(write_error)?;
    // The mode above is filtered through the umask; this one is exact.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(write_error)?;
    file.write_all(contents.as_bytes()).map_err(write_error)?;
    file.sync_all().map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_key_format() {
        let key = generate_static_key();
        let lines: Vec<&str> = key.lines().collect();
        assert_eq!(lines.len(), 19);
        assert!(lines[0].starts_with('#'));
        assert_eq!(lines[1], STATIC_KEY_BEGIN);
        for line in &lines[2..18] {
            assert_eq!(line.len(), 32);
            assert!(line
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
        assert_eq!(lines[18], STATIC_KEY_END);
        assert!(key.ends_with("-----\n"));
        assert_eq!(parse_static_key(&key).unwrap().len(), STATIC_KEY_LEN);
        assert_ne!(
            parse_static_key(&generate_static_key()),
            parse_static_key(&key)
        );
    }

    #[test]
    fn malformed_static_keys() {
        let key = generate_static_key();
        let lines: Vec<&str> = key.lines().collect();
        let join = |lines: &[&str]| {
            lines
                .iter()
                .map(|line| format!("{line}\n"))
                .collect::<String>()
        };
        let mut not_hex = lines.clone();
        let bad_line = format!("x{}", &lines[2][1..]);
        not_hex[2] = &bad_line;
        for bad in [
            String::new(),
            join(&lines[..18]),
            join(&[&lines[..5], &lines[6..]].concat()),
            join(&not_hex),
            format!("{key}trailing garbage\n"),
        ] {
            assert!(parse_static_key(&bad).is_none(), "{bad}");
        }
        // What OpenVPN itself accepts: other comments before the key, upper case, blank lines after.
        let upper: Vec<String> = lines[2..18]
            .iter()
            .map(|line| line.to_uppercase())
            .collect();
        let lenient = format!(
            "#\n# note\n#\n{STATIC_KEY_BEGIN}\n{}\n{STATIC_KEY_END}\n\n",
            upper.join("\n")
        );
        assert_eq!(parse_static_key(&lenient), parse_static_key(&key));
    }

    #[test]
    fn domains() {
        for good in ["hub.example.com", "localhost", "a-b.c0", "10.0.0.1", "::1"] {
            assert!(check_domain(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "hub example.com",
            "-hub.example.com",
            "hub-.example.com",
            "hub..example.com",
            "hub.example.com.",
            "*.example.com",
            "hüb.example.com",
            "hub_1.example.com",
        ] {
            assert!(
                matches!(check_domain(bad), Err(PkiError::BadDomain { .. })),
                "{bad}"
            );
        }
        assert!(check_domain(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn serials_are_positive_sixteen_bytes() {
        for _ in 0..64 {
            let serial = random_serial().to_bytes();
            assert_eq!(serial.len(), 16);
            assert!((1..=0x7f).contains(&serial[0]));
        }
    }

    #[test]
    fn pem_bodies() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_body(pem, "CERTIFICATE").unwrap(), [0, 1, 2]);
        assert!(pem_body(&pem.replace("-----END CERTIFICATE-----", ""), "CERTIFICATE").is_none());
        assert!(pem_body("AAEC", "CERTIFICATE").is_none());
        assert!(pem_body(&pem.replace("AAEC", "A!EC"), "CERTIFICATE").is_none());
    }
}
