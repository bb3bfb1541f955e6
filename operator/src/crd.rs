//! The `AhltEnvironment` custom resource (group `ahlt.io`, version `v1alpha1`).
//!
//! Doc comments become `kubectl explain` text. Validation lives in the schema: patterns,
//! ranges and enums through schemars, cross-field and transition rules as CEL
//! (`x-kubernetes-validations`), which `kube`'s `cel` feature also evaluates client-side.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Desired state of an ahlt environment. Defaults not set here come from the `environment`
/// profile; `kubectl wait --for=condition=Ready` tells when the operator has reached it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ahlt.io",
    version = "v1alpha1",
    kind = "AhltEnvironment",
    plural = "ahltenvironments",
    namespaced,
    status = "AhltEnvironmentStatus",
    shortname = "ahltenv",
    shortname = "ae",
    derive = "PartialEq",
    cel,
    doc = "An environment of the ahlt governance app (database and role, migrations, workload, ingress, graph projection), reconciled by ahlt-operator.",
    // Child names are `<name>-<suffix>` and must stay within 63 characters.
    validation = Rule::new(format!(
        "self.metadata.name.size() <= {}",
        crate::validate::MAX_NAME_LEN
    ))
    .message(Message::Message(format!(
        "metadata.name must be at most {} characters (names of owned objects derive from it)",
        crate::validate::MAX_NAME_LEN
    ))),
    validation = Rule::new("!has(self.spec.ingress) || !has(self.spec.route)")
        .message("set spec.ingress or spec.route, not both"),
    // The database identity is fixed for the environment's life, defaults included: a name
    // or role set later must equal what the environment already uses.
    validation = Rule::new(database_identity_rule("name"))
        .message("spec.database.name is fixed for the environment's life (the default is ahlt_ + metadata.name with - and . as _); see docs/operations.md to move an environment to another database"),
    validation = Rule::new(database_identity_rule("role"))
        .message("spec.database.role is fixed for the environment's life (the default is the database name); see docs/operations.md to move an environment to another database"),
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Env", type_ = "string", json_path = ".spec.environment"),
    printcolumn(name = "Image", type_ = "string", json_path = ".status.image"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AhltEnvironmentSpec {
    /// Environment profile, one of dev, staging, prod, preview. Sets APP_ENV and the defaults
    /// for replicas (prod: 2, others: 1) and resources.
    pub environment: EnvironmentProfile,

    /// The app image. CI bumps `tag` to roll out; the migrations run with the new image before
    /// any pod rolls, and a failed migration keeps the old image serving.
    pub image: ImageSpec,

    /// Number of app pods, 0 to 50. Default: 2 for prod, else 1. `kubectl scale` sets it
    /// through the scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 50))]
    pub replicas: Option<i32>,

    /// CPU and memory requests and limits of the app container. Default: per profile (prod:
    /// 250m CPU and 256Mi requested, 512Mi limit; staging: 100m, 128Mi, 384Mi; dev and
    /// preview: 50m, 96Mi, 256Mi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// When true the operator changes nothing for this environment (no DDL, Jobs or applies)
    /// and Ready reports the reason Suspended. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,

    /// The environment's PostgreSQL database and role, created by the operator with the
    /// admin credentials of `adminSecretRef`.
    pub database: DatabaseSpec,

    /// How the migration Job (`ahlt migrate` with the new image) runs. Default: a 600 second
    /// deadline and no retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrations: Option<MigrationsSpec>,

    /// Expose the app through an Ingress on its own host. Without it the app is reachable
    /// only through its Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,

    /// Expose the app through a Gateway API HTTPRoute (Istio, Traefik, Envoy Gateway, Cilium,
    /// cloud gateways) attached to existing Gateways. Exclusive with ingress; switching
    /// between them deletes the other object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteSpec>,

    /// The graph projection (Neo4j or FalkorDB) of this environment. Without it the app
    /// answers graph queries from PostgreSQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<GraphSpec>,

    /// Settings of the app container: log level, cookie security, extra environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppSpec>,
}

/// A transition rule at the root, where `metadata.name` is visible: the effective database
/// `field` (`name` or `role`, defaults applied as [`crate::validate`] applies them) must not
/// change.
fn database_identity_rule(field: &str) -> String {
    let name = |o: &str| {
        format!(
            "(has({o}.spec.database.name) ? {o}.spec.database.name : 'ahlt_' + {o}.metadata.name.replace('-', '_').replace('.', '_'))"
        )
    };
    let effective = |o: &str| match field {
        "role" => format!(
            "(has({o}.spec.database.role) ? {o}.spec.database.role : {})",
            name(o)
        ),
        _ => name(o),
    };
    format!("{} == {}", effective("self"), effective("oldSelf"))
}

/// Environment profile. Variant docs also keep `null` out of the schema's `enum` list when
/// the field is optional (schemars then emits `const` variants that kube folds into `enum`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EnvironmentProfile {
    /// A developer environment: one small pod.
    Dev,
    /// A pre-production environment.
    Staging,
    /// Production: two pods and more headroom.
    Prod,
    /// A short-lived environment, e.g. per merge request.
    Preview,
}

