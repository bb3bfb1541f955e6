//! One reconcile pass: observe -> validate -> build (pure) -> apply -> status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, Resource, ResourceExt};

use super::apply;
use super::backoff::Backoff;
use super::error::Error;
use super::graph;
use super::observe::{self, Observed};
use super::provision::{DatabaseProvisioner, ProvisionError};
use super::status::{
    self, DatabaseObservation, GraphObservation, IngressObservation, MigrationObservation,
    Observations, Outcome, Progress, TransitionEvent, WorkloadObservation,
};
use crate::build::{self, DatabaseEndpoint, GeneratedSecrets, env_vars, secrets::keys};
use crate::crd::{AhltEnvironment, AhltEnvironmentStatus, DatabaseStatus, DeletionPolicy};
use crate::database::{self, AdminCredentials, DatabaseTarget};
use crate::http::Health;
use crate::metrics::Metrics;
use crate::names;
use crate::validate::{self, ValidatedEnv};

/// Healthy objects are looked at again this often, which corrects drift and keeps
/// `/healthz`'s progress check meaningful.
pub const RESYNC_PERIOD: Duration = Duration::from_secs(300);

/// How long deletion with `deletionPolicy: Delete` keeps retrying the DROP before giving up
/// (Warning event) and releasing the finalizer, so a vanished server cannot block deletion.
pub const CLEANUP_DEADLINE: SignedDuration = SignedDuration::from_mins(10);

/// State shared by all passes.
pub struct Context {
    pub client: Client,
    /// The one event recorder.
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub provisioner: Arc<dyn DatabaseProvisioner>,
    pub backoff: Backoff<ObjectRef<AhltEnvironment>>,
    pub health: Arc<Health>,
}

/// Entry point for the controller: one pass plus metrics, health and backoff bookkeeping.
pub async fn reconcile(env: Arc<AhltEnvironment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.reconcile_started();
    ctx.health.pass_started();
    let key = ObjectRef::from_obj(env.as_ref());
    let result = if env.meta().deletion_timestamp.is_some() {
        cleanup(&env, &ctx).await
    } else {
        reconcile_env(&env, &ctx).await
    };
    ctx.health.pass_finished();
    ctx.metrics.reconcile_finished(started.elapsed());
    match &result {
        Ok(_) => ctx.backoff.reset(&key),
        Err(e) => {
            ctx.metrics.reconcile_failed(e.metric_label());
            tracing::warn!(env = %key, reason = e.metric_label(), error = %e, "reconcile failed");
        }
    }
    result
}

/// Retries a failed object after its own exponentially growing, jittered delay.
pub fn error_policy(env: Arc<AhltEnvironment>, _error: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.backoff.next_delay(ObjectRef::from_obj(env.as_ref())))
}

