//! The demo's meeting pipeline (`ahlt seed-demo`): one full cycle on the demo board.

use sqlx::PgConnection;

use crate::domain::audit::Actor;
use crate::domain::{DomainError, DomainResult, kind};
use crate::store;

/// One full pipeline cycle on the demo board, added with it: a meeting two weeks ago
/// that decided a proposal (minutes approved and distributed, an action item for Bob), the
/// next meeting with a proposal scheduled, one approved proposal waiting in the queue and an
/// open suggestion.
pub(super) async fn seed(
    conn: &mut PgConnection,
    actor: &Actor,
    people: &[i64],
) -> DomainResult<()> {
    use crate::domain::pipeline::agenda::{self, AgendaSource};
    use crate::domain::pipeline::coa;
    use crate::domain::pipeline::meetings::{self, Attendance, NewMeeting};
    use crate::domain::pipeline::{items, minutes, workflow};
    let board = store::find_entity(&mut *conn, kind::TOR, "board")
        .await?
        .map(|e| e.id)
        .expect("demo board exists");
    let today = jiff::Zoned::now().date();
    let day = |offset: i64| -> DomainResult<String> {
        today
            .checked_add(jiff::Span::new().days(offset))
            .map(|d| d.to_string())
            .map_err(|e| DomainError::Invalid(e.to_string()))
    };
    let proposal = async |conn: &mut PgConnection, title: &str, text: &str| {
        let s = items::submit(conn, actor, kind::SUGGESTION, board, title, text).await?;
        workflow::apply(conn, actor, s, "accepted", None).await?;
        let p = items::proposal_of(conn, s)
            .await?
            .expect("accepting creates a proposal");
        for to in ["submitted", "under_review", "approved"] {
            workflow::apply(conn, actor, p, to, None).await?;
        }
        Ok::<i64, DomainError>(p)
    };
    let portal = proposal(
        conn,
        "Replace the board portal",
        "The current portal is out of support.",
    )
    .await?;
    let budget = proposal(
        conn,
        "Adopt the 2027 budget",
        "Finance recommends the draft budget.",
    )
    .await?;
    proposal(
        conn,
        "Review the travel policy",
        "Raised by the audit committee.",
    )
    .await?;
    items::submit(
        conn,
        actor,
        kind::SUGGESTION,
        board,
        "Quarterly risk review",
        "A standing agenda point for risks.",
    )
    .await?;

    let new = |date: String| NewMeeting {
        date,
        ..Default::default()
    };
    let held = meetings::create_meeting(conn, actor, board, &new(day(-14)?)).await?;
    agenda::schedule(conn, actor, held, &AgendaSource::Proposal(portal)).await?;
    let point = agenda::schedule(
        conn,
        actor,
        held,
        &AgendaSource::Point {
            title: "Any other business".into(),
            description: String::new(),
        },
    )
    .await?;
    for to in ["confirmed", "in_progress"] {
        workflow::apply(conn, actor, held, to, None).await?;
    }
    for (i, attendance) in [
        Attendance::Present,
        Attendance::Absent,
        Attendance::Present,
        Attendance::Excused,
    ]
    .into_iter()
    .enumerate()
    {
        meetings::set_attendance(conn, actor, held, people[i], attendance).await?;
    }
    let agenda = meetings::detail(conn, held).await?.agenda;
    let section = |title: &str, body: &str| coa::NewSection {
        title: title.into(),
        body: body.into(),
    };
    let buy = coa::add_coa(
        conn,
        actor,
        agenda[0].point.id,
        "Buy a hosted portal",
        "A vendor runs it for us.",
        &[
            section("Cost", "About 12 000 a year."),
            section("Risk", "Dependence on one vendor."),
        ],
    )
    .await?;
    let build = coa::add_coa(
        conn,
        actor,
        agenda[0].point.id,
        "Build our own",
        "IT builds and runs it.",
        &[section("Cost", "Two developers for three months.")],
    )
    .await?;
    for (person, preferred, text) in [
        (0, buy, "Fastest way to a supported portal."),
        (2, buy, "Agree, if the contract allows leaving."),
        (3, build, "We keep control of our data."),
    ] {
        coa::give_opinion(
            conn,
            actor,
            agenda[0].point.id,
            people[person],
            Some(preferred),
            text,
        )
        .await?;
    }
    workflow::apply(
        conn,
        actor,
        agenda[0].point.id,
        "decided",
        Some("Approved: replace the portal by the end of the quarter."),
    )
    .await?;
    workflow::apply(conn, actor, point, "deferred", None).await?;
    workflow::apply(conn, actor, held, "completed", None).await?;
    let minutes_id = minutes::generate(conn, actor, held).await?;
    minutes::add_action_item(
        conn,
        actor,
        minutes_id,
        "Collect three offers for the new portal",
        people[1],
        &day(7)?,
    )
    .await?;
    for to in ["approved", "distributed"] {
        workflow::apply(conn, actor, minutes_id, to, None).await?;
    }

    let next = meetings::create_meeting(conn, actor, board, &new(day(14)?)).await?;
    workflow::apply(conn, actor, next, "confirmed", None).await?;
    agenda::schedule(conn, actor, next, &AgendaSource::Proposal(budget)).await?;
    Ok(())
}
