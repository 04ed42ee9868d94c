//! `AppState` and the router: every capability's routes merged behind one stack
//! of middleware.

use axum::Router;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use crate::authn::{IpThrottle, PasswordHasher};
use crate::authz::Authorizer;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::oidc::{ClientCache, KeyRing};
use crate::store::Store;
use crate::web::Web;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    config: Config,
    /// `config.issuer()` and `config.api_audience()`, computed once: the token
    /// endpoint and the guard need them on every request.
    issuer: String,
    api_audience: String,
    store: Store,
    clock: Arc<dyn Clock>,
    master: MasterKey,
    keys: RwLock<Arc<KeyRing>>,
    keys_loaded_ms: AtomicI64,
    authorizer: Authorizer,
    clients: ClientCache,
    refresh_writer: crate::oidc::RefreshWriter,
    verified_tokens: crate::oidc::VerifiedTokens,
    token_liveness: crate::oidc::LivenessChecker,
    passwords: PasswordHasher,
    ip_throttle: IpThrottle,
    web: Web,
    federation: crate::federation::Federation,
    passkeys: crate::authn::Passkeys,
    jobs: crate::jobs::Jobs,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Keys(#[from] crate::oidc::KeyError),
    #[error(transparent)]
    Authz(#[from] crate::authz::AuthzError),
    #[error(transparent)]
    Authn(#[from] crate::authn::AuthnError),
    #[error(transparent)]
    Web(#[from] crate::web::WebError),
    #[error(transparent)]
    Federation(#[from] crate::federation::FederationError),
    #[error(transparent)]
    Jobs(#[from] crate::jobs::JobError),
    #[error("cannot start a token-endpoint worker thread: {0}")]
    Thread(std::io::Error),
}

impl AppState {
    /// Seeds built-in roles, makes sure signing keys exist, and loads them. The
    /// store must be migrated.
    pub async fn build(
        config: Config,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Result<AppState, StartError> {
        crate::ops::metrics::init();
        let master = MasterKey::from_config(&config);
        crate::authz::seed_builtin(&store, master.audit_key(), clock.now_ms()).await?;
        let created = crate::oidc::ensure_keys(&store, &master, clock.now_ms()).await?;
        if !created.is_empty() {
            tracing::info!(kids = ?created, "generated signing keys (ES256, RS256), stored encrypted under the master key");
        }
        let keys = crate::oidc::load_keyring(&store, &master).await?;
        let clients = ClientCache::new(config.oauth.client_cache_seconds);
        let passwords = PasswordHasher::new(&config.auth)?;
        let web = Web::new()?;
        let passkeys = crate::authn::Passkeys::new(&config);
        let jobs = crate::jobs::Jobs::new(&config, crate::jobs::builtin())?;
        let federation =
            crate::federation::Federation::start(&config, &store, &master, clock.now_ms()).await?;
        let refresh_writer = crate::oidc::RefreshWriter::start(store.clone(), clock.clone())
            .map_err(StartError::Thread)?;
        let token_liveness = crate::oidc::LivenessChecker::start(store.clone(), clock.clone())
            .map_err(StartError::Thread)?;
        Ok(AppState(Arc::new(Inner {
            issuer: config.issuer(),
            api_audience: config.api_audience(),
            config,
            store,
            clock: clock.clone(),
            master,
            keys: RwLock::new(Arc::new(keys)),
            keys_loaded_ms: AtomicI64::new(clock.now_ms()),
            authorizer: Authorizer::default(),
            clients,
            refresh_writer,
            verified_tokens: Default::default(),
            token_liveness,
            passwords,
            ip_throttle: IpThrottle::default(),
            web,
            federation,
            passkeys,
            jobs,
        })))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }
    pub fn api_audience(&self) -> &str {
        &self.0.api_audience
    }
    pub fn store(&self) -> &Store {
        &self.0.store
    }
    pub fn clock(&self) -> &dyn Clock {
        self.0.clock.as_ref()
    }
    /// Today's date where the district is (`[district] time_zone`): what "due
    /// today" and "valid through" are measured against.
    pub fn today(&self) -> jiff::civil::Date {
        self.clock().today(self.config().district.time_zone.tz())
    }
    pub fn master_key(&self) -> &MasterKey {
        &self.0.master
    }
    /// The key that seals the audit chain (derived from the master key): every
    /// `audit::record` and `audit::verify_chain` takes it.
    pub fn audit_key(&self) -> &crate::crypto::AuditKey {
        self.0.master.audit_key()
    }
    pub fn passkeys(&self) -> &crate::authn::Passkeys {
        &self.0.passkeys
    }
    /// The scheduled jobs and their schedules (`jobs/`).
    pub fn jobs(&self) -> &crate::jobs::Jobs {
        &self.0.jobs
    }

    pub fn federation(&self) -> &crate::federation::Federation {
        &self.0.federation
    }
    pub fn keys(&self) -> Arc<KeyRing> {
        match self.0.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
    /// Re-reads the signing keys from the store, at most every 10 seconds: a token
    /// signed by a key this replica has not seen (another replica created it) makes
    /// the caller ask for this before refusing the token.
    pub async fn refresh_keys(&self) -> bool {
        let now = self.clock().now_ms();
        let last = self.0.keys_loaded_ms.load(Ordering::Relaxed);
        if now - last < 10_000
            || self
                .0
                .keys_loaded_ms
                .compare_exchange(last, now, Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        match crate::oidc::load_keyring(self.store(), self.master_key()).await {
            Ok(ring) => {
                if let Ok(mut k) = self.0.keys.write() {
                    *k = Arc::new(ring);
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "reloading signing keys failed");
                false
            }
        }
    }

    pub fn authorizer(&self) -> &Authorizer {
        &self.0.authorizer
    }
    pub fn clients(&self) -> &ClientCache {
        &self.0.clients
    }
    pub fn refresh_writer(&self) -> &crate::oidc::RefreshWriter {
        &self.0.refresh_writer
    }
    pub fn verified_tokens(&self) -> &crate::oidc::VerifiedTokens {
        &self.0.verified_tokens
    }
    pub fn token_liveness(&self) -> &crate::oidc::LivenessChecker {
        &self.0.token_liveness
    }
    pub fn passwords(&self) -> &PasswordHasher {
        &self.0.passwords
    }
    pub fn ip_throttle(&self) -> &IpThrottle {
        &self.0.ip_throttle
    }
    pub fn web(&self) -> &Web {
        &self.0.web
    }

    /// Reloads the signing keys now (after a rotation step on this or another replica).
    pub async fn reload_keys(&self) -> Result<(), crate::oidc::KeyError> {
        let ring = crate::oidc::load_keyring(self.store(), self.master_key()).await?;
        if let Ok(mut k) = self.0.keys.write() {
            *k = Arc::new(ring);
        }
        self.0
            .keys_loaded_ms
            .store(self.clock().now_ms(), Ordering::Relaxed);
        Ok(())
    }
}

/// No route matched: a page for a browser (a mistyped portal address gets the hub's
/// styled error page with a way back), problem+json for the API.
async fn not_found(
    axum::extract::State(app): axum::extract::State<AppState>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match crate::ops::audience::Audience::of(uri.path(), &headers) {
        crate::ops::audience::Audience::Page => crate::web::error_page(
            &app,
            axum::http::StatusCode::NOT_FOUND,
            "There is no page at this address. Check the link, or start from your profile.",
        ),
        _ => crate::error::AppError::NotFound("no such route".into()).into_response(),
    }
}

pub fn build_router(state: AppState) -> Router {
    let router = Router::new()
        .merge(crate::ops::router())
        .merge(crate::oidc::router())
        .merge(crate::directory::router())
        .merge(crate::authz::router())
        .merge(crate::audit::router())
        .merge(crate::outbox::router())
        .merge(crate::jobs::router())
        .merge(crate::mail::router())
        .merge(crate::authn::router())
        .merge(crate::federation::router())
        .merge(crate::web::router())
        .fallback(not_found)
        // Every page's `PageError` is rendered here, with the layout and the catalog.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::web::error::render_error_pages,
        ))
        .with_state(state.clone());
    crate::ops::apply_middleware(router, &state)
}
