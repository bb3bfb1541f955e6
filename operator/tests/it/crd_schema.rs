//! The AhltEnvironment CRD: the committed YAML matches the types, the schema is structural and
//! complete, and invalid manifests are rejected client-side by the layer that the apiserver
//! would use (OpenAPI schema or CEL), without a cluster.

use ahlt_operator::crd::{AhltEnvironment, DatabaseSpec, TlsSpec};
use ahlt_operator::crdgen;
use ahlt_operator::validate::{MAX_NAME_LEN, validate};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers

fn crd_json() -> Value {
    serde_json::to_value(crdgen::crd()).expect("CRD serializes")
}

fn version() -> Value {
    let crd = crd_json();
    let versions = crd["spec"]["versions"]
        .as_array()
        .expect("versions")
        .clone();
    assert_eq!(versions.len(), 1, "exactly one served version");
    versions[0].clone()
}

/// The `openAPIV3Schema` the apiserver validates against.
fn schema() -> Value {
    version()["schema"]["openAPIV3Schema"].clone()
}

/// The schema node at a dotted property path, e.g. `spec.database.name`.
fn node(path: &str) -> Value {
    let mut current = schema();
    for segment in path.split('.') {
        current = match segment {
            "[]" => current["items"].clone(),
            name => current["properties"][name].clone(),
        };
        assert!(
            current.is_object(),
            "schema has no node at {path} (stopped at {segment})"
        );
    }
    current
}

/// The OpenAPI v3 schema as JSON Schema draft 4, which the validator crate understands: Kubernetes'
/// `nullable` becomes a `null` type and `x-kubernetes-int-or-string` an integer-or-string type.
/// Other `x-kubernetes-*` keywords are unknown to JSON Schema and ignored.
fn to_json_schema(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                to_json_schema(child);
            }
            if map.get("x-kubernetes-int-or-string") == Some(&json!(true)) {
                map.insert("type".into(), json!(["integer", "string"]));
            }
            if map.remove("nullable") == Some(json!(true)) {
                match map.get("type").cloned() {
                    Some(Value::String(t)) => {
                        map.insert("type".into(), json!([t, "null"]));
                    }
                    Some(Value::Array(mut types)) => {
                        types.push(json!("null"));
                        map.insert("type".into(), Value::Array(types));
                    }
                    _ => {}
                }
                if let Some(Value::Array(values)) = map.get_mut("enum") {
                    values.push(Value::Null);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_json_schema),
        _ => {}
    }
}

fn schema_validator() -> jsonschema::Validator {
    let mut s = schema();
    to_json_schema(&mut s);
    jsonschema::draft4::new(&s).expect("the CRD schema is a valid JSON schema")
}

/// Schema violations as `(dotted instance path, message)`.
fn schema_errors(validator: &jsonschema::Validator, manifest: &Value) -> Vec<(String, String)> {
    validator
        .iter_errors(manifest)
        .map(|e| {
            let path = e
                .instance_path()
                .as_str()
                .trim_start_matches('/')
                .replace('/', ".");
            (path, e.to_string())
        })
        .collect()
}

/// CEL violations as `(field path, message)`; `None` when the manifest does not even
/// deserialize into the Rust types (then it is a schema case).
fn cel_errors(manifest: &Value, old: Option<&Value>) -> Option<Vec<(String, String)>> {
    let env: AhltEnvironment = serde_json::from_value(manifest.clone()).ok()?;
    let result = match old {
        None => env.validate_cel(),
        Some(old) => {
            let old: AhltEnvironment =
                serde_json::from_value(old.clone()).expect("old manifest deserializes");
            env.validate_cel_update(&old)
        }
    };
    Some(match result {
        Ok(()) => vec![],
        Err(errors) => errors
            .iter()
            .map(|e| (e.field_path.clone(), e.message.clone()))
            .collect(),
    })
}

/// RFC 7386 JSON merge patch: objects merge, `null` removes, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(patch) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let target = target.as_object_mut().expect("object");
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn patched(base: &Value, patch: Value) -> Value {
    let mut m = base.clone();
    merge(&mut m, &patch);
    m
}

// ---------------------------------------------------------------------------------------------
// Valid manifests

fn minimal_dev() -> Value {
    json!({
        "apiVersion": "ahlt.io/v1alpha1",
        "kind": "AhltEnvironment",
        "metadata": {"name": "dev", "namespace": "ahlt-dev", "generation": 1},
        "spec": {
            "environment": "dev",
            "image": {"repository": "registry.gitlab.com/acme/ahlt", "tag": "3f2c1a9"},
            "database": {"adminSecretRef": {"name": "postgres-admin"}}
        }
    })
}

