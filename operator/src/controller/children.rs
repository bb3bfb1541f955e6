//! The children that follow from the database credentials, built once per pass (pure) and
//! applied in the order their readers need: the database Secret before the role and
//! database are ensured with its password; the app Secret and ConfigMap meanwhile (nothing
//! reads them until a pod starts); then the migration Job and the Deployment, whose pods
//! read all of them. Applies that do not wait for each other run concurrently.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use serde::Serialize;

use super::apply;
use super::cache::Cached;
use super::error::{ApplyError, DatabaseStepError};
use super::observe::{self, Observed};
use super::provision::ProvisionError;
use super::reconcile::Context;
use super::rollout::RolloutPlan;
use super::status::{MigrationObservation, WorkloadObservation};
use crate::build::{self, DatabaseEndpoint, GeneratedSecrets, env_vars, secrets::keys};
use crate::crd::DatabaseStatus;
use crate::database::{self, AdminCredentials, DatabaseTarget};
use crate::validate::ValidatedEnv;

/// What the database credentials decide, ready to apply. No `Debug`: it holds passwords.
pub struct Prepared {
    admin: AdminCredentials,
    target: DatabaseTarget,
    /// Every child, stamped with its applied-state digest.
    children: build::Children,
}

/// Reads the admin credentials, keeps every generated value the Secrets already hold (and
/// generates the missing ones once), and builds every child (pure).
pub fn prepare(
    plan: &ValidatedEnv,
    owner: &OwnerReference,
    rollout: &RolloutPlan,
    observed: &Observed,
) -> Result<Prepared, DatabaseStepError> {
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
    // Without a serving image the Deployment is built but not applied.
    let mut children = build::children(
        plan,
        owner,
        &secrets,
        &endpoint,
        rollout.serving_image.as_deref().unwrap_or(&plan.image),
    );
    apply::stamp(&mut children.database_secret);
    apply::stamp(&mut children.app_secret);
    apply::stamp(&mut children.config_map);
    apply::stamp(&mut children.migration_job);
    apply::stamp(&mut children.deployment);
    Ok(Prepared {
        target: target(plan, &secrets.database_password),
        admin,
        children,
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

/// Applies the database Secret (so the password is stored before it is used), then ensures
/// the role and database. Returns what status reports about them.
pub async fn database(
    ctx: &Context,
    plan: &ValidatedEnv,
    prepared: &Prepared,
    observed: &Observed,
) -> Result<DatabaseStatus, DatabaseStepError> {
    apply_to(
        ctx,
        plan,
        &prepared.children.database_secret,
        observed.database_secret.as_ref(),
    )
    .await
    .map_err(DatabaseStepError::Secret)?;
    ctx.provisioner
        .ensure(&prepared.admin, &prepared.target)
        .await
        .map_err(DatabaseStepError::Provision)?;
    Ok(DatabaseStatus {
        name: plan.database.name.clone(),
        role: plan.database.role.clone(),
        secret_name: plan.database.secret_name.clone(),
    })
}

/// The app Secret and the ConfigMap, at once.
pub async fn configuration(
    ctx: &Context,
    plan: &ValidatedEnv,
    prepared: &Prepared,
    observed: &Observed,
) -> Result<(), ApplyError> {
    let children = &prepared.children;
    futures::try_join!(
        apply_to(
            ctx,
            plan,
            &children.app_secret,
            observed.app_secret.as_ref()
        ),
        apply_to(
            ctx,
            plan,
            &children.config_map,
            observed.config_map.as_ref()
        ),
    )?;
    Ok(())
}

/// Creates the migration Job and applies the Deployment as the rollout plan says, at once
/// (during an image bump the new image's Job runs while the old image keeps serving).
/// Returns the migration and workload as they stand after this pass.
pub async fn workloads(
    ctx: &Context,
    plan: &ValidatedEnv,
    rollout: &RolloutPlan,
    prepared: &Prepared,
    observed: &Observed,
) -> Result<(MigrationObservation, WorkloadObservation), ApplyError> {
    let children = &prepared.children;
    let migration = async {
        if !rollout.create_migration_job {
            return Ok(rollout.migration.clone());
        }
        // Job templates are immutable: a Job is created once per image and never re-applied
        // (a cache that has not seen it yet re-sends the same object, which changes nothing).
        let job = apply_to(ctx, plan, &children.migration_job, None).await?;
        Ok(observe::migration_state(
            Some(&job),
            plan.migrations.backoff_limit,
        ))
    };
    let workload = async {
        if !rollout.apply_workload() {
            return Ok(observe::workload_state(None));
        }
        let deployment = apply_to(
            ctx,
            plan,
            &children.deployment,
            observed.deployment.as_ref(),
        )
        .await?;
        Ok(observe::workload_state(Some(&deployment)))
    };
    futures::try_join!(migration, workload)
}

/// [`apply::apply_child`] in the environment's namespace.
async fn apply_to<K>(
    ctx: &Context,
    plan: &ValidatedEnv,
    desired: &K,
    observed: Option<&K>,
) -> Result<K, ApplyError>
where
    K: Cached + kube::Resource<Scope = NamespaceResourceScope> + Serialize,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &plan.namespace);
    apply::apply_child(&api, desired, observed).await
}
