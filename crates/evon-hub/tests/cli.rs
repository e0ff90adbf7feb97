//! End-to-end tests of the `evon-hub` command line: the real binary, run in its own temporary
//! data directory (and working directory), its effects checked through `evon-store`.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use evon_crypto::{verify_password, TokenDigest};
use evon_store::auth::TokenLookup;
use evon_store::test_support::TestDatabase;
use evon_store::{Backend, DatabaseUrl, OpenMode, PoolOptions, Store};

const BIN: &str = env!("CARGO_BIN_EXE_evon-hub");
const DATABASE_FILE: &str = "evon-hub.sqlite3";
const KEY_FILE: &str = "hub.key";

// ---------------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------------

/// The binary with a clean environment of `EVON_HUB_*` variables, quiet logs and `cwd`.
fn command(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("EVON_HUB_") {
            cmd.env_remove(key);
        }
    }
    // `serve` keeps the kernel's firewall by default; these tests run on the host's kernel.
    cmd.env("EVON_HUB_LOG", "warn")
        .env("EVON_HUB_FIREWALL", "off")
        .current_dir(cwd);
    cmd
}

/// Runs the binary in `cwd` with extra environment variables, feeding it `stdin` (or nothing).
fn run_in(cwd: &Path, args: &[&str], envs: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = command(cwd);
    cmd.args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // A command that fails before reading its input closes the pipe: not an error here.
        if let Err(error) = pipe.write_all(text.as_bytes()) {
            assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
        }
        // Dropping the pipe closes it: the binary sees end of input after `text`.
    }
    child.wait_with_output().unwrap()
}

/// Runs the binary in a fresh, empty working directory and checks that it left nothing there:
/// every test names its data directory, so nothing may land in `./evon-data`.
fn run_env(args: &[&str], envs: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    let output = run_in(cwd.path(), args, envs, stdin);
    assert_eq!(
        entries(cwd.path()),
        Vec::<String>::new(),
        "`evon-hub {}` wrote to its working directory; stderr: {}",
        args.join(" "),
        stderr(&output)
    );
    output
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    run_env(args, &[], stdin)
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        describe_status(output.status),
        stdout(output),
        stderr(output)
    )
}

fn describe_status(status: ExitStatus) -> String {
    match status.signal() {
        Some(signal) => format!("KILLED BY SIGNAL {signal} ({status})"),
        None => status.to_string(),
    }
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "expected success: {}",
        describe(output)
    );
}

/// A failure reported the way `main` promises: a non-zero exit code and exactly one line on
/// stderr, `evon-hub: error: ...`, never a panic or a usage text. Returns the line.
fn assert_one_line_error(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected failure: {}",
        describe(output)
    );
    let text = stderr(output);
    assert!(!text.contains("panicked"), "panic: {}", describe(output));
    assert!(
        output.status.code().is_some(),
        "a crash is no error report: {}",
        describe(output)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "stderr must be one line: {}",
        describe(output)
    );
    assert!(
        lines[0].starts_with("evon-hub: error: "),
        "unexpected error line: {}",
        describe(output)
    );
    assert!(text.ends_with('\n'), "{}", describe(output));
    lines[0].to_owned()
}

fn assert_exit_code(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "wrong exit code: {}",
        describe(output)
    );
}

// ---------------------------------------------------------------------------------------------
// Files and values
// ---------------------------------------------------------------------------------------------

/// The sorted names in a directory.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn is_token(text: &str) -> bool {
    text.len() == 40
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn sqlite_url(data_dir: &Path) -> DatabaseUrl {
    DatabaseUrl::sqlite(&data_dir.join(DATABASE_FILE))
}