fn full_prod() -> Value {
    json!({
        "apiVersion": "ahlt.io/v1alpha1",
        "kind": "AhltEnvironment",
        "metadata": {"name": "prod", "namespace": "ahlt-prod", "generation": 7},
        "spec": {
            "environment": "prod",
            "image": {
                "repository": "registry.example.org:5000/acme/ahlt",
                "tag": "v1.4.2",
                "pullPolicy": "Always",
                "pullSecrets": ["gitlab-registry"]
            },
            "replicas": 3,
            "resources": {
                "requests": {"cpu": "500m", "memory": "512Mi"},
                "limits": {"memory": "1Gi"}
            },
            "suspend": false,
            "database": {
                "adminSecretRef": {"name": "postgres-admin", "namespace": "infra"},
                "name": "ahlt_prod",
                "role": "ahlt_prod_app",
                "deletionPolicy": "Retain"
            },
            "migrations": {"timeoutSeconds": 1200, "backoffLimit": 2},
            "ingress": {
                "host": "ahlt.example.org",
                "className": "nginx",
                "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "8m"},
                "tls": {"issuerRef": {"name": "letsencrypt-prod", "kind": "ClusterIssuer"}}
            },
            "graph": {
                "uri": "neo4j+s://neo4j.infra.svc:7687",
                "credentialsSecretRef": {"name": "neo4j-credentials"},
                "resyncOnRollout": true,
                "resyncRequest": "2025-01-31T12:00:00Z"
            },
            "app": {
                "logLevel": "info,ahlt=debug",
                "cookieSecure": true,
                "env": [
                    {"name": "OTEL_SERVICE_NAME", "value": "ahlt"},
                    {"name": "SMTP_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "smtp", "key": "password"}}}
                ]
            }
        }
    })
}

fn preview_with_secret_tls() -> Value {
    json!({
        "apiVersion": "ahlt.io/v1alpha1",
        "kind": "AhltEnvironment",
        "metadata": {"name": "mr-1234", "namespace": "ahlt-previews", "generation": 2},
        "spec": {
            "environment": "preview",
            "image": {"repository": "localhost:5000/ahlt", "tag": "mr-1234.build_7"},
            "replicas": 0,
            "database": {"adminSecretRef": {"name": "postgres-admin"}, "deletionPolicy": "Delete"},
            "ingress": {"host": "mr-1234.preview.local", "tls": {"secretName": "preview-wildcard-tls"}},
            "graph": {"uri": "falkor://falkordb.infra:6379"}
        }
    })
}

fn valid_manifests() -> Vec<(&'static str, Value)> {
    vec![
        ("minimal dev", minimal_dev()),
        ("full prod with a cert-manager issuer", full_prod()),
        (
            "preview with TLS from an existing Secret",
            preview_with_secret_tls(),
        ),
        (
            "metadata.name of exactly the maximum length",
            patched(
                &minimal_dev(),
                json!({"metadata": {"name": "a".repeat(MAX_NAME_LEN)}}),
            ),
        ),
    ]
}

#[test]
fn valid_manifests_pass_schema_cel_and_operator_validation() {
    let validator = schema_validator();
    for (name, manifest) in valid_manifests() {
        let errors = schema_errors(&validator, &manifest);
        assert!(errors.is_empty(), "{name}: schema rejected it: {errors:?}");
        let cel =
            cel_errors(&manifest, None).unwrap_or_else(|| panic!("{name}: not deserializable"));
        assert!(cel.is_empty(), "{name}: CEL rejected it: {cel:?}");
        // An update to itself passes the transition rules too.
        let cel = cel_errors(&manifest, Some(&manifest)).expect("deserializes");
        assert!(
            cel.is_empty(),
            "{name}: CEL rejected a no-op update: {cel:?}"
        );

        let env: AhltEnvironment = serde_json::from_value(manifest).expect("deserializes");
        let validated = validate(&env).unwrap_or_else(|e| panic!("{name}: validate failed: {e}"));
        assert_eq!(validated.name, env.metadata.name.clone().unwrap());
    }
}

#[test]
fn valid_manifests_map_to_the_expected_plans() {
    let prod: AhltEnvironment = serde_json::from_value(full_prod()).unwrap();
    let prod = validate(&prod).unwrap();
    assert_eq!(prod.url().as_deref(), Some("https://ahlt.example.org"));
    assert_eq!(prod.database.name, "ahlt_prod");
    assert_eq!(prod.database.role, "ahlt_prod_app");
    assert_eq!(prod.database.admin_secret_namespace, "infra");
    assert_eq!(prod.replicas, 3);

    let preview: AhltEnvironment = serde_json::from_value(preview_with_secret_tls()).unwrap();
    let preview = validate(&preview).unwrap();
    assert_eq!(preview.database.name, "ahlt_mr_1234");
    assert_eq!(preview.replicas, 0);
    assert_eq!(
        preview.url().as_deref(),
        Some("https://mr-1234.preview.local")
    );

    let dev: AhltEnvironment = serde_json::from_value(minimal_dev()).unwrap();
    let dev = validate(&dev).unwrap();
    assert_eq!(dev.url(), None);
    assert_eq!(dev.replicas, 1);
    assert_eq!(dev.database.admin_secret_namespace, "ahlt-dev");
}

// ---------------------------------------------------------------------------------------------
// Invalid manifests

#[derive(Debug, Clone, Copy, PartialEq)]
enum Layer {
    /// OpenAPI schema: types, required fields, enums, patterns, ranges.
    Schema,
    /// CEL `x-kubernetes-validations`; the schema alone accepts these.
    Cel,
}

struct Invalid {
    /// Why the apiserver must refuse it.
    reason: &'static str,
    layer: Layer,
    /// Dotted path of the offending field (schema: instance path, CEL: rule field path).
    at: &'static str,
    /// JSON merge patch on [`minimal_dev`].
    patch: Value,
}

fn invalid(reason: &'static str, layer: Layer, at: &'static str, patch: Value) -> Invalid {
    Invalid {
        reason,
        layer,
        at,
        patch,
    }
}

fn invalid_manifests() -> Vec<Invalid> {
    use Layer::{Cel, Schema};
    let ingress = |extra: Value| {
        let mut i = json!({"host": "dev.local"});
        merge(&mut i, &extra);
        json!({"spec": {"ingress": i}})
    };
    vec![
        invalid(
            "environment must be one of the four profiles",
            Schema,
            "spec.environment",
            json!({"spec": {"environment": "qa"}}),
        ),
        invalid(
            "replicas above 50",
            Schema,
            "spec.replicas",
            json!({"spec": {"replicas": 51}}),
        ),
        invalid(
            "negative replicas",
            Schema,
            "spec.replicas",
            json!({"spec": {"replicas": -1}}),
        ),
        invalid(
            "replicas must be an integer",
            Schema,
            "spec.replicas",
            json!({"spec": {"replicas": "3"}}),
        ),
        invalid(
            "empty image tag",
            Schema,
            "spec.image.tag",
            json!({"spec": {"image": {"tag": ""}}}),
        ),
        invalid(
            "image tag with spaces",
            Schema,
            "spec.image.tag",
            json!({"spec": {"image": {"tag": "v1 beta"}}}),
        ),
        invalid(
            "image tag longer than 128 characters",
            Schema,
            "spec.image.tag",
            json!({"spec": {"image": {"tag": "a".repeat(129)}}}),
        ),
        invalid(
            "repository with a scheme and uppercase letters",
            Schema,
            "spec.image.repository",
            json!({"spec": {"image": {"repository": "https://Registry.example/ahlt"}}}),
        ),
        invalid(
            "repository with a tag in it",
            Schema,
            "spec.image.repository",
            json!({"spec": {"image": {"repository": "registry.example/ahlt:latest"}}}),
        ),
        invalid(
            "unknown pullPolicy",
            Schema,
            "spec.image.pullPolicy",
            json!({"spec": {"image": {"pullPolicy": "Sometimes"}}}),
        ),
        invalid(
            "image is required",
            Schema,
            "spec",
            json!({"spec": {"image": null}}),
        ),
        invalid(
            "image.tag is required",
            Schema,
            "spec.image",
            json!({"spec": {"image": {"tag": null}}}),
        ),
        invalid(
            "database name with uppercase letters",
            Schema,
            "spec.database.name",
            json!({"spec": {"database": {"name": "Ahlt_Dev"}}}),
        ),
        invalid(
            "database name with SQL in it",
            Schema,
            "spec.database.name",
            json!({"spec": {"database": {"name": "ahlt;drop database postgres"}}}),
        ),
        invalid(
            "database name longer than PostgreSQL's 63 bytes",
            Schema,
            "spec.database.name",
            json!({"spec": {"database": {"name": "a".repeat(64)}}}),
        ),
        invalid(
            "role name with a hyphen",
            Schema,
            "spec.database.role",
            json!({"spec": {"database": {"role": "ahlt-dev"}}}),
        ),
        invalid(
            "role name starting with a digit",
            Schema,
            "spec.database.role",
            json!({"spec": {"database": {"role": "1ahlt"}}}),
        ),
        invalid(
            "unknown deletionPolicy",
            Schema,
            "spec.database.deletionPolicy",
            json!({"spec": {"database": {"deletionPolicy": "Drop"}}}),
        ),
        invalid(
            "database.adminSecretRef is required",
            Schema,
            "spec.database",
            json!({"spec": {"database": {"adminSecretRef": null}}}),
        ),
        invalid(
            "admin Secret name is not a DNS name",
            Schema,
            "spec.database.adminSecretRef.name",
            json!({"spec": {"database": {"adminSecretRef": {"name": "Postgres_Admin"}}}}),
        ),
        invalid(
            "ingress without host",
            Schema,
            "spec.ingress",
            json!({"spec": {"ingress": {"className": "nginx"}}}),
        ),
        invalid(
            "unknown cert-manager issuer kind",
            Schema,
            "spec.ingress.tls.issuerRef.kind",
            ingress(json!({"tls": {"issuerRef": {"name": "le", "kind": "CertIssuer"}}})),
        ),
        invalid(
            "graph uri over plain http",
            Schema,
            "spec.graph.uri",
            json!({"spec": {"graph": {"uri": "http://neo4j.infra:7474"}}}),
        ),
        invalid(
            "migration timeout below 30 seconds",
            Schema,
            "spec.migrations.timeoutSeconds",
            json!({"spec": {"migrations": {"timeoutSeconds": 5}}}),
        ),
        invalid(
            "migration backoffLimit above 10",
            Schema,
            "spec.migrations.backoffLimit",
            json!({"spec": {"migrations": {"backoffLimit": 11}}}),
        ),
        invalid(
            "logLevel with shell characters",
            Schema,
            "spec.app.logLevel",
            json!({"spec": {"app": {"logLevel": "info; rm -rf /"}}}),
        ),
        invalid(
            "pull Secret name with uppercase letters",
            Schema,
            "spec.image.pullSecrets.0",
            json!({"spec": {"image": {"pullSecrets": ["GitLab"]}}}),
        ),
        invalid(
            "ingress host with uppercase letters",
            Cel,
            "spec.ingress.host",
            ingress(json!({"host": "Dev.Local"})),
        ),
        invalid(
            "ingress host with an underscore",
            Cel,
            "spec.ingress.host",
            ingress(json!({"host": "dev_env.local"})),
        ),
        invalid(
            "ingress host with a trailing dot",
            Cel,
            "spec.ingress.host",
            ingress(json!({"host": "dev.local."})),
        ),
        invalid(
            "ingress host with a URL scheme",
            Cel,
            "spec.ingress.host",
            ingress(json!({"host": "https://dev.local"})),
        ),
        invalid(
            "TLS with both secretName and issuerRef",
            Cel,
            "spec.ingress.tls",
            ingress(
                json!({"tls": {"secretName": "dev-tls", "issuerRef": {"name": "le", "kind": "Issuer"}}}),
            ),
        ),
        invalid(
            "TLS with neither secretName nor issuerRef",
            Cel,
            "spec.ingress.tls",
            ingress(json!({"tls": {}})),
        ),
        invalid(
            "app.env sets DATABASE_URL, which the operator manages",
            Cel,
            "spec.app.env",
            json!({"spec": {"app": {"env": [{"name": "DATABASE_URL", "value": "postgres://evil"}]}}}),
        ),
        invalid(
            "app.env sets SESSION_KEY from a Secret",
            Cel,
            "spec.app.env",
            json!({"spec": {"app": {"env": [
                {"name": "FOO", "value": "bar"},
                {"name": "SESSION_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
            ]}}}),
        ),
        invalid(
            "metadata.name of 41 characters leaves no room for child names",
            Cel,
            "",
            json!({"metadata": {"name": "a".repeat(MAX_NAME_LEN + 1)}}),
        ),
    ]
}

#[test]
fn invalid_manifests_are_rejected_by_the_expected_layer() {
    let validator = schema_validator();
    let cases = invalid_manifests();
    assert!(cases.len() >= 20, "the table keeps at least 20 cases");
    for case in &cases {
        let manifest = patched(&minimal_dev(), case.patch.clone());
        let schema = schema_errors(&validator, &manifest);
        let cel = cel_errors(&manifest, None);
        match case.layer {
            Layer::Schema => {
                assert!(
                    schema.iter().any(|(path, _)| path == case.at),
                    "{}: expected a schema error at {:?}, got {schema:?}",
                    case.reason,
                    case.at
                );
            }
            Layer::Cel => {
                assert!(
                    schema.is_empty(),
                    "{}: meant as a CEL case, but the schema already rejects it: {schema:?}",
                    case.reason
                );
                let cel = cel.unwrap_or_else(|| panic!("{}: does not deserialize", case.reason));
                assert!(
                    cel.iter().any(|(path, _)| path == case.at),
                    "{}: expected a CEL error at {:?}, got {cel:?}",
                    case.reason,
                    case.at
                );
            }
        }
        // Whatever reaches the operator despite the apiserver never panics it.
        if let Ok(env) = serde_json::from_value::<AhltEnvironment>(manifest) {
            let _ = validate(&env);
        }
    }
}

#[test]
fn the_operator_also_refuses_what_cel_refuses_when_it_matters_for_reconcile() {
    let too_long: AhltEnvironment = serde_json::from_value(patched(
        &minimal_dev(),
        json!({"metadata": {"name": "a".repeat(MAX_NAME_LEN + 1)}}),
    ))
    .unwrap();
    assert_eq!(validate(&too_long).unwrap_err().reason(), "NameTooLong");

    let both: AhltEnvironment = serde_json::from_value(patched(
        &minimal_dev(),
        json!({"spec": {"ingress": {"host": "dev.local", "tls": {
            "secretName": "dev-tls", "issuerRef": {"name": "le", "kind": "Issuer"}}}}}),
    ))
    .unwrap();
    assert_eq!(validate(&both).unwrap_err().reason(), "InvalidSpec");
}

#[test]
fn cel_messages_say_what_is_wrong() {
    let manifest = patched(
        &minimal_dev(),
        json!({"spec": {"ingress": {"host": "dev.local", "tls": {}}}}),
    );
    let errors = cel_errors(&manifest, None).unwrap();
    assert_eq!(
        errors,
        vec![(
            "spec.ingress.tls".to_owned(),
            "tls needs exactly one of secretName or issuerRef".to_owned()
        )]
    );

    let manifest = patched(
        &minimal_dev(),
        json!({"metadata": {"name": "a".repeat(MAX_NAME_LEN + 1)}}),
    );
    let errors = cel_errors(&manifest, None).unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .1
            .contains(&format!("at most {MAX_NAME_LEN} characters")),
        "{errors:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Updates (transition rules)

#[test]
fn database_name_and_role_are_immutable_once_set() {
    let with_names = patched(
        &minimal_dev(),
        json!({"spec": {"database": {"name": "ahlt_dev", "role": "ahlt_dev"}}}),
    );
    let cases: Vec<(&str, Value, Value, Option<&str>)> = vec![
        (
            "changing database.name",
            with_names.clone(),
            patched(
                &with_names,
                json!({"spec": {"database": {"name": "ahlt_other"}}}),
            ),
            Some("database.name is immutable once set"),
        ),
        (
            "changing database.role",
            with_names.clone(),
            patched(
                &with_names,
                json!({"spec": {"database": {"role": "ahlt_other"}}}),
            ),
            Some("database.role is immutable once set"),
        ),
        (
            "unsetting a set database.name",
            with_names.clone(),
            patched(&with_names, json!({"spec": {"database": {"name": null}}})),
            Some("database.name is immutable once set"),
        ),
        (
            "unsetting a set database.role",
            with_names.clone(),
            patched(&with_names, json!({"spec": {"database": {"role": null}}})),
            Some("database.role is immutable once set"),
        ),
        (
            "setting an unset database.name and role",
            minimal_dev(),
            with_names.clone(),
            None,
        ),
        (
            "bumping the image tag with names set",
            with_names.clone(),
            patched(&with_names, json!({"spec": {"image": {"tag": "4a5b6c7"}}})),
            None,
        ),
        (
            "changing the deletionPolicy",
            with_names.clone(),
            patched(
                &with_names,
                json!({"spec": {"database": {"deletionPolicy": "Delete"}}}),
            ),
            None,
        ),
    ];
    let validator = schema_validator();
    for (what, old, new, rejection) in cases {
        assert!(schema_errors(&validator, &new).is_empty(), "{what}: schema");
        let errors = cel_errors(&new, Some(&old)).expect("deserializes");
        match rejection {
            // The field rule says what; the root rule (effective identity) agrees.
            Some(message) => {
                assert!(
                    errors.contains(&("spec.database".to_owned(), message.to_owned())),
                    "{what}: {errors:?}"
                );
                assert!(
                    errors.iter().all(|(path, m)| path == "spec.database"
                        || m.contains("fixed for the environment's life")),
                    "{what}: {errors:?}"
                );
            }
            None => assert!(errors.is_empty(), "{what}: {errors:?}"),
        }
        // On create there is no old object, so transition rules never fire.
        let errors = cel_errors(&new, None).expect("deserializes");
        assert!(errors.is_empty(), "{what} (as a create): {errors:?}");
    }
}

/// The effective identity (defaults included) is fixed: setting a name or role that was unset
/// is refused unless it equals what the environment already uses.
#[test]
fn the_effective_database_identity_is_fixed_even_from_unset() {
    let base = minimal_dev();
    let name = base["metadata"]["name"].as_str().unwrap().to_owned();
    let default_db = format!("ahlt_{}", name.replace(['-', '.'], "_"));
    let refused = |what: &str, new: Value, field: &str| {
        let errors = cel_errors(&new, Some(&base)).expect("deserializes");
        assert!(
            errors.iter().any(|(path, m)| path.is_empty()
                && m.starts_with(&format!("spec.database.{field} is fixed"))),
            "{what}: {errors:?}"
        );
    };
    refused(
        "setting another name",
        patched(&base, json!({"spec": {"database": {"name": "ahlt_other"}}})),
        "name",
    );
    refused(
        "setting another role",
        patched(
            &base,
            json!({"spec": {"database": {"role": "someone_else"}}}),
        ),
        "role",
    );
    // Setting another name moves the default role too.
    refused(
        "setting another name moves the default role",
        patched(&base, json!({"spec": {"database": {"name": "ahlt_other"}}})),
        "role",
    );
    for (what, same) in [
        ("writing the default name", json!({"name": default_db})),
        ("writing the default role", json!({"role": default_db})),
        (
            "writing both defaults",
            json!({"name": default_db, "role": default_db}),
        ),
    ] {
        let new = patched(&base, json!({"spec": {"database": same}}));
        let errors = cel_errors(&new, Some(&base)).expect("deserializes");
        assert!(errors.is_empty(), "{what}: {errors:?}");
    }
}

/// `spec.route` (Gateway API) and `spec.ingress` exclude each other; a route's fields are
/// checked by the schema.
#[test]
fn ingress_and_route_are_exclusive_and_a_route_is_checked() {
    let route = json!({"parentRefs": [{"name": "public", "namespace": "istio-system",
                                       "sectionName": "https"}],
                       "hostnames": ["dev.example.org"], "pathPrefix": "/", "tls": true});
    let with_route = patched(&minimal_dev(), json!({"spec": {"route": route}}));
    let validator = schema_validator();
    assert!(schema_errors(&validator, &with_route).is_empty());
    assert!(cel_errors(&with_route, None).unwrap().is_empty());

    let both = patched(
        &with_route,
        json!({"spec": {"ingress": {"host": "dev.local"}}}),
    );
    let errors = cel_errors(&both, None).unwrap();
    assert!(
        errors
            .iter()
            .any(|(_, m)| m == "set spec.ingress or spec.route, not both"),
        "{errors:?}"
    );

    for (what, bad) in [
        (
            "no parent",
            json!({"parentRefs": [], "hostnames": ["a.example"]}),
        ),
        (
            "no host name",
            json!({"parentRefs": [{"name": "gw"}], "hostnames": []}),
        ),
        (
            "an upper-case host",
            json!({"parentRefs": [{"name": "gw"}], "hostnames": ["Dev.Example"]}),
        ),
        (
            "a relative path",
            json!({"parentRefs": [{"name": "gw"}], "hostnames": ["a.example"], "pathPrefix": "app"}),
        ),
        (
            "a parent without a name",
            json!({"parentRefs": [{"namespace": "gw"}], "hostnames": ["a.example"]}),
        ),
    ] {
        let manifest = patched(&minimal_dev(), json!({"spec": {"route": bad}}));
        assert!(
            !schema_errors(&validator, &manifest).is_empty(),
            "{what}: the schema accepted it"
        );
    }
}

#[test]
fn fragment_validation_covers_the_same_rules() {
    let tls_both = json!({"secretName": "a", "issuerRef": {"name": "le", "kind": "Issuer"}});
    assert!(TlsSpec::validate_cel(&tls_both, None).is_err());
    assert!(TlsSpec::validate_cel(&json!({"secretName": "a"}), None).is_ok());

    let old = json!({"adminSecretRef": {"name": "pg"}, "name": "ahlt_a"});
    let renamed = json!({"adminSecretRef": {"name": "pg"}, "name": "ahlt_b"});
    assert!(DatabaseSpec::validate_cel(&renamed, Some(&old)).is_err());
    assert!(DatabaseSpec::validate_cel(&old, Some(&old)).is_ok());
    assert!(DatabaseSpec::validate_cel(&renamed, None).is_ok());
}

// ---------------------------------------------------------------------------------------------
// The CRD itself

#[test]
fn committed_crd_matches_the_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/ahltenvironment.yaml");
    let committed = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read {path}: {e}; regenerate it with `{}`",
            crdgen::REGENERATE_COMMAND
        )
    });
    assert!(
        committed == crdgen::crd_yaml(),
        "{} is out of date with operator/src/crd.rs; regenerate it with `{}`",
        crdgen::CRD_PATH,
        crdgen::REGENERATE_COMMAND
    );
}