/// The pass for a live object. Reads like the rollout flow in the design.
async fn reconcile_env(env: &AhltEnvironment, ctx: &Context) -> Result<Action, Error> {
    let now = Timestamp::now();
    let generation = env.metadata.generation.unwrap_or_default();
    let ns = env.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let api: Api<AhltEnvironment> = Api::namespaced(ctx.client.clone(), &ns);
    let mut current = env.status.clone().unwrap_or_default();

    // 1. A new generation is acknowledged before anything else happens.
    if status::needs_progressing(&current, generation) {
        let next = status::progressing(&current, generation, now);
        apply::write_status(&api, env, &current, &next).await?;
        current = next;
    }

    // 2. Validate: an invalid spec changes nothing and waits for the next spec change.
    let plan = match validate::validate(env) {
        Ok(plan) => plan,
        Err(e) => {
            let outcome = Outcome::Invalid {
                reason: e.reason(),
                message: e.to_string(),
            };
            finish(ctx, &api, env, &current, generation, outcome, now).await?;
            return Ok(Action::await_change());
        }
    };
    if plan.suspend {
        finish(
            ctx,
            &api,
            env,
            &current,
            generation,
            Outcome::Suspended,
            now,
        )
        .await?;
        return Ok(Action::await_change());
    }

    // 3. The finalizer guards the database from here on.
    ensure_finalizer(&api, env).await?;

    // 4. Observe.
    let observed = observe::observe(&ctx.client, &plan).await?;

    // 5. Database: credentials, the per-environment Secret, then the role and database.
    let owner = build::owner_reference(env).map_err(|_| Error::MissingMetadata("uid"))?;
    let database = match database_step(ctx, &plan, &observed, &owner).await {
        Ok(step) => step,
        Err(e) => {
            let failure = DatabaseObservation::Failed {
                reason: e.metric_label(),
                message: e.to_string(),
            };
            let progress = progress(&plan, &current, &observed, failure);
            finish(
                ctx,
                &api,
                env,
                &current,
                generation,
                Outcome::Reconciled(Box::new(progress)),
                now,
            )
            .await?;
            return Err(e);
        }
    };

    // 6. Build (pure) and 7. apply the rest.
    let mut progress =
        apply_children(ctx, env, &plan, &current, &observed, &owner, database).await?;

    // 8. Graph resync, once an image serves.
    progress.graph = graph::step(&ctx.client, &plan, &current, &progress.workload, &owner).await?;

    // 9. Status.
    finish(
        ctx,
        &api,
        env,
        &current,
        generation,
        Outcome::Reconciled(Box::new(progress)),
        now,
    )
    .await?;
    Ok(Action::requeue(RESYNC_PERIOD))
}

/// What the database step hands on.
struct DatabaseStep {
    secrets: GeneratedSecrets,
    endpoint: DatabaseEndpoint,
    status: DatabaseStatus,
}

/// Reads the admin Secret, keeps or generates every credential, applies the database Secret
/// (so the password is stored before it is used) and ensures the role and database.
async fn database_step(
    ctx: &Context,
    plan: &ValidatedEnv,
    observed: &Observed,
    owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Result<DatabaseStep, Error> {
    let admin_secret =
        observed
            .admin_secret
            .as_ref()
            .ok_or_else(|| Error::AdminSecretNotFound {
                namespace: plan.database.admin_secret_namespace.clone(),
                name: plan.database.admin_secret_name.clone(),
            })?;
    let admin = AdminCredentials::from_secret_data(&observe::secret_data(admin_secret))
        .map_err(|e| Error::Database(ProvisionError::from(e)))?;
    let secrets = keep_or_generate(plan, &admin, observed);
    let endpoint = DatabaseEndpoint {
        host: admin.host.clone(),
        port: admin.port,
        sslmode: admin.sslmode.clone(),
    };
    let mut db_secret = build::database_secret(
        plan,
        owner,
        &secrets.database_url,
        build::DatabaseSecretParts {
            host: endpoint.host.clone(),
            port: endpoint.port,
            database: plan.database.name.clone(),
            username: plan.database.role.clone(),
            password: secrets.database_password.clone(),
            sslmode: endpoint.sslmode.clone(),
        },
    );
    apply::stamp(&mut db_secret)?;
    let secrets_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &plan.namespace);
    apply::apply_child(&secrets_api, &db_secret, observed.database_secret.as_ref()).await?;

    let target = target(plan, &secrets.database_password);
    ctx.provisioner
        .ensure(&admin, &target)
        .await
        .map_err(Error::Database)?;
    Ok(DatabaseStep {
        status: DatabaseStatus {
            name: plan.database.name.clone(),
            role: plan.database.role.clone(),
            secret_name: plan.database.secret_name.clone(),
        },
        secrets,
        endpoint,
    })
}

fn target(plan: &ValidatedEnv, password: &str) -> DatabaseTarget {
    DatabaseTarget {
        database: plan.database.name.clone(),
        role: plan.database.role.clone(),
        password: password.to_owned(),
        owner: database::environment_owner(&plan.namespace, &plan.name),
    }
}

