//! Graph-backed reads of the governance domain: ABAC grants and the governance map.
//!
//! Each function answers exactly what its Postgres counterpart in [`crate::domain`] answers
//! (same semantics, same types, same order), from the projection instead of SQL. The
//! Cypher is constant text in the subset FalkorDB and Neo4j share (no procedures, no
//! backend-specific functions); every value travels as a parameter, and every node and
//! relationship is matched within the environment (`env: $env`).
//!
//! Multi-hop traversal happens in Cypher; decoding property values (a function's
//! capability list, a description) happens in Rust, because the two backends do not share
//! a way to test a value's type and `x IN <string>` is an error on both.
//!
//! [`read_or_fallback`] is how the domain layer uses these: the graph when the projection
//! is current, Postgres otherwise or when the graph read fails.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use serde_json::Value;

use super::{Backend, GraphBackend, GraphError, GraphResult, Param, Projection};
use crate::domain::abac::{Grant, GrantSource};
use crate::domain::cadence::{Cadence, key as cadence_key};
use crate::domain::dependencies::{self, Dependency, DependencyKind};
use crate::domain::governance::{GovernanceMap, GovernanceTor};
use crate::domain::tors::{TorFunction, TorSummary};
use crate::domain::{Capability, UserRef};

/// Permissions granted to user `$user` by its active roles and, through chains of active
/// roles, the roles they inherit (`*0..`: the role itself included). Relationship
/// uniqueness within a path keeps inheritance cycles finite, as `UNION` does in SQL.
const ROLE_GRANTS: &str = "\
MATCH (u:Entity {env: $env, id: $user})-[:R_has_role {env: $env}]->(r0:Entity {env: $env}) \
WHERE u.is_active = true AND r0.is_active = true \
MATCH chain = (r0)-[:R_inherits_role*0..]->(r:Entity {env: $env}) \
WHERE all(n IN nodes(chain) WHERE n.env = $env AND n.is_active = true) \
  AND all(x IN relationships(chain) WHERE x.env = $env) \
MATCH (r)-[:R_has_permission {env: $env}]->(p:Entity {env: $env}) \
WHERE p.is_active = true AND p.name IN $caps \
RETURN DISTINCT p.name, r.name";

/// The active functions user `$user` fills in active ToRs, with their capability lists.
const POSITION_GRANTS: &str = "\
MATCH (u:Entity {env: $env, id: $user})-[:R_fills_position {env: $env}]->(f:E_tor_function {env: $env}) \
      -[:R_belongs_to_tor {env: $env}]->(t:Entity {env: $env}) \
WHERE u.is_active = true AND f.is_active = true AND t.is_active = true \
RETURN DISTINCT f.id, f.label, t.id, f.p_capabilities";

/// [`POSITION_GRANTS`] on ToR `$tor` only.
const POSITION_GRANTS_ON: &str = "\
MATCH (u:Entity {env: $env, id: $user})-[:R_fills_position {env: $env}]->(f:E_tor_function {env: $env}) \
      -[:R_belongs_to_tor {env: $env}]->(t:Entity {env: $env, id: $tor}) \
WHERE u.is_active = true AND f.is_active = true AND t.is_active = true \
RETURN DISTINCT f.id, f.label, t.id, f.p_capabilities";

/// Whether ToR `$tor` exists (active or not).
const TOR_EXISTS: &str = "MATCH (t:E_tor {env: $env, id: $tor}) RETURN count(t)";

/// Every ToR with its parent, function count and member count (as `tors::list`).
const MAP_TORS: &str = "\
MATCH (t:E_tor {env: $env}) \
OPTIONAL MATCH (t)-[:R_reports_to {env: $env}]->(up:Entity {env: $env}) \
WITH t, min(up.id) AS parent_id \
OPTIONAL MATCH (f:Entity {env: $env})-[:R_belongs_to_tor {env: $env}]->(t) \
OPTIONAL MATCH (m:Entity {env: $env})-[:R_fills_position {env: $env}]->(f) \
RETURN t.id, t.name, t.label, t.p_description, t.is_active, parent_id, \
       count(DISTINCT f.id), count(DISTINCT m.id), \
       t.p_meeting_cadence, t.p_cadence_day, t.p_cadence_week, t.p_cadence_time, \
       t.p_cadence_duration_minutes, t.p_default_location";