#[test]
fn crd_yaml_round_trips_to_the_same_definition() {
    let parsed: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_yaml::from_str(&crdgen::crd_yaml()).expect("YAML parses as a CRD");
    assert_eq!(parsed, crdgen::crd());
}

#[test]
fn identity_names_and_scope() {
    let crd = crd_json();
    assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(crd["kind"], "CustomResourceDefinition");
    assert_eq!(crd["metadata"]["name"], "ahltenvironments.ahlt.io");
    assert_eq!(crd["spec"]["group"], "ahlt.io");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["kind"], "AhltEnvironment");
    assert_eq!(crd["spec"]["names"]["plural"], "ahltenvironments");
    assert_eq!(crd["spec"]["names"]["singular"], "ahltenvironment");
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["ahltenv", "ae"]));
    let v = version();
    assert_eq!(v["name"], "v1alpha1");
    assert_eq!(v["served"], true);
    assert_eq!(v["storage"], true);
}

#[test]
fn status_and_scale_subresources() {
    let v = version();
    assert_eq!(v["subresources"]["status"], json!({}));
    assert_eq!(
        v["subresources"]["scale"],
        json!({
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector"
        })
    );
    // The paths point at fields that exist with the types the scale subresource needs.
    assert_eq!(node("spec.replicas")["type"], "integer");
    assert_eq!(node("status.replicas")["type"], "integer");
    assert_eq!(node("status.selector")["type"], "string");
}

