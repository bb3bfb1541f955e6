//! From an `AhltEnvironment` to a [`ValidatedEnv`]: defaults applied (per profile), names
//! derived, and the checks the schema cannot express. Pure: no API calls.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;

use crate::crd::{AhltEnvironment, DeletionPolicy, EnvironmentProfile, IssuerKind, PullPolicy};
use crate::names;

/// Longest AhltEnvironment name: leaves room for child-name suffixes within 63 characters.
pub const MAX_NAME_LEN: usize = 40;

/// A spec with every default applied; what builders and the reconciler work from.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedEnv {
    pub name: String,
    pub namespace: String,
    pub generation: i64,
    pub profile: EnvironmentProfile,
    /// `repository:tag`.
    pub image: String,
    pub pull_policy: PullPolicy,
    pub pull_secrets: Vec<String>,
    pub replicas: i32,
    pub resources: ResourceRequirements,
    pub suspend: bool,
    pub database: DatabasePlan,
    pub migrations: MigrationsPlan,
    pub ingress: Option<IngressPlan>,
    pub route: Option<RoutePlan>,
    pub graph: Option<GraphPlan>,
    pub app: AppPlan,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatabasePlan {
    pub name: String,
    pub role: String,
    pub admin_secret_namespace: String,
    pub admin_secret_name: String,
    pub deletion_policy: DeletionPolicy,
    /// Secret the operator writes with DATABASE_URL and its parts.
    pub secret_name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MigrationsPlan {
    pub timeout_seconds: i64,
    pub backoff_limit: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IngressPlan {
    pub host: String,
    pub class_name: Option<String>,
    pub annotations: BTreeMap<String, String>,
    pub tls: Option<TlsPlan>,
}

/// A Gateway API HTTPRoute.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutePlan {
    pub parents: Vec<RouteParent>,
    pub hostnames: Vec<String>,
    pub path_prefix: String,
    /// `spec.route.tls`: HTTPS when the Gateway cannot be read.
    pub tls_hint: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteParent {
    pub name: String,
    pub namespace: String,
    pub section_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TlsPlan {
    /// An existing Secret.
    Secret { secret_name: String },
    /// cert-manager issues into `secret_name`.
    Issuer {
        name: String,
        kind: IssuerKind,
        secret_name: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct GraphPlan {
    pub uri: String,
    pub credentials_secret: Option<String>,
    pub resync_on_rollout: bool,
    pub resync_request: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppPlan {
    pub log_level: String,
    pub cookie_secure: bool,
    pub extra_env: Vec<EnvVar>,
}

impl ValidatedEnv {
    /// Where users reach the environment, when it has an ingress or a route (for a route,
    /// from the `tls` hint; the reconciler reads the Gateway's listener when it can).
    pub fn url(&self) -> Option<String> {
        if let Some(route) = &self.route {
            return Some(route.url(route.tls_hint));
        }
        self.ingress.as_ref().map(|i| {
            format!(
                "{}://{}",
                if i.tls.is_some() { "https" } else { "http" },
                i.host
            )
        })
    }

    /// Whether a proxy (ingress controller or gateway) sits in front of the pods.
    pub fn exposed(&self) -> bool {
        self.ingress.is_some() || self.route.is_some()
    }
}

impl RoutePlan {
    /// The URL of the first host name, with the path prefix.
    pub fn url(&self, https: bool) -> String {
        let prefix = self.path_prefix.trim_end_matches('/');
        format!(
            "{}://{}{prefix}",
            if https { "https" } else { "http" },
            self.hostnames
                .first()
                .map(String::as_str)
                .unwrap_or_default()
        )
    }
}

/// Why a spec cannot be reconciled; the variant name is the condition reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("metadata.name {0:?} is longer than {MAX_NAME_LEN} characters")]
    NameTooLong(String),
    #[error("the AhltEnvironment has no namespace")]
    MissingNamespace,
    #[error(
        "the default database name {0:?} derived from metadata.name is not a valid identifier; set spec.database.name"
    )]
    InvalidDatabaseName(String),
    #[error("{0}")]
    InvalidSpec(String),
}

impl ValidationError {
    /// Every reason [`Self::reason`] returns.
    pub const REASONS: [&'static str; 4] = [
        "NameTooLong",
        "MissingNamespace",
        "InvalidDatabaseName",
        "InvalidSpec",
    ];

    /// Bounded, CamelCase reason for conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ValidationError::NameTooLong(_) => "NameTooLong",
            ValidationError::MissingNamespace => "MissingNamespace",
            ValidationError::InvalidDatabaseName(_) => "InvalidDatabaseName",
            ValidationError::InvalidSpec(_) => "InvalidSpec",
        }
    }
}

fn is_sql_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && s.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

fn quantity(s: &str) -> Quantity {
    Quantity(s.to_owned())
}

/// Requests and limits per profile: prod gets headroom, previews stay small.
pub fn default_resources(profile: EnvironmentProfile) -> ResourceRequirements {
    let (cpu_req, mem_req, mem_limit) = match profile {
        EnvironmentProfile::Prod => ("250m", "256Mi", "512Mi"),
        EnvironmentProfile::Staging => ("100m", "128Mi", "384Mi"),
        EnvironmentProfile::Dev | EnvironmentProfile::Preview => ("50m", "96Mi", "256Mi"),
    };
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".into(), quantity(cpu_req)),
            ("memory".into(), quantity(mem_req)),
        ])),
        limits: Some(BTreeMap::from([("memory".into(), quantity(mem_limit))])),
        ..Default::default()
    }
}

pub fn default_replicas(profile: EnvironmentProfile) -> i32 {
    if profile == EnvironmentProfile::Prod {
        2
    } else {
        1
    }
}