/// `feeds_into` dependencies between ToRs (as `dependencies::all`).
const MAP_FEEDS_INTO: &str = "\
MATCH (s:E_tor {env: $env})-[d:R_feeds_into {env: $env}]->(t:E_tor {env: $env}) \
RETURN d.id, s.id, t.id, d.p_output_types, d.p_description, d.p_is_blocking";

/// `escalates_to` dependencies between ToRs (as `dependencies::all`).
const MAP_ESCALATES_TO: &str = "\
MATCH (s:E_tor {env: $env})-[d:R_escalates_to {env: $env}]->(t:E_tor {env: $env}) \
RETURN d.id, s.id, t.id, d.p_output_types, d.p_description, d.p_is_blocking";

/// Every function with the ToR (or other entity) it belongs to (as `tors::functions_in`).
const MAP_FUNCTIONS: &str = "\
MATCH (f:E_tor_function {env: $env})-[:R_belongs_to_tor {env: $env}]->(t:Entity {env: $env}) \
RETURN t.id, f.id, f.name, f.label, f.p_description, f.p_capabilities";

/// Who fills each function.
const MAP_HOLDERS: &str = "\
MATCH (u:Entity {env: $env})-[:R_fills_position {env: $env}]->(f:E_tor_function {env: $env}) \
RETURN f.id, u.id, u.name, u.label";

/// Runs a read, boxed: the backends' futures are deep, and the callers' futures nest them
/// several times over.
async fn read(
    backend: &impl GraphBackend,
    cypher: &'static str,
    params: Vec<(&'static str, Param)>,
) -> GraphResult<Vec<Vec<Value>>> {
    Box::pin(backend.read(cypher, params)).await
}

fn env(env: &str) -> (&'static str, Param) {
    ("env", Param::Str(env.to_string()))
}

fn capability_names() -> Param {
    Param::Strs(
        Capability::ALL
            .iter()
            .map(|c| c.as_str().to_string())
            .collect(),
    )
}

fn bad_row(query: &str, row: &[Value]) -> GraphError {
    GraphError::Backend(format!("unexpected row from the {query} query: {row:?}"))
}

fn int(v: &Value) -> Option<i64> {
    v.as_i64()
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// The capabilities a stored `capabilities` value grants, as the SQL reads it: the string
/// elements of a JSON array naming a known capability.
///
/// The projection keeps lists of strings (and of integers) as lists and stores other
/// arrays (e.g. `["tor.view", 1]`) as their JSON text, so a string holding a JSON array
/// with a non-string element is read back as that array. (A plain string property whose
/// text happens to be such an array is the one value this cannot tell apart.)
fn capabilities_of(value: &Value) -> BTreeSet<Capability> {
    let items = match value {
        Value::Array(items) => items.clone(),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(items)) if items.iter().any(|v| !v.is_string()) => items,
            _ => return BTreeSet::new(),
        },
        _ => return BTreeSet::new(),
    };
    items
        .iter()
        .filter_map(|v| v.as_str()?.parse().ok())
        .collect()
}

/// Role grants of a user, restricted to `caps` (capability names).
async fn role_grants(
    backend: &impl GraphBackend,
    env_name: &str,
    user_id: i64,
    caps: Param,
) -> GraphResult<Vec<Grant>> {
    let rows = read(
        backend,
        ROLE_GRANTS,
        vec![env(env_name), ("user", Param::Int(user_id)), ("caps", caps)],
    )
    .await?;
    rows.iter()
        .map(|row| match row.as_slice() {
            [cap, role] => {
                let capability = cap.as_str().and_then(|c| c.parse().ok());
                match (capability, text(role)) {
                    (Some(capability), Some(role)) => Ok(Grant {
                        capability,
                        tor_id: None,
                        via: GrantSource::Role { role },
                    }),
                    _ => Err(bad_row("role grants", row)),
                }
            }
            _ => Err(bad_row("role grants", row)),
        })
        .collect()
}

