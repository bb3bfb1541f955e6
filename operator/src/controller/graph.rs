//! The graph step: one `ahlt graph resync` Job with the serving image after a rollout
//! (`resyncOnRollout`) and for every new `resyncRequest`.
//!
//! A Job is named by what it serves (image and request), so each is created once. Status
//! remembers what succeeded (`lastResyncImage`, `lastResyncRequest`) and what failed
//! (`failedJob`): a Job garbage-collected after `ttlSecondsAfterFinished` is neither rerun
//! nor forgotten. A failed Job is retried only by a new request or image (a new name).
//!
//! The credentials Secret is read only when a Job is about to be created (rarely): a missing
//! Secret or key is reported as `CredentialsMissing` instead of a Job whose pod would hang in
//! `CreateContainerConfigError` until its deadline. Only key names are reported, never values.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;

use super::apply;
use super::cache::Reader;
use super::error::GraphError;
use super::observe::{self, JobPhase};
use super::status::{GraphObservation, WorkloadObservation};
use crate::build::{self, jobs::RESYNC_BACKOFF_LIMIT};
use crate::crd::{AhltEnvironmentStatus, GraphStatus};
use crate::names;
use crate::validate::ValidatedEnv;

/// Keys the credentials Secret must hold (what the Job's env references).
pub const CREDENTIAL_KEYS: [&str; 2] = ["username", "password"];

/// A resync to run: the serving image, the request it answers, and its Job's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub image: String,
    pub request: Option<String>,
    pub job: String,
}

/// What the environment needs, before any Job is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    NotConfigured,
    /// A resync waits for the spec's image to serve (or for any image to serve).
    WaitingForRollout,
    /// What is asked for has been served (or nothing is asked for).
    UpToDate,
    Run(Target),
}

/// The image that serves after this pass: the one whose pods are available now, else what
/// status says (status.image moves only when pods are available, and so do resyncs).
pub fn serving_image(
    current: &AhltEnvironmentStatus,
    workload: &WorkloadObservation,
) -> Option<String> {
    match workload {
        WorkloadObservation::Available { image, .. } => Some(image.clone()),
        _ => current.image.clone(),
    }
}

/// Which resync to run: a new `resyncRequest`, or (with `resyncOnRollout`) a serving image
/// no resync has run with yet. One Job serves both.
pub fn plan(env: &ValidatedEnv, serving: Option<&str>, last: Option<&GraphStatus>) -> Plan {
    let Some(graph) = &env.graph else {
        return Plan::NotConfigured;
    };
    let last = last.cloned().unwrap_or_default();
    let new_request = graph
        .resync_request
        .as_ref()
        .is_some_and(|r| last.last_resync_request.as_ref() != Some(r));
    let Some(image) = serving else {
        return if new_request || graph.resync_on_rollout {
            Plan::WaitingForRollout
        } else {
            Plan::UpToDate
        };
    };
    let new_image = graph.resync_on_rollout && last.last_resync_image.as_deref() != Some(image);
    if !new_request && !new_image {
        // Mid-rollout the old image's resync is not "synced" for the new generation: a
        // `kubectl wait --for=condition=GraphSynced` after a bump must not pass on it.
        return if graph.resync_on_rollout && image != env.image {
            Plan::WaitingForRollout
        } else {
            Plan::UpToDate
        };
    }
    let request = graph.resync_request.clone();
    Plan::Run(Target {
        job: names::resync_job(&env.name, image, request.as_deref().unwrap_or_default()),
        image: image.to_owned(),
        request,
    })
}

/// What the target's Job says, or `None` when it must be created.
pub fn report(
    target: &Target,
    job: Option<&Job>,
    last: Option<&GraphStatus>,
) -> Option<GraphObservation> {
    let Some(job) = job else {
        let failed_before = last.and_then(|g| g.failed_job.as_deref()) == Some(&target.job);
        return failed_before.then(|| {
            failed(
                target,
                format!("Job {} failed and has been garbage-collected", target.job),
            )
        });
    };
    Some(observation(target, job_phase(job)))
}

fn job_phase(job: &Job) -> JobPhase {
    observe::job_phase(job, RESYNC_BACKOFF_LIMIT)
}

fn observation(target: &Target, phase: JobPhase) -> GraphObservation {
    match phase {
        JobPhase::Running => GraphObservation::Resyncing {
            image: target.image.clone(),
            request: target.request.clone(),
        },
        JobPhase::Succeeded { completion_time } => GraphObservation::Succeeded {
            image: target.image.clone(),
            request: target.request.clone(),
            completion_time,
        },
        JobPhase::Failed { message } => failed(target, message),
    }
}

fn failed(target: &Target, message: String) -> GraphObservation {
    GraphObservation::Failed {
        job: target.job.clone(),
        image: target.image.clone(),
        request: target.request.clone(),
        message,
    }
}

