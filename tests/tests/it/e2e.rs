//! End-to-end suite against the cluster in KUBECONFIG. Opt-in: runs only with AHLT_E2E=1
//! (each test prints why it is skipped otherwise). See docs/testing-e2e.md.
//!
//! Environment:
//!   AHLT_E2E=1                  run at all
//!   AHLT_E2E_IMAGE              app image (repository:tag) to deploy first
//!   AHLT_E2E_NEXT_IMAGE         same repository, another tag: the tag bump
//!   AHLT_E2E_ADMIN_SECRET       namespace/name of the PostgreSQL admin Secret
//!                               (default ahlt-infra/postgres-admin, examples/shared-infra)
//!   AHLT_E2E_NAMESPACE          test namespace (default ahlt-e2e; created when missing)
//!   AHLT_E2E_PULL_SECRET        image pull secret in that namespace (optional)
//!   AHLT_E2E_OPERATOR           `external`: an operator already runs (e.g. the Helm chart);
//!                               otherwise the test applies the CRD and starts
//!                               AHLT_E2E_OPERATOR_BIN (default `ahlt-operator` on PATH)
//!   AHLT_E2E_TIMEOUT_SECONDS    per rollout (default 600)
//!
//! Synchronisation is by watches (kube's await_condition) with timeouts, never by sleeping.

use std::time::Duration;

use ahlt_operator::crd::AhltEnvironment;
use anyhow::{Context as _, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, ResourceExt};

const NAME: &str = "e2e";
const FIELD_MANAGER: &str = "ahlt-e2e";

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// None (and a printed reason) unless the suite is switched on and configured.
fn enabled() -> Option<Settings> {
    if var("AHLT_E2E").as_deref() != Some("1") {
        eprintln!(
            "skipped: end-to-end tests run only with AHLT_E2E=1 (and a cluster in KUBECONFIG)"
        );
        return None;
    }
    let (Some(image), Some(next_image)) = (var("AHLT_E2E_IMAGE"), var("AHLT_E2E_NEXT_IMAGE"))
    else {
        panic!("AHLT_E2E=1 needs AHLT_E2E_IMAGE and AHLT_E2E_NEXT_IMAGE (repository:tag)");
    };
    Some(Settings {
        image,
        next_image,
        admin_secret: var("AHLT_E2E_ADMIN_SECRET").unwrap_or("ahlt-infra/postgres-admin".into()),
        namespace: var("AHLT_E2E_NAMESPACE").unwrap_or("ahlt-e2e".into()),
        pull_secret: var("AHLT_E2E_PULL_SECRET"),
        external_operator: var("AHLT_E2E_OPERATOR").as_deref() == Some("external"),
        operator_bin: var("AHLT_E2E_OPERATOR_BIN").unwrap_or("ahlt-operator".into()),
        timeout: Duration::from_secs(
            var("AHLT_E2E_TIMEOUT_SECONDS")
                .and_then(|s| s.parse().ok())
                .unwrap_or(600),
        ),
    })
}

struct Settings {
    image: String,
    next_image: String,
    admin_secret: String,
    namespace: String,
    pull_secret: Option<String>,
    external_operator: bool,
    operator_bin: String,
    timeout: Duration,
}

fn split_image(image: &str) -> (String, String) {
    let (repo, tag) = image.rsplit_once(':').expect("image as repository:tag");
    assert!(!tag.contains('/'), "image as repository:tag, got {image}");
    (repo.to_owned(), tag.to_owned())
}

fn manifest(s: &Settings) -> serde_json::Value {
    let (repository, tag) = split_image(&s.image);
    let (admin_ns, admin_name) = s.admin_secret.split_once('/').expect("namespace/name");
    serde_json::json!({
        "apiVersion": "ahlt.io/v1alpha1",
        "kind": "AhltEnvironment",
        "metadata": {"name": NAME, "namespace": s.namespace},
        "spec": {
            "environment": "preview",
            "image": {
                "repository": repository,
                "tag": tag,
                "pullSecrets": s.pull_secret.iter().collect::<Vec<_>>(),
            },
            "database": {
                "adminSecretRef": {"name": admin_name, "namespace": admin_ns},
                "name": "ahlt_e2e",
                "deletionPolicy": "Delete",
            },
            "migrations": {"timeoutSeconds": 300},
            "ingress": {"host": "e2e.local"},
        }
    })
}

/// Ready=True for the current generation, with status.image = `image`.
fn ready_with(image: String) -> impl Fn(Option<&AhltEnvironment>) -> bool {
    move |env: Option<&AhltEnvironment>| {
        let Some(env) = env else { return false };
        let generation = env.metadata.generation;
        let Some(status) = env.status.as_ref() else {
            return false;
        };
        let ready = status.conditions.iter().any(|c| {
            c.type_ == "Ready" && c.status == "True" && c.observed_generation == generation
        });
        ready && status.observed_generation == generation && status.image.as_deref() == Some(&image)
    }
}

fn describe(env: Option<&AhltEnvironment>) -> String {
    match env.and_then(|e| e.status.as_ref()) {
        None => "no status".into(),
        Some(s) => s
            .conditions
            .iter()
            .map(|c| format!("{}={} {} {}", c.type_, c.status, c.reason, c.message))
            .chain([format!("image={:?}", s.image)])
            .collect::<Vec<_>>()
            .join("; "),
    }
}

