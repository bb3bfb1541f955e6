//! Does the cluster still hold what the operator declares? Pure comparison of a desired
//! child with the observed one, over the fields the operator sets, so defaults the API
//! server adds and fields other managers own never count as drift, while any change to an
//! operator-owned field does (`kubectl set image`, `kubectl patch configmap`, ...).
//!
//! Removals are caught by the applied-state digest the desired object carries
//! ([`super::apply::APPLIED_HASH`]): a field the operator stops declaring changes the digest.

use serde_json::Value;

/// Keys that identify the elements of a list of objects (a merge key, like `containers` by
/// `name`); other lists must match element by element.
const LIST_KEYS: [&str; 5] = ["name", "type", "uid", "containerPort", "port"];

/// True when `observed` holds every field of `desired` with an equal value.
pub fn holds(desired: &Value, observed: &Value) -> bool {
    holds_at(desired, observed, false)
}

fn holds_at(desired: &Value, observed: &Value, quantities: bool) -> bool {
    match (desired, observed) {
        (Value::Null, _) => true,
        (Value::Object(want), Value::Object(have)) => want.iter().all(|(k, v)| {
            let quantities = quantities || k == "resources";
            have.get(k).is_some_and(|h| holds_at(v, h, quantities))
                || (v.is_null() && !have.contains_key(k))
        }),
        (Value::Array(want), Value::Array(have)) => match list_key(want) {
            Some(key) => want.iter().all(|w| {
                have.iter()
                    .find(|h| h.get(key) == w.get(key))
                    .is_some_and(|h| holds_at(w, h, quantities))
            }),
            None => {
                want.len() == have.len()
                    && want
                        .iter()
                        .zip(have)
                        .all(|(w, h)| holds_at(w, h, quantities))
            }
        },
        (Value::String(w), Value::String(h)) if quantities && w != h => {
            matches!((quantity(w), quantity(h)), (Some(a), Some(b)) if (a - b).abs() <= f64::EPSILON * a.abs().max(1.0))
        }
        (w, h) => w == h,
    }
}

fn list_key(items: &[Value]) -> Option<&'static str> {
    if items.is_empty() || !items.iter().all(Value::is_object) {
        return None;
    }
    LIST_KEYS
        .into_iter()
        .find(|key| items.iter().all(|i| i.get(key).is_some()))
}

/// A resource quantity as a number, so `0.5` and `500m` (the API server's canonical form)
/// compare equal.
fn quantity(s: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| s.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((s, 1.0));
    number.parse::<f64>().ok().map(|n| n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(image: &str) -> Value {
        json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "ahlt", "image": image, "resources": {"limits": {"cpu": "0.5", "memory": "256Mi"}}}
        ]}}}})
    }

    #[test]
    fn server_defaults_and_foreign_fields_are_not_drift() {
        let mut observed = deployment("a:1");
        observed["spec"]["progressDeadlineSeconds"] = json!(600);
        observed["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] =
            json!("/dev/termination-log");
        observed["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] =
            json!("500m");
        observed["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "sidecar", "image": "mesh:1"}));
        observed["status"] = json!({"replicas": 1});
        assert!(holds(&deployment("a:1"), &observed));
    }

    #[test]
    fn a_changed_owned_field_is_drift() {
        assert!(!holds(&deployment("a:1"), &deployment("evil.example/x:1")));
        let mut observed = deployment("a:1");
        observed["spec"]["replicas"] = json!(3);
        assert!(!holds(&deployment("a:1"), &observed));
        let mut observed = deployment("a:1");
        observed["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] =
            json!("1");
        assert!(!holds(&deployment("a:1"), &observed));
    }

    #[test]
    fn missing_fields_and_list_elements_are_drift() {
        let desired = json!({"data": {"APP_ENV": "dev", "PORT": "8080"}});
        assert!(!holds(&desired, &json!({"data": {"APP_ENV": "dev"}})));
        assert!(!holds(
            &desired,
            &json!({"data": {"APP_ENV": "prod", "PORT": "8080"}})
        ));
        let env = json!({"env": [{"name": "A", "value": "1"}]});
        assert!(!holds(&env, &json!({"env": []})));
        assert!(!holds(
            &json!({"args": ["serve"]}),
            &json!({"args": ["serve", "x"]})
        ));
    }
}