fn postgres_url(db: &TestDatabase) -> String {
    match db.url() {
        DatabaseUrl::Postgres(url) => url.clone(),
        other => panic!("not a PostgreSQL database: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Looking at the store
// ---------------------------------------------------------------------------------------------

fn open_store(url: &DatabaseUrl) -> Store {
    Store::open(url, OpenMode::MustExist, &PoolOptions::default()).unwrap()
}

/// What the hub's database makes of a presented token.
fn store_lookup(url: &DatabaseUrl, token: &str) -> TokenLookup {
    open_store(url)
        .read(|conn| evon_store::auth::principal_by_token(conn, &TokenDigest::of(token)))
        .unwrap()
}

/// Asserts that `token` authenticates `username`, and returns whether it is a superuser's.
fn assert_active(url: &DatabaseUrl, token: &str, username: &str) -> bool {
    match store_lookup(url, token) {
        TokenLookup::Active(principal) => {
            assert_eq!(principal.username, username);
            principal.is_superuser
        }
        other => panic!("token of {username} should be active, is {other:?}"),
    }
}

fn stored_password_hash(url: &DatabaseUrl, username: &str) -> Option<String> {
    open_store(url)
        .read(|conn| evon_store::users::active_password_hash(conn, username))
        .unwrap()
}

fn stored_settings(url: &DatabaseUrl) -> (String, u8) {
    let settings = open_store(url).read(evon_store::hub::settings).unwrap();
    (settings.domain, settings.subnet_key.get())
}

// ---------------------------------------------------------------------------------------------
// init --json
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Credentials {
    admin_password: String,
    admin_token: String,
    deployer_token: String,
}

/// Parses what `init --json` printed: one line, one object, exactly the three keys.
fn parse_credentials(output: &Output) -> Credentials {
    assert_success(output);
    let text = stdout(output);
    assert_eq!(text.lines().count(), 1, "{}", describe(output));
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let object = value.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["admin_password", "admin_token", "deployer_token"]);
    let field = |key: &str| object[key].as_str().unwrap().to_owned();
    let credentials = Credentials {
        admin_password: field("admin_password"),
        admin_token: field("admin_token"),
        deployer_token: field("deployer_token"),
    };
    assert_eq!(credentials.admin_password.chars().count(), 24);
    assert!(
        credentials
            .admin_password
            .chars()
            .all(|c| c.is_ascii_alphanumeric()),
        "{credentials:?}"
    );
    assert!(is_token(&credentials.admin_token), "{credentials:?}");
    assert!(is_token(&credentials.deployer_token), "{credentials:?}");
    assert_ne!(credentials.admin_token, credentials.deployer_token);
    credentials
}

/// `init --json` on a SQLite data directory.
fn init(data_dir: &Path) -> Credentials {
    parse_credentials(&run(
        &["init", "--json", "--data-dir", path_str(data_dir)],
        None,
    ))
}

/// `token rotate USER --json`, returning the new token.
fn rotate_json(args: &[&str]) -> String {
    let output = run(args, None);
    assert_success(&output);
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "{}", describe(&output));
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let object = value.as_object().unwrap();
    assert_eq!(object.len(), 1, "{text}");
    let token = object["token"].as_str().unwrap().to_owned();
    assert!(is_token(&token), "{token:?}");
    token
}

// ---------------------------------------------------------------------------------------------
// init
// ---------------------------------------------------------------------------------------------

#[test]
fn init_json_prints_credentials_and_creates_key_and_database() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = init(dir.path());

    let key = dir.path().join(KEY_FILE);
    assert!(key.is_file());
    assert_eq!(mode(&key), 0o600);
    assert_eq!(std::fs::read(&key).unwrap().len(), 32);
    assert!(dir.path().join(DATABASE_FILE).is_file());

    let url = sqlite_url(dir.path());
    assert!(assert_active(&url, &credentials.admin_token, "admin"));
    assert!(!assert_active(
        &url,
        &credentials.deployer_token,
        "deployer"
    ));
    assert_eq!(
        store_lookup(&url, &"0".repeat(40)),
        TokenLookup::Unknown,
        "a made-up token must not authenticate"
    );
    let hash = stored_password_hash(&url, "admin").unwrap();
    assert!(verify_password(&credentials.admin_password, &hash));
    assert_eq!(stored_password_hash(&url, "deployer"), None);
    assert_eq!(stored_settings(&url), ("hub.evon.local".to_owned(), 111));
}

