//! Why a reconcile pass failed. Variant names are bounded: they are the `reason` label of
//! the failure metric and, for external causes, the condition reason.

use super::provision::ProvisionError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API request failed.
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[source] kube::Error),

    /// The Secret named by `spec.database.adminSecretRef` does not exist.
    #[error("admin Secret {namespace}/{name} not found")]
    AdminSecretNotFound { namespace: String, name: String },

    /// Creating or dropping the database failed.
    #[error("{0}")]
    Database(ProvisionError),

    /// The AhltEnvironment lacks metadata the API server always sets (uid, namespace).
    #[error("the AhltEnvironment is missing metadata.{0}")]
    MissingMetadata(&'static str),

    /// An object could not be serialized for a request.
    #[error("cannot serialize an object: {0}")]
    Serialize(#[source] serde_json::Error),
}

impl Error {
    /// Bounded label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "Kube",
            Error::AdminSecretNotFound { .. } => "AdminSecretNotFound",
            Error::Database(e) => e.reason,
            Error::MissingMetadata(_) => "MissingMetadata",
            Error::Serialize(_) => "Serialize",
        }
    }
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error::Kube(e)
    }
}
