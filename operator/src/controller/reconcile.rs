//! One reconcile pass: acknowledge -> validate -> observe and plan -> database -> build (pure)
//! and apply -> graph -> status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, Resource, ResourceExt};

use super::apply;
use super::backoff::Backoff;
use super::cleanup;
use super::error::{DatabaseStepError, Error};
use super::front_door::{self, GatewayApi};
use super::graph;
use super::observe::{self, Observed};
use super::provision::{DatabaseProvisioner, ProvisionError};
use super::rollout::{self, RolloutPlan};
use super::status::{
    self, DatabaseObservation, GraphObservation, IngressObservation, Observations, Outcome,
    Progress,
};
use crate::build::{self, DatabaseEndpoint, GeneratedSecrets, env_vars, secrets::keys};
use crate::crd::{AhltEnvironment, AhltEnvironmentStatus, DatabaseStatus};
use crate::database::{self, AdminCredentials, DatabaseTarget};
use crate::http::Health;
use crate::metrics::Metrics;
use crate::names;
use crate::validate::{self, ValidatedEnv};

/// Healthy objects are looked at again this often (besides every watch event), which keeps
/// `/healthz`'s progress check meaningful and catches what no event announces (a database
/// dropped behind the operator's back).
pub const RESYNC_PERIOD: Duration = Duration::from_secs(300);

/// How soon a pass looks again while a route waits for its Gateway or for the Gateway API.
pub const ROUTE_RECHECK: Duration = Duration::from_secs(30);

/// Longest wait before retrying a pass that failed on the Kubernetes API: such failures heal
/// on their own (a restarting API server), so they are retried soon, unlike a broken database.
pub const API_RETRY_MAX: Duration = Duration::from_secs(10);

/// State shared by all passes.
pub struct Context {
    pub client: Client,
    /// The one event recorder.
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub provisioner: Arc<dyn DatabaseProvisioner>,
    pub backoff: Backoff<ObjectRef<AhltEnvironment>>,
    pub health: Arc<Health>,
    /// Whether the cluster serves the Gateway API, re-checked every minute.
    pub gateway_api: GatewayApi,
}

/// Entry point for the controller: one pass plus metrics, health and backoff bookkeeping.
pub async fn reconcile(env: Arc<AhltEnvironment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.reconcile_started();
    ctx.health.pass_started();
    let key = ObjectRef::from_obj(env.as_ref());
    let result = if env.meta().deletion_timestamp.is_some() {
        cleanup::cleanup(&env, &ctx).await
    } else {
        reconcile_env(&env, &ctx).await
    };
    ctx.health.pass_finished();
    ctx.metrics.reconcile_finished(started.elapsed());
    match &result {
        Ok(_) => ctx.backoff.reset(&key),
        Err(e) => {
            ctx.metrics.reconcile_failed(e.step());
            tracing::warn!(env = %key, step = e.step(), reason = e.reason(), error = %e, "reconcile failed");
        }
    }
    result
}

/// Retries a failed object after its own exponentially growing, jittered delay; failures of
/// the Kubernetes API are retried within [`API_RETRY_MAX`].
pub fn error_policy(env: Arc<AhltEnvironment>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = ObjectRef::from_obj(env.as_ref());
    let delay = ctx.backoff.next_delay(key);
    Action::requeue(if error.is_api_failure() {
        delay.min(API_RETRY_MAX)
    } else {
        delay
    })
}

