//! Who a credential belongs to and what they may do, cached in the process so that an
//! authenticated read runs no SQL for authentication or ABAC; with them the governance map,
//! which changes with the same data and is read on every map view.
//!
//! Correctness rests on invalidation, not on expiry:
//! - every committed change to the EAV tables (users, roles, permissions, functions, ToRs are
//!   all entities and relations) notifies `ahlt_graph`, and every change to a token's
//!   identity or revocation notifies `ahlt_auth` (migration `auth_notify`); the listener
//!   empties the cache on each, so other replicas and the CLI are seen within a notification's
//!   latency;
//! - this replica's own writes empty it before their response leaves ([`invalidate_after_writes`]);
//! - while nobody listens (not started, connection lost) the cache is bypassed: every request
//!   reads the database as if there were no cache, and the cache restarts empty;
//! - a value read from the database is stored only if no invalidation happened while it was
//!   read (a generation counter), so a slow reader cannot put back what a writer replaced.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, OnceCell, watch};
use tokio::task::JoinHandle;

use super::tokens;
use crate::domain::abac::{self, Grant};
use crate::domain::governance::{self, GovernanceMap};
use crate::domain::{Capability, DomainError, DomainResult, roles, users};

/// The channel of token changes; `ahlt_graph` carries every EAV change.
pub const AUTH_CHANNEL: &str = "ahlt_auth";
const GRAPH_CHANNEL: &str = "ahlt_graph";
const BARRIER_PREFIX: &str = "barrier:";
/// More distinct users or tokens than this and the cache starts over: it bounds memory, and
/// a deployment with that many active credentials gains little from one replica's cache.
const MAX_ENTRIES: usize = 20_000;

/// A user as authentication and authorisation need them: the row and the role permissions;
/// the ABAC grants are read on first use.
#[derive(Debug)]
pub struct Principal {
    /// `None`: no such user.
    pub user: Option<users::User>,
    /// Shared with every request's [`crate::http::extract::CurrentUser`]: no copy per request.
    pub permissions: Arc<BTreeSet<String>>,
    grants: OnceCell<Vec<Grant>>,
}

#[derive(Debug, Clone, Copy)]
struct TokenEntry {
    token_id: i64,
    user_id: i64,
    /// When this process last knew `last_used_at` to be recent.
    use_recorded: Instant,
}

#[derive(Debug, Default)]
struct Entries {
    generation: u64,
    tokens: HashMap<Vec<u8>, TokenEntry>,
    principals: HashMap<i64, Arc<Principal>>,
    tor_ids: Option<Arc<HashSet<i64>>>,
    governance: Option<Arc<GovernanceMap>>,
}

#[derive(Debug, Default)]
pub struct AccessCache {
    entries: Mutex<Entries>,
    listening: AtomicBool,
    next_barrier: AtomicU64,
    barriers_seen: Mutex<HashSet<u64>>,
    barrier_arrived: Notify,
    activity_changed: Notify,
}