#[test]
fn init_without_json_prints_the_credentials_for_people() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(&["init", "--data-dir", path_str(dir.path())], None);
    assert_success(&output);
    let text = stdout(&output);
    let value_after = |label: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("no {label:?} line in {text:?}"));
        line.split_once(label).unwrap().1.trim().to_owned()
    };
    let admin_token = value_after("admin token:");
    let deployer_token = value_after("deployer token:");
    let admin_password = value_after("admin password:");
    assert!(is_token(&admin_token), "{text}");
    assert!(is_token(&deployer_token), "{text}");
    assert_eq!(admin_password.len(), 24, "{text}");
    let url = sqlite_url(dir.path());
    assert_active(&url, &admin_token, "admin");
    assert_active(&url, &deployer_token, "deployer");
    let hash = stored_password_hash(&url, "admin").unwrap();
    assert!(verify_password(&admin_password, &hash));
}

#[test]
fn init_creates_a_missing_data_dir_for_its_owner_only() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("nested").join("data");
    let credentials = init(&data_dir);
    assert_eq!(mode(&data_dir), 0o700);
    assert_eq!(mode(&data_dir.join(KEY_FILE)), 0o600);
    assert_active(&sqlite_url(&data_dir), &credentials.admin_token, "admin");
}

#[test]
fn init_stores_the_domain_and_subnet_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        &[
            "init",
            "--json",
            "--domain",
            " Hub.Example.COM ",
            "--subnet-key",
            "42",
            "--data-dir",
            path_str(dir.path()),
        ],
        None,
    );
    parse_credentials(&output);
    assert_eq!(
        stored_settings(&sqlite_url(dir.path())),
        ("hub.example.com".to_owned(), 42)
    );
}

#[test]
fn second_init_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let first = init(dir.path());
    let key_before = std::fs::read(dir.path().join(KEY_FILE)).unwrap();

    let output = run(
        &[
            "init",
            "--json",
            "--domain",
            "other.example.com",
            "--subnet-key",
            "7",
            "--data-dir",
            path_str(dir.path()),
        ],
        None,
    );
    assert_success(&output);
    assert_eq!(stdout(&output), "", "{}", describe(&output));
    assert!(
        stderr(&output).contains("already initialised"),
        "{}",
        describe(&output)
    );

    let url = sqlite_url(dir.path());
    assert!(assert_active(&url, &first.admin_token, "admin"));
    assert_active(&url, &first.deployer_token, "deployer");
    let hash = stored_password_hash(&url, "admin").unwrap();
    assert!(verify_password(&first.admin_password, &hash));
    assert_eq!(stored_settings(&url), ("hub.evon.local".to_owned(), 111));
    assert_eq!(
        std::fs::read(dir.path().join(KEY_FILE)).unwrap(),
        key_before,
        "the hub key must never be replaced"
    );
}