/// The pass for a live object. Reads like the rollout flow in the design.
async fn reconcile_env(env: &AhltEnvironment, ctx: &Context) -> Result<Action, Error> {
    let pass = Pass::new(env, ctx)?;
    let mut current = env.status.clone().unwrap_or_default();

    // 1. A new generation is acknowledged before anything else happens.
    if status::needs_progressing(&current, pass.generation) {
        let next = status::progressing(&current, pass.generation, pass.now);
        apply::write_status(&pass.api, env, &current, &next).await?;
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
            pass.finish(&current, outcome).await?;
            return Ok(Action::await_change());
        }
    };
    if plan.suspend {
        pass.finish(&current, Outcome::Suspended).await?;
        return Ok(Action::await_change());
    }

    // 3. The finalizer guards the database from here on.
    apply::set_finalizer(&pass.api, env, true).await?;

    // 4. Observe, and decide the rollout once.
    let gateway_api = ctx.gateway_api.available(&ctx.client).await?;
    let observed = observe::observe(&ctx.client, &plan, gateway_api).await?;
    let rollout = rollout::plan(
        &plan,
        &current,
        observed.migration_job.as_ref(),
        observed.deployment.as_ref(),
    );
    let owner = build::owner_reference(env).map_err(|_| Error::MissingMetadata("uid"))?;

    // 5. The database identity is fixed for life: a spec naming another database changes
    //    nothing and says so.
    if let Some(message) =
        rollout::rename_refusal(&plan, &current, observed.database_secret.as_ref())
    {
        let refused = DatabaseObservation::RenameRefused { message };
        let progress = observed_progress(&plan, &rollout, &observed, refused);
        pass.finish(&current, Outcome::Reconciled(Box::new(progress)))
            .await?;
        return Ok(Action::await_change());
    }

    // 6. Service and Ingress or HTTPRoute from the first pass, so certificates issue
    //    during migrations.
    let door = front_door::apply(&ctx.client, env, &plan, &observed, &owner).await?;

    // 7. Database: credentials, the per-environment Secret, then the role and database.
    let database = match database_step(ctx, &plan, &observed, &owner).await {
        Ok(step) => step,
        Err(e) => {
            let failure = DatabaseObservation::Failed {
                reason: e.reason(),
                message: e.to_string(),
            };
            let mut progress = observed_progress(&plan, &rollout, &observed, failure);
            progress.ingress = door.ingress;
            progress.url = door.url;
            pass.finish(&current, Outcome::Reconciled(Box::new(progress)))
                .await?;
            return Err(e);
        }
    };

    // 8. Build (pure) and apply the rest, as the rollout plan says.
    let mut progress = apply_children(ctx, &plan, &rollout, &observed, &owner, database).await?;
    let waiting_for_route = door.ingress.waits_for_route();
    progress.ingress = door.ingress;
    progress.url = door.url;

    // 9. Graph resync, once an image serves.
    progress.graph = graph::step(&ctx.client, &plan, &current, &progress.workload, &owner)
        .await
        .map_err(Error::Graph)?;

    // 10. Status.
    pass.finish(&current, Outcome::Reconciled(Box::new(progress)))
        .await?;
    // A route's acceptance (and a Gateway API installed after the start) may come without a
    // watch event: look again soon.
    Ok(Action::requeue(if waiting_for_route {
        ROUTE_RECHECK
    } else {
        RESYNC_PERIOD
    }))
}

/// What every step of a pass needs to know about the object.
struct Pass<'a> {
    ctx: &'a Context,
    env: &'a AhltEnvironment,
    api: Api<AhltEnvironment>,
    generation: i64,
    now: Timestamp,
}

impl<'a> Pass<'a> {
    fn new(env: &'a AhltEnvironment, ctx: &'a Context) -> Result<Self, Error> {
        let ns = env.namespace().ok_or(Error::MissingMetadata("namespace"))?;
        Ok(Self {
            ctx,
            env,
            api: Api::namespaced(ctx.client.clone(), &ns),
            generation: env.metadata.generation.unwrap_or_default(),
            now: Timestamp::now(),
        })
    }

    /// Computes and writes the status (nothing when unchanged), then publishes an event per
    /// transition and updates the Ready gauge.
    async fn finish(&self, current: &AhltEnvironmentStatus, outcome: Outcome) -> Result<(), Error> {
        let obs = Observations {
            generation: self.generation,
            outcome,
        };
        let next = status::next_status(current, &obs, self.now);
        apply::write_status(&self.api, self.env, current, &next).await?;
        for event in status::transition_events(current, &next) {
            cleanup::publish(self.ctx, self.env, event).await;
        }
        self.ctx
            .metrics
            .set_ready(&metrics_key(self.env), Some(status::ready_status(&next)));
        Ok(())
    }
}

