//! Reads what exists: the admin Secret and every child, by name. Pure helpers then turn
//! Jobs and Deployments into the observations status is computed from.
//!
//! Two reads stay live whatever the caches hold, because they decide what cannot be undone:
//! the admin Secret (often in another namespace and never labelled, so not watched; its
//! credentials say which server the database is created on) and the database Secret (the
//! rename check reads the database and role it names, and it holds the role's only
//! password: a copy missing from a lagging cache would have a new password generated and
//! the role re-keyed). Every other child comes from its watch cache ([`super::cache`]).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;

use super::cache::Reader;
use super::error::{ObserveError, kind_of};
use super::status::{MigrationObservation, WorkloadObservation};
use crate::gateway::HTTPRoute;
use crate::names;
use crate::validate::ValidatedEnv;

/// The `data` of a Secret, keyed by name.
pub type AdminSecretData = std::collections::BTreeMap<String, Vec<u8>>;

/// The children and inputs of one environment as the API server (or its cache) has them.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub admin_secret: Option<Secret>,
    pub database_secret: Option<Secret>,
    pub app_secret: Option<Secret>,
    pub config_map: Option<ConfigMap>,
    /// The migration Job of the spec image.
    pub migration_job: Option<Job>,
    pub deployment: Option<Deployment>,
    pub service: Option<Service>,
    /// Read only when the cluster serves the Gateway API.
    pub route: Option<HTTPRoute>,
    pub ingress: Option<Ingress>,
    /// Whether the cluster serves the Gateway API (HTTPRoutes).
    pub gateway_api: bool,
}

/// The admin and database Secrets live, the rest from the caches (or live without them),
/// all at once.
pub async fn observe(
    reader: Reader<'_>,
    env: &ValidatedEnv,
    gateway_api: bool,
) -> Result<Observed, ObserveError> {
    let ns = env.namespace.as_str();
    let app = names::app(&env.name);
    let app_secret = names::app_secret(&env.name);
    let config_map = names::config_map(&env.name);
    let migration_job = names::migration_job(&env.name, &env.image);
    let route = async {
        match gateway_api {
            true => reader.child::<HTTPRoute>(ns, &app).await,
            false => Ok(None),
        }
    };
    let (admin_secret, database_secret, cached_app_secret, config_map, migration_job) = futures::try_join!(
        reader.live::<Secret>(
            &env.database.admin_secret_namespace,
            &env.database.admin_secret_name
        ),
        reader.live::<Secret>(ns, &env.database.secret_name),
        reader.child::<Secret>(ns, &app_secret),
        reader.child::<ConfigMap>(ns, &config_map),
        reader.child::<Job>(ns, &migration_job),
    )?;
    let (deployment, service, route, ingress) = futures::try_join!(
        reader.child::<Deployment>(ns, &app),
        reader.child::<Service>(ns, &app),
        route,
        reader.child::<Ingress>(ns, &app),
    )?;
    // The app Secret holds generated values too (session key, initial admin password): a
    // provisioned environment whose cache lacks it (a lagging watch, or a Secret without
    // our label) has it confirmed live instead of regenerated.
    let app_secret = match cached_app_secret {
        None if database_secret.is_some() && reader.cache::<Secret>().is_some() => {
            reader.live::<Secret>(ns, &app_secret).await?
        }
        found => found,
    };
    Ok(Observed {
        admin_secret,
        database_secret,
        app_secret,
        config_map,
        migration_job,
        deployment,
        service,
        route,
        ingress,
        gateway_api,
    })
}

/// One GET; a failure names the object.
pub async fn get<K>(api: &Api<K>, name: &str) -> Result<Option<K>, ObserveError>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.map_err(|source| ObserveError {
        kind: kind_of::<K>(),
        namespace: api.namespace().unwrap_or_default().to_owned(),
        name: name.to_owned(),
        source: Box::new(source),
    })
}

/// The `data` of a Secret as bytes (the API server returns `data`, never `stringData`).
pub fn secret_data(secret: &Secret) -> AdminSecretData {
    let mut data: AdminSecretData = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    data
}

/// A UTF-8 value of a Secret, if present and non-empty.
pub fn secret_value(secret: Option<&Secret>, key: &str) -> Option<String> {
    let data = secret_data(secret?);
    String::from_utf8(data.get(key)?.clone())
        .ok()
        .filter(|v| !v.is_empty())
}

/// State of a migration Job (see [`job_phase`]).
pub fn migration_state(job: Option<&Job>, backoff_limit: i32) -> MigrationObservation {
    match job.map(|j| job_phase(j, backoff_limit)) {
        None => MigrationObservation::NotStarted,
        Some(JobPhase::Running) => MigrationObservation::Running,
        Some(JobPhase::Succeeded { .. }) => MigrationObservation::Succeeded,
        Some(JobPhase::Failed { message }) => MigrationObservation::Failed { message },
    }
}

