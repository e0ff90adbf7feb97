//! `export`, `import` and `fixture` through the real binary: a generated hub imports and exports
//! back to the very same bytes, generation is deterministic, and bad documents and targets are
//! one-line errors with exit code 2.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use evon_crypto::TokenDigest;
use evon_store::auth::TokenLookup;
use evon_store::backup::HubDocument;
use evon_store::test_support::TestDatabase;
use evon_store::{Backend, DatabaseUrl, OpenMode, PoolOptions, Store};

const BIN: &str = env!("CARGO_BIN_EXE_evon-hub");

/// The binary with no `EVON_HUB_*` variables of the caller's, quiet logs, run in `cwd`.
fn run_in(cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("EVON_HUB_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("EVON_HUB_LOG", "warn")
        .current_dir(cwd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        text(&output.stdout).chars().take(2_000).collect::<String>(),
        text(&output.stderr)
    )
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "expected success: {}",
        describe(output)
    );
}

/// A failure as `main` reports it: exit code 2 and exactly one line `evon-hub: error: ...`.
fn assert_one_line_error_2(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(2), "{}", describe(output));
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", describe(output));
    assert!(
        lines[0].starts_with("evon-hub: error: "),
        "{}",
        describe(output)
    );
    assert!(output.stdout.is_empty(), "{}", describe(output));
    lines[0].to_owned()
}

