//! Page-number pagination with absolute `next`/`previous` links.

use std::collections::BTreeSet;

use evon_domain::{GroupPatch, Principal};
use evon_store::Backend;
use serde_json::{json, Value};

use crate::harness::TestApp;
use crate::on_both_backends;

on_both_backends!(pages_and_links, invalid_pages);

fn superuser() -> Principal {
    Principal {
        user_id: 1,
        username: "admin".into(),
        is_superuser: true,
        permissions: BTreeSet::new(),
    }
}

/// 249 more groups, 250 in all: three pages.
fn many_groups(app: &TestApp) {
    app.store()
        .write(|conn| {
            for n in 0..249 {
                let fields = GroupPatch {
                    name: Some(format!("group {n:03}")),
                    user_set: Some(vec![]),
                    permissions: Some(vec![]),
                };
                evon_store::groups::create(conn, &superuser(), &fields, &Default::default())?;
            }
            Ok(())
        })
        .unwrap();
}

fn names(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn pages_and_links(backend: Backend) {
    let app = TestApp::new(backend).await;
    many_groups(&app);
    let first = app
        .get("/api/group")
        .header("Host", "hub.example.com")
        .send()
        .await
        .expect(200);
    assert_eq!(first["count"], 250);
    assert_eq!(first["results"].as_array().unwrap().len(), 100);
    assert_eq!(first["next"], "http://hub.example.com/api/group?page=2");
    assert_eq!(first["previous"], Value::Null);
    assert_eq!(names(&first)[0], "All Users", "ordered by id");
    let second = app
        .get("/api/group?page=2")
        .header("Host", "hub.example.com")
        .send()
        .await
        .expect(200);
    assert_eq!(second["next"], "http://hub.example.com/api/group?page=3");
    assert_eq!(
        second["previous"], "http://hub.example.com/api/group",
        "no page=1"
    );
    assert_eq!(names(&second)[0], "group 099");
    let last = app
        .get("/api/group?page=last")
        .header("Host", "hub.example.com")
        .send()
        .await
        .expect(200);
    assert_eq!(last["results"].as_array().unwrap().len(), 50);
    assert_eq!(last["next"], Value::Null);
    assert_eq!(last["previous"], "http://hub.example.com/api/group?page=2");
    let third = app.get("/api/group?page=3").send().await.expect(200);
    assert_eq!(names(&third), names(&last));
    // Other query parameters are kept.
    let body = app
        .get("/api/group?page=2&format=json")
        .header("Host", "h:8000")
        .send()
        .await
        .expect(200);
    assert_eq!(body["next"], "http://h:8000/api/group?format=json&page=3");
    assert_eq!(body["previous"], "http://h:8000/api/group?format=json");
    let all: BTreeSet<String> = [names(&first), names(&second), names(&last)]
        .concat()
        .into_iter()
        .collect();
    assert_eq!(all.len(), 250, "no item on two pages, none missing");
}

async fn invalid_pages(backend: Backend) {
    let app = TestApp::new(backend).await;
    for page in ["0", "-1", "abc", "2", "1.0", ""] {
        let body = app
            .get(&format!("/api/group?page={page}"))
            .send()
            .await
            .expect(404);
        assert_eq!(body, json!({"detail": "Invalid page."}), "page={page}");
    }
    app.get("/api/group?page=1").send().await.expect(200);
    app.get("/api/user?page=last").send().await.expect(200);
    app.get("/api/permission?page=2").send().await.expect(404);
}
