//! The downloads and the decrypt route: who may fetch what, what the files hold, and that the
//! sealed secrets open only through the hub, only for the right callers.

use actix_web::http::Method;
use evon_store::Backend;
use serde_json::json;

use crate::harness::TestApp;
use crate::on_both_backends;

on_both_backends!(
    downloads_and_who_may_fetch_them,
    decrypt_opens_only_real_payloads,
    installers_carry_no_clear_secrets
);

const DOWNLOADS: [(&str, &str); 4] = [
    ("/api/bootstrap/linux", "bootstrap.sh"),
    ("/api/bootstrap/windows", "bootstrap.ps1"),
    ("/api/bootstrap/raw", "openvpn_client-evon_server.conf"),
    ("/api/ovpnclient/download", "EvonHub.ovpn"),
];

/// A `multipart/form-data` body with one field, as `curl -F name=@file` sends it.
fn multipart(name: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "------------------------evonhubtestboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"payload\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The sealed blob embedded in the Linux installer.
async fn sealed_blob(app: &TestApp) -> String {
    let script = app.download("/api/bootstrap/linux", &app.admin).await;
    script
        .lines()
        .find_map(|line| {
            line.strip_prefix("EVON_SEALED_SECRETS='")
                .and_then(|rest| rest.strip_suffix('\''))
        })
        .expect("bootstrap.sh embeds EVON_SEALED_SECRETS='…'")
        .to_owned()
}

async fn downloads_and_who_may_fetch_them(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, plain) = app
        .user_with("everything", &(1..=25).collect::<Vec<_>>())
        .await;
    for (path, file) in DOWNLOADS {
        let response = app.get(path).send_raw().await;
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(
            response.header("content-type"),
            Some("application/octet-stream"),
            "{path}"
        );
        assert_eq!(
            response.header("content-disposition"),
            Some(format!("attachment; filename=\"{file}\"").as_str()),
            "{path}"
        );
        assert_eq!(response.header("cache-control"), Some("no-store"), "{path}");
        assert!(!response.bytes.is_empty());
        app.get(path)
            .token(&app.deployer.clone())
            .send_raw()
            .await
            .expect_status(200);
        app.get(path).anonymous().send().await.expect(401);
        let as_user = app.get(path).token(&plain).send_raw().await;
        // People may fetch their own client config; only the deployer and superusers the rest.
        let expected = if file == "EvonHub.ovpn" { 200 } else { 403 };
        assert_eq!(as_user.status, expected, "{path} as an ordinary user");
        app.req(Method::POST, path)
            .json(json!({}))
            .send()
            .await
            .expect(405);
    }
}

async fn decrypt_opens_only_real_payloads(backend: Backend) {
    let app = TestApp::new(backend).await;
    let sealed = sealed_blob(&app).await;
    let (content_type, body) = multipart("data", format!("{sealed}\n").as_bytes());
    for token in [app.admin.clone(), app.deployer.clone()] {
        let response = app
            .req(Method::POST, "/api/bootstrap/decrypt")
            .token(&token)
            .raw(&content_type, body.clone())
            .send_raw()
            .await;
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("content-disposition"),
            Some("attachment; filename=\"openvpn_secrets.conf\"")
        );
        assert_eq!(response.header("cache-control"), Some("no-store"));
        let text = String::from_utf8(response.bytes.to_vec()).unwrap();
        for block in [
            "<ca>",
            "</ca>",
            "<cert>",
            "<key>",
            "PRIVATE KEY",
            "<tls-crypt>",
            "OpenVPN Static key V1",
        ] {
            assert!(text.contains(block), "decrypted secrets hold {block}");
        }
    }
    let failed = json!({"status": "error", "message": "failed to decrypt payload"});
    let mut tampered = sealed.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    for payload in [tampered, b"not a sealed box".to_vec(), Vec::new()] {
        let (content_type, body) = multipart("data", &payload);
        let response = app
            .req(Method::POST, "/api/bootstrap/decrypt")
            .raw(&content_type, body)
            .send()
            .await;
        assert_eq!(response.expect(400), failed);
    }
    let (content_type, body) = multipart("other", sealed.as_bytes());
    let body = app
        .req(Method::POST, "/api/bootstrap/decrypt")
        .raw(&content_type, body)
        .send()
        .await
        .expect(400);
    assert_eq!(
        body,
        json!({"status": "error", "message": "data missing in request"})
    );
    let body = app
        .req(Method::POST, "/api/bootstrap/decrypt")
        .json(json!({"data": sealed}))
        .send()
        .await
        .expect(400);
    assert_eq!(body["status"], "error");
    let (content_type, body) = multipart("data", &vec![b'A'; 64 * 1024 + 1]);
    app.req(Method::POST, "/api/bootstrap/decrypt")
        .raw(&content_type, body)
        .send()
        .await
        .expect(413);
    let (_, plain) = app
        .user_with("everything", &(1..=25).collect::<Vec<_>>())
        .await;
    let (content_type, body) = multipart("data", sealed.as_bytes());
    app.req(Method::POST, "/api/bootstrap/decrypt")
        .token(&plain)
        .raw(&content_type, body)
        .send()
        .await
        .expect(403);
}

async fn installers_carry_no_clear_secrets(backend: Backend) {
    let app = TestApp::new(backend).await;
    let pki = app.pki();
    let secrets = [
        pki.endpoint_key().to_owned(),
        pki.user_key().to_owned(),
        pki.server_key().to_owned(),
        pki.ca_key().to_owned(),
        pki.static_key().to_owned(),
    ];
    let lines_of = |secret: &str| -> Vec<String> {
        secret
            .lines()
            .filter(|l| l.len() > 20 && !l.starts_with("-----"))
            .map(str::to_owned)
            .collect()
    };
    for path in ["/api/bootstrap/linux", "/api/bootstrap/windows"] {
        let file = app.download(path, &app.admin).await;
        assert!(!file.contains("PRIVATE KEY"), "{path}");
        for secret in &secrets {
            for line in lines_of(secret) {
                assert!(!file.contains(&line), "{path} leaks a secret line");
            }
        }
    }
    // The raw config and the user config carry their own keys in clear, and nothing else's.
    let raw = app.download("/api/bootstrap/raw", &app.admin).await;
    assert!(raw.contains(pki.endpoint_key().trim()));
    assert!(
        !raw.contains(pki.user_key().trim())
            && !raw.contains(pki.ca_key().trim())
            && !raw.contains(pki.server_key().trim())
    );
    let user = app.download("/api/ovpnclient/download", &app.admin).await;
    assert!(user.contains(pki.user_key().trim()));
    assert!(
        !user.contains(pki.endpoint_key().trim())
            && !user.contains(pki.ca_key().trim())
            && !user.contains(pki.server_key().trim())
    );
}