/// Generated values are created once: whatever the Secrets already hold is kept.
fn keep_or_generate(
    plan: &ValidatedEnv,
    admin: &AdminCredentials,
    observed: &Observed,
) -> GeneratedSecrets {
    let database_password =
        observe::secret_value(observed.database_secret.as_ref(), keys::PASSWORD)
            .unwrap_or_else(database::generate_password);
    let session_key = observe::secret_value(observed.app_secret.as_ref(), env_vars::SESSION_KEY)
        .unwrap_or_else(build::generate_session_key);
    let admin_password =
        observe::secret_value(observed.app_secret.as_ref(), env_vars::ADMIN_PASSWORD)
            .unwrap_or_else(build::generate_admin_password);
    GeneratedSecrets {
        database_url: database::database_url(admin, &target(plan, &database_password)),
        database_password,
        session_key,
        admin_password,
    }
}

/// Applies the app Secret, ConfigMap, migration Job and, once an image may serve, the
/// Deployment, Service and Ingress. Returns what status reports.
async fn apply_children(
    ctx: &Context,
    env: &AhltEnvironment,
    plan: &ValidatedEnv,
    current: &AhltEnvironmentStatus,
    observed: &Observed,
    owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    database: DatabaseStep,
) -> Result<Progress, Error> {
    let client = &ctx.client;
    let ns = plan.namespace.as_str();

    // The image that may serve: the spec's once its migrations succeeded, else what serves now.
    let migrated_before = current.migrated_image.as_deref() == Some(plan.image.as_str());
    let mut migration = match &observed.migration_job {
        None if migrated_before => MigrationObservation::Succeeded,
        job => observe::migration_state(job.as_ref(), plan.migrations.backoff_limit),
    };
    let serving = observed
        .deployment
        .as_ref()
        .and_then(observe::deployment_image);
    let image = if migration == MigrationObservation::Succeeded {
        Some(plan.image.clone())
    } else {
        serving
    };

    // Build (pure). Without a serving image the Deployment is built but not applied.
    let mut children = build::children(
        plan,
        owner,
        &database.secrets,
        &database.endpoint,
        image.as_deref().unwrap_or(&plan.image),
    );
    apply::stamp(&mut children.app_secret)?;
    apply::stamp(&mut children.config_map)?;
    apply::stamp(&mut children.migration_job)?;
    apply::stamp(&mut children.deployment)?;
    apply::stamp(&mut children.service)?;
    if let Some(ingress) = children.ingress.as_mut() {
        apply::stamp(ingress)?;
    }

    // Apply.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    apply::apply_child(&secrets, &children.app_secret, observed.app_secret.as_ref()).await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    apply::apply_child(
        &config_maps,
        &children.config_map,
        observed.config_map.as_ref(),
    )
    .await?;
    if observed.migration_job.is_none() && migration == MigrationObservation::NotStarted {
        // Job templates are immutable: a Job is created once per image and never re-applied.
        let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
        let job = apply::apply_child(&jobs, &children.migration_job, None).await?;
        migration = observe::migration_state(Some(&job), plan.migrations.backoff_limit);
    }

    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    let (workload, ingress) = if image.is_some() {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let deployment = apply::apply_child(
            &deployments,
            &children.deployment,
            observed.deployment.as_ref(),
        )
        .await?;
        let services: Api<Service> = Api::namespaced(client.clone(), ns);
        apply::apply_child(&services, &children.service, observed.service.as_ref()).await?;
        let ingress = match &children.ingress {
            Some(desired) => {
                apply::apply_child(&ingresses, desired, observed.ingress.as_ref()).await?;
                IngressObservation::Configured
            }
            None => IngressObservation::NotRequested,
        };
        (observe::workload_state(Some(&deployment)), ingress)
    } else if plan.ingress.is_some() {
        (WorkloadObservation::NotCreated, IngressObservation::Pending)
    } else {
        (
            WorkloadObservation::NotCreated,
            IngressObservation::NotRequested,
        )
    };
    if children.ingress.is_none()
        && let Some(stale) = &observed.ingress
    {
        apply::delete_owned(&ingresses, stale, env).await?;
    }

    Ok(Progress {
        spec_image: plan.image.clone(),
        url: plan.url(),
        selector: names::selector_string(&plan.name),
        database: DatabaseObservation::Ready(database.status),
        migration,
        workload,
        ingress,
        // Filled in by the graph step.
        graph: GraphObservation::Unobserved,
    })
}