impl EnvironmentProfile {
    pub fn as_str(self) -> &'static str {
        match self {
            EnvironmentProfile::Dev => "dev",
            EnvironmentProfile::Staging => "staging",
            EnvironmentProfile::Prod => "prod",
            EnvironmentProfile::Preview => "preview",
        }
    }
}

/// The app image: `repository:tag`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Image repository without tag, lowercase, optionally with a registry host and port,
    /// e.g. registry.gitlab.com/acme/ahlt.
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
    )]
    pub repository: String,

    /// Image tag, e.g. a commit SHA: letters, digits, `_`, `.` and `-`, at most 128
    /// characters, not starting with `.` or `-`. CI bumps it to roll out a new version.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    )]
    pub tag: String,

    /// Image pull policy: Always, IfNotPresent or Never. Default: IfNotPresent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,

    /// Names of image pull Secrets (kubernetes.io/dockerconfigjson) in the environment's
    /// namespace, at most 16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 16),
        inner(
            length(min = 1, max = 253),
            regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
        )
    )]
    pub pull_secrets: Option<Vec<String>>,
}

impl ImageSpec {
    /// `repository:tag`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

/// When the kubelet pulls the image.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum PullPolicy {
    /// Pull on every pod start.
    Always,
    /// Pull only when the node does not have the image.
    IfNotPresent,
    /// Never pull; the image must be on the node.
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// The environment's database. The operator creates the role and database with the admin
/// credentials and keeps the generated password in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("!has(oldSelf.name) || (has(self.name) && self.name == oldSelf.name)").message("database.name is immutable once set"),
    validation = Rule::new("!has(oldSelf.role) || (has(self.role) && self.role == oldSelf.role)").message("database.role is immutable once set")
)]
pub struct DatabaseSpec {
    /// Secret with the PostgreSQL admin credentials: keys host, port, username, password,
    /// and optionally sslmode and database (the maintenance database, default postgres).
    pub admin_secret_ref: SecretReference,

    /// PostgreSQL database name: lowercase letters, digits and `_`, starting with a letter or
    /// `_`, at most 63 characters. Default: `ahlt_` + metadata.name with `-` and `.` as `_`.
    /// Immutable once set: renaming would orphan the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z_][a-z0-9_]{0,62}$"))]
    pub name: Option<String>,

    /// PostgreSQL role (login user) that owns the database; same rules as `name`. Default:
    /// the database name. Immutable once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z_][a-z0-9_]{0,62}$"))]
    pub role: Option<String>,

    /// What happens to the database and role when the AhltEnvironment is deleted: Retain
    /// keeps them, Delete drops them. Default: Retain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// A Secret, by default in the AhltEnvironment's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// Secret name (a DNS subdomain name).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Secret namespace. Default: the AhltEnvironment's namespace. Another namespace needs
    /// the operator to be allowed to read Secrets there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
}

/// A Secret in the AhltEnvironment's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
pub struct LocalSecretReference {
    /// Secret name (a DNS subdomain name).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}

/// What happens to the database and role when the AhltEnvironment is deleted.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum DeletionPolicy {
    /// Keep the database and role (the default).
    #[default]
    Retain,
    /// Drop the database and role.
    Delete,
}

/// Migration Job settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationsSpec {
    /// Deadline of the migration Job in seconds, 30 to 86400. Default: 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 30, max = 86400))]
    pub timeout_seconds: Option<i64>,
    /// Retries of a failed migration Job, 0 to 10. Default: 0 (a failed migration is reported,
    /// not retried, until the image changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub backoff_limit: Option<i32>,
}

/// Ingress for the app.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(cel)]
pub struct IngressSpec {
    /// Host name users reach the app on, a lowercase DNS name without trailing dot, e.g.
    /// dev.local or app.example.org.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$')").message("ingress.host must be a lowercase DNS name"))]
    pub host: String,

    /// IngressClass name (nginx, traefik, ...). Default: the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub class_name: Option<String>,

    /// Extra annotations on the Ingress, e.g. settings of the ingress controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,

    /// Serve HTTPS: from an existing Secret, or from a certificate cert-manager issues.
    /// Without it the Ingress serves plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
}

/// A Gateway API HTTPRoute for the app, pointing at its Service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec {
    /// The Gateways (or their listeners, by sectionName) the route attaches to, 1 to 8. A
    /// Gateway in another namespace must allow routes from this one (allowedRoutes).
    #[schemars(length(min = 1, max = 8))]
    pub parent_refs: Vec<RouteParentRef>,

    /// Host names users reach the app on, 1 to 16 lowercase DNS names, e.g. dev.example.org.
    /// status.url uses the first.
    #[schemars(
        length(min = 1, max = 16),
        inner(
            length(min = 1, max = 253),
            regex(
                pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
            )
        )
    )]
    pub hostnames: Vec<String>,

    /// Path prefix the app is served under, starting with `/`. Default: `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/[^\s]*$"))]
    pub path_prefix: Option<String>,

    /// Whether users reach the route over HTTPS, for status.url and COOKIE_SECURE when the
    /// operator cannot read the Gateway (e.g. no RBAC in the Gateway's namespace). When it can,
    /// the listener's protocol decides. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
}