#[test]
fn init_rejects_invalid_domain_and_subnet_key() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    // (the option, the value the error must quote). `--subnet-key=-1`: clap would take a
    // separate `-1` for a flag and answer with a usage text.
    let cases = [
        ("--domain=not a domain", "not a domain"),
        ("--domain=localhost", "localhost"),
        ("--subnet-key=300", "300"),
        ("--subnet-key=-1", "-1"),
        ("--subnet-key=eleven", "eleven"),
    ];
    for (option, quoted) in cases {
        let output = run(
            &["init", "--json", option, "--data-dir", path_str(&data_dir)],
            None,
        );
        let line = assert_one_line_error(&output);
        assert_eq!(stdout(&output), "", "{option}");
        assert!(line.contains(&format!("{quoted:?}")), "{option}: {line}");
        assert!(
            !data_dir.exists(),
            "{option}: a rejected init must not create the data directory"
        );
    }
    assert_eq!(entries(root.path()), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// Database URLs and missing databases
// ---------------------------------------------------------------------------------------------

#[test]
fn unsupported_database_url_scheme_exits_2_and_creates_nothing() {
    let cwd = tempfile::tempdir().unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let data = path_str(data_dir.path());
    let url = "mysql://x@y/z";
    let invocations: [&[&str]; 5] = [
        &["migrate", "--database-url", url, "--data-dir", data],
        &["init", "--database-url", url, "--data-dir", data],
        &["init", "--json", "--database-url", url],
        &[
            "token",
            "rotate",
            "admin",
            "--database-url",
            url,
            "--data-dir",
            data,
        ],
        &["user", "set-password", "admin", "--database-url", url],
    ];
    for args in invocations {
        let output = run_in(cwd.path(), args, &[], Some("n3w-Passw0rd\n"));
        let line = assert_one_line_error(&output);
        assert_exit_code(&output, 2);
        assert!(line.contains("mysql"), "{args:?}: {line}");
        assert_eq!(stdout(&output), "", "{args:?}");
        assert_eq!(entries(data_dir.path()), Vec::<String>::new(), "{args:?}");
        assert_eq!(entries(cwd.path()), Vec::<String>::new(), "{args:?}");
    }
}

#[test]
fn unsupported_database_url_from_the_environment_exits_2() {
    let data_dir = tempfile::tempdir().unwrap();
    let data = path_str(data_dir.path());
    let output = run_env(
        &["migrate", "--data-dir", data],
        &[("EVON_HUB_DATABASE_URL", "mysql://x@y/z")],
        None,
    );
    assert_one_line_error(&output);
    assert_exit_code(&output, 2);
    assert_eq!(entries(data_dir.path()), Vec::<String>::new());
}

/// `--database-url` is declared `global`, so it ought to work before the subcommand too.
#[test]
fn database_url_before_the_subcommand_is_a_one_line_error() {
    let cwd = tempfile::tempdir().unwrap();
    for command in ["migrate", "init"] {
        let output = run_in(
            cwd.path(),
            &["--database-url", "mysql://x@y/z", command],
            &[],
            None,
        );
        let line = assert_one_line_error(&output);
        assert_exit_code(&output, 2);
        assert!(line.contains("mysql"), "{line}");
        assert_eq!(entries(cwd.path()), Vec::<String>::new());
    }
}

#[test]
fn unreachable_postgres_exits_2_with_a_one_line_error() {
    let data_dir = tempfile::tempdir().unwrap();
    let data = path_str(data_dir.path());
    let url = "postgres://nobody@127.0.0.1:1/none";
    let invocations: [&[&str]; 2] = [
        &["migrate", "--database-url", url, "--data-dir", data],
        &[
            "token",
            "rotate",
            "admin",
            "--database-url",
            url,
            "--data-dir",
            data,
        ],
    ];
    for args in invocations {
        let output = run(args, None);
        let line = assert_one_line_error(&output);
        assert_exit_code(&output, 2);
        assert!(line.contains("127.0.0.1"), "{line}");
        assert!(!stderr(&output).contains("panicked"));
        assert_eq!(stdout(&output), "");
        assert_eq!(entries(data_dir.path()), Vec::<String>::new(), "{args:?}");
    }
}

#[test]
fn migrate_without_a_database_exits_2_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(&["migrate", "--data-dir", path_str(dir.path())], None);
    let line = assert_one_line_error(&output);
    assert_exit_code(&output, 2);
    assert!(line.contains("no hub database"), "{line}");
    assert_eq!(entries(dir.path()), Vec::<String>::new());

    let missing = dir.path().join("missing");
    let output = run(&["migrate", "--data-dir", path_str(&missing)], None);
    assert_one_line_error(&output);
    assert_exit_code(&output, 2);
    assert!(!missing.exists());

    let elsewhere = dir.path().join("elsewhere.sqlite3");
    let url = format!("sqlite://{}", path_str(&elsewhere));
    let output = run(
        &[
            "migrate",
            "--database-url",
            &url,
            "--data-dir",
            path_str(dir.path()),
        ],
        None,
    );
    assert_one_line_error(&output);
    assert_exit_code(&output, 2);
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn migrate_on_an_initialised_hub_succeeds_and_keeps_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = init(dir.path());
    let output = run(&["migrate", "--data-dir", path_str(dir.path())], None);
    assert_success(&output);
    assert_eq!(stdout(&output), "");
    assert!(
        stderr(&output).contains("migrations applied"),
        "{}",
        describe(&output)
    );
    assert_active(&sqlite_url(dir.path()), &credentials.admin_token, "admin");
}

