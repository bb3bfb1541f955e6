//! Why a reconcile pass failed: one error type per step, each naming what it worked on.
//! [`Error::step`] is the bounded `reason` label of the failure metric; [`Error::reason`] is
//! the condition reason users see (the database's own reasons, `Kube` for API failures).

use super::provision::ProvisionError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("observe: {0}")]
    Observe(#[from] ObserveError),
    #[error("database: {0}")]
    Database(#[from] DatabaseStepError),
    #[error("apply: {0}")]
    Apply(#[from] ApplyError),
    #[error("status: {0}")]
    Status(#[from] StatusError),
    #[error("finalizer: {0}")]
    Finalizer(#[from] FinalizerError),
    #[error("graph: {0}")]
    Graph(#[from] GraphError),
    /// The AhltEnvironment lacks metadata the API server always sets (uid, namespace).
    #[error("the AhltEnvironment is missing metadata.{0}")]
    MissingMetadata(&'static str),
}

/// A read of an input or child failed.
#[derive(Debug, thiserror::Error)]
#[error("reading {kind} {namespace}/{name} failed: {source}")]
pub struct ObserveError {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    #[source]
    pub source: Box<kube::Error>,
}

/// The database step: credentials, the database Secret, the role and database.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseStepError {
    /// The Secret named by `spec.database.adminSecretRef` does not exist.
    #[error("admin Secret {namespace}/{name} not found")]
    AdminSecretNotFound { namespace: String, name: String },
    /// Creating or dropping the database failed.
    #[error("{0}")]
    Provision(ProvisionError),
    /// Reading the admin Secret failed.
    #[error("{0}")]
    Observe(ObserveError),
    /// Writing the database Secret failed.
    #[error("{0}")]
    Secret(ApplyError),
}

/// A write of a child failed.
#[derive(Debug, thiserror::Error)]
#[error("{verb} {kind} {name} failed: {source}")]
pub struct ApplyError {
    /// `apply`, `create` or `delete`.
    pub verb: &'static str,
    pub kind: &'static str,
    pub name: String,
    #[source]
    pub source: Box<kube::Error>,
}

/// The status write failed.
#[derive(Debug, thiserror::Error)]
#[error("writing the status of {name} failed: {source}")]
pub struct StatusError {
    pub name: String,
    #[source]
    pub source: Box<kube::Error>,
}

/// Adding or removing the finalizer failed.
#[derive(Debug, thiserror::Error)]
#[error("{action} the finalizer of {name} failed: {source}")]
pub struct FinalizerError {
    /// `adding` or `removing`.
    pub action: &'static str,
    pub name: String,
    #[source]
    pub source: Box<kube::Error>,
}

/// The graph step: reading its Job or credentials, or creating the Job.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{0}")]
    Observe(ObserveError),
    #[error("{0}")]
    Apply(ApplyError),
}

/// The kind of a child as the `&'static str` errors carry (every kind the operator reads or
/// writes has a static kind; anything else is named `object`).
pub fn kind_of<K: kube::Resource<DynamicType = ()>>() -> &'static str {
    const KINDS: [&str; 8] = [
        "ConfigMap",
        "Secret",
        "Service",
        "Deployment",
        "Ingress",
        "Job",
        "HTTPRoute",
        "Gateway",
    ];
    let kind = K::kind(&());
    KINDS.into_iter().find(|k| *k == kind).unwrap_or("object")
}

/// Steps, as metric labels.
pub const STEPS: [&str; 7] = [
    "observe",
    "database",
    "apply",
    "status",
    "finalizer",
    "graph",
    "metadata",
];

impl Error {
    /// The step that failed: the bounded label of the failure metric.
    pub fn step(&self) -> &'static str {
        match self {
            Error::Observe(_) => STEPS[0],
            Error::Database(_) => STEPS[1],
            Error::Apply(_) => STEPS[2],
            Error::Status(_) => STEPS[3],
            Error::Finalizer(_) => STEPS[4],
            Error::Graph(_) => STEPS[5],
            Error::MissingMetadata(_) => STEPS[6],
        }
    }

    /// The condition reason: the database's bounded reasons, `Kube` for API failures.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Database(DatabaseStepError::AdminSecretNotFound { .. }) => "AdminSecretNotFound",
            Error::Database(DatabaseStepError::Provision(e)) => e.reason,
            Error::MissingMetadata(_) => "MissingMetadata",
            _ => "Kube",
        }
    }

    /// A failure of the Kubernetes API (network, server, conflict) rather than of an
    /// external system or the spec: retried soon, since it heals on its own.
    pub fn is_api_failure(&self) -> bool {
        self.reason() == "Kube"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> Box<kube::Error> {
        Box::new(kube::Error::Api(
            kube::core::Status::failure("the server refused it", "Conflict")
                .with_code(code)
                .boxed(),
        ))
    }

    #[test]
    fn errors_name_their_step_kind_object_and_keep_user_reasons() {
        let apply = Error::from(ApplyError {
            verb: "apply",
            kind: "Deployment",
            name: "dev".into(),
            source: api_error(409),
        });
        assert_eq!(apply.step(), "apply");
        assert_eq!(apply.reason(), "Kube");
        assert!(apply.is_api_failure());
        assert!(
            apply
                .to_string()
                .starts_with("apply: apply Deployment dev failed: "),
            "{apply}"
        );

        let observe = Error::from(ObserveError {
            kind: "Secret",
            namespace: "infra".into(),
            name: "pg-admin".into(),
            source: api_error(403),
        });
        assert_eq!(observe.step(), "observe");
        assert!(observe.to_string().contains("Secret infra/pg-admin"));

        let database = Error::from(DatabaseStepError::Provision(ProvisionError {
            reason: "Unreachable",
            message: "connection refused".into(),
            transient: true,
        }));
        assert_eq!(
            (database.step(), database.reason()),
            ("database", "Unreachable")
        );
        assert!(!database.is_api_failure());
        let secret = Error::from(DatabaseStepError::AdminSecretNotFound {
            namespace: "infra".into(),
            name: "pg".into(),
        });
        assert_eq!(secret.reason(), "AdminSecretNotFound");
        for e in [&apply, &observe, &database, &secret] {
            assert!(STEPS.contains(&e.step()));
        }
    }
}
