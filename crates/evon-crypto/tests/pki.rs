//! The PKI on disk, and checked by the tools that will consume it: `openssl` for the certificate
//! chain and keys, `openvpn` (when installed) for the static key.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use evon_crypto::pki::{self, Pki, PkiError};

const DOMAIN: &str = "hub.example.com";
const OPENSSL: &str = "/usr/bin/openssl";
const OPENVPN: &str = "/usr/sbin/openvpn";

const KEY_FILES: [&str; 5] = [
    pki::CA_KEY_FILE,
    pki::SERVER_KEY_FILE,
    pki::ENDPOINT_KEY_FILE,
    pki::USER_KEY_FILE,
    pki::TLS_CRYPT_KEY_FILE,
];
const CERT_FILES: [&str; 4] = [
    pki::CA_CERT_FILE,
    pki::SERVER_CERT_FILE,
    pki::ENDPOINT_CERT_FILE,
    pki::USER_CERT_FILE,
];

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn saved(domain: &str) -> (tempfile::TempDir, std::path::PathBuf, Pki) {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("pki");
    let pki = Pki::generate(domain).unwrap();
    pki.save(&dir).unwrap();
    (temp, dir, pki)
}

/// Runs openssl in `dir`, returning its exit status and its stdout and stderr together. Fails
/// rather than skips when openssl is missing: these checks are the point of the PKI.
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    assert!(
        Path::new(OPENSSL).exists(),
        "these tests check the PKI with the openssl binary, which is not at {OPENSSL}"
    );
    let output = Command::new(OPENSSL)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, text) = openssl(dir, args);
    assert!(ok, "openssl {args:?} failed:\n{text}");
    text
}

fn x509_text(dir: &Path, cert: &str) -> String {
    openssl_ok(dir, &["x509", "-in", cert, "-noout", "-text"])
}

#[test]
fn save_then_load() {
    let (_temp, dir, pki) = saved(DOMAIN);
    let loaded = Pki::load(&dir).unwrap();
    assert_eq!(loaded.ca_cert, pki.ca_cert);
    assert_eq!(loaded.ca_key(), pki.ca_key());
    assert_eq!(loaded.server_cert, pki.server_cert);
    assert_eq!(loaded.server_key(), pki.server_key());
    assert_eq!(loaded.endpoint_cert, pki.endpoint_cert);
    assert_eq!(loaded.endpoint_key(), pki.endpoint_key());
    assert_eq!(loaded.user_cert, pki.user_cert);
    assert_eq!(loaded.user_key(), pki.user_key());
    assert_eq!(loaded.static_key(), pki.static_key());
    assert_eq!(
        fs::read_to_string(dir.join(pki::TLS_CRYPT_KEY_FILE)).unwrap(),
        pki.static_key()
    );
    assert_eq!(
        fs::read_to_string(dir.join(pki::SERVER_KEY_FILE)).unwrap(),
        pki.server_key()
    );
}

#[test]
fn file_modes() {
    let (_temp, dir, _pki) = saved(DOMAIN);
    assert_eq!(mode(&dir), 0o700);
    for name in KEY_FILES {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    for name in CERT_FILES {
        assert_eq!(mode(&dir.join(name)), 0o644, "{name}");
    }
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<&str> = KEY_FILES.iter().chain(&CERT_FILES).copied().collect();
    expected.sort();
    assert_eq!(names, expected);
}

#[test]
fn never_overwrites() {
    let (_temp, dir, pki) = saved(DOMAIN);
    let other = Pki::generate(DOMAIN).unwrap();
    assert!(matches!(other.save(&dir), Err(PkiError::Write { .. })));
    assert_eq!(Pki::load(&dir).unwrap().ca_key(), pki.ca_key());
    assert_eq!(Pki::load(&dir).unwrap().ca_cert, pki.ca_cert);
}

#[test]
fn load_or_create() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("pki");
    let created = Pki::load_or_create(&dir, DOMAIN).unwrap();
    assert_eq!(mode(&dir.join(pki::CA_KEY_FILE)), 0o600);
    let loaded = Pki::load_or_create(&dir, "other.example.com").unwrap();
    assert_eq!(loaded.ca_cert, created.ca_cert);
    assert_eq!(loaded.ca_key(), created.ca_key());
}