#[test]
fn commands_other_than_init_need_an_existing_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = path_str(dir.path());
    let rotate = run(&["token", "rotate", "admin", "--data-dir", data], None);
    assert_one_line_error(&rotate);
    assert_exit_code(&rotate, 2);
    let set_password = run(
        &["user", "set-password", "admin", "--data-dir", data],
        Some("n3w-Passw0rd\n"),
    );
    assert_one_line_error(&set_password);
    assert_exit_code(&set_password, 2);
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// Where settings come from
// ---------------------------------------------------------------------------------------------

#[test]
fn database_url_comes_from_flag_then_environment_then_file() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let data = path_str(dir.path());
    let file_db = other.path().join("from-file.sqlite3");
    let env_db = other.path().join("from-env.sqlite3");
    let flag_db = other.path().join("from-flag.sqlite3");
    std::fs::write(
        dir.path().join("evon-hub.toml"),
        format!("database_url = \"sqlite://{}\"\n", path_str(&file_db)),
    )
    .unwrap();

    // The file alone.
    let from_file = init(dir.path());
    assert!(file_db.is_file());
    assert!(!dir.path().join(DATABASE_FILE).exists());
    assert_active(
        &DatabaseUrl::sqlite(&file_db),
        &from_file.admin_token,
        "admin",
    );

    // The environment beats the file.
    let env_url = format!("sqlite://{}", path_str(&env_db));
    let from_env = parse_credentials(&run_env(
        &["init", "--json", "--data-dir", data],
        &[("EVON_HUB_DATABASE_URL", &env_url)],
        None,
    ));
    assert_active(
        &DatabaseUrl::sqlite(&env_db),
        &from_env.admin_token,
        "admin",
    );

    // A flag beats both, even a broken environment value.
    let flag_url = format!("sqlite://{}", path_str(&flag_db));
    let from_flag = parse_credentials(&run_env(
        &[
            "init",
            "--json",
            "--database-url",
            &flag_url,
            "--data-dir",
            data,
        ],
        &[("EVON_HUB_DATABASE_URL", "mysql://x@y/z")],
        None,
    ));
    assert_active(
        &DatabaseUrl::sqlite(&flag_db),
        &from_flag.admin_token,
        "admin",
    );
    assert_eq!(
        store_lookup(&DatabaseUrl::sqlite(&file_db), &from_flag.admin_token),
        TokenLookup::Unknown
    );

    // The data directory itself can come from the environment.
    let env_dir = tempfile::tempdir().unwrap();
    let from_env_dir = parse_credentials(&run_env(
        &["init", "--json"],
        &[("EVON_HUB_DATA_DIR", path_str(env_dir.path()))],
        None,
    ));
    assert_active(
        &sqlite_url(env_dir.path()),
        &from_env_dir.admin_token,
        "admin",
    );
}

#[test]
fn invalid_config_file_is_a_one_line_error_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("evon-hub.toml"), "bogus = 1\n").unwrap();
    let output = run(&["migrate", "--data-dir", path_str(dir.path())], None);
    let line = assert_one_line_error(&output);
    assert!(line.contains("evon-hub.toml"), "{line}");
    assert_exit_code(&output, 2);
}

// ---------------------------------------------------------------------------------------------
// token rotate
// ---------------------------------------------------------------------------------------------

#[test]
fn token_rotate_replaces_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = path_str(dir.path());
    let credentials = init(dir.path());
    let url = sqlite_url(dir.path());

    let new_admin = rotate_json(&["token", "rotate", "admin", "--json", "--data-dir", data]);
    assert_ne!(new_admin, credentials.admin_token);
    assert_eq!(
        store_lookup(&url, &credentials.admin_token),
        TokenLookup::Unknown
    );
    assert!(assert_active(&url, &new_admin, "admin"));
    assert_active(&url, &credentials.deployer_token, "deployer");

    // Without --json: the bare token on one line.
    let output = run(&["token", "rotate", "deployer", "--data-dir", data], None);
    assert_success(&output);
    let text = stdout(&output);
    let new_deployer = text.strip_suffix('\n').unwrap();
    assert!(is_token(new_deployer), "{text:?}");
    assert_eq!(
        store_lookup(&url, &credentials.deployer_token),
        TokenLookup::Unknown
    );
    assert!(!assert_active(&url, new_deployer, "deployer"));
    assert!(assert_active(&url, &new_admin, "admin"));
}

