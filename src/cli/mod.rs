//! What each sub-command does. `main.rs` only parses arguments and calls these.

use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::Origin;
use crate::config::Config;
use crate::oidc::{ClientView, NewClient};
use crate::store::{redact_url, Store};
use crate::{AppState, SystemClock};

pub fn init_logging(config: &Config, default_level: &str) {
    let filter = std::env::var("RUST_LOG").ok().unwrap_or_else(|| {
        if default_level.is_empty() {
            config.log.level.clone()
        } else {
            default_level.to_string()
        }
    });
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if config.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Opens the configured database and applies pending migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(
        &config.database.url,
        config.database.max_connections,
        config.database.connect_timeout(),
    )
    .await?;
    store.migrate().await?;
    Ok(store)
}

pub(crate) async fn open_app(config: Config) -> anyhow::Result<AppState> {
    let store = open_store(&config).await?;
    Ok(AppState::build(config, store, Arc::new(SystemClock)).await?)
}

pub async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    if config.keys.master_key.is_none() {
        tracing::warn!(
            "!!! NO MASTER KEY CONFIGURED: signing keys are encrypted with a built-in DEVELOPMENT key. \
             Anyone with this binary can decrypt them. Set HMS_ACH__KEYS__MASTER_KEY to `head -c32 /dev/urandom | base64` before real use. !!!"
        );
    }
    let bind: SocketAddr = config.server.bind.parse().context("server.bind")?;
    let shown = match config.database.url.strip_prefix("sqlite://") {
        Some(file) => std::path::absolute(file.split('?').next().unwrap_or(file))
            .map_or_else(|_| file.to_string(), |p| p.display().to_string()),
        None => redact_url(&config.database.url),
    };
    tracing::info!(database = %shown, "opening the database (created and migrated if new)");
    let app = open_app(config.clone()).await?;
    let mailer = crate::mail::sender_from_config(&config)?;
    tracing::info!(sender = %mailer.describe(), "email");
    if demo {
        let s = crate::demo::seed(&app).await?;
        tracing::info!(
            orgs = s.orgs,
            people = s.people,
            new_records = s.created,
            "demo district ready"
        );
        let issuer = config.issuer();
        println!(
            "\nDemo district ready: {} orgs, {} people.\n\nAdmin API client (hub-admin, every scope). The secret is shown once per start:\n  client_id:     {}\n  client_secret: {}\n\nTry:\n  TOKEN=$(curl -s -u '{}:{}' -d grant_type=client_credentials {issuer}/oauth2/token | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')\n  curl -s -H \"Authorization: Bearer $TOKEN\" '{issuer}/api/v1/users?kind=clinical_instructor'\n",
            s.orgs, s.people, s.client_id, s.client_secret, s.client_id, s.client_secret
        );
        println!(
            "Sign in at {issuer}/login (password for every demo account: {}):",
            crate::demo::DEMO_PASSWORD
        );
        for (persona, username) in &s.accounts {
            println!("  {persona:<38} {username}");
        }
        println!(
            "\nOpenID Connect clients (discovery: {issuer}/.well-known/openid-configuration):\n  confidential web app  client_id {}  client_secret {}  redirect http://127.0.0.1:8081/callback\n  public SPA/mobile     client_id {}  (PKCE, no secret)   redirect http://127.0.0.1:5173/callback\n",
            s.web_client_id, s.web_client_secret, s.spa_client_id
        );
        if config.mail.smtp_host.is_none() {
            let dir = config.mail.eml_dir(&config.database.url);
            let dir = std::path::absolute(&dir).unwrap_or(dir);
            println!(
                "Email (no SMTP server configured): every message is written as a .eml file into\n  {}\n",
                dir.display()
            );
        }
    }
    let limits =
        crate::ops::raise_file_limit(crate::ops::ConnectionLimits::from_config(&config.server));
    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("cannot listen on {bind}: is another process using the port? Pass --bind 127.0.0.1:PORT"))?;
    tracing::info!(%bind, issuer = %config.issuer(), jwks = %format!("{}/oauth2/jwks", config.issuer()), "HMS-ACH listening");
    tracing::info!(
        max_connections = limits.max_connections,
        reserved_connections = limits.reserved_connections,
        header_read_timeout_seconds = limits.header_read.as_secs(),
        keep_alive_idle_seconds = limits.keep_alive_idle.as_secs(),
        "connection limits"
    );
    let housekeeping = tokio::spawn(background(app.clone()));
    let dispatch = crate::outbox::start(app.clone()).await?;
    let scheduler = crate::jobs::Scheduler::start(&app).await?;
    let (stop_mail, mail_stopped) = tokio::sync::watch::channel(false);
    let mail_worker = tokio::spawn(crate::mail::run(app.clone(), mailer, mail_stopped));
    let router = crate::build_router(app.clone());
    crate::ops::serve(listener, router, limits, shutdown_signal()).await?;
    tracing::info!("shutting down: in-flight requests finished");
    // The scheduler and housekeeping stop before the database closes: left running,
    // their next tick would fail on the closed pool and log errors about a clean
    // shutdown; a job still working gets a bounded grace, then its run is failed.
    scheduler.shutdown().await;
    // The mail worker finishes the message in hand (so an accepted one is recorded
    // as sent), then stops; bounded, in case a server stalls.
    let _ = stop_mail.send(true);
    let _ = tokio::time::timeout(config.mail.lease(), mail_worker).await;
    housekeeping.abort();
    let _ = housekeeping.await;
    if let Some(d) = dispatch {
        d.stop().await;
    }
    app.store().close().await;
    Ok(())
}