/// A temporary directory holding a data directory `data`, where the binary runs.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn data_dir(&self) -> String {
        self.path("data").to_str().unwrap().to_owned()
    }

    /// Runs `evon-hub --data-dir DATA args...`.
    fn hub(&self, args: &[&str]) -> Output {
        let data_dir = self.data_dir();
        let mut all = vec!["--data-dir", data_dir.as_str()];
        all.extend_from_slice(args);
        run_in(self.dir.path(), &all)
    }

    fn init(&self) {
        assert_success(&self.hub(&["init", "--json"]));
    }

    fn file(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    fn database(&self) -> DatabaseUrl {
        DatabaseUrl::sqlite(&self.path("data").join("evon-hub.sqlite3"))
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn lookup(url: &DatabaseUrl, token: &str) -> TokenLookup {
    Store::open(url, OpenMode::MustExist, &PoolOptions::default())
        .unwrap()
        .read(|conn| evon_store::auth::principal_by_token(conn, &TokenDigest::of(token)))
        .unwrap()
}

fn admin_token(seed: u64) -> String {
    format!("{seed:040x}")
}

#[test]
fn fixture_imports_and_exports_to_the_same_bytes() {
    let ws = Workspace::new();
    ws.init();
    let generated = ws.hub(&[
        "fixture",
        "--size",
        "1k",
        "--output",
        &ws.file("fixture.json"),
    ]);
    assert_success(&generated);
    assert!(generated.stdout.is_empty(), "{}", describe(&generated));
    let note = text(&generated.stderr);
    assert!(note.contains(&admin_token(1)), "{note}");
    assert_eq!(note.lines().count(), 1, "{note}");
    assert_eq!(mode(&ws.path("fixture.json")), 0o600);

    let imported = ws.hub(&["import", &ws.file("fixture.json")]);
    assert_success(&imported);
    let summary = text(&imported.stderr);
    assert_eq!(summary.lines().count(), 1, "{summary}");
    assert!(
        summary.contains(
            "200 users, 50 groups, 1000 servers, 40 server groups, 300 rules, 200 policies"
        ),
        "{summary}"
    );

    let exported = ws.hub(&["export"]);
    assert_success(&exported);
    let fixture = ws.read("fixture.json");
    assert!(
        text(&exported.stdout) == fixture,
        "export differs from the imported fixture"
    );
    assert!(fixture.ends_with("}\n"));

    let to_file = ws.hub(&["export", "--output", &ws.file("backup.json")]);
    assert_success(&to_file);
    assert!(to_file.stdout.is_empty());
    assert_eq!(
        mode(&ws.path("backup.json")),
        0o600,
        "a backup is its owner's only"
    );
    assert!(ws.read("backup.json") == fixture);
    // Overwriting keeps the mode, even of a file that was readable by others.
    std::fs::set_permissions(
        ws.path("backup.json"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert_success(&ws.hub(&["export", "--output", &ws.file("backup.json")]));
    assert_eq!(mode(&ws.path("backup.json")), 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(ws.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The fixture's admin token is the hub's now.
    match lookup(&ws.database(), &admin_token(1)) {
        TokenLookup::Active(admin) => {
            assert_eq!(admin.username, "admin");
            assert!(admin.is_superuser);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_same_seed_gives_the_same_file() {
    let ws = Workspace::new();
    for (name, seed) in [("a.json", "5"), ("b.json", "5"), ("c.json", "6")] {
        let output = ws.hub(&[
            "fixture",
            "--size",
            "1k",
            "--seed",
            seed,
            "-o",
            &ws.file(name),
        ]);
        assert_success(&output);
    }
    assert!(
        ws.read("a.json") == ws.read("b.json"),
        "same seed, same bytes"
    );
    assert!(
        ws.read("a.json") != ws.read("c.json"),
        "another seed, another hub"
    );
    // Standard output gets the same bytes; the default seed is 1.
    let to_stdout = ws.hub(&["fixture", "--size", "small"]);
    assert_success(&to_stdout);
    assert_success(&ws.hub(&[
        "fixture",
        "--size",
        "small",
        "--seed",
        "1",
        "-o",
        &ws.file("s.json"),
    ]));
    assert!(text(&to_stdout.stdout) == ws.read("s.json"));
    // fixture needs no hub.
    assert!(!ws.path("data").exists());
}

#[test]
fn import_into_a_non_empty_hub_exits_2() {
    let ws = Workspace::new();
    ws.init();
    assert_success(&ws.hub(&["fixture", "--size", "small", "-o", &ws.file("small.json")]));
    assert_success(&ws.hub(&["import", &ws.file("small.json")]));
    let before = ws.hub(&["export"]);
    let again = ws.hub(&["import", &ws.file("small.json")]);
    let line = assert_one_line_error_2(&again);
    assert!(line.contains("small.json"), "{line}");
    assert!(line.contains("the target hub is not empty"), "{line}");
    let after = ws.hub(&["export"]);
    assert!(before.stdout == after.stdout, "nothing changed");
}

#[test]
fn bad_documents_and_files_exit_2() {
    let ws = Workspace::new();
    ws.init();

    let line = assert_one_line_error_2(&ws.hub(&["import", &ws.file("missing.json")]));
    assert!(
        line.contains("cannot read") && line.contains("missing.json"),
        "{line}"
    );

    std::fs::write(
        ws.path("broken.json"),
        "{\"format\": \"evon-hub-backup\",\n oops",
    )
    .unwrap();
    let line = assert_one_line_error_2(&ws.hub(&["import", &ws.file("broken.json")]));
    assert!(
        line.contains("broken.json is not an Evon Hub backup document"),
        "{line}"
    );
    assert!(line.contains("line 2"), "{line}");

    assert_success(&ws.hub(&["fixture", "--size", "small", "-o", &ws.file("small.json")]));
    let mut doc: HubDocument = serde_json::from_str(&ws.read("small.json")).unwrap();
    doc.rules[3].source_users.push(999);
    doc.servers[0].uuid = doc.servers[0].uuid.replace('-', "");
    std::fs::write(
        ws.path("dangling.json"),
        serde_json::to_string(&doc).unwrap(),
    )
    .unwrap();
    let line = assert_one_line_error_2(&ws.hub(&["import", &ws.file("dangling.json")]));
    let rule = doc.rules[3].id;
    assert!(
        line.contains(&format!(
            "rules[3] (id {rule}): source_users names user 999, which is not in the document"
        )),
        "{line}"
    );
    assert!(line.contains("servers[0] (id 1): uuid"), "{line}");
    assert!(line.contains("cannot import"), "{line}");

    // An unknown field is refused by name.
    let mut value: serde_json::Value = serde_json::from_str(&ws.read("small.json")).unwrap();
    value["users"][0]["nickname"] = "boss".into();
    std::fs::write(ws.path("extra.json"), value.to_string()).unwrap();
    let line = assert_one_line_error_2(&ws.hub(&["import", &ws.file("extra.json")]));
    assert!(line.contains("unknown field `nickname`"), "{line}");

    // None of it touched the hub: a good document still imports.
    assert_success(&ws.hub(&["import", &ws.file("small.json")]));
}

#[test]
fn export_of_a_missing_hub_exits_2_and_creates_nothing() {
    let ws = Workspace::new();
    let line = assert_one_line_error_2(&ws.hub(&["export", "-o", &ws.file("out.json")]));
    assert!(line.contains("no hub database"), "{line}");
    assert!(!ws.path("out.json").exists());
    assert!(!ws.path("data").exists());
}

#[test]
fn postgres_round_trip() {
    let db = TestDatabase::new(Backend::Postgres);
    let url = match db.url() {
        DatabaseUrl::Postgres(url) => url.clone(),
        other => panic!("{other:?}"),
    };
    let ws = Workspace::new();
    let on_pg = |args: &[&str]| {
        let mut all = vec!["--database-url", url.as_str()];
        all.extend_from_slice(args);
        ws.hub(&all)
    };
    assert_success(&on_pg(&["init", "--json"]));
    assert_success(&ws.hub(&["fixture", "--size", "small", "-o", &ws.file("small.json")]));
    assert_success(&on_pg(&["import", &ws.file("small.json")]));
    let exported = on_pg(&["export"]);
    assert_success(&exported);
    assert!(text(&exported.stdout) == ws.read("small.json"));
    assert!(matches!(
        lookup(db.url(), &admin_token(1)),
        TokenLookup::Active(_)
    ));
}

/// The largest fixture is only generated here (importing it is a benchmark, not a test).
#[test]
fn ten_k_generates_quickly() {
    let ws = Workspace::new();
    let started = Instant::now();
    let output = ws.hub(&["fixture", "--size", "10k", "-o", &ws.file("10k.json")]);
    let elapsed = started.elapsed();
    assert_success(&output);
    eprintln!("fixture --size 10k took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    let doc: HubDocument = serde_json::from_str(&ws.read("10k.json")).unwrap();
    assert_eq!(
        [
            doc.servers.len(),
            doc.users.len(),
            doc.groups.len(),
            doc.server_groups.len(),
            doc.rules.len(),
            doc.policies.len()
        ],
        [2_000, 1_000, 300, 200, 2_000, 1_000]
    );
    assert_eq!(evon_store::backup::validate(&doc), Ok(()));
}