#[test]
fn token_rotate_of_an_unknown_user_fails() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = init(dir.path());
    let output = run(
        &[
            "token",
            "rotate",
            "nosuchuser",
            "--json",
            "--data-dir",
            path_str(dir.path()),
        ],
        None,
    );
    let line = assert_one_line_error(&output);
    assert_exit_code(&output, 1);
    assert!(line.contains("nosuchuser"), "{line}");
    assert_eq!(stdout(&output), "");
    assert_active(&sqlite_url(dir.path()), &credentials.admin_token, "admin");
}

// ---------------------------------------------------------------------------------------------
// user set-password
// ---------------------------------------------------------------------------------------------

fn set_password(data_dir: &Path, username: &str, stdin: &str) -> Output {
    run(
        &[
            "user",
            "set-password",
            username,
            "--data-dir",
            path_str(data_dir),
        ],
        Some(stdin),
    )
}

#[test]
fn user_set_password_reads_one_line_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = init(dir.path());
    let url = sqlite_url(dir.path());

    let output = set_password(dir.path(), "admin", "n3w-Passw0rd\n");
    assert_success(&output);
    assert_eq!(stdout(&output), "");
    let hash = stored_password_hash(&url, "admin").unwrap();
    assert!(verify_password("n3w-Passw0rd", &hash));
    assert!(!verify_password("n3w-Passw0rd\n", &hash));
    assert!(!verify_password(&credentials.admin_password, &hash));

    // CRLF line ends are stripped as a whole; only the first line counts.
    assert_success(&set_password(
        dir.path(),
        "admin",
        "crlf-Passw0rd\r\nsecond line\n",
    ));
    let hash = stored_password_hash(&url, "admin").unwrap();
    assert!(verify_password("crlf-Passw0rd", &hash));

    // Input without a final newline is the password as it is; inner spaces are kept.
    assert_success(&set_password(dir.path(), "deployer", " spaced out "));
    let hash = stored_password_hash(&url, "deployer").unwrap();
    assert!(verify_password(" spaced out ", &hash));

    // The tokens are untouched.
    assert_active(&url, &credentials.admin_token, "admin");
}

#[test]
fn user_set_password_failures() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = init(dir.path());
    let url = sqlite_url(dir.path());

    let output = set_password(dir.path(), "nosuchuser", "n3w-Passw0rd\n");
    let line = assert_one_line_error(&output);
    assert_exit_code(&output, 1);
    assert!(line.contains("nosuchuser"), "{line}");

    for stdin in ["\n", "\r\n", ""] {
        let output = set_password(dir.path(), "admin", stdin);
        let line = assert_one_line_error(&output);
        assert!(line.contains("password"), "{stdin:?}: {line}");
    }
    // No stdin at all (end of input at once).
    let output = run(
        &[
            "user",
            "set-password",
            "admin",
            "--data-dir",
            path_str(dir.path()),
        ],
        None,
    );
    assert_one_line_error(&output);

    let hash = stored_password_hash(&url, "admin").unwrap();
    assert!(
        verify_password(&credentials.admin_password, &hash),
        "failed attempts must leave the password as it was"
    );
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