/// A Gateway the route attaches to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentRef {
    /// Gateway name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Gateway namespace. Default: the AhltEnvironment's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
    /// One listener of the Gateway, by name. Default: every listener that accepts the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub section_name: Option<String>,
}

/// Exactly one of `secretName` (an existing certificate, e.g. from mkcert) or `issuerRef`
/// (cert-manager issues the certificate into `<name>-tls`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(cel, validation = Rule::new("has(self.secretName) != has(self.issuerRef)").message("tls needs exactly one of secretName or issuerRef"))]
pub struct TlsSpec {
    /// An existing kubernetes.io/tls Secret in the environment's namespace (e.g. made with
    /// mkcert). Exclusive with issuerRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub secret_name: Option<String>,
    /// A cert-manager Issuer or ClusterIssuer that issues the certificate into the Secret
    /// `<metadata.name>-tls`. Exclusive with secretName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<IssuerRef>,
}

/// A cert-manager issuer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
pub struct IssuerRef {
    /// Name of the Issuer (in the environment's namespace) or ClusterIssuer.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Issuer or ClusterIssuer.
    pub kind: IssuerKind,
}

/// The kind of a cert-manager issuer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum IssuerKind {
    /// A namespaced cert-manager Issuer.
    Issuer,
    /// A cluster-wide cert-manager ClusterIssuer.
    ClusterIssuer,
}

/// The graph projection. PostgreSQL stays the source of truth; the graph is namespaced per
/// environment, so one server can serve several environments.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphSpec {
    /// Graph server URI: bolt:// or neo4j:// (Neo4j; +s and +ssc for TLS) or falkor:// or
    /// falkors:// (FalkorDB), e.g. bolt://neo4j.infra:7687.
    #[schemars(
        length(min = 1, max = 2048),
        regex(pattern = r"^(bolt|neo4j)(\+s|\+ssc)?://[^\s/]+(/.*)?$|^falkors?://[^\s/]+(/.*)?$")
    )]
    pub uri: String,
    /// Secret in the environment's namespace with keys username and password for the graph
    /// server. Default: connect without credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<LocalSecretReference>,
    /// Rebuild the environment's graph from PostgreSQL after every successful rollout.
    /// Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resync_on_rollout: Option<bool>,
    /// Any new value (e.g. a timestamp) asks for one resync; status.graph.lastResyncRequest
    /// records the value served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub resync_request: Option<String>,
}

/// Settings of the app container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(cel)]
pub struct AppSpec {
    /// RUST_LOG filter: letters, digits and `_:=,.-`, e.g. info or info,ahlt=debug.
    /// Default: info.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), regex(pattern = r"^[A-Za-z0-9_:=,.\-]+$"))]
    pub log_level: Option<String>,
    /// COOKIE_SECURE: send session cookies only over HTTPS. Default: true when the ingress
    /// has TLS, else false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_secure: Option<bool>,
    /// Extra environment variables for the app container, at most 100, each name once (a
    /// duplicate is reported as InvalidSpec). The variables the operator manages (APP_ENV, RUST_LOG, LOG_FORMAT, COOKIE_SECURE,
    /// AHLT_ENV_NAME, PORT, TRUST_FORWARDED_FOR, GRAPH_URI, GRAPH_USERNAME, GRAPH_PASSWORD,
    /// DATABASE_URL, SESSION_KEY, ADMIN_PASSWORD) are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    #[x_kube(validation = Rule::new(crate::build::env_vars::reserved_rule()).message("app.env must not set variables the operator manages"))]
    pub env: Option<Vec<EnvVar>>,
}

/// Observed state, written by the operator. Every condition carries the generation it
/// describes, so a stale Ready never passes `kubectl wait`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AhltEnvironmentStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions: Ready (the environment serves the spec's image), DatabaseReady,
    /// MigrationsApplied, WorkloadAvailable, IngressReady, GraphSynced.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Where users reach the environment (from the ingress host; https with TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The image actually serving; changes only after the new pods are available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The last image whose migrations succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrated_image: Option<String>,
    /// Available app pods (for the scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Label selector of the app pods (for the scale subresource and HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The database and role the operator provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseStatus>,
    /// The last graph resync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<GraphStatus>,
}

/// The provisioned database.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseStatus {
    /// Database name.
    pub name: String,
    /// Role (login user) name.
    pub role: String,
    /// Secret holding DATABASE_URL and its parts (host, port, database, username, password).
    pub secret_name: String,
}

/// The last graph resync: what it served, so a resync runs once per image and request even
/// after its Job has been garbage-collected.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphStatus {
    /// The spec.graph.resyncRequest value the last successful resync served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_resync_request: Option<String>,
    /// When the last successful resync finished (RFC 3339; the Job's completionTime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_resync_time: Option<String>,
    /// The image the last successful resync ran with. With resyncOnRollout, a resync runs
    /// when status.image differs from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_resync_image: Option<String>,
    /// The resync Job that failed last. It is not created again, even once garbage-collected;
    /// a new spec.graph.resyncRequest or a new image starts a new Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_job: Option<String>,
}