/// Position grants of a user (on every ToR, or on `tor_id` only).
async fn position_grants(
    backend: &impl GraphBackend,
    env_name: &str,
    user_id: i64,
    tor_id: Option<i64>,
) -> GraphResult<Vec<Grant>> {
    let mut params = vec![env(env_name), ("user", Param::Int(user_id))];
    let query = match tor_id {
        Some(tor) => {
            params.push(("tor", Param::Int(tor)));
            POSITION_GRANTS_ON
        }
        None => POSITION_GRANTS,
    };
    let rows = read(backend, query, params).await?;
    let mut grants = Vec::new();
    for row in &rows {
        let [function_id, label, tor, caps] = row.as_slice() else {
            return Err(bad_row("position grants", row));
        };
        let (Some(function_id), Some(function), Some(tor)) =
            (int(function_id), text(label), int(tor))
        else {
            return Err(bad_row("position grants", row));
        };
        for capability in capabilities_of(caps) {
            grants.push(Grant {
                capability,
                tor_id: Some(tor),
                via: GrantSource::Position {
                    function_id,
                    function: function.clone(),
                },
            });
        }
    }
    Ok(grants)
}

/// Every grant a user holds (as [`crate::domain::abac::grants_pg`]): sorted, no duplicates.
pub async fn grants(
    backend: &impl GraphBackend,
    env_name: &str,
    user_id: i64,
) -> GraphResult<Vec<Grant>> {
    let mut all = role_grants(backend, env_name, user_id, capability_names()).await?;
    all.extend(position_grants(backend, env_name, user_id, None).await?);
    all.sort();
    all.dedup();
    Ok(all)
}

/// The capabilities a user has on one ToR (as [`crate::domain::abac::capabilities_on_pg`]).
pub async fn capabilities_on(
    backend: &impl GraphBackend,
    env_name: &str,
    user_id: i64,
    tor_id: i64,
) -> GraphResult<BTreeSet<Capability>> {
    let roles = role_grants(backend, env_name, user_id, capability_names()).await?;
    let positions = position_grants(backend, env_name, user_id, Some(tor_id)).await?;
    Ok(roles
        .into_iter()
        .chain(positions)
        .map(|g| g.capability)
        .collect())
}

/// May the user exercise `capability` on ToR `tor_id`? `None`: there is no such ToR
/// (as [`crate::domain::abac::may_in`], which makes that an error).
pub async fn may(
    backend: &impl GraphBackend,
    env_name: &str,
    user_id: i64,
    capability: Capability,
    tor_id: i64,
) -> GraphResult<Option<bool>> {
    let rows = read(
        backend,
        TOR_EXISTS,
        vec![env(env_name), ("tor", Param::Int(tor_id))],
    )
    .await?;
    match rows.first().and_then(|r| r.first()).and_then(int) {
        Some(0) => return Ok(None),
        Some(_) => {}
        None => return Err(GraphError::Backend("no row from the ToR query".into())),
    }
    let by_role = role_grants(
        backend,
        env_name,
        user_id,
        Param::Strs(vec![capability.as_str().to_string()]),
    )
    .await?;
    if !by_role.is_empty() {
        return Ok(Some(true));
    }
    let positions = position_grants(backend, env_name, user_id, Some(tor_id)).await?;
    Ok(Some(positions.iter().any(|g| g.capability == capability)))
}