#[test]
fn refuses_loose_modes() {
    let (_temp, dir, _pki) = saved(DOMAIN);
    for name in KEY_FILES {
        let path = dir.join(name);
        for loose in [0o640, 0o604, 0o660, 0o644] {
            fs::set_permissions(&path, fs::Permissions::from_mode(loose)).unwrap();
            match Pki::load(&dir) {
                Err(PkiError::LooseMode {
                    path: reported,
                    mode,
                }) => {
                    assert_eq!(reported, path);
                    assert_eq!(mode, loose);
                }
                other => panic!("{name} at {loose:o}: {other:?}"),
            }
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        // Tighter than 0600 is fine.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        Pki::load(&dir).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn refuses_broken_and_mismatched_files() {
    let (_temp, dir, _pki) = saved(DOMAIN);
    let (_other_temp, other_dir, _other) = saved(DOMAIN);

    // A key from another PKI does not belong to this certificate.
    fs::remove_file(dir.join(pki::SERVER_KEY_FILE)).unwrap();
    fs::copy(
        other_dir.join(pki::SERVER_KEY_FILE),
        dir.join(pki::SERVER_KEY_FILE),
    )
    .unwrap();
    assert!(matches!(Pki::load(&dir), Err(PkiError::Mismatch { .. })));
    fs::remove_file(dir.join(pki::SERVER_KEY_FILE)).unwrap();
    fs::copy(
        dir.join(pki::ENDPOINT_KEY_FILE),
        dir.join(pki::SERVER_KEY_FILE),
    )
    .unwrap();
    assert!(matches!(Pki::load(&dir), Err(PkiError::Mismatch { .. })));

    let (_temp, dir, _pki) = saved(DOMAIN);
    fs::write(dir.join(pki::USER_KEY_FILE), "not a key").unwrap();
    assert!(matches!(Pki::load(&dir), Err(PkiError::Malformed { .. })));

    let (_temp, dir, _pki) = saved(DOMAIN);
    fs::write(dir.join(pki::TLS_CRYPT_KEY_FILE), "#\n").unwrap();
    assert!(matches!(Pki::load(&dir), Err(PkiError::Malformed { .. })));

    let (_temp, dir, _pki) = saved(DOMAIN);
    fs::write(dir.join(pki::ENDPOINT_CERT_FILE), "not a certificate").unwrap();
    assert!(matches!(Pki::load(&dir), Err(PkiError::Malformed { .. })));

    let (_temp, dir, _pki) = saved(DOMAIN);
    fs::remove_file(dir.join(pki::USER_CERT_FILE)).unwrap();
    assert!(matches!(Pki::load(&dir), Err(PkiError::Read { .. })));
}

#[test]
fn refuses_bad_domains() {
    for domain in ["", "two words", "hub..example.com"] {
        assert!(matches!(
            Pki::generate(domain),
            Err(PkiError::BadDomain { .. })
        ));
    }
}

#[test]
fn debug_hides_the_secrets() {
    let pki = Pki::generate(DOMAIN).unwrap();
    let debug = format!("{pki:?}");
    assert!(debug.contains("BEGIN CERTIFICATE"));
    assert!(!debug.contains("PRIVATE KEY"));
    assert!(!debug.contains("Static key"));
    for line in pki.static_key().lines().skip(2).take(16) {
        assert!(!debug.contains(line));
    }
}

#[test]
fn openssl_verifies_the_chain() {
    let (_temp, dir, _pki) = saved(DOMAIN);
    let text = openssl_ok(
        &dir,
        &[
            "verify",
            "-CAfile",
            "ca.crt",
            "server.crt",
            "endpoint.crt",
            "user.crt",
        ],
    );
    for cert in ["server.crt", "endpoint.crt", "user.crt"] {
        assert!(text.contains(&format!("{cert}: OK")), "{text}");
    }

    // Each certificate is good for its own role only.
    let verify = |purpose: &str, cert: &str| {
        openssl(
            &dir,
            &["verify", "-purpose", purpose, "-CAfile", "ca.crt", cert],
        )
        .0
    };
    assert!(verify("sslserver", "server.crt"));
    assert!(!verify("sslclient", "server.crt"));
    for client in ["endpoint.crt", "user.crt"] {
        assert!(verify("sslclient", client));
        assert!(!verify("sslserver", client));
    }

    // A certificate from another hub's CA does not verify.
    let (_other_temp, other_dir, _other) = saved(DOMAIN);
    let foreign = other_dir.join("server.crt");
    let (ok, _) = openssl(
        &dir,
        &["verify", "-CAfile", "ca.crt", foreign.to_str().unwrap()],
    );
    assert!(!ok);
}

#[test]
fn openssl_sees_the_intended_certificates() {
    let (_temp, dir, _pki) = saved(DOMAIN);

    let ca = x509_text(&dir, "ca.crt");
    assert!(ca.contains("CA:TRUE"), "{ca}");
    assert!(ca.contains("pathlen:0"), "{ca}");
    assert!(ca.contains("Certificate Sign, CRL Sign"), "{ca}");
    assert!(
        ca.contains(&format!("Subject: CN = Evon Hub CA {DOMAIN}")),
        "{ca}"
    );

    let server = x509_text(&dir, "server.crt");
    assert!(server.contains("TLS Web Server Authentication"), "{server}");
    assert!(
        !server.contains("TLS Web Client Authentication"),
        "{server}"
    );
    assert!(
        server.contains(&format!("Subject: CN = {DOMAIN}")),
        "{server}"
    );
    assert!(server.contains(&format!("DNS:{DOMAIN}")), "{server}");
    assert!(
        server.contains("Digital Signature, Key Agreement"),
        "{server}"
    );
    assert!(server.contains("CA:FALSE"), "{server}");

    for (cert, common_name) in [("endpoint.crt", "evon-endpoint"), ("user.crt", "evon-user")] {
        let client = x509_text(&dir, cert);
        assert!(client.contains("TLS Web Client Authentication"), "{client}");
        assert!(
            !client.contains("TLS Web Server Authentication"),
            "{client}"
        );
        assert!(
            client.contains(&format!("Subject: CN = {common_name}")),
            "{client}"
        );
        assert!(client.contains("Digital Signature"), "{client}");
        assert!(client.contains("CA:FALSE"), "{client}");
    }

    let day = 24 * 60 * 60;
    let mut serials = Vec::new();
    for cert in CERT_FILES {
        let text = x509_text(&dir, cert);
        assert!(
            text.contains("Signature Algorithm: ecdsa-with-SHA256"),
            "{text}"
        );
        assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
        if cert != "ca.crt" {
            assert!(
                text.contains(&format!("Issuer: CN = Evon Hub CA {DOMAIN}")),
                "{text}"
            );
        }
        // 3652 days from yesterday: still valid in 3650 days, expired in 3652.
        let (ok, _) = openssl(
            &dir,
            &[
                "x509",
                "-in",
                cert,
                "-noout",
                "-checkend",
                &(3650 * day).to_string(),
            ],
        );
        assert!(ok, "{cert} expires within 3650 days");
        let (ok, _) = openssl(
            &dir,
            &[
                "x509",
                "-in",
                cert,
                "-noout",
                "-checkend",
                &(3652 * day).to_string(),
            ],
        );
        assert!(!ok, "{cert} is valid beyond 3652 days");
        serials.push(openssl_ok(
            &dir,
            &["x509", "-in", cert, "-noout", "-serial"],
        ));
    }
    let mut distinct = serials.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), serials.len(), "{serials:?}");

    // Serials are random, not derived from anything a second generation would repeat.
    let (_other_temp, other_dir, _other) = saved(DOMAIN);
    let other_serial = openssl_ok(&other_dir, &["x509", "-in", "ca.crt", "-noout", "-serial"]);
    assert!(!serials.contains(&other_serial));
}

