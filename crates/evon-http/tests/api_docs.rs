//! The API documentation at `GET /api/`: an HTML page that loads only this hub's own ReDoc
//! bundle and document, both served without a token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use actix_web::http::{header, Method, StatusCode};
use actix_web::{test as atest, web};
use evon_domain::config::HubSettings;
use evon_domain::SubnetKey;
use evon_http::api_docs::{PAGE_CSP, PAGE_PATH, REDOC_JS, REDOC_PATH};
use evon_http::AppState;
use evon_store::test_support::TestDatabase;
use evon_store::{Backend, OpenMode, PoolOptions, Store};

struct Resp {
    status: StatusCode,
    headers: header::HeaderMap,
    bytes: web::Bytes,
}

impl Resp {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    fn text(&self) -> String {
        String::from_utf8(self.bytes.to_vec()).unwrap()
    }
}

async fn send(method: Method, uri: &str) -> Resp {
    let db = TestDatabase::new(Backend::Sqlite);
    let store = Store::open(db.url(), OpenMode::CreateIfMissing, &PoolOptions::default())
        .expect("open test store");
    let settings = HubSettings {
        domain: "hub.example.com".into(),
        subnet_key: SubnetKey::new(111),
    };
    let state = web::Data::new(AppState::new(store, settings, None));
    let service = atest::init_service(evon_http::app(state)).await;
    let request = atest::TestRequest::default()
        .method(method)
        .uri(uri)
        .to_request();
    let response = atest::call_service(&service, request).await;
    Resp {
        status: response.status(),
        headers: response.headers().clone(),
        bytes: atest::read_body(response).await,
    }
}

/// Every `src="…"`/`href="…"`/`spec-url="…"` attribute value of the page.
fn references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=\"", "href=\"", "spec-url=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let end = rest.find('"').unwrap();
            found.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    found
}

#[actix_web::test]
async fn the_page_is_html_without_a_token() {
    let page = send(Method::GET, PAGE_PATH).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(page.header("content-security-policy"), PAGE_CSP);
    let html = page.text();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("<redoc spec-url=\"/api/schema?format=json\""));
    assert!(html.contains(&format!("<script src=\"{REDOC_PATH}\"></script>")));
}

#[actix_web::test]
async fn the_page_references_only_this_origin() {
    let html = send(Method::GET, PAGE_PATH).await.text();
    let lower = html.to_ascii_lowercase();
    for scheme in ["http://", "https://", "//fonts.", "@import", "url("] {
        assert!(
            !lower.contains(scheme),
            "the page mentions {scheme}: {html}"
        );
    }
    let refs = references(&html);
    assert_eq!(refs.len(), 2, "{refs:?}");
    for reference in refs {
        assert!(
            reference.starts_with('/') && !reference.starts_with("//"),
            "{reference} is not a same-origin path"
        );
    }
    // Only this origin, also for whatever the bundle itself might try to load.
    for directive in PAGE_CSP.split(';') {
        for source in directive.split_whitespace().skip(1) {
            assert!(
                ["'self'", "'none'", "'unsafe-inline'", "data:", "blob:"].contains(&source),
                "{directive}"
            );
        }
    }
}

#[actix_web::test]
async fn the_page_points_at_a_served_json_document() {
    let schema = send(Method::GET, "/api/schema?format=json").await;
    assert_eq!(schema.status, StatusCode::OK);
    assert_eq!(schema.header("content-type"), "application/json");
    let doc: serde_json::Value = serde_json::from_slice(&schema.bytes).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[actix_web::test]
async fn the_bundle_is_served_exactly_with_a_long_cache() {
    let asset = send(Method::GET, REDOC_PATH).await;
    assert_eq!(asset.status, StatusCode::OK);
    assert_eq!(
        asset.header("content-type"),
        "application/javascript; charset=utf-8"
    );
    assert_eq!(
        asset.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(asset.header("x-content-type-options"), "nosniff");
    let vendored = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/redoc.standalone.js"
    ))
    .unwrap();
    assert_eq!(REDOC_JS, vendored.as_slice());
    assert_eq!(asset.bytes.len(), vendored.len());
    assert!(asset.bytes == vendored, "served bytes differ from assets/");
}

#[actix_web::test]
async fn head_answers_and_other_methods_are_405_without_a_token() {
    for path in [PAGE_PATH, REDOC_PATH] {
        let head = send(Method::HEAD, path).await;
        assert_eq!(head.status, StatusCode::OK, "{path}");
        // The server drops HEAD bodies; the in-process service does not, so compare headers.
        let get = send(Method::GET, path).await;
        assert_eq!(head.header("content-type"), get.header("content-type"));
        assert_eq!(head.header("cache-control"), get.header("cache-control"));
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            let response = send(method.clone(), path).await;
            assert_eq!(
                response.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(response.header("allow"), "GET, HEAD", "{method} {path}");
        }
    }
    // Nothing else under /api/docs/ exists.
    let other = send(Method::GET, "/api/docs/other.js").await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
}