/// What status reports when the pass stopped at the database step: the rest as observed.
fn progress(
    plan: &ValidatedEnv,
    current: &AhltEnvironmentStatus,
    observed: &Observed,
    database: DatabaseObservation,
) -> Progress {
    let migration = match &observed.migration_job {
        None if current.migrated_image.as_deref() == Some(plan.image.as_str()) => {
            MigrationObservation::Succeeded
        }
        job => observe::migration_state(job.as_ref(), plan.migrations.backoff_limit),
    };
    let ingress = match (&plan.ingress, &observed.ingress) {
        (None, _) => IngressObservation::NotRequested,
        (Some(_), Some(_)) => IngressObservation::Configured,
        (Some(_), None) => IngressObservation::Pending,
    };
    Progress {
        spec_image: plan.image.clone(),
        url: plan.url(),
        selector: names::selector_string(&plan.name),
        database,
        migration,
        workload: observe::workload_state(observed.deployment.as_ref()),
        ingress,
        graph: match plan.graph {
            None => GraphObservation::NotConfigured,
            Some(_) => GraphObservation::Unobserved,
        },
    }
}

/// Computes and writes the status (nothing when unchanged), then publishes an event per
/// transition and updates the Ready gauge.
async fn finish(
    ctx: &Context,
    api: &Api<AhltEnvironment>,
    env: &AhltEnvironment,
    current: &AhltEnvironmentStatus,
    generation: i64,
    outcome: Outcome,
    now: Timestamp,
) -> Result<(), Error> {
    let obs = Observations {
        generation,
        outcome,
    };
    let next = status::next_status(current, &obs, now);
    apply::write_status(api, env, current, &next).await?;
    for event in status::transition_events(current, &next) {
        publish(ctx, env, event).await;
    }
    ctx.metrics
        .set_ready(&metrics_key(env), Some(status::ready_status(&next)));
    Ok(())
}

fn metrics_key(env: &AhltEnvironment) -> String {
    format!("{}/{}", env.namespace().unwrap_or_default(), env.name_any())
}