/// Housekeeping on every replica (each step is safe to run on several at once):
/// key promotion, scheduled rotation and clean-up; reloading keys other replicas
/// changed; re-reading the district IdPs' metadata into this replica's memory;
/// back-channel logout deliveries. Work that must happen once across replicas is a
/// scheduled job (`jobs/`).
async fn background(app: AppState) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client; back-channel logout is off");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut seen = String::new();
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        let now = app.clock().now_ms();
        if let Err(e) =
            crate::oidc::maintain_keys(app.store(), app.master_key(), now, app.config()).await
        {
            tracing::error!(error = %e, "key maintenance failed");
        }
        // Serve a key in the JWKS as soon as any process (the CLI, another replica)
        // created it, and sign with a promoted key at once.
        match crate::oidc::keys_fingerprint(app.store()).await {
            Ok(fp) if fp != seen => match app.reload_keys().await {
                Ok(()) => seen = fp,
                Err(e) => tracing::error!(error = %e, "reloading signing keys failed"),
            },
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "reading the key set failed"),
        }
        n += 1;
        // Each replica holds its own copy of the metadata in memory, so each
        // refreshes it (not a once-across-replicas job).
        if n.is_multiple_of(60) {
            app.federation().refresh_due(app.store(), now).await;
        }
        if let Err(e) = crate::oidc::deliver_logouts(&app, &http).await {
            tracing::error!(error = %e.description, "back-channel logout delivery failed");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

mod accounts;
mod email;
pub mod events;
mod jobs;
pub use accounts::{keys_list, keys_rotate, user_reset_mfa, user_set_password};
pub use email::{email_preview, PreviewPart};
pub use jobs::{jobs_list, jobs_run};

pub async fn migrate(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    crate::authz::seed_builtin(
        &store,
        crate::crypto::MasterKey::from_config(&config).audit_key(),
        crate::clock::Clock::now_ms(&SystemClock),
    )
    .await?;
    println!(
        "database {} ({}) is migrated",
        redact_url(&config.database.url),
        store.backend().name()
    );
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ClientCreateArgs {
    #[arg(long)]
    pub name: String,
    /// Grant type, repeatable: authorization_code, refresh_token, client_credentials.
    #[arg(long = "grant", required = true)]
    pub grants: Vec<String>,
    /// Scope, repeatable: openid, profile, email, offline_access, roles, identifiers,
    /// and API scopes (users.read, users.write, orgs.read, …).
    #[arg(long = "scope", required = true)]
    pub scopes: Vec<String>,
    /// Role to give the client (hub-admin, registrar, compliance-officer, approver, auditor).
    #[arg(long)]
    pub role: Option<String>,
    /// Org (id or sourcedId) the role applies in; hub-wide when absent.
    #[arg(long)]
    pub org: Option<String>,
    #[arg(long)]
    pub access_token_ttl_seconds: Option<i64>,
    /// A public client (SPA, mobile app): no secret, PKCE required.
    #[arg(long)]
    pub public: bool,
    /// Redirect URI, repeatable; matched exactly.
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Where the client may send people after sign-out, repeatable.
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    #[arg(long)]
    pub backchannel_logout_uri: Option<String>,
    /// The district's own app: no consent screen.
    #[arg(long)]
    pub first_party: bool,
    /// client_secret_basic (default), client_secret_post, private_key_jwt, none.
    #[arg(long)]
    pub auth_method: Option<String>,
    /// File with the client's public keys (a JWK Set) for private_key_jwt.
    #[arg(long)]
    pub jwks_file: Option<std::path::PathBuf>,
    /// ID token algorithm: RS256 (default) or ES256.
    #[arg(long, default_value = "RS256")]
    pub id_token_alg: String,
    /// Do not require PKCE (confidential clients only; not recommended).
    #[arg(long)]
    pub no_pkce: bool,
    /// Access tokens must be DPoP-bound (RFC 9449).
    #[arg(long)]
    pub dpop: bool,
    /// May receive district identifiers with the identifiers scope.
    #[arg(long)]
    pub district_identifiers: bool,
    /// May introspect tokens issued to other clients (a resource server).
    #[arg(long)]
    pub introspect_any: bool,
    /// Every sign-in to this app needs a second factor (passkey or authenticator code).
    #[arg(long)]
    pub mfa_required: bool,
    #[arg(long)]
    pub refresh_token_ttl_seconds: Option<i64>,
    #[arg(long)]
    pub json: bool,
}

fn print_client(view: &ClientView, secret: Option<&str>, json: bool) {
    if json {
        let mut v = serde_json::to_value(view).unwrap_or_default();
        if let Some(s) = secret {
            v["client_secret"] = s.into();
        }
        println!("{v}");
    } else {
        println!("client_id:     {}", view.client_id);
        if let Some(s) = secret {
            println!("client_secret: {s}\n(shown once: store it now; only a digest is kept)");
        }
        println!(
            "name: {}  grants: {}  scopes: {}",
            view.name,
            view.grant_types.join(","),
            view.scopes.join(" ")
        );
    }
}

fn client_problem(e: crate::oidc::ClientError) -> anyhow::Error {
    match e {
        crate::oidc::ClientError::Invalid(errors) => {
            anyhow::anyhow!(errors
                .iter()
                .map(|f| format!("--{}: {}", f.field.replace('_', "-"), f.reason))
                .collect::<Vec<_>>()
                .join("\n"))
        }
        other => other.into(),
    }
}

pub async fn client_create(config: Config, args: ClientCreateArgs) -> anyhow::Result<()> {
    let app = open_app(config).await?;
    let jwks = match &args.jwks_file {
        Some(path) => Some(
            serde_json::from_str(
                &std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            )
            .with_context(|| format!("{} is not JSON (a JWK Set)", path.display()))?,
        ),
        None => None,
    };
    let settings = crate::oidc::ClientSettings {
        client_type: if args.public {
            "public"
        } else {
            "confidential"
        }
        .into(),
        token_endpoint_auth_method: args.auth_method.clone().unwrap_or_else(|| {
            if args.public {
                "none"
            } else if jwks.is_some() {
                "private_key_jwt"
            } else {
                "client_secret_basic"
            }
            .into()
        }),
        redirect_uris: args.redirect_uris,
        post_logout_redirect_uris: args.post_logout_redirect_uris,
        backchannel_logout_uri: args.backchannel_logout_uri,
        first_party: args.first_party,
        require_pkce: !args.no_pkce,
        id_token_signed_response_alg: args.id_token_alg,
        refresh_token_ttl_seconds: args.refresh_token_ttl_seconds,
        jwks,
        dpop_bound_access_tokens: args.dpop,
        district_identifiers: args.district_identifiers,
        introspect_any: args.introspect_any,
        mfa_required: args.mfa_required,
    };
    let new = NewClient {
        name: args.name,
        grants: args.grants,
        scopes: args.scopes,
        role: args.role,
        org: args.org,
        access_token_ttl_seconds: args.access_token_ttl_seconds,
        settings,
    };
    let (client, secret) = crate::oidc::create_client(
        app.store(),
        app.master_key(),
        app.clock().now_ms(),
        &Origin::cli(),
        new,
    )
    .await
    .map_err(client_problem)?;
    print_client(&ClientView::from(&client), secret.as_deref(), args.json);
    Ok(())
}

pub async fn client_list(config: Config, json: bool) -> anyhow::Result<()> {
    let app = open_app(config).await?;
    let clients = crate::oidc::list_clients(app.store()).await?;
    let views: Vec<ClientView> = clients.iter().map(ClientView::from).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
    } else if views.is_empty() {
        println!("no clients; create one with `hms-ach client create --name NAME --grant client_credentials --scope users.read --role auditor`");
    } else {
        for v in &views {
            println!(
                "{}  {:<24} grants={} scopes={}",
                v.client_id,
                v.name,
                v.grant_types.join(","),
                v.scopes.join(" ")
            );
        }
    }
    Ok(())
}

pub async fn client_rotate(config: Config, id: &str, json: bool) -> anyhow::Result<()> {
    let app = open_app(config).await?;
    let (client, secret) = crate::oidc::rotate_secret(
        app.store(),
        app.master_key(),
        app.clock().now_ms(),
        &Origin::cli(),
        id,
    )
    .await
    .map_err(client_problem)?;
    print_client(&ClientView::from(&client), Some(&secret), json);
    Ok(())
}

pub async fn client_delete(config: Config, id: &str) -> anyhow::Result<()> {
    let app = open_app(config).await?;
    crate::oidc::delete_client(
        app.store(),
        app.audit_key(),
        app.clock().now_ms(),
        &Origin::cli(),
        id,
    )
    .await
    .map_err(client_problem)?;
    println!("client {id} deleted; its role assignments were revoked");
    Ok(())
}

/// Exit status 0 when the chain is intact, 1 otherwise (for cron and monitoring).
pub async fn audit_verify(config: Config, json: bool) -> anyhow::Result<bool> {
    let store = open_store(&config).await?;
    // The chain verifies only under the master key that sealed it.
    let master = crate::crypto::MasterKey::from_config(&config);
    let report = crate::audit::verify_chain(&store, master.audit_key()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.is_intact() {
        println!(
            "audit log intact: {} events, chain head at {}",
            report.checked, report.head_seq
        );
    } else {
        println!(
            "AUDIT LOG TAMPERED: {} problem(s) in {} events",
            report.problems.len(),
            report.checked
        );
        for p in &report.problems {
            println!("  - {p}");
        }
    }
    Ok(report.is_intact())
}

pub async fn check_config(config: Config) -> anyhow::Result<()> {
    // The metadata `serve` loads at start, read and checked by the same code: what
    // it would refuse (and leave unavailable) is a configuration error here.
    let now = crate::clock::Clock::now_ms(&SystemClock);
    let problems = crate::federation::check_metadata(&config, now).await;
    if !problems.is_empty() {
        let listed: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        bail!(
            "the configuration is not usable ({} problem{} that serve would refuse or leave unavailable):\n{}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            listed.join("\n")
        );
    }
    // A schedule for a job that does not exist is refused here as at start.
    let jobs = crate::jobs::Jobs::new(&config, crate::jobs::builtin())?;
    println!("configuration is valid");
    println!("  listen:   {}", config.server.bind);
    println!("  issuer:   {}", config.issuer());
    println!("  database: {}", redact_url(&config.database.url));
    println!(
        "  master key: {}",
        if config.keys.master_key.is_some() {
            "configured"
        } else {
            "NOT SET (development key in use)"
        }
    );
    println!(
        "  jobs:     {} ({}, time zone {})",
        jobs.entries().len(),
        if jobs.enabled() {
            "scheduled"
        } else {
            "scheduling off"
        },
        config.jobs_time_zone()
    );
    let store = Store::connect(&config.database.url, 1, config.database.connect_timeout()).await?;
    store.ping().await?;
    println!("  database reachable ({})", store.backend().name());
    if config.keys.master_key.is_none() && !config.server.bind.starts_with("127.") {
        bail!("a master key is required when listening beyond loopback: set HMS_ACH__KEYS__MASTER_KEY");
    }
    Ok(())
}
