//! Deletion, and the events every step publishes.
//!
//! `Retain` releases the finalizer at once; `Delete` first says Ready=False/`Deleting`, then
//! drops the database and role, retrying with backoff until [`CLEANUP_DEADLINE`] after the
//! deletion request, then gives up (Warning event) and releases the finalizer, so a vanished
//! server cannot block deletion.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};

use super::apply;
use super::error::{DatabaseStepError, Error};
use super::observe;
use super::provision::ProvisionError;
use super::reconcile::{Context, metrics_key};
use super::status::{self, TransitionEvent};
use crate::crd::{AhltEnvironment, DeletionPolicy};
use crate::database::{self, AdminCredentials};
use crate::names;
use crate::validate;

/// How long deletion with `deletionPolicy: Delete` keeps retrying the DROP.
pub const CLEANUP_DEADLINE: SignedDuration = SignedDuration::from_mins(10);

/// Events are best effort: a failed publish is logged, never fails the pass.
pub async fn publish(ctx: &Context, env: &AhltEnvironment, event: TransitionEvent) {
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

pub async fn cleanup(env: &AhltEnvironment, ctx: &Context) -> Result<Action, Error> {
    ctx.metrics.set_ready(&metrics_key(env), None);
    if !env.finalizers().iter().any(|f| f == names::FINALIZER) {
        return Ok(Action::await_change());
    }
    let ns = env.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let api: Api<AhltEnvironment> = Api::namespaced(ctx.client.clone(), &ns);
    let policy = env.spec.database.deletion_policy.unwrap_or_default();
    if policy == DeletionPolicy::Retain {
        apply::set_finalizer(&api, env, false).await?;
        return Ok(Action::await_change());
    }

    let now = Timestamp::now();
    let current = env.status.clone().unwrap_or_default();
    let deleting = status::deleting(&current, env.metadata.generation.unwrap_or_default(), now);
    apply::write_status(&api, env, &current, &deleting).await?;

    match drop_database(env, ctx).await {
        Ok(()) => {
            let note = "database and role dropped (deletionPolicy: Delete)";
            publish(ctx, env, TransitionEvent::normal("DatabaseDropped", note)).await;
            apply::set_finalizer(&api, env, false).await?;
            Ok(Action::await_change())
        }
        Err(e) => {
            let requested = env.meta().deletion_timestamp.as_ref().map_or(now, |t| t.0);
            if now.duration_since(requested) >= CLEANUP_DEADLINE {
                let note = format!(
                    "gave up dropping the database after {} minutes; it is retained: {e}",
                    CLEANUP_DEADLINE.as_mins()
                );
                publish(
                    ctx,
                    env,
                    TransitionEvent::warning("CleanupAbandoned", &note),
                )
                .await;
                apply::set_finalizer(&api, env, false).await?;
                return Ok(Action::await_change());
            }
            let message = format!("dropping the database failed, retrying: {e}");
            let failure = status::database_failed(&deleting, e.reason(), &message, now);
            apply::write_status(&api, env, &deleting, &failure).await?;
            for event in status::transition_events(&deleting, &failure) {
                publish(ctx, env, event).await;
            }
            Err(e)
        }
    }
}

async fn drop_database(env: &AhltEnvironment, ctx: &Context) -> Result<(), Error> {
    let plan = validate::validate(env).map_err(|e| {
        DatabaseStepError::Provision(ProvisionError {
            reason: e.reason(),
            message: e.to_string(),
            transient: false,
        })
    })?;
    let admin_api: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &plan.database.admin_secret_namespace);
    let secret = observe::get(&admin_api, &plan.database.admin_secret_name)
        .await
        .map_err(DatabaseStepError::Observe)?
        .ok_or_else(|| DatabaseStepError::AdminSecretNotFound {
            namespace: plan.database.admin_secret_namespace.clone(),
            name: plan.database.admin_secret_name.clone(),
        })?;
    let admin = AdminCredentials::from_secret_data(&observe::secret_data(&secret))
        .map_err(|e| DatabaseStepError::Provision(ProvisionError::from(e)))?;
    ctx.provisioner
        .drop_database(
            &admin,
            &plan.database.name,
            &plan.database.role,
            &database::environment_owner(&plan.namespace, &plan.name),
        )
        .await
        .map_err(DatabaseStepError::Provision)?;
    Ok(())
}
