//! The ConfigMap with the app's non-secret settings (read by the pods through `envFrom`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::env_vars::*;
use super::metadata;
use crate::names;
use crate::validate::ValidatedEnv;

/// AHLT_ENV_NAME: `<namespace>/<name>`. One graph server serves several environments and
/// the app namespaces its graph by this value, so it must be unique cluster-wide; the
/// AhltEnvironment's name alone is not (`dev` in two team namespaces).
pub fn env_name(env: &ValidatedEnv) -> String {
    format!("{}/{}", env.namespace, env.name)
}

pub fn config_map(env: &ValidatedEnv, owner: &OwnerReference) -> ConfigMap {
    let bool_str = |b: bool| if b { "true" } else { "false" }.to_owned();
    let mut data = BTreeMap::from([
        (APP_ENV.to_owned(), env.profile.as_str().to_owned()),
        (RUST_LOG.to_owned(), env.app.log_level.clone()),
        (LOG_FORMAT.to_owned(), "json".to_owned()),
        (COOKIE_SECURE.to_owned(), bool_str(env.app.cookie_secure)),
        (AHLT_ENV_NAME.to_owned(), env_name(env)),
        (PORT.to_owned(), names::HTTP_PORT.to_string()),
        // Behind an ingress the peer is the ingress controller; the client address for
        // login rate limiting is in X-Forwarded-For. Without one, the header is untrusted.
        (TRUST_FORWARDED_FOR.to_owned(), bool_str(env.exposed())),
    ]);
    if let Some(graph) = &env.graph {
        data.insert(GRAPH_URI.to_owned(), graph.uri.clone());
    }
    ConfigMap {
        metadata: metadata(env, owner, names::config_map(&env.name), None),
        data: Some(data),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::testing::*;

    fn data(env: &ValidatedEnv) -> BTreeMap<String, String> {
        config_map(env, &owner()).data.unwrap()
    }

    #[test]
    fn every_setting_reaches_the_config_map() {
        let d = data(&full());
        let expected = [
            ("APP_ENV", "staging"),
            ("RUST_LOG", "info,ahlt=debug"),
            ("LOG_FORMAT", "json"),
            ("COOKIE_SECURE", "true"),
            ("AHLT_ENV_NAME", "ahlt-staging/staging"),
            ("PORT", "8080"),
            ("TRUST_FORWARDED_FOR", "true"),
            ("GRAPH_URI", "bolt://neo4j.ahlt-infra.svc:7687"),
        ];
        assert_eq!(
            d,
            expected
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        );
    }

    #[test]
    fn without_ingress_or_graph_nothing_trusts_proxies_or_names_a_graph() {
        let d = data(&minimal());
        assert_eq!(d["APP_ENV"], "dev");
        assert_eq!(d["RUST_LOG"], "info");
        assert_eq!(d["COOKIE_SECURE"], "false");
        assert_eq!(d["TRUST_FORWARDED_FOR"], "false");
        assert_eq!(d["AHLT_ENV_NAME"], "ahlt-dev/dev");
        assert!(!d.contains_key("GRAPH_URI"));
    }

    #[test]
    fn an_explicit_cookie_setting_wins_over_the_tls_default() {
        let mut env = full();
        env.app.cookie_secure = false;
        assert_eq!(data(&env)["COOKIE_SECURE"], "false");
    }
}
