//! One reconcile pass: acknowledge -> validate -> finalizer and observe -> plan -> build
//! (pure) -> apply (front door, database, configuration at once; then Job and Deployment)
//! -> graph -> status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, Resource, ResourceExt};

use super::apply;
use super::backoff::Backoff;
use super::cache::{Caches, Reader};
use super::children;
use super::cleanup;
use super::error::Error;
use super::front_door::{self, FrontDoor, GatewayApi};
use super::graph;
use super::observe::{self, Observed};
use super::provision::DatabaseProvisioner;
use super::rollout::{self, RolloutPlan};
use super::status::{
    self, DatabaseObservation, GraphObservation, IngressObservation, Observations, Outcome,
    Progress,
};
use crate::build;
use crate::crd::{AhltEnvironment, AhltEnvironmentStatus};
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
    /// The children's watch caches; without them (single passes in tests, tools) every
    /// child is read live.
    pub caches: Option<Caches>,
}

impl Context {
    /// Where passes read children.
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            client: &self.client,
            caches: self.caches.as_ref(),
        }
    }
}

/// Entry point for the controller: one pass plus metrics, health and backoff bookkeeping.
pub async fn reconcile(env: Arc<AhltEnvironment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.reconcile_started();
    ctx.health.pass_started();
    let key = ObjectRef::from_obj(env.as_ref());
    // On the heap: a pass's concurrent steps make a future too big for a thread's stack.
    let result = if env.meta().deletion_timestamp.is_some() {
        Box::pin(cleanup::cleanup(&env, &ctx)).await
    } else {
        Box::pin(reconcile_env(&env, &ctx)).await
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

    // 3. The finalizer guards the database from here on; meanwhile, observe (the caches,
    //    and the two reads that stay live).
    let (_, observed) = futures::try_join!(
        async { Ok::<_, Error>(apply::set_finalizer(&pass.api, env, true).await?) },
        async {
            let gateway_api = ctx.gateway_api.available(&ctx.client).await?;
            Ok(observe::observe(ctx.reader(), &plan, gateway_api).await?)
        },
    )?;

    // 4. Decide the rollout once.
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

    // 6. Credentials kept from the Secrets (or generated once), every child built (pure).
    let front_door = front_door::apply(&ctx.client, env, &plan, &observed, &owner);
    let prepared = match children::prepare(&plan, &owner, &rollout, &observed) {
        Ok(prepared) => prepared,
        Err(e) => {
            let door = front_door.await?;
            let as_observed = |db| observed_progress(&plan, &rollout, &observed, db);
            return pass
                .database_failed(&current, as_observed, door, e.into())
                .await;
        }
    };

    // 7. At once, as none waits for another: the Service and Ingress or HTTPRoute (from the
    //    first pass, so certificates issue during migrations); the database Secret, then
    //    the role and database; the app Secret and ConfigMap.
    let (door, database, configuration) = futures::join!(
        front_door,
        children::database(ctx, &plan, &prepared, &observed),
        children::configuration(ctx, &plan, &prepared, &observed),
    );
    let door = door?;
    let database = match database {
        Ok(database) => database,
        Err(e) => {
            let as_observed = |db| observed_progress(&plan, &rollout, &observed, db);
            return pass
                .database_failed(&current, as_observed, door, e.into())
                .await;
        }
    };
    configuration?;

    // 8. The migration Job and the Deployment, as the rollout plan says.
    let (migration, workload) =
        children::workloads(ctx, &plan, &rollout, &prepared, &observed).await?;
    let waiting_for_route = door.ingress.waits_for_route();
    let mut progress = Progress {
        spec_image: plan.image.clone(),
        url: door.url,
        selector: names::selector_string(&plan.name),
        database: DatabaseObservation::Ready(database),
        migration,
        workload,
        ingress: door.ingress,
        // Filled in by the graph step.
        graph: GraphObservation::Unobserved,
    };

    // 9. Graph resync, once an image serves.
    progress.graph = graph::step(ctx.reader(), &plan, &current, &progress.workload, &owner)
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

impl Pass<'_> {
    /// Reports a failed database step (with the front door as applied and the rest as
    /// observed) and fails the pass with it.
    async fn database_failed(
        &self,
        current: &AhltEnvironmentStatus,
        as_observed: impl FnOnce(DatabaseObservation) -> Progress,
        door: FrontDoor,
        e: Error,
    ) -> Result<Action, Error> {
        let mut progress = as_observed(DatabaseObservation::Failed {
            reason: e.reason(),
            message: e.to_string(),
        });
        progress.ingress = door.ingress;
        progress.url = door.url;
        self.finish(current, Outcome::Reconciled(Box::new(progress)))
            .await?;
        Err(e)
    }
}

pub(crate) fn metrics_key(env: &AhltEnvironment) -> String {
    format!("{}/{}", env.namespace().unwrap_or_default(), env.name_any())
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
