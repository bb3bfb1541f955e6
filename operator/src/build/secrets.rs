//! The per-environment Secrets and the generators of their values.
//!
//! Values go into `data` (bytes), never `stringData`: the API server converts `stringData`
//! into `data`, so applying `stringData` would differ from what is stored on every pass.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use rand::RngCore;
use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;

use super::env_vars::{ADMIN_PASSWORD, DATABASE_URL, SESSION_KEY};
use super::metadata;
use crate::names;
use crate::validate::ValidatedEnv;

/// Keys of the database Secret besides DATABASE_URL.
pub mod keys {
    pub const HOST: &str = "host";
    pub const PORT: &str = "port";
    pub const DATABASE: &str = "database";
    pub const USERNAME: &str = "username";
    pub const PASSWORD: &str = "password";
    pub const SSLMODE: &str = "sslmode";
}

/// The parts of DATABASE_URL, stored next to it for tools that want them separately.
/// `Debug` redacts the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseSecretParts {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub username: String,
    pub password: String,
    pub sslmode: Option<String>,
}

impl std::fmt::Debug for DatabaseSecretParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSecretParts")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("sslmode", &self.sslmode)
            .finish()
    }
}

fn bytes(s: &str) -> ByteString {
    ByteString(s.as_bytes().to_vec())
}

fn opaque(
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    data: BTreeMap<String, ByteString>,
) -> Secret {
    Secret {
        metadata,
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}

/// Keys DATABASE_URL, host, port, database, username, password, and sslmode when known.
pub fn database_secret(
    env: &ValidatedEnv,
    owner: &OwnerReference,
    url: &str,
    parts: DatabaseSecretParts,
) -> Secret {
    let mut data = BTreeMap::from([
        (DATABASE_URL.to_owned(), bytes(url)),
        (keys::HOST.to_owned(), bytes(&parts.host)),
        (keys::PORT.to_owned(), bytes(&parts.port.to_string())),
        (keys::DATABASE.to_owned(), bytes(&parts.database)),
        (keys::USERNAME.to_owned(), bytes(&parts.username)),
        (keys::PASSWORD.to_owned(), bytes(&parts.password)),
    ]);
    if let Some(sslmode) = &parts.sslmode {
        data.insert(keys::SSLMODE.to_owned(), bytes(sslmode));
    }
    opaque(
        metadata(env, owner, env.database.secret_name.clone(), None),
        data,
    )
}

/// Keys SESSION_KEY and ADMIN_PASSWORD.
pub fn app_secret(
    env: &ValidatedEnv,
    owner: &OwnerReference,
    session_key: &str,
    admin_password: &str,
) -> Secret {
    opaque(
        metadata(env, owner, names::app_secret(&env.name), None),
        BTreeMap::from([
            (SESSION_KEY.to_owned(), bytes(session_key)),
            (ADMIN_PASSWORD.to_owned(), bytes(admin_password)),
        ]),
    )
}

/// 384 random bits from the OS, URL-safe base64 (64 characters; the app needs >= 32 bytes).
pub fn generate_session_key() -> String {
    let mut key = [0u8; 48];
    OsRng.fill_bytes(&mut key);
    URL_SAFE_NO_PAD.encode(key)
}

/// 24 alphanumeric characters from the OS (~142 bits): typeable, within the app's length rules.
pub fn generate_admin_password() -> String {
    Alphanumeric.sample_string(&mut OsRng, 24)
}

/// 32 alphanumeric characters from the OS (~190 bits): safe unescaped in a URL and in SQL
/// string literals, though callers still bind or quote it.
pub fn generate_database_password() -> String {
    Alphanumeric.sample_string(&mut OsRng, 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::testing::*;

    fn parts() -> DatabaseSecretParts {
        DatabaseSecretParts {
            host: "postgres.ahlt-infra.svc".into(),
            port: 5432,
            database: "ahlt_staging".into(),
            username: "ahlt_staging_rw".into(),
            password: "s3cret-pw-value".into(),
            sslmode: Some("verify-full".into()),
        }
    }

    fn text(secret: &Secret, key: &str) -> String {
        String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
    }

    #[test]
    fn the_database_secret_holds_the_url_and_every_part() {
        let s = database_secret(&full(), &owner(), "postgres://u:p@h:5432/d", parts());
        assert_eq!(s.metadata.name.as_deref(), Some("staging-db"));
        assert_eq!(s.type_.as_deref(), Some("Opaque"));
        assert!(s.string_data.is_none());
        assert_eq!(text(&s, "DATABASE_URL"), "postgres://u:p@h:5432/d");
        assert_eq!(text(&s, "host"), "postgres.ahlt-infra.svc");
        assert_eq!(text(&s, "port"), "5432");
        assert_eq!(text(&s, "database"), "ahlt_staging");
        assert_eq!(text(&s, "username"), "ahlt_staging_rw");
        assert_eq!(text(&s, "password"), "s3cret-pw-value");
        assert_eq!(text(&s, "sslmode"), "verify-full");
        assert_eq!(s.data.as_ref().unwrap().len(), 7);
    }

    #[test]
    fn an_unknown_sslmode_is_left_out() {
        let s = database_secret(
            &full(),
            &owner(),
            "postgres://x",
            DatabaseSecretParts {
                sslmode: None,
                ..parts()
            },
        );
        assert!(!s.data.unwrap().contains_key("sslmode"));
    }

    #[test]
    fn the_app_secret_holds_session_key_and_admin_password() {
        let s = app_secret(&full(), &owner(), &"k".repeat(64), "admin-pass-123");
        assert_eq!(s.metadata.name.as_deref(), Some("staging-app"));
        assert_eq!(s.type_.as_deref(), Some("Opaque"));
        assert!(s.string_data.is_none());
        assert_eq!(text(&s, "SESSION_KEY"), "k".repeat(64));
        assert_eq!(text(&s, "ADMIN_PASSWORD"), "admin-pass-123");
        assert_eq!(s.data.unwrap().len(), 2);
    }

    #[test]
    fn generated_values_are_long_enough_and_fresh_each_time() {
        let key = generate_session_key();
        assert_eq!(key.len(), 64);
        assert_ne!(key, generate_session_key());

        let admin = generate_admin_password();
        assert_eq!(admin.len(), 24);
        assert!(admin.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(admin, generate_admin_password());

        let db = generate_database_password();
        assert_eq!(db.len(), 32);
        assert!(db.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(db, generate_database_password());
    }

    #[test]
    fn debug_output_of_the_parts_hides_the_password() {
        let text = format!("{:?}", parts());
        assert!(!text.contains("s3cret-pw-value"), "{text}");
        assert!(text.contains("postgres.ahlt-infra.svc"));
    }
}