pub(crate) fn metrics_key(env: &AhltEnvironment) -> String {
    format!("{}/{}", env.namespace().unwrap_or_default(), env.name_any())
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
    owner: &OwnerReference,
) -> Result<DatabaseStep, Error> {
    let admin_secret =
        observed
            .admin_secret
            .as_ref()
            .ok_or_else(|| DatabaseStepError::AdminSecretNotFound {
                namespace: plan.database.admin_secret_namespace.clone(),
                name: plan.database.admin_secret_name.clone(),
            })?;
    let admin = AdminCredentials::from_secret_data(&observe::secret_data(admin_secret))
        .map_err(|e| DatabaseStepError::Provision(ProvisionError::from(e)))?;
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
    apply::stamp(&mut db_secret);
    let secrets_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &plan.namespace);
    apply::apply_child(&secrets_api, &db_secret, observed.database_secret.as_ref())
        .await
        .map_err(DatabaseStepError::Secret)?;

    let target = target(plan, &secrets.database_password);
    ctx.provisioner
        .ensure(&admin, &target)
        .await
        .map_err(DatabaseStepError::Provision)?;
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

/// Applies the app Secret and ConfigMap, creates the migration Job and applies the
/// Deployment as the rollout plan says. Returns what status reports.
async fn apply_children(
    ctx: &Context,
    plan: &ValidatedEnv,
    rollout: &RolloutPlan,
    observed: &Observed,
    owner: &OwnerReference,
    database: DatabaseStep,
) -> Result<Progress, Error> {
    let client = &ctx.client;
    let ns = plan.namespace.as_str();

    // Build (pure). Without a serving image the Deployment is built but not applied.
    let mut children = build::children(
        plan,
        owner,
        &database.secrets,
        &database.endpoint,
        rollout.serving_image.as_deref().unwrap_or(&plan.image),
    );
    apply::stamp(&mut children.app_secret);
    apply::stamp(&mut children.config_map);
    apply::stamp(&mut children.migration_job);
    apply::stamp(&mut children.deployment);

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
    let mut migration = rollout.migration.clone();
    if rollout.create_migration_job {
        // Job templates are immutable: a Job is created once per image and never re-applied.
        let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
        let job = apply::apply_child(&jobs, &children.migration_job, None).await?;
        migration = observe::migration_state(Some(&job), plan.migrations.backoff_limit);
    }
    let workload = if rollout.apply_workload() {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let deployment = apply::apply_child(
            &deployments,
            &children.deployment,
            observed.deployment.as_ref(),
        )
        .await?;
        observe::workload_state(Some(&deployment))
    } else {
        observe::workload_state(None)
    };

    Ok(Progress {
        spec_image: plan.image.clone(),
        url: plan.url(),
        selector: names::selector_string(&plan.name),
        database: DatabaseObservation::Ready(database.status),
        migration,
        workload,
        // Filled in by the front door and graph steps.
        ingress: IngressObservation::Pending,
        graph: GraphObservation::Unobserved,
    })
}

/// What status reports when the pass stopped before applying children: the rest as observed.
fn observed_progress(
    plan: &ValidatedEnv,
    rollout: &RolloutPlan,
    observed: &Observed,
    database: DatabaseObservation,
) -> Progress {
    let ingress = match (
        &plan.ingress,
        &observed.ingress,
        &plan.route,
        &observed.route,
    ) {
        (Some(_), Some(_), _, _) | (_, _, Some(_), Some(_)) => IngressObservation::Configured,
        (Some(_), None, _, _) | (_, _, Some(_), None) => IngressObservation::Pending,
        _ => IngressObservation::NotRequested,
    };
    Progress {
        spec_image: plan.image.clone(),
        url: plan.url(),
        selector: names::selector_string(&plan.name),
        database,
        migration: rollout.migration.clone(),
        workload: observe::workload_state(observed.deployment.as_ref()),
        ingress,
        graph: match plan.graph {
            None => GraphObservation::NotConfigured,
            Some(_) => GraphObservation::Unobserved,
        },
    }
}