/// Events are best effort: a failed publish is logged, never fails the pass.
async fn publish(ctx: &Context, env: &AhltEnvironment, event: TransitionEvent) {
    let ev = Event {
        type_: if event.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: event.reason,
        note: Some(event.note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &env.object_ref(&())).await {
        tracing::warn!(error = %e, "publishing an event failed");
    }
}

async fn ensure_finalizer(api: &Api<AhltEnvironment>, env: &AhltEnvironment) -> Result<(), Error> {
    if env.finalizers().iter().any(|f| f == names::FINALIZER) {
        return Ok(());
    }
    let mut finalizers = env.finalizers().to_vec();
    finalizers.push(names::FINALIZER.to_owned());
    apply::set_finalizers(api, env, finalizers).await
}

async fn remove_finalizer(api: &Api<AhltEnvironment>, env: &AhltEnvironment) -> Result<(), Error> {
    let finalizers = env
        .finalizers()
        .iter()
        .filter(|f| *f != names::FINALIZER)
        .cloned()
        .collect();
    apply::set_finalizers(api, env, finalizers).await
}

/// Deletion: `Retain` releases the finalizer; `Delete` drops the database and role first,
/// retrying with backoff until [`CLEANUP_DEADLINE`] after the deletion request, then gives up.
async fn cleanup(env: &AhltEnvironment, ctx: &Context) -> Result<Action, Error> {
    ctx.metrics.set_ready(&metrics_key(env), None);
    if !env.finalizers().iter().any(|f| f == names::FINALIZER) {
        return Ok(Action::await_change());
    }
    let ns = env.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let api: Api<AhltEnvironment> = Api::namespaced(ctx.client.clone(), &ns);
    let policy = env.spec.database.deletion_policy.unwrap_or_default();
    if policy == DeletionPolicy::Retain {
        remove_finalizer(&api, env).await?;
        return Ok(Action::await_change());
    }

    let dropped = drop_database(env, ctx).await;
    match dropped {
        Ok(()) => {
            publish(
                ctx,
                env,
                TransitionEvent {
                    warning: false,
                    reason: "DatabaseDropped".into(),
                    note: "database and role dropped (deletionPolicy: Delete)".into(),
                },
            )
            .await;
            remove_finalizer(&api, env).await?;
            Ok(Action::await_change())
        }
        Err(e) => {
            let requested = env
                .meta()
                .deletion_timestamp
                .as_ref()
                .map_or_else(Timestamp::now, |t| t.0);
            let now = Timestamp::now();
            if now.duration_since(requested) >= CLEANUP_DEADLINE {
                publish(
                    ctx,
                    env,
                    TransitionEvent {
                        warning: true,
                        reason: "CleanupAbandoned".into(),
                        note: format!(
                            "gave up dropping the database after {} minutes; it is retained: {e}",
                            CLEANUP_DEADLINE.as_mins()
                        ),
                    },
                )
                .await;
                remove_finalizer(&api, env).await?;
                return Ok(Action::await_change());
            }
            let current = env.status.clone().unwrap_or_default();
            let failure = cleanup_failure_status(&current, env, &e, now);
            apply::write_status(&api, env, &current, &failure).await?;
            for event in status::transition_events(&current, &failure) {
                publish(ctx, env, event).await;
            }
            Err(e)
        }
    }
}

/// Status while a drop keeps failing: DatabaseReady=False with the cause.
fn cleanup_failure_status(
    current: &AhltEnvironmentStatus,
    env: &AhltEnvironment,
    error: &Error,
    now: Timestamp,
) -> AhltEnvironmentStatus {
    let mut conditions = current.conditions.clone();
    let generation = env.metadata.generation.unwrap_or_default();
    let message = format!("dropping the database failed, retrying: {error}");
    let condition = k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        type_: status::DATABASE_READY.into(),
        status: "False".into(),
        reason: error.metric_label().into(),
        last_transition_time: conditions
            .iter()
            .find(|c| c.type_ == status::DATABASE_READY && c.status == "False")
            .map_or(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now),
                |c| c.last_transition_time.clone(),
            ),
        message,
        observed_generation: Some(generation),
    };
    match conditions
        .iter_mut()
        .find(|c| c.type_ == status::DATABASE_READY)
    {
        Some(slot) => *slot = condition,
        None => conditions.push(condition),
    }
    AhltEnvironmentStatus {
        conditions,
        ..current.clone()
    }
}

async fn drop_database(env: &AhltEnvironment, ctx: &Context) -> Result<(), Error> {
    let plan = validate::validate(env).map_err(|e| {
        Error::Database(ProvisionError {
            reason: e.reason(),
            message: e.to_string(),
            transient: false,
        })
    })?;
    let admin_api: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &plan.database.admin_secret_namespace);
    let secret = admin_api
        .get_opt(&plan.database.admin_secret_name)
        .await?
        .ok_or_else(|| Error::AdminSecretNotFound {
            namespace: plan.database.admin_secret_namespace.clone(),
            name: plan.database.admin_secret_name.clone(),
        })?;
    let admin = AdminCredentials::from_secret_data(&observe::secret_data(&secret))
        .map_err(|e| Error::Database(ProvisionError::from(e)))?;
    ctx.provisioner
        .drop_database(
            &admin,
            &plan.database.name,
            &plan.database.role,
            &database::environment_owner(&plan.namespace, &plan.name),
        )
        .await
        .map_err(Error::Database)
}
