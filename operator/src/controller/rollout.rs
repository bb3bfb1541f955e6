//! The rollout decision, pure: from what the cluster holds to which image serves, whether the
//! migration Job is created, and whether the workload is applied. The driver carries it out
//! and status reports the same plan; nothing works it out a second time.
//!
//! Also pure: whether the spec points the environment at another database than the one its
//! data lives in, which is refused (an environment's database identity is fixed for life).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;

use super::observe;
use super::status::MigrationObservation;
use crate::build::secrets::keys;
use crate::crd::AhltEnvironmentStatus;
use crate::validate::ValidatedEnv;

/// What this pass does about the image.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutPlan {
    /// The migrations of the spec's image, as far as they got.
    pub migration: MigrationObservation,
    /// The image the Deployment runs after this pass: the spec's once its migrations
    /// succeeded, else what serves now. `None`: no Deployment yet (first migrations pending).
    pub serving_image: Option<String>,
    /// The spec image's migration Job does not exist and has not succeeded before.
    pub create_migration_job: bool,
}

impl RolloutPlan {
    /// Whether the Deployment is applied in this pass.
    pub fn apply_workload(&self) -> bool {
        self.serving_image.is_some()
    }
}

/// The plan for `env`, from the status (`migratedImage`), the spec image's migration Job and
/// the Deployment as the cluster holds them.
pub fn plan(
    env: &ValidatedEnv,
    current: &AhltEnvironmentStatus,
    migration_job: Option<&Job>,
    deployment: Option<&Deployment>,
) -> RolloutPlan {
    let migrated_before = current.migrated_image.as_deref() == Some(env.image.as_str());
    let migration = match migration_job {
        // A garbage-collected Job of an image that migrated before is still a success.
        None if migrated_before => MigrationObservation::Succeeded,
        job => observe::migration_state(job, env.migrations.backoff_limit),
    };
    let serving_image = if migration == MigrationObservation::Succeeded {
        Some(env.image.clone())
    } else {
        deployment.and_then(observe::deployment_image)
    };
    RolloutPlan {
        create_migration_job: migration_job.is_none()
            && migration == MigrationObservation::NotStarted,
        migration,
        serving_image,
    }
}

/// The database and role an environment's data lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseIdentity {
    pub name: String,
    pub role: String,
}

/// Where this environment's data lives, if it was ever provisioned: `status.database`, else
/// the database Secret the operator wrote (status may have been lost, the Secret not).
pub fn established_identity(
    current: &AhltEnvironmentStatus,
    database_secret: Option<&Secret>,
) -> Option<DatabaseIdentity> {
    if let Some(db) = &current.database {
        return Some(DatabaseIdentity {
            name: db.name.clone(),
            role: db.role.clone(),
        });
    }
    let name = observe::secret_value(database_secret, keys::DATABASE)?;
    let role = observe::secret_value(database_secret, keys::USERNAME).unwrap_or(name.clone());
    Some(DatabaseIdentity { name, role })
}

/// Why the spec may not be reconciled against its data, if it may not: it names another
/// database or role than the established one. The message says how to get out.
pub fn rename_refusal(
    env: &ValidatedEnv,
    current: &AhltEnvironmentStatus,
    database_secret: Option<&Secret>,
) -> Option<String> {
    let established = established_identity(current, database_secret)?;
    if established.name == env.database.name && established.role == env.database.role {
        return None;
    }
    Some(format!(
        "spec.database asks for database {:?} with role {:?}, but this environment's data lives \
         in database {:?} with role {:?}; the operator never switches an environment to another \
         database. Set spec.database.name to {:?} and spec.database.role to {:?} (or remove \
         them if those are the defaults), or move the data as docs/operations.md \
         (\"Moving an environment to another database\") describes",
        env.database.name,
        env.database.role,
        established.name,
        established.role,
        established.name,
        established.role,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::testing::minimal;
    use crate::crd::DatabaseStatus;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::batch::v1::JobStatus;

    fn succeeded_job() -> Job {
        Job {
            status: Some(JobStatus {
                succeeded: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_environment_creates_its_job_and_no_workload() {
        let env = minimal();
        let plan = plan(&env, &AhltEnvironmentStatus::default(), None, None);
        assert!(plan.create_migration_job);
        assert!(!plan.apply_workload());
        assert_eq!(plan.migration, MigrationObservation::NotStarted);
    }

    #[test]
    fn succeeded_migrations_serve_the_spec_image_even_after_the_job_is_gone() {
        let env = minimal();
        let plan_with_job = plan(
            &env,
            &AhltEnvironmentStatus::default(),
            Some(&succeeded_job()),
            None,
        );
        assert_eq!(
            plan_with_job.serving_image.as_deref(),
            Some(env.image.as_str())
        );
        assert!(!plan_with_job.create_migration_job);
        let migrated = AhltEnvironmentStatus {
            migrated_image: Some(env.image.clone()),
            ..Default::default()
        };
        let plan_without_job = plan(&env, &migrated, None, None);
        assert_eq!(plan_without_job.migration, MigrationObservation::Succeeded);
        assert!(!plan_without_job.create_migration_job);
    }

    fn db_secret(database: &str, username: &str) -> Secret {
        Secret {
            data: Some(
                [
                    (keys::DATABASE.to_owned(), ByteString(database.into())),
                    (keys::USERNAME.to_owned(), ByteString(username.into())),
                ]
                .into(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn a_rename_is_refused_whether_status_or_secret_remembers_the_database() {
        let env = minimal();
        let same = db_secret(&env.database.name, &env.database.role);
        assert_eq!(rename_refusal(&env, &Default::default(), Some(&same)), None);
        assert_eq!(rename_refusal(&env, &Default::default(), None), None);

        let other = db_secret("ahlt_other", "ahlt_other");
        let message = rename_refusal(&env, &Default::default(), Some(&other)).unwrap();
        assert!(message.contains("\"ahlt_other\""), "{message}");

        let status = AhltEnvironmentStatus {
            database: Some(DatabaseStatus {
                name: env.database.name.clone(),
                role: "someone_else".into(),
                secret_name: "x".into(),
            }),
            ..Default::default()
        };
        assert!(rename_refusal(&env, &status, Some(&same)).is_some());
    }
}
