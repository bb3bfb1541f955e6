//! Courses of action (COAs) an agenda point considers, each with sections (analysis, cost,
//! risks, ...), and the members' opinions on the point, each optionally naming the COA its
//! holder prefers. Both only while the point is open: a decided point's record stays as it
//! was decided.
//!
//! Adding a COA or editing its sections needs `agenda.set`; giving an opinion needs
//! `decision.vote`. A member holds one opinion per point (`opinion-<point>-<user>`; giving
//! it again replaces it).

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;

use super::{Item, NewItem, all_children, authorize, create, load, load_for_update};
use crate::domain::audit::{self, Actor};
use crate::domain::{Capability, DomainError, DomainResult, UserRef, kind, rel, users};
use crate::store::{self, Properties};

/// A section of a new COA.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSection {
    pub title: String,
    #[serde(default)]
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoaView {
    #[serde(flatten)]
    pub coa: Item,
    pub sections: Vec<Item>,
    /// How many opinions prefer it.
    pub preferred_by: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpinionView {
    #[serde(flatten)]
    pub opinion: Item,
    pub by: Option<UserRef>,
    pub preferred_coa_id: Option<i64>,
}

/// The open agenda point `point_id`, locked, after checking `capability` on its ToR.
async fn open_point(
    conn: &mut PgConnection,
    actor: &Actor,
    point_id: i64,
    capability: Capability,
) -> DomainResult<Item> {
    let point = load_for_update(conn, point_id, Some(kind::AGENDA_POINT)).await?;
    authorize(conn, actor, capability, point.tor_id).await?;
    if point.status != "open" {
        return Err(DomainError::Conflict(format!(
            "the agenda point is {}; courses of action and opinions change only while it is open",
            point.status
        )));
    }
    Ok(point)
}

/// Adds a COA with its sections to an open agenda point.
pub async fn add_coa(
    conn: &mut PgConnection,
    actor: &Actor,
    point_id: i64,
    title: &str,
    description: &str,
    sections: &[NewSection],
) -> DomainResult<i64> {
    open_point(conn, actor, point_id, Capability::SetAgenda).await?;
    if sections.len() > 20 {
        return Err(DomainError::Invalid(
            "a course of action has at most 20 sections".into(),
        ));
    }
    let position = all_children(conn, kind::COA, rel::COA_FOR, point_id)
        .await?
        .len() as i32
        + 1;
    let coa = create(
        conn,
        actor,
        NewItem {
            kind: kind::COA,
            name: None,
            title,
            status: "",
            description,
            sort_order: position,
            properties: Vec::new(),
            parent: (rel::COA_FOR, point_id),
        },
    )
    .await?;
    for (i, section) in sections.iter().enumerate() {
        create(
            conn,
            actor,
            NewItem {
                kind: kind::COA_SECTION,
                name: None,
                title: &section.title,
                status: "",
                description: &section.body,
                sort_order: i as i32,
                properties: Vec::new(),
                parent: (rel::SECTION_OF, coa),
            },
        )
        .await?;
    }
    Ok(coa)
}

/// The agenda point a COA belongs to.
async fn point_of(conn: &mut PgConnection, coa_id: i64) -> DomainResult<i64> {
    store::targets_of(&mut *conn, rel::COA_FOR, coa_id)
        .await?
        .first()
        .copied()
        .ok_or_else(|| DomainError::NotFound(format!("the agenda point of COA {coa_id}")))
}

/// Replaces the text of one section of a COA.
pub async fn edit_section(
    conn: &mut PgConnection,
    actor: &Actor,
    coa_id: i64,
    section_id: i64,
    body: &str,
) -> DomainResult<Item> {
    load(conn, coa_id, Some(kind::COA)).await?;
    let point = point_of(conn, coa_id).await?;
    open_point(conn, actor, point, Capability::SetAgenda).await?;
    let section = load(conn, section_id, Some(kind::COA_SECTION)).await?;
    if store::targets_of(&mut *conn, rel::SECTION_OF, section_id).await? != [coa_id] {
        return Err(DomainError::NotFound(format!(
            "section {section_id} of COA {coa_id}"
        )));
    }
    super::check_text("a section", body)?;
    store::set_property(conn, section_id, super::key::DESCRIPTION, &json!(body)).await?;
    audit::record(
        conn,
        actor,
        "coa.section.update",
        Some((kind::COA, coa_id)),
        json!({"section_id": section_id, "section": section.title}),
    )
    .await?;
    load(conn, section_id, Some(kind::COA_SECTION)).await
}

/// Gives (or replaces) `user_id`'s opinion on an open agenda point, preferring one of its
/// COAs or none. A user acts only for themself.
pub async fn give_opinion(
    conn: &mut PgConnection,
    actor: &Actor,
    point_id: i64,
    user_id: i64,
    preferred_coa: Option<i64>,
    text: &str,
) -> DomainResult<i64> {
    if actor.user_id.is_some_and(|u| u != user_id) {
        return Err(DomainError::Forbidden(
            "an opinion is given by its holder only".into(),
        ));
    }
    let point = open_point(conn, actor, point_id, Capability::Vote).await?;
    if let Some(coa) = preferred_coa
        && (load(conn, coa, Some(kind::COA)).await.is_err()
            || point_of(conn, coa).await? != point_id)
    {
        return Err(DomainError::Invalid(format!(
            "COA {coa} is not a course of action of this agenda point"
        )));
    }
    let holder = users::get(&mut *conn, user_id)
        .await?
        .ok_or_else(|| DomainError::Invalid(format!("user {user_id} does not exist")))?;
    let name = format!("opinion-{point_id}-{user_id}");
    let id = match store::find_entity(&mut *conn, kind::OPINION, &name).await? {
        Some(existing) => {
            super::check_text("the opinion", text)?;
            store::set_property(
                conn,
                existing.id,
                super::key::DESCRIPTION,
                &json!(text.trim()),
            )
            .await?;
            let old = store::targets_of(&mut *conn, rel::PREFERS_COA, existing.id).await?;
            for coa in old {
                store::unrelate(conn, rel::PREFERS_COA, existing.id, coa).await?;
            }
            audit::record(
                conn,
                actor,
                "opinion.update",
                Some((kind::OPINION, existing.id)),
                json!({"point_id": point_id, "preferred_coa_id": preferred_coa}),
            )
            .await?;
            existing.id
        }
        None => {
            let title = format!("Opinion of {}", holder.display_name);
            let id = create(
                conn,
                actor,
                NewItem {
                    kind: kind::OPINION,
                    name: Some(name),
                    title: &title,
                    status: "",
                    description: text,
                    sort_order: 0,
                    properties: Vec::new(),
                    parent: (rel::OPINION_ON, point.id),
                },
            )
            .await?;
            store::relate(conn, rel::OPINION_BY, id, user_id, &Properties::new()).await?;
            id
        }
    };
    if let Some(coa) = preferred_coa {
        store::relate(conn, rel::PREFERS_COA, id, coa, &Properties::new()).await?;
    }
    Ok(id)
}

/// The COAs (with sections and how many prefer each) and opinions of an agenda point.
pub async fn of_point(
    conn: &mut PgConnection,
    point_id: i64,
) -> DomainResult<(Vec<CoaView>, Vec<OpinionView>)> {
    let mut opinions = Vec::new();
    for opinion in all_children(conn, kind::OPINION, rel::OPINION_ON, point_id).await? {
        let preferred_coa_id = store::targets_of(&mut *conn, rel::PREFERS_COA, opinion.id)
            .await?
            .first()
            .copied();
        let by = match store::targets_of(&mut *conn, rel::OPINION_BY, opinion.id)
            .await?
            .first()
        {
            Some(&user) => users::get(&mut *conn, user).await?.map(|u| UserRef {
                id: u.id,
                username: u.username,
                display_name: u.display_name,
            }),
            None => None,
        };
        opinions.push(OpinionView {
            opinion,
            by,
            preferred_coa_id,
        });
    }
    let mut coas = Vec::new();
    for coa in all_children(conn, kind::COA, rel::COA_FOR, point_id).await? {
        let sections = all_children(conn, kind::COA_SECTION, rel::SECTION_OF, coa.id).await?;
        let preferred_by = opinions
            .iter()
            .filter(|o| o.preferred_coa_id == Some(coa.id))
            .count();
        coas.push(CoaView {
            coa,
            sections,
            preferred_by,
        });
    }
    Ok((coas, opinions))
}

/// The ids of everything hanging off these agenda points (COAs, their sections, opinions),
/// deleted with them.
pub async fn dependents(conn: &mut PgConnection, point_ids: &[i64]) -> DomainResult<Vec<i64>> {
    let mut ids = Vec::new();
    for &point in point_ids {
        for opinion in all_children(conn, kind::OPINION, rel::OPINION_ON, point).await? {
            ids.push(opinion.id);
        }
        for coa in all_children(conn, kind::COA, rel::COA_FOR, point).await? {
            ids.extend(coa_with_sections(conn, coa.id).await?);
        }
    }
    Ok(ids)
}

/// A COA's id and its sections' ids.
pub async fn coa_with_sections(conn: &mut PgConnection, coa_id: i64) -> DomainResult<Vec<i64>> {
    let mut ids = vec![coa_id];
    for section in all_children(conn, kind::COA_SECTION, rel::SECTION_OF, coa_id).await? {
        ids.push(section.id);
    }
    Ok(ids)
}

/// Checks a COA may be deleted (its point open, `agenda.set`, no opinion prefers it); the
/// ids to delete with it.
pub async fn deletable(
    conn: &mut PgConnection,
    actor: &Actor,
    coa: &Item,
) -> DomainResult<Vec<i64>> {
    let point = point_of(conn, coa.id).await?;
    open_point(conn, actor, point, Capability::SetAgenda).await?;
    let preferring: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM relations r JOIN entities rt ON rt.id = r.relation_type_id \
         WHERE rt.name = 'prefers_coa' AND r.target_id = $1",
    )
    .bind(coa.id)
    .fetch_one(&mut *conn)
    .await?;
    if preferring > 0 {
        return Err(DomainError::Conflict(format!(
            "{preferring} opinion(s) prefer this course of action; they must change first"
        )));
    }
    coa_with_sections(conn, coa.id).await
}
