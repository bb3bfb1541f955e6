//! `ahlt serve`: resolve configuration, connect (or start the embedded PostgreSQL), serve.

use anyhow::{Context, bail};
use tokio::net::TcpListener;

use crate::auth::session::SessionKey;
use crate::config::{AppConfig, AppEnv, CommonArgs, LoginLimits, ServeArgs};
use crate::db;
use crate::http::{AppState, router};

pub async fn serve(common: CommonArgs, args: ServeArgs) -> anyhow::Result<()> {
    let Some(database_url) = common.database_url.as_deref().filter(|u| !u.is_empty()) else {
        bail!("the embedded default (serve without DATABASE_URL) is not wired up yet");
    };
    let session_key = match (&args.session_key, args.app_env) {
        (Some(secret), _) => SessionKey::from_secret(secret).map_err(anyhow::Error::msg)?,
        (None, AppEnv::Dev) => {
            tracing::warn!(
                "SESSION_KEY is not set: using a random key; sessions end when this process does"
            );
            SessionKey::random()
        }
        (None, _) => bail!("SESSION_KEY must be set (at least 32 bytes) when APP_ENV is not dev"),
    };
    let pool = db::connect(database_url, args.max_connections)
        .await
        .context("connecting to the database")?;
    // In a cluster `serve` never migrates: the operator's migration Job does, and /readyz says so until then.
    match db::schema_status(&pool).await {
        Ok(status) if !status.is_current() => {
            tracing::warn!(%status, "database schema is not current")
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the schema status"),
        Ok(_) => {}
    }
    let config = AppConfig {
        app_env: args.app_env,
        env_name: args.env_name.clone(),
        cookie_secure: args.cookie_secure.unwrap_or(args.app_env != AppEnv::Dev),
        trust_forwarded_for: args.trust_forwarded_for,
        login_limits: LoginLimits::default(),
    };
    let state = AppState::new(pool, config);
    let app = router(state, &session_key);
    let listener = TcpListener::bind((args.bind, args.port))
        .await
        .with_context(|| format!("binding port {}", args.port))?;
    tracing::info!(address = %listener.local_addr()?, "serving");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await?;
    Ok(())
}
