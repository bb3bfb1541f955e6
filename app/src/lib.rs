//! ahlt: a governance web app on an EAV ontology in PostgreSQL.

pub mod local_postgres;
#[cfg(feature = "testing")]
pub mod testing;