pub fn validate(env: &AhltEnvironment) -> Result<ValidatedEnv, ValidationError> {
    let name = env.name_any();
    if name.len() > MAX_NAME_LEN {
        return Err(ValidationError::NameTooLong(name));
    }
    let namespace = env.namespace().ok_or(ValidationError::MissingNamespace)?;
    let spec = &env.spec;
    let profile = spec.environment;

    let db_name = match &spec.database.name {
        Some(n) => n.clone(),
        None => format!("ahlt_{}", name.replace(['-', '.'], "_")),
    };
    if !is_sql_identifier(&db_name) {
        return Err(ValidationError::InvalidDatabaseName(db_name));
    }
    let role = spec
        .database
        .role
        .clone()
        .unwrap_or_else(|| db_name.clone());
    if !is_sql_identifier(&role) {
        return Err(ValidationError::InvalidSpec(format!(
            "database.role {role:?} is not a valid identifier"
        )));
    }

    let ingress = spec.ingress.as_ref().map(|i| IngressPlan {
        host: i.host.clone(),
        class_name: i.class_name.clone(),
        annotations: i.annotations.clone().unwrap_or_default(),
        tls: i
            .tls
            .as_ref()
            .and_then(|t| match (&t.secret_name, &t.issuer_ref) {
                (Some(secret_name), None) => Some(TlsPlan::Secret {
                    secret_name: secret_name.clone(),
                }),
                (None, Some(issuer)) => Some(TlsPlan::Issuer {
                    name: issuer.name.clone(),
                    kind: issuer.kind,
                    secret_name: names::tls_secret(&name),
                }),
                // Both or neither: the schema's CEL rule refuses it; treat as invalid defensively.
                _ => None,
            }),
    });
    if let Some(tls) = spec.ingress.as_ref().and_then(|i| i.tls.as_ref())
        && tls.secret_name.is_some() == tls.issuer_ref.is_some()
    {
        return Err(ValidationError::InvalidSpec(
            "ingress.tls needs exactly one of secretName or issuerRef".into(),
        ));
    }

    if spec.ingress.is_some() && spec.route.is_some() {
        return Err(ValidationError::InvalidSpec(
            "set spec.ingress or spec.route, not both".into(),
        ));
    }
    let route = spec.route.as_ref().map(|r| RoutePlan {
        parents: r
            .parent_refs
            .iter()
            .map(|p| RouteParent {
                name: p.name.clone(),
                namespace: p.namespace.clone().unwrap_or_else(|| namespace.clone()),
                section_name: p.section_name.clone(),
            })
            .collect(),
        hostnames: r.hostnames.clone(),
        path_prefix: r.path_prefix.clone().unwrap_or_else(|| "/".into()),
        tls_hint: r.tls.unwrap_or(false),
    });
    if route
        .as_ref()
        .is_some_and(|r| r.parents.is_empty() || r.hostnames.is_empty())
    {
        return Err(ValidationError::InvalidSpec(
            "route needs at least one parentRef and one hostname".into(),
        ));
    }
    let app = spec.app.clone().unwrap_or_default();
    let env_vars = app.env.as_deref().unwrap_or_default();
    for (i, var) in env_vars.iter().enumerate() {
        if crate::build::env_vars::MANAGED.contains(&var.name.as_str()) {
            return Err(ValidationError::InvalidSpec(format!(
                "app.env sets {}, which the operator manages",
                var.name
            )));
        }
        if env_vars[..i].iter().any(|earlier| earlier.name == var.name) {
            return Err(ValidationError::InvalidSpec(format!(
                "app.env sets {} twice",
                var.name
            )));
        }
    }
    let has_tls = ingress.as_ref().is_some_and(|i| i.tls.is_some())
        || route.as_ref().is_some_and(|r| r.tls_hint);
    Ok(ValidatedEnv {
        generation: env.metadata.generation.unwrap_or_default(),
        profile,
        image: spec.image.reference(),
        pull_policy: spec.image.pull_policy.unwrap_or(PullPolicy::IfNotPresent),
        pull_secrets: spec.image.pull_secrets.clone().unwrap_or_default(),
        replicas: spec.replicas.unwrap_or_else(|| default_replicas(profile)),
        resources: spec
            .resources
            .clone()
            .unwrap_or_else(|| default_resources(profile)),
        suspend: spec.suspend.unwrap_or(false),
        database: DatabasePlan {
            secret_name: names::database_secret(&name),
            name: db_name,
            role,
            admin_secret_namespace: spec
                .database
                .admin_secret_ref
                .namespace
                .clone()
                .unwrap_or_else(|| namespace.clone()),
            admin_secret_name: spec.database.admin_secret_ref.name.clone(),
            deletion_policy: spec.database.deletion_policy.unwrap_or_default(),
        },
        migrations: MigrationsPlan {
            timeout_seconds: spec
                .migrations
                .as_ref()
                .and_then(|m| m.timeout_seconds)
                .unwrap_or(600),
            backoff_limit: spec
                .migrations
                .as_ref()
                .and_then(|m| m.backoff_limit)
                .unwrap_or(0),
        },
        graph: spec.graph.as_ref().map(|g| GraphPlan {
            uri: g.uri.clone(),
            credentials_secret: g.credentials_secret_ref.as_ref().map(|s| s.name.clone()),
            resync_on_rollout: g.resync_on_rollout.unwrap_or(true),
            resync_request: g.resync_request.clone(),
        }),
        app: AppPlan {
            log_level: app.log_level.unwrap_or_else(|| "info".into()),
            cookie_secure: app.cookie_secure.unwrap_or(has_tls),
            extra_env: app.env.unwrap_or_default(),
        },
        ingress,
        route,
        name,
        namespace,
    })
}