async fn wait_ready(
    api: &Api<AhltEnvironment>,
    image: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let waited = tokio::time::timeout(
        timeout,
        await_condition(api.clone(), NAME, ready_with(image.to_owned())),
    )
    .await;
    match waited {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => bail!("watching {NAME}: {e}"),
        Err(_) => {
            let now = api.get_opt(NAME).await?;
            bail!(
                "{NAME} not Ready with {image} within {timeout:?}: {}",
                describe(now.as_ref())
            )
        }
    }
}

async fn install_crd(client: &Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/ahltenvironment.yaml");
    let crd: CustomResourceDefinition = serde_yaml::from_str(&std::fs::read_to_string(path)?)?;
    let name = crd.name_any();
    crds.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await?;
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .context("CRD not established within 60s")??;
    Ok(())
}

async fn ensure_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(name).await?.is_none() {
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
        namespaces.create(&PostParams::default(), &ns).await?;
    }
    Ok(())
}

#[tokio::test]
async fn an_environment_rolls_out_bumps_its_tag_and_is_deleted() -> anyhow::Result<()> {
    let Some(s) = enabled() else { return Ok(()) };
    let client = Client::try_default().await.context("KUBECONFIG")?;

    // The operator: already running (the chart), or the CRD plus a child process.
    let _operator = if s.external_operator {
        None
    } else {
        install_crd(&client).await?;
        Some(
            tokio::process::Command::new(&s.operator_bin)
                .arg("run")
                .env("HTTP_ADDR", "127.0.0.1:0")
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {}", s.operator_bin))?,
        )
    };
    ensure_namespace(&client, &s.namespace).await?;
    let envs: Api<AhltEnvironment> = Api::namespaced(client.clone(), &s.namespace);
    let ns = s.namespace.as_str();

    // Apply and wait for the first rollout.
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    envs.patch(NAME, &pp, &Patch::Apply(manifest(&s))).await?;
    wait_ready(&envs, &s.image, s.timeout).await?;

    // Children, named by the operator's conventions, owned by the environment.
    let env = envs.get(NAME).await?;
    let uid = env.uid().unwrap();
    let owned =
        |refs: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>| {
            refs.is_some_and(|r| r.iter().any(|o| o.uid == uid && o.controller == Some(true)))
        };
    let deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get(NAME)
        .await?;
    assert!(owned(deployment.metadata.owner_references.as_ref()));
    let container = &deployment.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(container.image.as_deref(), Some(s.image.as_str()));
    assert!(owned(
        Api::<Service>::namespaced(client.clone(), ns)
            .get(NAME)
            .await?
            .metadata
            .owner_references
            .as_ref()
    ));
    assert!(owned(
        Api::<ConfigMap>::namespaced(client.clone(), ns)
            .get(&format!("{NAME}-config"))
            .await?
            .metadata
            .owner_references
            .as_ref()
    ));
    for secret in [format!("{NAME}-db"), format!("{NAME}-app")] {
        let secret = Api::<Secret>::namespaced(client.clone(), ns)
            .get(&secret)
            .await?;
        assert!(owned(secret.metadata.owner_references.as_ref()));
    }
    let jobs = Api::<Job>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!(
            "app.kubernetes.io/instance={NAME},app.kubernetes.io/component=migrate"
        )))
        .await?;
    assert_eq!(jobs.items.len(), 1, "one migration Job per image");
    let status = env.status.unwrap();
    for (condition, expected) in [
        ("DatabaseReady", "True"),
        ("MigrationsApplied", "True"),
        ("WorkloadAvailable", "True"),
        ("IngressReady", "True"),
    ] {
        let c = status
            .conditions
            .iter()
            .find(|c| c.type_ == condition)
            .unwrap_or_else(|| panic!("no {condition}"));
        assert_eq!(
            c.status, expected,
            "{condition}: {} {}",
            c.reason, c.message
        );
    }

    // Tag bump: a new migration Job, then the new image serves.
    let (_, next_tag) = split_image(&s.next_image);
    envs.patch(
        NAME,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"image": {"tag": next_tag}}})),
    )
    .await?;
    wait_ready(&envs, &s.next_image, s.timeout).await?;
    let jobs = Api::<Job>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!(
            "app.kubernetes.io/instance={NAME},app.kubernetes.io/component=migrate"
        )))
        .await?;
    assert_eq!(jobs.items.len(), 2, "the bump ran its own migration Job");

    // Deletion: the finalizer drops the database (deletionPolicy Delete), then it is gone.
    envs.delete(NAME, &DeleteParams::foreground()).await?;
    tokio::time::timeout(
        s.timeout,
        await_condition(envs.clone(), NAME, conditions::is_deleted(&uid)),
    )
    .await
    .context("the environment was not deleted in time (finalizer stuck?)")??;
    Ok(())
}

#[test]
fn without_the_switch_the_suite_is_skipped() {
    if var("AHLT_E2E").as_deref() != Some("1") {
        assert!(enabled().is_none());
    }
}
