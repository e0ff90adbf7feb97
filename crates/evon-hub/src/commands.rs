//! What each subcommand does.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use evon_crypto::{hash_password, random_password, ApiToken, HubKey};
use evon_domain::config::{HubSettings, DEFAULT_DOMAIN, DEFAULT_SUBNET_KEY};
use evon_domain::SubnetKey;
use evon_store::backup::{self, HubDocument};
use evon_store::hub::{InitOutcome, InitRequest};
use evon_store::{OpenMode, PoolOptions, Store, StoreError};
use serde::Serialize;

use crate::cli::{
    Cli, Command, FixtureSize, Location, OpenVpnArgs, OpenVpnCommand, TokenCommand, UserCommand,
};
use crate::fixtures;
use crate::settings::{self, ConfigError, Resolved, DEFAULT_BIND};

/// Logs go to stderr; `EVON_HUB_LOG` takes a tracing filter. Commands other than `serve` print
/// their own results on stdout, so they log only warnings by default.
pub fn init_logging(command: &Command) {
    let default = if matches!(command, Command::Serve { .. }) {
        // actix-http logs every malformed request a client sends (bad headers, garbage after a
        // body) at ERROR, before any of our code sees it, and answers it 400 itself. That is the
        // client's fault, not the hub's: at the default level it would page an operator for
        // every port scanner. `EVON_HUB_LOG` brings it back.
        "info,actix_http::h1::dispatcher=off"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("EVON_HUB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// 2 for a configuration or database problem (the setup is wrong), 1 for anything else.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<StoreError>() {
        Some(StoreError::NotFound) => 1,
        Some(_) => 2,
        None if error.downcast_ref::<evon_crypto::HubKeyError>().is_some() => 2,
        None if error.downcast_ref::<settings::ConfigError>().is_some() => 2,
        None if error.downcast_ref::<std::io::Error>().is_some() => 2,
        None => 1,
    }
}

pub fn run(cli: Cli) -> Result<()> {
    let location = &cli.location;
    match cli.command {
        Command::Serve {
            bind,
            public_url,
            workers,
            openvpn,
            firewall,
        } => serve(location, bind, public_url, workers, &openvpn, firewall),
        Command::Firewall { action } => crate::firewall::run(location, action),
        Command::Openvpn {
            action: OpenVpnCommand::ServerConfig { instance, openvpn },
        } => {
            let resolved = settings::resolve(location)?;
            let store = open_once(&resolved, OpenMode::MustExist)?;
            let hub = store.read(evon_store::hub::settings);
            drop(store);
            let hub = hub?;
            let bind = resolved
                .file
                .bind
                .clone()
                .unwrap_or_else(|| DEFAULT_BIND.to_owned());
            let public_url = parse_public_url(resolved.file.public_url.clone())?;
            let endpoints =
                crate::openvpn::endpoints(&resolved, &hub, &openvpn, public_url.as_ref(), &bind);
            print!(
                "{}",
                crate::openvpn::server_config(&resolved, &endpoints, instance)?
            );
            Ok(())
        }
        Command::Openvpn {
            action: OpenVpnCommand::Hook(hook),
        } => crate::hooks::run(location, hook),
        Command::Init {
            domain,
            subnet_key,
            json,
        } => init(location, domain, subnet_key, json),
        Command::Token {
            action: TokenCommand::Rotate { username, json },
        } => rotate_token(location, &username, json),
        Command::User {
            action: UserCommand::SetPassword { username },
        } => set_password(location, &username),
        Command::Migrate => {
            let resolved = settings::resolve(location)?;
            drop(open_once(&resolved, OpenMode::MustExist)?);
            eprintln!("migrations applied to {}", resolved.database.redacted());
            Ok(())
        }
        Command::Export { output } => export(location, output.as_deref()),
        Command::Import { file } => import(location, &file),
        Command::Fixture { size, seed, output } => fixture(size, seed, output.as_deref()),
    }
}

/// A store for a command that makes a few queries and exits. Its pool keeps no idle
/// connections and opens none in the background: a connection being set up by r2d2's worker
/// while the process exits can crash in libpq's TLS teardown.
pub(crate) fn open_once(resolved: &Resolved, mode: OpenMode) -> Result<Store> {
    let options = PoolOptions {
        max_size: 1,
        min_idle: Some(0),
        ..PoolOptions::default()
    };
    Ok(Store::open(&resolved.database, mode, &options)?)
}

/// Opens the store for `init` and `serve`, creating the data directory first if needed; when
/// the database cannot be opened, a directory this call created is removed again, so that a
/// failed start leaves nothing behind.
fn open_creating_data_dir(
    resolved: &Resolved,
    open: impl FnOnce(&Resolved, OpenMode) -> Result<Store>,
) -> Result<Store> {
    let created = !resolved.data_dir.exists();
    settings::ensure_data_dir(&resolved.data_dir)?;
    open(resolved, OpenMode::CreateIfMissing).inspect_err(|_| {
        if created {
            // remove_dir only removes an empty directory: nothing of anyone's is lost.
            let _ = std::fs::remove_dir(&resolved.data_dir);
        }
    })
}

/// The secrets `init` makes, shown once.
#[derive(Debug, Serialize)]
struct Credentials {
    admin_password: String,
    admin_token: String,
    deployer_token: String,
}

/// How often `serve` reads the hub generation for writes made by other processes: the longest
/// a token revoked elsewhere stays usable here.
const GENERATION_POLL: std::time::Duration = std::time::Duration::from_millis(150);

/// Initialises the hub unless it already is; the credentials when it was done now.
fn initialise(store: &Store, settings: &HubSettings) -> Result<Option<Credentials>> {
    // Every `serve` start comes here. Hashing the admin password (argon2, 19 MiB) only to find
    // the hub initialised would set the process's peak memory for nothing; the transaction
    // below still decides, so two replicas starting on a new database cannot both initialise.
    if store.read(evon_store::hub::is_initialised)? {
        return Ok(None);
    }
    let admin_password = random_password(24);
    let admin_token = ApiToken::generate();
    let deployer_token = ApiToken::generate();
    let request = InitRequest {
        settings: settings.clone(),
        admin_password_hash: hash_password(&admin_password).map_err(|e| anyhow!(e))?,
        admin_token: admin_token.digest(),
        deployer_token: deployer_token.digest(),
    };
    let outcome = store.write(|conn| evon_store::hub::initialise(conn, &request))?;
    Ok(match outcome {
        InitOutcome::AlreadyInitialised => None,
        InitOutcome::Initialised => Some(Credentials {
            admin_password,
            admin_token: admin_token.reveal().to_owned(),
            deployer_token: deployer_token.reveal().to_owned(),
        }),
    })
}

fn print_credentials(credentials: &Credentials) {
    println!("Evon Hub initialised. These credentials are shown once; keep them safe.");
    println!("  admin password: {}", credentials.admin_password);
    println!("  admin token:    {}", credentials.admin_token);
    println!("  deployer token: {}", credentials.deployer_token);
}

fn init(
    location: &Location,
    domain: Option<String>,
    subnet_key: Option<String>,
    json: bool,
) -> Result<()> {
    let settings = HubSettings {
        domain: HubSettings::parse_domain(domain.as_deref().unwrap_or(DEFAULT_DOMAIN))
            .map_err(ConfigError)?,
        subnet_key: match subnet_key {
            Some(text) => SubnetKey::parse(&text).map_err(ConfigError)?,
            None => SubnetKey::new(DEFAULT_SUBNET_KEY),
        },
    };
    let resolved = settings::resolve(location)?;
    let store = open_creating_data_dir(&resolved, open_once)?;
    HubKey::load_or_create(&resolved.key_path())?;
    let outcome = initialise(&store, &settings).and_then(|outcome| {
        // The PKI is made for the domain the hub was (or already is) initialised with.
        let stored = store.read(evon_store::hub::settings)?;
        crate::openvpn::pki(&resolved, &stored)?;
        Ok(outcome)
    });
    drop(store);
    match outcome? {
        None => eprintln!(
            "the hub at {} is already initialised; nothing changed",
            resolved.database.redacted()
        ),
        Some(credentials) if json => println!("{}", serde_json::to_string(&credentials)?),
        Some(credentials) => print_credentials(&credentials),
    }
    Ok(())
}

fn parse_public_url(text: Option<String>) -> Result<Option<url::Url>> {
    match text {
        Some(text) => {
            Ok(Some(url::Url::parse(&text).map_err(|e| {
                ConfigError(format!("invalid public URL {text:?}: {e}"))
            })?))
        }
        None => Ok(None),
    }
}

fn serve(
    location: &Location,
    bind: Option<String>,
    public_url: Option<String>,
    workers: Option<usize>,
    openvpn: &OpenVpnArgs,
    firewall: Option<crate::firewall::FirewallMode>,
) -> Result<()> {
    let resolved = settings::resolve(location)?;
    let bind = bind
        .or(resolved.file.bind.clone())
        .unwrap_or_else(|| DEFAULT_BIND.to_owned());
    let public_url = match public_url.or(resolved.file.public_url.clone()) {
        Some(text) => {
            Some(url::Url::parse(&text).with_context(|| format!("invalid public URL {text:?}"))?)
        }
        None => None,
    };
    let workers = workers.or(resolved.file.workers);
    let store = open_creating_data_dir(&resolved, |resolved, mode| {
        Ok(Store::open(
            &resolved.database,
            mode,
            &PoolOptions::default(),
        )?)
    })?;
    // Refuse to run with a key others can read, before anything is initialised with it.
    let key = HubKey::load_or_create(&resolved.key_path())?;
    let defaults = HubSettings {
        domain: DEFAULT_DOMAIN.to_owned(),
        subnet_key: SubnetKey::new(DEFAULT_SUBNET_KEY),
    };
    if let Some(credentials) = initialise(&store, &defaults)? {
        print_credentials(&credentials);
    }
    let hub_settings = store.read(evon_store::hub::settings)?;
    let pki = crate::openvpn::pki(&resolved, &hub_settings)?;
    let endpoints = crate::openvpn::endpoints(
        &resolved,
        &hub_settings,
        openvpn,
        public_url.as_ref(),
        &bind,
    );
    if public_url.is_none() {
        tracing::warn!(api_url = %endpoints.api_url, "no public URL configured: installers will call the hub at its listening address");
    }
    let bootstrap = crate::openvpn::bootstrap(&resolved, key, &pki, &endpoints)?;
    let keeper = match firewall.or(resolved.file.firewall) {
        Some(crate::firewall::FirewallMode::Off) => None,
        _ => Some(crate::firewall::Keeper::spawn(store.clone())?),
    };
    // Writes by other processes (the command line, the OpenVPN hooks, other replicas) reach
    // the token cache through this; this process's own writes advance the watch themselves.
    let poller = evon_store::generation::GenerationPoller::spawn(store.clone(), GENERATION_POLL)
        .context("cannot start the generation poller")?;
    let state = actix_web::web::Data::new(
        evon_http::AppState::new(store, hub_settings, public_url)
            .with_bootstrap(bootstrap)
            .with_disconnect(std::sync::Arc::new(crate::management::Management::new(
                &resolved.data_dir,
            ))),
    );
    tracing::info!(%bind, database = %resolved.database.redacted(), "Evon Hub listening");
    let served = actix_web::rt::System::new().block_on(async move {
        let mut server = actix_web::HttpServer::new(move || evon_http::app(state.clone()));
        if let Some(workers) = workers {
            server = server.workers(workers);
        }
        // Slow and idle clients (tests/abuse.rs): a connection's first request head must arrive
        // within 5 s (else 408 and close), an idle keep-alive connection is closed after 5 s,
        // and a connection closed after an error gets 1 s to take its answer. These are
        // actix's defaults, pinned here because the hub relies on them. actix times out no
        // body: `evon_http::body::BODY_DEADLINE` does.
        server = server
            .client_request_timeout(std::time::Duration::from_secs(5))
            .keep_alive(std::time::Duration::from_secs(5))
            .client_disconnect_timeout(std::time::Duration::from_secs(1));
        // actix-web stops accepting on SIGINT/SIGTERM and lets in-flight requests finish.
        server
            .shutdown_timeout(30)
            .bind(&bind)
            .with_context(|| format!("cannot listen on {bind}"))?
            .run()
            .await
            .context("HTTP server failed")
    });
    drop(keeper);
    drop(poller);
    served?;
    tracing::info!("Evon Hub stopped");
    Ok(())
}

fn rotate_token(location: &Location, username: &str, json: bool) -> Result<()> {
    let store = open_once(&settings::resolve(location)?, OpenMode::MustExist)?;
    let token = store
        .write(|conn| evon_store::users::rotate_token(conn, username))
        .map_err(|e| match e {
            StoreError::NotFound => {
                anyhow!(StoreError::NotFound).context(format!("no user named {username:?}"))
            }
            other => anyhow!(other),
        });
    drop(store);
    let token = token?;
    if json {
        println!("{}", serde_json::json!({ "token": token.reveal() }));
    } else {
        println!("{}", token.reveal());
    }
    Ok(())
}

fn set_password(location: &Location, username: &str) -> Result<()> {
    let store = open_once(&settings::resolve(location)?, OpenMode::MustExist)?;
    // Ask for no password for a user that does not exist.
    if let Err(error) = store.read(|conn| evon_store::users::id_by_username(conn, username)) {
        drop(store);
        return Err(match error {
            StoreError::NotFound => {
                anyhow!(StoreError::NotFound).context(format!("no user named {username:?}"))
            }
            other => anyhow!(other),
        });
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("New password for {username}: ");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    let password =
        evon_domain::validate::password(password).map_err(|e| anyhow!("password: {e}"))?;
    let hash = hash_password(&password).map_err(|e| anyhow!(e))?;
    let outcome = store.write(|conn| evon_store::users::set_password_hash(conn, username, &hash));
    drop(store);
    match outcome {
        Ok(()) => {
            eprintln!("password of {username} changed");
            Ok(())
        }
        Err(StoreError::NotFound) => {
            Err(anyhow!(StoreError::NotFound).context(format!("no user named {username:?}")))
        }
        Err(other) => bail!(other),
    }
}

/// What a document holds, in one line: `6 users, 4 groups, ...`.
fn summary(doc: &HubDocument) -> String {
    format!(
        "{} users, {} groups, {} servers, {} server groups, {} rules, {} policies",
        doc.users.len(),
        doc.groups.len(),
        doc.servers.len(),
        doc.server_groups.len(),
        doc.rules.len(),
        doc.policies.len()
    )
}

/// Writes a document to `output`, or to standard output when there is none. A file is written
/// whole or not at all: into a new file readable by its owner only (it holds password hashes and
/// token digests) beside the target, then renamed over it.
fn write_document(output: Option<&Path>, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let Some(path) = output else {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .context("cannot write to standard output")?;
        return Ok(());
    };
    let name = path
        .file_name()
        .ok_or_else(|| ConfigError(format!("{} names no file to write", path.display())))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(ConfigError(format!("cannot write {}: {error}", path.display())).into());
    }
    Ok(())
}

fn export(location: &Location, output: Option<&Path>) -> Result<()> {
    let store = open_once(&settings::resolve(location)?, OpenMode::MustExist)?;
    let document = store.read(backup::export);
    drop(store);
    let document = document?;
    write_document(output, &backup::to_json(&document))?;
    if let Some(path) = output {
        eprintln!("exported {} to {}", summary(&document), path.display());
    }
    Ok(())
}

fn import(location: &Location, file: &Path) -> Result<()> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", file.display())))?;
    let document: HubDocument = serde_json::from_str(&text).map_err(|e| {
        ConfigError(format!(
            "{} is not an Evon Hub backup document: {e}",
            file.display()
        ))
    })?;
    let resolved = settings::resolve(location)?;
    let store = open_once(&resolved, OpenMode::MustExist)?;
    let outcome = store.write(|conn| backup::import(conn, &document));
    drop(store);
    outcome.map_err(|e| anyhow!(e).context(format!("cannot import {}", file.display())))?;
    eprintln!(
        "imported {} into {}: {}",
        file.display(),
        resolved.database.redacted(),
        summary(&document)
    );
    Ok(())
}

fn fixture(size: FixtureSize, seed: u64, output: Option<&Path>) -> Result<()> {
    let size = match size {
        FixtureSize::Small => fixtures::Size::Small,
        FixtureSize::OneK => fixtures::Size::OneK,
        FixtureSize::TenK => fixtures::Size::TenK,
    };
    let fixture = fixtures::generate(size, seed);
    // A generator bug must not hand out a document that import would refuse.
    backup::validate(&fixture.document)
        .map_err(|problems| anyhow!("generated an invalid fixture: {}", problems.join("; ")))?;
    write_document(output, &backup::to_json(&fixture.document))?;
    eprintln!(
        "fixture of {} (seed {seed}); every password is {:?}; admin token {}, deployer token {}",
        summary(&fixture.document),
        fixtures::FIXTURE_PASSWORD,
        fixture.admin_token,
        fixture.deployer_token
    );
    Ok(())
}