#[test]
fn postgres_init_rotate_and_set_password() {
    let db = TestDatabase::new(Backend::Postgres);
    let url = postgres_url(&db);
    let dir = tempfile::tempdir().unwrap();
    let data = path_str(dir.path());

    let credentials = parse_credentials(&run(
        &["init", "--json", "--database-url", &url, "--data-dir", data],
        None,
    ));
    assert_eq!(
        entries(dir.path()),
        [KEY_FILE, "pki"],
        "the key and the PKI, no SQLite file"
    );
    assert_eq!(mode(&dir.path().join(KEY_FILE)), 0o600);
    assert!(assert_active(db.url(), &credentials.admin_token, "admin"));
    assert!(!assert_active(
        db.url(),
        &credentials.deployer_token,
        "deployer"
    ));

    let new_deployer = rotate_json(&[
        "token",
        "rotate",
        "deployer",
        "--json",
        "--database-url",
        &url,
        "--data-dir",
        data,
    ]);
    assert_eq!(
        store_lookup(db.url(), &credentials.deployer_token),
        TokenLookup::Unknown
    );
    assert!(!assert_active(db.url(), &new_deployer, "deployer"));
    assert!(assert_active(db.url(), &credentials.admin_token, "admin"));

    let output = run(
        &[
            "user",
            "set-password",
            "admin",
            "--database-url",
            &url,
            "--data-dir",
            data,
        ],
        Some("n3w-Passw0rd\n"),
    );
    assert_success(&output);
    let hash = stored_password_hash(db.url(), "admin").unwrap();
    assert!(verify_password("n3w-Passw0rd", &hash));

    let again = run(
        &["init", "--json", "--database-url", &url, "--data-dir", data],
        None,
    );
    assert_success(&again);
    assert_eq!(stdout(&again), "");
    assert!(stderr(&again).contains("already initialised"));
    assert!(assert_active(db.url(), &credentials.admin_token, "admin"));

    let migrate = run(
        &["migrate", "--database-url", &url, "--data-dir", data],
        None,
    );
    assert_success(&migrate);

    let unknown = run(
        &[
            "token",
            "rotate",
            "nosuchuser",
            "--database-url",
            &url,
            "--data-dir",
            data,
        ],
        None,
    );
    assert_one_line_error(&unknown);
    assert_exit_code(&unknown, 1);
    drop(db);
}

/// One-shot commands on PostgreSQL must exit cleanly every time, not just usually.
#[test]
fn postgres_one_shot_commands_never_crash_at_exit() {
    let db = TestDatabase::new(Backend::Postgres);
    let url = postgres_url(&db);
    let dir = tempfile::tempdir().unwrap();
    let data = path_str(dir.path());
    let credentials = parse_credentials(&run(
        &["init", "--json", "--database-url", &url, "--data-dir", data],
        None,
    ));
    let mut crashes = Vec::new();
    let mut last_token = credentials.deployer_token;
    for attempt in 0..40 {
        let output = run(
            &[
                "token",
                "rotate",
                "deployer",
                "--database-url",
                &url,
                "--data-dir",
                data,
            ],
            None,
        );
        if !output.status.success() {
            crashes.push((attempt, describe_status(output.status)));
        }
        if let Some(token) = stdout(&output).lines().next() {
            last_token = token.to_owned();
        }
    }
    // Whatever the exit status, the last token printed is the one that works.
    assert_active(db.url(), &last_token, "deployer");
    assert_eq!(crashes, Vec::<(i32, String)>::new(), "40 rotations");
    drop(db);
}

// ---------------------------------------------------------------------------------------------
// serve
// ---------------------------------------------------------------------------------------------