#[test]
fn printer_columns() {
    let columns: Vec<(String, String, String)> = version()["additionalPrinterColumns"]
        .as_array()
        .expect("printer columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["type"].as_str().unwrap().to_owned(),
                c["jsonPath"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("Env", "string", ".spec.environment"),
        ("Image", "string", ".status.image"),
        (
            "Ready",
            "string",
            r#".status.conditions[?(@.type=="Ready")].status"#,
        ),
        (
            "Reason",
            "string",
            r#".status.conditions[?(@.type=="Ready")].reason"#,
        ),
        ("URL", "string", ".status.url"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(columns, expected);
}

/// Kubernetes' structural schema rules, as far as a generated schema can break them.
fn check_structural(path: &str, node: &Map<String, Value>, problems: &mut Vec<String>) {
    let int_or_string = node.get("x-kubernetes-int-or-string") == Some(&json!(true));
    let preserve = node.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    if !int_or_string && !preserve {
        match node.get("type").and_then(Value::as_str) {
            Some("object" | "array" | "string" | "integer" | "number" | "boolean") => {}
            other => problems.push(format!("{path}: needs a single type, has {other:?}")),
        }
    }
    for forbidden in [
        "$ref",
        "anyOf",
        "oneOf",
        "allOf",
        "not",
        "definitions",
        "$defs",
    ] {
        if node.contains_key(forbidden) {
            problems.push(format!("{path}: has {forbidden}"));
        }
    }
    if node.contains_key("properties") && node.contains_key("additionalProperties") {
        problems.push(format!("{path}: both properties and additionalProperties"));
    }
    if let Some(values) = node.get("enum").and_then(Value::as_array)
        && values.iter().any(Value::is_null)
    {
        problems.push(format!("{path}: null in enum"));
    }
    if node.get("type") == Some(&json!("array")) && !node.contains_key("items") {
        problems.push(format!("{path}: array without items"));
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            check_structural(
                &format!("{path}.{name}"),
                child.as_object().expect("property schema is an object"),
                problems,
            );
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = node.get(key).and_then(Value::as_object) {
            check_structural(&format!("{path}.{key}"), child, problems);
        }
    }
}

#[test]
fn schema_is_structural() {
    let s = schema();
    let mut problems = vec![];
    check_structural("", s.as_object().unwrap(), &mut problems);
    assert!(problems.is_empty(), "not structural: {problems:#?}");
    assert_eq!(
        s["required"],
        json!(["spec"]),
        "spec is required at the root"
    );
    assert_eq!(
        node("spec")["required"],
        json!(["database", "environment", "image"])
    );
    assert_eq!(node("spec.image")["required"], json!(["repository", "tag"]));
    assert_eq!(node("spec.database")["required"], json!(["adminSecretRef"]));
    assert_eq!(node("spec.ingress")["required"], json!(["host"]));
    assert_eq!(node("spec.graph")["required"], json!(["uri"]));
    assert_eq!(
        node("spec.ingress.tls.issuerRef")["required"],
        json!(["kind", "name"])
    );
}

#[test]
fn enums() {
    let cases = [
        (
            "spec.environment",
            json!(["dev", "staging", "prod", "preview"]),
        ),
        (
            "spec.image.pullPolicy",
            json!(["Always", "IfNotPresent", "Never"]),
        ),
        ("spec.database.deletionPolicy", json!(["Retain", "Delete"])),
        (
            "spec.ingress.tls.issuerRef.kind",
            json!(["Issuer", "ClusterIssuer"]),
        ),
    ];
    for (path, values) in cases {
        assert_eq!(node(path)["enum"], values, "{path}");
        assert_eq!(node(path)["type"], "string", "{path}");
    }
}

#[test]
fn patterns_and_ranges() {
    let patterns = [
        "spec.image.repository",
        "spec.image.tag",
        "spec.image.pullSecrets.[]",
        "spec.database.name",
        "spec.database.role",
        "spec.database.adminSecretRef.name",
        "spec.database.adminSecretRef.namespace",
        "spec.ingress.className",
        "spec.ingress.tls.secretName",
        "spec.ingress.tls.issuerRef.name",
        "spec.graph.uri",
        "spec.graph.credentialsSecretRef.name",
        "spec.app.logLevel",
    ];
    for path in patterns {
        let n = node(path);
        assert!(n["pattern"].is_string(), "{path} has a pattern");
        assert!(n["maxLength"].is_u64(), "{path} has a maxLength");
    }
    assert_eq!(node("spec.database.name")["maxLength"], 63);
    assert_eq!(node("spec.database.role")["maxLength"], 63);

    let ranges = [
        ("spec.replicas", 0.0, 50.0),
        ("spec.migrations.timeoutSeconds", 30.0, 86400.0),
        ("spec.migrations.backoffLimit", 0.0, 10.0),
    ];
    for (path, min, max) in ranges {
        let n = node(path);
        assert_eq!(n["minimum"].as_f64(), Some(min), "{path} minimum");
        assert_eq!(n["maximum"].as_f64(), Some(max), "{path} maximum");
    }
    // Bounds the cost of the CEL rule over app.env that the apiserver estimates.
    assert_eq!(node("spec.app.env")["maxItems"], 100);
    assert_eq!(node("spec.image.pullSecrets")["maxItems"], 16);
}

fn rules(validations: &Value) -> Vec<String> {
    validations
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .map(|r| {
                    assert!(r["message"].is_string(), "every rule has a message: {r}");
                    r["rule"].as_str().unwrap().to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn cel_rules_are_in_the_schema() {
    let root = rules(&schema()["x-kubernetes-validations"]);
    assert_eq!(root.len(), 4);
    assert_eq!(
        root[0],
        format!("self.metadata.name.size() <= {MAX_NAME_LEN}")
    );
    assert_eq!(root[1], "!has(self.spec.ingress) || !has(self.spec.route)");
    assert!(root[2].contains("oldSelf.spec.database.name"), "{root:?}");
    assert!(root[3].contains("oldSelf.spec.database.role"), "{root:?}");

    let database = rules(&node("spec.database")["x-kubernetes-validations"]);
    assert_eq!(database.len(), 2);
    assert!(database.iter().any(|r| r.contains("oldSelf.name")));
    assert!(database.iter().any(|r| r.contains("oldSelf.role")));

    let tls = rules(&node("spec.ingress.tls")["x-kubernetes-validations"]);
    assert_eq!(tls, ["has(self.secretName) != has(self.issuerRef)"]);

    let host = rules(&node("spec.ingress.host")["x-kubernetes-validations"]);
    assert_eq!(host.len(), 1);
    assert!(host[0].starts_with("self.matches("), "{host:?}");

    let env = rules(&node("spec.app.env")["x-kubernetes-validations"]);
    assert_eq!(env.len(), 1);
    for managed in ahlt_operator::build::env_vars::MANAGED {
        assert!(
            env[0].contains(&format!("'{managed}'")),
            "{managed} refused"
        );
    }
}

/// Walks our own properties (not the embedded core/v1 types, which k8s-openapi documents).
fn undocumented(path: &str, node: &Value, out: &mut Vec<String>) {
    let embedded = ["spec.resources", "spec.app.env", "status.conditions"];
    if let Some(props) = node["properties"].as_object() {
        for (name, child) in props {
            let child_path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            let description = child["description"].as_str().unwrap_or_default();
            if description.trim().is_empty() {
                out.push(child_path.clone());
            }
            if description.contains('\n') && !description.contains("\n\n") {
                out.push(format!("{child_path} (unreflowed line break)"));
            }
            if !embedded.contains(&child_path.as_str()) {
                undocumented(&child_path, child, out);
            }
        }
    }
    if let Some(items) = node.get("items") {
        undocumented(path, items, out);
    }
}

#[test]
fn every_field_is_documented_for_kubectl_explain() {
    let s = schema();
    assert!(!s["description"].as_str().unwrap_or_default().is_empty());
    let mut missing = vec![];
    undocumented("", &s, &mut missing);
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:#?}"
    );
}

fn nodes_with_rules(path: &str, node: &Value, out: &mut Vec<(String, Value)>) {
    if node.get("x-kubernetes-validations").is_some() {
        out.push((path.to_owned(), node.clone()));
    }
    if let Some(props) = node["properties"].as_object() {
        for (name, child) in props {
            nodes_with_rules(&format!("{path}.{name}"), child, out);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = node.get(key).filter(|c| c.is_object()) {
            nodes_with_rules(&format!("{path}.{key}"), child, out);
        }
    }
}

#[test]
fn cel_rules_compile_and_pass_static_analysis() {
    use kube::core::cel::{ScopeContext, WarningKind, analyze_rule, compile_schema};
    let mut found = vec![];
    nodes_with_rules("", &schema(), &mut found);
    assert_eq!(found.len(), 5, "root, database, host, tls, env: {found:?}");
    for (path, node) in found {
        let compiled = compile_schema(&node);
        assert!(
            !compiled.has_errors(),
            "{path}: {:?}",
            compiled.compilation_errors()
        );
        for rule in rules(&node["x-kubernetes-validations"]) {
            // The scope check does not know comprehension variables (`e` in `all(e, ...)`).
            let warnings: Vec<_> = analyze_rule(&rule, &compiled, ScopeContext::CrdValidation)
                .into_iter()
                .filter(|w| {
                    !(w.kind == WarningKind::WrongScope && w.message.starts_with("variable 'e' "))
                })
                .collect();
            assert!(warnings.is_empty(), "{path}: {rule}: {warnings:?}");
        }
    }
}