/// A property value as SQL's `value #>> '{}'` gives it (`COALESCE`d to `''`): strings as
/// they are, anything else as PostgreSQL prints JSONB.
///
/// The projection stores objects and mixed arrays as their (compact) JSON text, so a string
/// holding a JSON object, or an array with a non-string element, is printed as that JSON.
/// (A plain string property holding such text is the one value this cannot tell apart.)
fn description_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(json @ Value::Object(_)) => jsonb_text(&json),
            Ok(Value::Array(items)) if items.iter().any(|v| !v.is_string()) => {
                jsonb_text(&Value::Array(items))
            }
            _ => s.clone(),
        },
        other => jsonb_text(other),
    }
}

/// JSON as PostgreSQL prints `jsonb`: `", "` and `": "` separators, object keys shortest
/// first, then bytewise.
fn jsonb_text(value: &Value) -> String {
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(jsonb_text).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}: {}", Value::String(k.clone()), jsonb_text(&map[k])))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// The governance map (as [`crate::domain::governance::map_pg`], before
/// [`GovernanceMap::sorted`]).
pub async fn governance_map(
    backend: &impl GraphBackend,
    env_name: &str,
) -> GraphResult<GovernanceMap> {
    let tor_rows = read(backend, MAP_TORS, vec![env(env_name)]).await?;
    let function_rows = read(backend, MAP_FUNCTIONS, vec![env(env_name)]).await?;
    let holder_rows = read(backend, MAP_HOLDERS, vec![env(env_name)]).await?;

    let mut holders: BTreeMap<i64, Vec<UserRef>> = BTreeMap::new();
    for row in &holder_rows {
        let [function_id, id, name, label] = row.as_slice() else {
            return Err(bad_row("holders", row));
        };
        let (Some(function_id), Some(id), Some(username), Some(label)) =
            (int(function_id), int(id), text(name), text(label))
        else {
            return Err(bad_row("holders", row));
        };
        let display_name = if label.is_empty() {
            username.clone()
        } else {
            label
        };
        holders.entry(function_id).or_default().push(UserRef {
            id,
            username,
            display_name,
        });
    }

    let mut functions: BTreeMap<i64, Vec<TorFunction>> = BTreeMap::new();
    for row in &function_rows {
        let [tor_id, id, name, label, description, caps] = row.as_slice() else {
            return Err(bad_row("functions", row));
        };
        let (Some(tor_id), Some(id), Some(name), Some(label)) =
            (int(tor_id), int(id), text(name), text(label))
        else {
            return Err(bad_row("functions", row));
        };
        let slug = name.rsplit_once('/').map_or(name.as_str(), |(_, s)| s);
        functions.entry(tor_id).or_default().push(TorFunction {
            id,
            tor_id,
            slug: slug.to_string(),
            label,
            description: description_of(description),
            capabilities: capabilities_of(caps).into_iter().collect(),
            holders: holders.get(&id).cloned().unwrap_or_default(),
        });
    }

    let mut tors = Vec::with_capacity(tor_rows.len());
    for row in &tor_rows {
        let [
            id,
            name,
            label,
            description,
            active,
            parent,
            function_count,
            member_count,
            cadence @ ..,
        ] = row.as_slice()
        else {
            return Err(bad_row("ToRs", row));
        };
        let [meeting_cadence, day, week, time, duration, location] = cadence else {
            return Err(bad_row("ToRs", row));
        };
        let cadence_values = [meeting_cadence, day, week, time, duration, location];
        let cadence = Cadence::from_properties(|key| {
            let i = cadence_key::ALL.iter().position(|k| *k == key)?;
            Some(cadence_values[i].clone()).filter(|v| !v.is_null())
        })
        .map(|c| c.info());
        let (Some(id), Some(name), Some(label), Some(is_active)) =
            (int(id), text(name), text(label), active.as_bool())
        else {
            return Err(bad_row("ToRs", row));
        };
        let (Some(function_count), Some(member_count)) = (int(function_count), int(member_count))
        else {
            return Err(bad_row("ToRs", row));
        };
        tors.push(GovernanceTor {
            tor: TorSummary {
                id,
                name,
                label,
                description: description_of(description),
                is_active,
                parent_id: int(parent),
                function_count,
                member_count,
            },
            cadence,
            functions: functions.get(&id).cloned().unwrap_or_default(),
        });
    }

    let mut dependencies = Vec::new();
    for (kind, query) in [
        (DependencyKind::FeedsInto, MAP_FEEDS_INTO),
        (DependencyKind::EscalatesTo, MAP_ESCALATES_TO),
    ] {
        for row in read(backend, query, vec![env(env_name)]).await? {
            let [id, source, target, output_types, description, blocking] = row.as_slice() else {
                return Err(bad_row("dependencies", &row));
            };
            let (Some(id), Some(source_id), Some(target_id)) = (int(id), int(source), int(target))
            else {
                return Err(bad_row("dependencies", &row));
            };
            let present = |v: &Value| (!v.is_null()).then(|| v.clone());
            dependencies.push(Dependency {
                id,
                relation_type: kind,
                source_id,
                target_id,
                output_types: dependencies::text_property(present(output_types).as_ref()),
                description: dependencies::text_property(present(description).as_ref()),
                is_blocking: dependencies::blocking_property(present(blocking).as_ref()),
            });
        }
    }
    Ok(GovernanceMap { tors, dependencies })
}