#[test]
fn openssl_accepts_the_keys_and_they_match() {
    let (_temp, dir, _pki) = saved(DOMAIN);
    for (cert, key) in [
        ("ca.crt", "ca.key"),
        ("server.crt", "server.key"),
        ("endpoint.crt", "endpoint.key"),
        ("user.crt", "user.key"),
    ] {
        openssl_ok(&dir, &["pkey", "-in", key, "-noout"]);
        let from_cert = openssl_ok(&dir, &["x509", "-in", cert, "-noout", "-pubkey"]);
        let from_key = openssl_ok(&dir, &["pkey", "-in", key, "-pubout"]);
        assert!(from_cert.contains("BEGIN PUBLIC KEY"), "{from_cert}");
        assert_eq!(from_cert, from_key, "{key} does not belong to {cert}");
    }
    let text = openssl_ok(&dir, &["pkey", "-in", "server.key", "-noout", "-text"]);
    assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
}

#[test]
fn an_ip_address_is_named_as_one() {
    let (_temp, dir, _pki) = saved("192.0.2.10");
    let server = x509_text(&dir, "server.crt");
    assert!(server.contains("IP Address:192.0.2.10"), "{server}");
    openssl_ok(&dir, &["verify", "-CAfile", "ca.crt", "server.crt"]);
}

/// OpenVPN's crypto self-test parses the static key file the way `tls-crypt` does. `.ci/run`
/// installs OpenVPN; without it this test fails rather than pass unchecked.
#[test]
fn openvpn_accepts_the_static_key() {
    assert!(
        Path::new(OPENVPN).exists(),
        "{OPENVPN} is missing: apt-get install openvpn"
    );
    let (_temp, dir, _pki) = saved(DOMAIN);
    let output = Command::new(OPENVPN)
        .args([
            "--test-crypto",
            "--secret",
            pki::TLS_CRYPT_KEY_FILE,
            "--cipher",
            "AES-256-CBC",
            "--verb",
            "1",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("SUCCEEDED"), "{text}");
}
