//! One-shot Jobs: migrations before a rollout, graph resyncs after one.
//!
//! A Job's pod template is immutable and its name encodes only the image (and for resyncs
//! the request), so the reconciler creates a Job once and never re-applies it: a later
//! change to resources or extra env would otherwise be refused for an existing Job.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::pod::{self, SecretEnv};
use super::{IMAGE_ANNOTATION, RESYNC_REQUEST_ANNOTATION, component, labels, metadata};
use crate::names;
use crate::validate::ValidatedEnv;

/// Finished Jobs are garbage-collected after a day: long enough to read their logs.
pub const TTL_SECONDS_AFTER_FINISHED: i32 = 86_400;
/// Graph resyncs are retried a little: they are idempotent (mark and sweep).
pub const RESYNC_BACKOFF_LIMIT: i32 = 2;
pub const RESYNC_DEADLINE_SECONDS: i64 = 1_800;
const TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;

struct JobParams<'a> {
    name: String,
    component: &'a str,
    image: &'a str,
    args: &'a [&'a str],
    secrets: SecretEnv,
    backoff_limit: i32,
    deadline_seconds: i64,
    annotations: BTreeMap<String, String>,
}

fn job(env: &ValidatedEnv, owner: &OwnerReference, p: JobParams<'_>) -> Job {
    let mut container = pod::base_container(env, p.image, p.args);
    container.env = Some(pod::env(env, p.secrets));
    let mut meta = metadata(env, owner, p.name, Some(p.component));
    meta.annotations = Some(p.annotations);
    Job {
        metadata: meta,
        spec: Some(JobSpec {
            backoff_limit: Some(p.backoff_limit),
            active_deadline_seconds: Some(p.deadline_seconds),
            ttl_seconds_after_finished: Some(TTL_SECONDS_AFTER_FINISHED),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(env, Some(p.component))),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod::pod_spec(
                    env,
                    container,
                    Some("Never"),
                    TERMINATION_GRACE_PERIOD_SECONDS,
                )),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// `ahlt migrate` with `image` (the spec's new image). Named per image: a retry of the
/// same image finds the same Job instead of running migrations again.
pub fn migration_job(env: &ValidatedEnv, owner: &OwnerReference, image: &str) -> Job {
    job(
        env,
        owner,
        JobParams {
            name: names::migration_job(&env.name, image),
            component: component::MIGRATE,
            image,
            args: &["migrate"],
            // ADMIN_PASSWORD: `migrate` seeds the admin user on first run.
            secrets: SecretEnv {
                session_key: false,
                admin_password: true,
                graph_credentials: false,
            },
            backoff_limit: env.migrations.backoff_limit,
            deadline_seconds: env.migrations.timeout_seconds,
            annotations: BTreeMap::from([(IMAGE_ANNOTATION.to_owned(), image.to_owned())]),
        },
    )
}

/// `ahlt graph resync` with `image` for `request` (the spec's resyncRequest, or what the
/// reconciler uses for a rollout-triggered resync). `None` when the spec has no graph.
pub fn resync_job(
    env: &ValidatedEnv,
    owner: &OwnerReference,
    image: &str,
    request: &str,
) -> Option<Job> {
    env.graph.as_ref()?;
    Some(job(
        env,
        owner,
        JobParams {
            name: names::resync_job(&env.name, image, request),
            component: component::GRAPH_RESYNC,
            image,
            args: &["graph", "resync"],
            secrets: SecretEnv {
                session_key: false,
                admin_password: false,
                graph_credentials: true,
            },
            backoff_limit: RESYNC_BACKOFF_LIMIT,
            deadline_seconds: RESYNC_DEADLINE_SECONDS,
            annotations: BTreeMap::from([
                (IMAGE_ANNOTATION.to_owned(), image.to_owned()),
                (RESYNC_REQUEST_ANNOTATION.to_owned(), request.to_owned()),
            ]),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::pod::assertions::*;
    use crate::build::testing::*;

    const IMAGE: &str = "registry.example.org/acme/ahlt:v2";

    fn refs(job: &Job) -> Vec<(String, String, String)> {
        secret_refs(job.spec.as_ref().unwrap().template.spec.as_ref().unwrap())
    }

    fn owned(v: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        v.iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect()
    }

    #[test]
    fn the_migration_job_runs_migrate_with_the_new_image() {
        let env = full();
        let job = migration_job(&env, &owner(), IMAGE);
        assert_eq!(
            job.metadata.name.as_deref(),
            Some(&*names::migration_job("staging", IMAGE))
        );
        assert_eq!(
            job.metadata.labels.as_ref().unwrap()[component::LABEL],
            "migrate"
        );
        assert_eq!(
            job.metadata.annotations.as_ref().unwrap()[IMAGE_ANNOTATION],
            IMAGE
        );

        let spec = job.spec.as_ref().unwrap();
        assert_eq!(spec.backoff_limit, Some(2));
        assert_eq!(spec.active_deadline_seconds, Some(900));
        assert_eq!(spec.ttl_seconds_after_finished, Some(86_400));
        let template_labels = spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        assert_eq!(template_labels[component::LABEL], "migrate");
        for (k, v) in names::labels("staging") {
            assert_eq!(template_labels.get(&k), Some(&v));
        }

        let pod = spec.template.spec.as_ref().unwrap();
        assert_hardened_pod(pod, &env, IMAGE);
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(
            pod.containers[0].args.as_deref(),
            Some(&["migrate".to_owned()][..])
        );
        assert!(pod.containers[0].ports.is_none());
        assert!(pod.containers[0].readiness_probe.is_none());
    }

    #[test]
    fn migration_defaults_come_from_the_plan() {
        let spec = migration_job(&minimal(), &owner(), IMAGE).spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(spec.active_deadline_seconds, Some(600));
    }

    #[test]
    fn the_migration_job_gets_the_database_and_admin_password_only() {
        let job = migration_job(&full(), &owner(), IMAGE);
        assert_eq!(
            refs(&job),
            owned(&[
                ("DATABASE_URL", "staging-db", "DATABASE_URL"),
                ("ADMIN_PASSWORD", "staging-app", "ADMIN_PASSWORD"),
            ])
        );
        let pod = job.spec.unwrap().template.spec.unwrap();
        assert_eq!(
            plain_vars(&pod),
            [("DATABASE_MAX_CONNECTIONS".to_owned(), "20".to_owned())]
        );
    }

    #[test]
    fn migration_job_pods_are_not_selected_by_the_service() {
        let job = migration_job(&full(), &owner(), IMAGE);
        let pod_labels = job.spec.unwrap().template.metadata.unwrap().labels.unwrap();
        let selected = names::selector_labels("staging")
            .iter()
            .all(|(k, v)| pod_labels.get(k) == Some(v));
        assert!(!selected);
    }

    #[test]
    fn the_resync_job_runs_graph_resync_with_graph_credentials() {
        let env = full();
        let job = resync_job(&env, &owner(), IMAGE, "2024-05-01").unwrap();
        assert_eq!(
            job.metadata.name.as_deref(),
            Some(&*names::resync_job("staging", IMAGE, "2024-05-01"))
        );
        let annotations = job.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations[RESYNC_REQUEST_ANNOTATION], "2024-05-01");
        assert_eq!(annotations[IMAGE_ANNOTATION], IMAGE);
        assert_eq!(
            job.metadata.labels.as_ref().unwrap()[component::LABEL],
            "graph-resync"
        );
        assert_eq!(
            refs(&job),
            owned(&[
                ("DATABASE_URL", "staging-db", "DATABASE_URL"),
                ("GRAPH_USERNAME", "neo4j-credentials", "username"),
                ("GRAPH_PASSWORD", "neo4j-credentials", "password"),
            ])
        );
        let spec = job.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(RESYNC_BACKOFF_LIMIT));
        assert_eq!(spec.active_deadline_seconds, Some(RESYNC_DEADLINE_SECONDS));
        let pod = spec.template.spec.unwrap();
        assert_hardened_pod(&pod, &env, IMAGE);
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(
            pod.containers[0].args.as_deref(),
            Some(&["graph".to_owned(), "resync".to_owned()][..])
        );
    }

    #[test]
    fn no_graph_means_no_resync_job() {
        assert!(resync_job(&minimal(), &owner(), IMAGE, "x").is_none());
    }
}