impl AccessCache {
    /// A cache that is bypassed until [`AccessCache::spawn_listener`] is listening.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Whether answers may come from the cache.
    pub fn is_active(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves plain maps behind: still consistent.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets everything; readers that started before store nothing.
    pub fn invalidate(&self) {
        let mut entries = self.entries();
        let generation = entries.generation.wrapping_add(1);
        *entries = Entries {
            generation,
            ..Entries::default()
        };
    }

    fn generation(&self) -> u64 {
        self.entries().generation
    }

    /// Stores what `read` produced, unless the cache changed generation in between.
    fn store(&self, read_at: u64, put: impl FnOnce(&mut Entries)) {
        let mut entries = self.entries();
        if entries.generation != read_at || !self.is_active() {
            return;
        }
        if entries.tokens.len() >= MAX_ENTRIES || entries.principals.len() >= MAX_ENTRIES {
            entries.tokens.clear();
            entries.principals.clear();
        }
        put(&mut entries);
    }

    /// The user a live bearer token belongs to. Records the token's use at most once per
    /// [`tokens::LAST_USED_PRECISION_SECONDS`].
    pub async fn token_user(&self, db: &PgPool, token: &str) -> Result<Option<i64>, sqlx::Error> {
        let hash = tokens::digest(token);
        let cached = if self.is_active() {
            self.entries().tokens.get(&hash).copied()
        } else {
            None
        };
        let precision = Duration::from_secs(tokens::LAST_USED_PRECISION_SECONDS as u64);
        if let Some(entry) = cached {
            if entry.use_recorded.elapsed() >= precision {
                tokens::record_use(db, entry.token_id).await?;
                if let Some(stored) = self.entries().tokens.get_mut(&hash) {
                    stored.use_recorded = Instant::now();
                }
            }
            return Ok(Some(entry.user_id));
        }
        let read_at = self.generation();
        let Some(found) = tokens::authenticate(db, token).await? else {
            return Ok(None);
        };
        self.store(read_at, |entries| {
            entries.tokens.insert(
                hash,
                TokenEntry {
                    token_id: found.token_id,
                    user_id: found.user_id,
                    use_recorded: Instant::now(),
                },
            );
        });
        Ok(Some(found.user_id))
    }

    /// The user with `user_id` (active or not) and their role permissions.
    pub async fn principal(&self, db: &PgPool, user_id: i64) -> DomainResult<Arc<Principal>> {
        if self.is_active()
            && let Some(principal) = self.entries().principals.get(&user_id)
        {
            return Ok(principal.clone());
        }
        let read_at = self.generation();
        let user = users::get(db, user_id).await?;
        let permissions = match &user {
            Some(_) => roles::effective_permissions(db, user_id).await?,
            None => BTreeSet::new(),
        };
        let principal = Arc::new(Principal {
            user,
            permissions: Arc::new(permissions),
            grants: OnceCell::new(),
        });
        self.store(read_at, |entries| {
            entries.principals.insert(user_id, principal.clone());
        });
        Ok(principal)
    }

    /// Every ToR id (active or not), for telling "no" from "no such ToR".
    async fn tor_ids(&self, db: &PgPool) -> DomainResult<Arc<HashSet<i64>>> {
        if self.is_active()
            && let Some(ids) = self.entries().tor_ids.clone()
        {
            return Ok(ids);
        }
        let read_at = self.generation();
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM entities WHERE entity_type = 'tor'")
            .fetch_all(db)
            .await?;
        let ids = Arc::new(ids.into_iter().collect::<HashSet<i64>>());
        self.store(read_at, |entries| entries.tor_ids = Some(ids.clone()));
        Ok(ids)
    }

    /// [`abac::may`], answered from the user's cached grants while the cache is active (the
    /// same answer: the equality is tested on generated data). An unknown ToR is an error.
    pub async fn may(
        &self,
        db: &PgPool,
        graph: Option<&crate::graph::Projection>,
        user_id: i64,
        capability: Capability,
        tor_id: i64,
    ) -> DomainResult<bool> {
        if !self.is_active() {
            return abac::may(db, graph, user_id, capability, tor_id).await;
        }
        if !self.tor_ids(db).await?.contains(&tor_id) {
            return Err(DomainError::NotFound(format!("ToR {tor_id}")));
        }
        let principal = self.principal(db, user_id).await?;
        let grants = principal
            .grants
            .get_or_try_init(|| abac::grants_pg(db, user_id))
            .await?;
        Ok(grants
            .iter()
            .any(|g| g.capability == capability && g.tor_id.is_none_or(|t| t == tor_id)))
    }

    /// [`governance::map`] (sorted), from the cache while it is active (the same answer: the
    /// equality is tested on generated data).
    pub async fn governance_map(
        &self,
        db: &PgPool,
        graph: Option<&crate::graph::Projection>,
    ) -> DomainResult<Arc<GovernanceMap>> {
        if !self.is_active() {
            return Ok(Arc::new(governance::map(db, graph).await?));
        }
        if let Some(map) = self.entries().governance.clone() {
            return Ok(map);
        }
        // From Postgres, never the graph: the projection may not have applied a change yet
        // whose notification already emptied this cache, and its answer would then stay.
        let read_at = self.generation();
        let map = Arc::new(governance::map_pg(db).await?.sorted());
        self.store(read_at, |entries| entries.governance = Some(map.clone()));
        Ok(map)
    }

    /// [`abac::grants`], from the cache while it is active.
    pub async fn grants(
        &self,
        db: &PgPool,
        graph: Option<&crate::graph::Projection>,
        user_id: i64,
    ) -> DomainResult<Vec<Grant>> {
        if !self.is_active() {
            return abac::grants(db, graph, user_id).await;
        }
        let principal = self.principal(db, user_id).await?;
        Ok(principal
            .grants
            .get_or_try_init(|| abac::grants_pg(db, user_id))
            .await?
            .clone())
    }

    /// Listens for changes until `stop`; the cache is active only while it listens.
    pub fn spawn_listener(
        self: &Arc<Self>,
        pool: PgPool,
        stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        tokio::spawn(listen(self.clone(), pool, stop))
    }

    /// Waits until every change committed before this call has reached the cache (for tests
    /// and tools that change the database behind the app's back). A barrier sent while the
    /// listener was away is sent again once it is back.
    pub async fn sync(&self, db: &PgPool) -> Result<(), sqlx::Error> {
        loop {
            self.wait_active().await;
            let token = self.next_barrier.fetch_add(1, Ordering::Relaxed);
            let arrived = self.barrier_arrived.notified();
            let changed = self.activity_changed.notified();
            tokio::pin!(arrived, changed);
            arrived.as_mut().enable();
            changed.as_mut().enable();
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(AUTH_CHANNEL)
                .bind(format!("{BARRIER_PREFIX}{token}"))
                .execute(db)
                .await?;
            loop {
                if self.barriers_seen_lock().remove(&token) {
                    return Ok(());
                }
                if !self.is_active() {
                    break;
                }
                tokio::select! {
                    _ = arrived.as_mut() => {
                        arrived.set(self.barrier_arrived.notified());
                        arrived.as_mut().enable();
                    }
                    _ = changed.as_mut() => {
                        changed.set(self.activity_changed.notified());
                        changed.as_mut().enable();
                    }
                }
            }
        }
    }

    fn barriers_seen_lock(&self) -> MutexGuard<'_, HashSet<u64>> {
        self.barriers_seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notified(&self, channel: &str, payload: &str) {
        if channel == AUTH_CHANNEL
            && let Some(token) = payload.strip_prefix(BARRIER_PREFIX)
        {
            if let Ok(token) = token.parse() {
                self.barriers_seen_lock().insert(token);
                self.barrier_arrived.notify_waiters();
            }
            return;
        }
        self.invalidate();
    }

    fn set_listening(&self, listening: bool) {
        // Emptied on both edges: what was cached before a gap may be stale after it.
        self.invalidate();
        self.listening.store(listening, Ordering::Release);
        self.invalidate();
        self.activity_changed.notify_waiters();
    }

    /// Waits until the listener listens (the cache answers from then on).
    pub async fn wait_active(&self) {
        self.wait_activity(true).await
    }

    /// Waits until [`AccessCache::is_active`] is `active`.
    pub async fn wait_activity(&self, active: bool) {
        loop {
            let changed = self.activity_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.is_active() == active {
                return;
            }
            changed.await;
        }
    }
}

async fn listen(cache: Arc<AccessCache>, pool: PgPool, mut stop: watch::Receiver<bool>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen_all([AUTH_CHANNEL, GRAPH_CHANNEL]).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            connected = connected => connected,
            _ = stop.wait_for(|s| *s) => return,
        };
        match listener.as_mut() {
            Ok(listener) => {
                delay = Duration::from_millis(100);
                cache.set_listening(true);
                loop {
                    let received = tokio::select! {
                        received = listener.try_recv() => received,
                        _ = stop.wait_for(|s| *s) => {
                            cache.set_listening(false);
                            return;
                        }
                    };
                    match received {
                        Ok(Some(n)) => cache.notified(n.channel(), n.payload()),
                        // Lost: what was notified meanwhile is unknown. Reconnect afresh.
                        Ok(None) | Err(_) => break,
                    }
                }
                tracing::warn!(
                    "access cache: LISTEN connection lost; bypassing the cache until it is back"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "access cache: cannot LISTEN; bypassing the cache")
            }
        }
        cache.set_listening(false);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Empties `cache` after every request that may have written (any method but GET, HEAD and
/// OPTIONS), before its response leaves: the writer's next read sees its own change.
pub async fn invalidate_after_writes(
    axum::extract::State(cache): axum::extract::State<Arc<AccessCache>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let safe = request.method().is_safe();
    let response = next.run(request).await;
    if !safe {
        cache.invalidate();
    }
    response
}