const DEADLINE: Duration = Duration::from_secs(20);
const STOP_DEADLINE: Duration = Duration::from_secs(35);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `evon-hub serve`, killed if a test fails before stopping it.
struct Server {
    child: Child,
    port: u16,
    stdout_lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Server {
    fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    fn start_with(data_dir: &Path, extra: &[&str]) -> Self {
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let mut child = command(data_dir)
            .args(["serve", "--data-dir", path_str(data_dir), "--bind", &bind])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (sender, stdout_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Self {
            child,
            port,
            stdout_lines,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// The value printed after `label` on stdout, waiting for it up to the deadline.
    fn printed(&mut self, label: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(label)) {
            return line.split_once(label).unwrap().1.trim().to_owned();
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout_lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some((_, value)) = line.split_once(label) {
                        return value.trim().to_owned();
                    }
                }
                Err(_) => panic!(
                    "serve printed no {label:?} line; stdout so far: {:?}; status: {:?}",
                    self.seen,
                    self.child.try_wait()
                ),
            }
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Polls `GET /api/ping` until the server answers; the status and body.
    fn wait_until_serving(&mut self, token: Option<&str>) -> (u16, String) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "serve exited early with {}: {}",
                    describe_status(status),
                    self.stop_output()
                );
            }
            match http_get(self.addr(), "/api/ping", token) {
                Ok(answer) => return answer,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(error) => panic!("serve did not answer in time: {error}"),
            }
        }
    }

    fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        http_get(self.addr(), path, token).unwrap()
    }

    /// Sends SIGTERM and waits for the exit; the status and everything printed on stdout.
    fn stop(mut self) -> (ExitStatus, Vec<String>, String) {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(kill.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + STOP_DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop within {STOP_DEADLINE:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let stderr = self.stop_output();
        // The process is gone, so its stdout is closed and the reader thread ends.
        while let Ok(line) = self.stdout_lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (status, std::mem::take(&mut self.seen), stderr)
    }

    fn stop_output(&mut self) -> String {
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 GET over a fresh connection: the status code and the body.
fn http_get(addr: SocketAddr, path: &str, token: Option<&str>) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let authorization = token
        .map(|t| format!("Authorization: Token {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{authorization}Connection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "incomplete response")
    })?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no status"))?;
    Ok((status, body.to_owned()))
}

#[test]
fn serve_prints_credentials_once_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();

    // First start: an empty data directory is initialised and the credentials shown.
    let mut server = Server::start(dir.path());
    let admin_token = server.printed("admin token:");
    let deployer_token = server.printed("deployer token:");
    assert!(is_token(&admin_token), "{admin_token:?}");
    assert!(is_token(&deployer_token), "{deployer_token:?}");
    let (status, body) = server.wait_until_serving(Some(&admin_token));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("pong"), "{body}");
    let (status, body) = server.get("/api/ping", None);
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("pong"), "{body}");
    let (status, _) = server.get("/api/ping", Some(&"0".repeat(40)));
    assert_eq!(status, 401);
    let (status, body) = server.get("/api/ping", Some(&deployer_token));
    assert_eq!(status, 200, "{body}");
    let (status, stdout_lines, stderr) = server.stop();
    assert!(
        status.success(),
        "serve exited with {}; stderr: {stderr}",
        describe_status(status)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stdout_lines
            .iter()
            .filter(|l| l.contains("admin token:"))
            .count(),
        1,
        "{stdout_lines:?}"
    );
    assert_eq!(mode(&dir.path().join(KEY_FILE)), 0o600);
    assert_active(&sqlite_url(dir.path()), &admin_token, "admin");

    // Second start: nothing new to show, the same tokens still work.
    let mut server = Server::start(dir.path());
    let (status, body) = server.wait_until_serving(Some(&admin_token));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("pong"), "{body}");
    let (status, _) = server.get("/api/ping", None);
    assert_eq!(status, 401);
    let (status, stdout_lines, stderr) = server.stop();
    assert!(
        status.success(),
        "serve exited with {}; stderr: {stderr}",
        describe_status(status)
    );
    assert!(
        !stdout_lines
            .iter()
            .any(|l| l.contains("token:") || l.contains("password:")),
        "credentials printed again: {stdout_lines:?}"
    );
}

#[test]
fn serve_uses_a_hub_initialised_by_init() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = init(dir.path());
    let mut server = Server::start_with(dir.path(), &["--workers", "1"]);
    let (status, body) = server.wait_until_serving(Some(&credentials.admin_token));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("pong"), "{body}");
    let (status, stdout_lines, stderr) = server.stop();
    assert!(
        status.success(),
        "serve exited with {}; stderr: {stderr}",
        describe_status(status)
    );
    assert_eq!(stdout_lines, Vec::<String>::new());
}

#[test]
fn serve_refuses_a_hub_key_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let key = dir.path().join(KEY_FILE);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let port = free_port().to_string();
    let bind = format!("127.0.0.1:{port}");
    let output = run(
        &["serve", "--data-dir", path_str(dir.path()), "--bind", &bind],
        None,
    );
    let line = assert_one_line_error(&output);
    assert_exit_code(&output, 2);
    assert!(line.contains("chmod 600"), "{line}");
}

#[test]
fn serve_rejects_an_invalid_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        &[
            "serve",
            "--data-dir",
            path_str(dir.path()),
            "--bind",
            "127.0.0.1:0",
            "--public-url",
            "not a url",
        ],
        None,
    );
    let line = assert_one_line_error(&output);
    assert!(line.contains("public URL"), "{line}");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}