/// The answer from the graph when `projection` is current, else (or when the graph read
/// fails) from `postgres`. A graph failure is logged and counted, never returned: the
/// request is answered from Postgres.
///
/// "Current" is checked when the read starts; a change committed while it runs may be
/// missing from its answer, as it would be from a Postgres read that started at that moment.
pub(crate) async fn read_or_fallback<'a, T, G, P>(
    projection: Option<&'a Projection>,
    what: &'static str,
    graph: impl FnOnce(&'a Backend, &'a str) -> G,
    postgres: impl FnOnce() -> P,
) -> P::Output
where
    G: Future<Output = GraphResult<T>>,
    P: Future<Output = crate::domain::DomainResult<T>>,
{
    if let Some(projection) = projection
        && let Some(backend) = projection.current()
    {
        match graph(backend, projection.env()).await {
            Ok(answer) => return Ok(answer),
            Err(error) => projection.read_failed(what, &error),
        }
    }
    postgres().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn capabilities_are_read_like_the_sql_reads_them() {
        let caps = |v: Value| {
            capabilities_of(&v)
                .into_iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            caps(json!(["decision.vote", "tor.view", "tor.delete"])),
            ["tor.view", "decision.vote"]
        );
        // Not an array: nothing (and no error).
        assert!(caps(json!("tor.view")).is_empty());
        assert!(caps(json!(7)).is_empty());
        assert!(caps(Value::Null).is_empty());
        // A mixed array is projected as its JSON text.
        assert_eq!(caps(json!("[\"tor.view\",1,null]")), ["tor.view"]);
        // Text of an all-string array is a string, never a projected list.
        assert!(caps(json!("[\"tor.view\"]")).is_empty());
    }

    #[test]
    fn descriptions_print_like_jsonb() {
        assert_eq!(description_of(&Value::Null), "");
        assert_eq!(description_of(&json!("plain")), "plain");
        assert_eq!(description_of(&json!(42)), "42");
        assert_eq!(description_of(&json!(true)), "true");
        assert_eq!(description_of(&json!(["a", "b"])), r#"["a", "b"]"#);
        // Objects and mixed arrays come back from the projection as compact JSON text.
        assert_eq!(
            description_of(&json!("{\"b\":1,\"a\":[1,\"x\"]}")),
            r#"{"a": [1, "x"], "b": 1}"#
        );
        assert_eq!(description_of(&json!("[\"a\",\"b\"]")), r#"["a","b"]"#);
        assert_eq!(
            jsonb_text(&json!({"bb": [1, {"c": null}], "a": "x"})),
            r#"{"a": "x", "bb": [1, {"c": null}]}"#
        );
    }
}