/// Why the credentials Secret `name` cannot serve the Job, if it cannot.
pub fn credentials_problem(name: &str, secret: Option<&Secret>) -> Option<String> {
    let Some(secret) = secret else {
        return Some(format!(
            "spec.graph.credentialsSecretRef: Secret {name} not found; no resync Job is started"
        ));
    };
    let data = observe::secret_data(secret);
    let missing: Vec<&str> = CREDENTIAL_KEYS
        .into_iter()
        .filter(|k| data.get(*k).is_none_or(|v| v.is_empty()))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "spec.graph.credentialsSecretRef: Secret {name} lacks the key(s) {}; no resync Job is started",
            missing.join(", ")
        )
    })
}

/// Runs the resync the plan asks for, once an image serves. Returns what GraphSynced reports.
pub async fn step(
    reader: Reader<'_>,
    env: &ValidatedEnv,
    current: &AhltEnvironmentStatus,
    workload: &WorkloadObservation,
    owner: &OwnerReference,
) -> Result<GraphObservation, GraphError> {
    let serving = serving_image(current, workload);
    let target = match plan(env, serving.as_deref(), current.graph.as_ref()) {
        Plan::NotConfigured => return Ok(GraphObservation::NotConfigured),
        Plan::WaitingForRollout => {
            return Ok(GraphObservation::WaitingForRollout {
                image: env.image.clone(),
            });
        }
        Plan::UpToDate => return Ok(GraphObservation::UpToDate),
        Plan::Run(target) => target,
    };
    // From the cache: one that has not seen a Job created a moment ago re-sends the same
    // Job below, which changes nothing.
    let job = reader
        .child::<Job>(&env.namespace, &target.job)
        .await
        .map_err(GraphError::Observe)?;
    if let Some(seen) = report(&target, job.as_ref(), current.graph.as_ref()) {
        return Ok(seen);
    }
    if let Some(name) = env
        .graph
        .as_ref()
        .and_then(|g| g.credentials_secret.as_ref())
    {
        // Live: the user's Secret, not the operator's, so not watched.
        let secret = reader
            .live::<Secret>(&env.namespace, name)
            .await
            .map_err(GraphError::Observe)?;
        if let Some(message) = credentials_problem(name, secret.as_ref()) {
            return Ok(GraphObservation::CredentialsMissing { message });
        }
    }
    let request = target.request.as_deref().unwrap_or_default();
    let Some(mut desired) = build::resync_job(env, owner, &target.image, request) else {
        return Ok(GraphObservation::NotConfigured);
    };
    apply::stamp(&mut desired);
    let jobs: Api<Job> = Api::namespaced(reader.client.clone(), &env.namespace);
    // Created once (see build::jobs): never re-applied.
    let created = apply::apply_child(&jobs, &desired, None)
        .await
        .map_err(GraphError::Apply)?;
    Ok(observation(&target, job_phase(&created)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::testing::{full, minimal};
    use k8s_openapi::ByteString;
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    const I1: &str = "r/ahlt:1";
    const I2: &str = "r/ahlt:2";

    fn with_graph(resync_on_rollout: bool, request: Option<&str>) -> ValidatedEnv {
        let mut env = full();
        env.image = I1.into();
        let graph = env.graph.as_mut().expect("full() has a graph");
        graph.resync_on_rollout = resync_on_rollout;
        graph.resync_request = request.map(str::to_owned);
        env
    }

    fn served(image: &str, request: Option<&str>) -> GraphStatus {
        GraphStatus {
            last_resync_image: Some(image.into()),
            last_resync_request: request.map(str::to_owned),
            last_resync_time: Some("2024-05-01T10:00:00Z".into()),
            failed_job: None,
        }
    }

    fn target(image: &str, request: Option<&str>) -> Target {
        Target {
            image: image.into(),
            request: request.map(str::to_owned),
            job: names::resync_job("staging", image, request.unwrap_or_default()),
        }
    }

    #[test]
    fn without_a_graph_nothing_runs() {
        assert_eq!(plan(&minimal(), Some(I1), None), Plan::NotConfigured);
    }

    #[test]
    fn a_rollout_runs_one_resync_per_serving_image() {
        let env = with_graph(true, None);
        assert_eq!(plan(&env, None, None), Plan::WaitingForRollout);
        assert_eq!(plan(&env, Some(I1), None), Plan::Run(target(I1, None)));
        let done = served(I1, None);
        assert_eq!(plan(&env, Some(I1), Some(&done)), Plan::UpToDate);
        assert_eq!(
            plan(&env, Some(I2), Some(&done)),
            Plan::Run(target(I2, None))
        );
    }

    #[test]
    fn mid_rollout_the_old_images_resync_does_not_count() {
        let mut env = with_graph(true, None);
        env.image = I2.into();
        let done = served(I1, None);
        assert_eq!(plan(&env, Some(I1), Some(&done)), Plan::WaitingForRollout);
        env.graph.as_mut().unwrap().resync_on_rollout = false;
        assert_eq!(plan(&env, Some(I1), Some(&done)), Plan::UpToDate);
    }

    #[test]
    fn without_resync_on_rollout_only_requests_run() {
        let env = with_graph(false, None);
        assert_eq!(plan(&env, None, None), Plan::UpToDate);
        assert_eq!(
            plan(&env, Some(I2), Some(&served(I1, None))),
            Plan::UpToDate
        );
        let env = with_graph(false, Some("r1"));
        assert_eq!(plan(&env, None, None), Plan::WaitingForRollout);
        assert_eq!(
            plan(&env, Some(I2), Some(&served(I1, None))),
            Plan::Run(target(I2, Some("r1")))
        );
        assert_eq!(
            plan(&env, Some(I2), Some(&served(I1, Some("r1")))),
            Plan::UpToDate
        );
    }

    #[test]
    fn a_new_request_runs_with_the_serving_image_and_names_a_new_job() {
        let env = with_graph(true, Some("r2"));
        let done = served(I1, Some("r1"));
        let Plan::Run(t) = plan(&env, Some(I1), Some(&done)) else {
            panic!("a new request runs");
        };
        assert_eq!(t, target(I1, Some("r2")));
        assert_ne!(t.job, target(I1, Some("r1")).job);
        assert_ne!(t.job, target(I1, None).job);
    }

    fn job(status: JobStatus) -> Job {
        Job {
            status: Some(status),
            ..Job::default()
        }
    }

    #[test]
    fn the_job_decides_what_is_reported() {
        let t = target(I1, Some("r1"));
        assert_eq!(report(&t, None, None), None, "no Job: create it");
        assert_eq!(
            report(&t, Some(&job(JobStatus::default())), None),
            Some(GraphObservation::Resyncing {
                image: I1.into(),
                request: Some("r1".into())
            })
        );
        let done = job(JobStatus {
            succeeded: Some(1),
            completion_time: Some(Time(
                k8s_openapi::jiff::Timestamp::from_second(1_714_557_600).unwrap(),
            )),
            ..JobStatus::default()
        });
        assert_eq!(
            report(&t, Some(&done), None),
            Some(GraphObservation::Succeeded {
                image: I1.into(),
                request: Some("r1".into()),
                completion_time: Some("2024-05-01T10:00:00Z".into()),
            })
        );
        let failed = job(JobStatus {
            conditions: Some(vec![JobCondition {
                type_: "Failed".into(),
                status: "True".into(),
                reason: Some("BackoffLimitExceeded".into()),
                message: Some("Job has reached the specified backoff limit".into()),
                ..JobCondition::default()
            }]),
            ..JobStatus::default()
        });
        assert!(matches!(
            report(&t, Some(&failed), None),
            Some(GraphObservation::Failed { job, message, .. })
                if job == t.job && message.starts_with("BackoffLimitExceeded")
        ));
    }

    #[test]
    fn a_failed_job_is_not_recreated_once_garbage_collected() {
        let t = target(I1, Some("r1"));
        let last = GraphStatus {
            failed_job: Some(t.job.clone()),
            ..served(I1, None)
        };
        assert!(matches!(
            report(&t, None, Some(&last)),
            Some(GraphObservation::Failed { job, .. }) if job == t.job
        ));
        // Another target (new request or image) is created.
        assert_eq!(report(&target(I1, Some("r2")), None, Some(&last)), None);
    }

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn credentials_need_both_keys_and_never_leak_values() {
        assert_eq!(
            credentials_problem(
                "creds",
                Some(&secret(&[("username", "u"), ("password", "p")]))
            ),
            None
        );
        let missing = credentials_problem("creds", None).unwrap();
        assert!(missing.contains("Secret creds not found"));
        let partial = credentials_problem(
            "creds",
            Some(&secret(&[("username", "neo4j-user"), ("password", "")])),
        )
        .unwrap();
        assert!(partial.contains("lacks the key(s) password"), "{partial}");
        assert!(!partial.contains("neo4j-user"));
    }

    #[test]
    fn status_image_serves_until_new_pods_are_available() {
        let current = AhltEnvironmentStatus {
            image: Some(I1.into()),
            ..AhltEnvironmentStatus::default()
        };
        let rolling = WorkloadObservation::RollingOut {
            image: I2.into(),
            available: 0,
        };
        assert_eq!(serving_image(&current, &rolling).as_deref(), Some(I1));
        let available = WorkloadObservation::Available {
            image: I2.into(),
            available: 1,
        };
        assert_eq!(serving_image(&current, &available).as_deref(), Some(I2));
    }
}