/// Where a Job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobPhase {
    Running,
    /// `completion_time` is the Job's `status.completionTime` as the API server writes it.
    Succeeded {
        completion_time: Option<String>,
    },
    Failed {
        message: String,
    },
}

/// Succeeded once `status.succeeded >= 1`; failed when it has a `Failed` condition or more
/// failed pods than its backoff limit allows.
pub fn job_phase(job: &Job, backoff_limit: i32) -> JobPhase {
    let status = job.status.clone().unwrap_or_default();
    if status.succeeded.unwrap_or(0) >= 1 {
        let completion_time = status
            .completion_time
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok())
            .and_then(|v| v.as_str().map(str::to_owned));
        return JobPhase::Succeeded { completion_time };
    }
    let failed_condition = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Failed" && c.status == "True");
    if let Some(c) = failed_condition {
        let message = match (&c.reason, &c.message) {
            (Some(r), Some(m)) => format!("{r}: {m}"),
            (Some(r), None) => r.clone(),
            (None, Some(m)) => m.clone(),
            (None, None) => "the Job failed".into(),
        };
        return JobPhase::Failed { message };
    }
    let failed = status.failed.unwrap_or(0);
    if failed > backoff_limit {
        return JobPhase::Failed {
            message: format!("{failed} pods failed (backoffLimit {backoff_limit})"),
        };
    }
    JobPhase::Running
}

/// Image of the Deployment's first container.
pub fn deployment_image(deployment: &Deployment) -> Option<String> {
    deployment
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .clone()
}

/// Rolled out = the controller saw this generation, every replica runs the current template
/// and at least the desired number is available.
pub fn workload_state(deployment: Option<&Deployment>) -> WorkloadObservation {
    let Some(d) = deployment else {
        return WorkloadObservation::NotCreated;
    };
    let image = deployment_image(d).unwrap_or_default();
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let available = status.available_replicas.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0) == desired;
    if observed && updated && available >= desired {
        WorkloadObservation::Available { image, available }
    } else {
        WorkloadObservation::RollingOut { image, available }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
    use kube::api::ObjectMeta;

    fn deployment(generation: i64, observed: i64, updated: i32, available: i32) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                generation: Some(generation),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(2),
                template: PodTemplateSpec {
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "ahlt".into(),
                            image: Some("r/ahlt:1".into()),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            }),
            status: Some(DeploymentStatus {
                observed_generation: Some(observed),
                updated_replicas: Some(updated),
                available_replicas: Some(available),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn workload_is_available_only_when_fully_rolled_out() {
        let avail = |d: &Deployment| {
            matches!(
                workload_state(Some(d)),
                WorkloadObservation::Available { .. }
            )
        };
        assert!(avail(&deployment(3, 3, 2, 2)));
        assert!(!avail(&deployment(3, 2, 2, 2)), "generation not observed");
        assert!(!avail(&deployment(3, 3, 1, 2)), "old pods remain");
        assert!(!avail(&deployment(3, 3, 2, 1)), "not enough available");
        assert_eq!(workload_state(None), WorkloadObservation::NotCreated);
        assert_eq!(
            deployment_image(&deployment(1, 1, 1, 1)).as_deref(),
            Some("r/ahlt:1")
        );
    }

    fn job(status: JobStatus) -> Job {
        Job {
            status: Some(status),
            ..Default::default()
        }
    }

    #[test]
    fn job_states() {
        assert_eq!(migration_state(None, 0), MigrationObservation::NotStarted);
        assert_eq!(
            migration_state(Some(&job(JobStatus::default())), 0),
            MigrationObservation::Running
        );
        assert_eq!(
            migration_state(
                Some(&job(JobStatus {
                    succeeded: Some(1),
                    ..Default::default()
                })),
                0
            ),
            MigrationObservation::Succeeded
        );
        assert_eq!(
            migration_state(
                Some(&job(JobStatus {
                    failed: Some(1),
                    ..Default::default()
                })),
                1
            ),
            MigrationObservation::Running
        );
        assert!(matches!(
            migration_state(
                Some(&job(JobStatus {
                    failed: Some(2),
                    ..Default::default()
                })),
                1
            ),
            MigrationObservation::Failed { .. }
        ));
        let failed = job(JobStatus {
            conditions: Some(vec![JobCondition {
                type_: "Failed".into(),
                status: "True".into(),
                reason: Some("BackoffLimitExceeded".into()),
                message: Some("Job has reached the specified backoff limit".into()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        assert_eq!(
            migration_state(Some(&failed), 0),
            MigrationObservation::Failed {
                message: "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
            }
        );
    }
}
