use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn db() -> DatabaseStatus {
    DatabaseStatus {
        name: "ahlt_dev".into(),
        role: "ahlt_dev".into(),
        secret_name: "dev-db".into(),
    }
}

fn progress(
    migration: MigrationObservation,
    workload: WorkloadObservation,
    ingress: IngressObservation,
) -> Progress {
    Progress {
        spec_image: "r/ahlt:2".into(),
        url: Some("https://dev.local".into()),
        selector: "a=b".into(),
        database: DatabaseObservation::Ready(db()),
        migration,
        workload,
        ingress,
        graph: GraphObservation::NotConfigured,
    }
}

fn reconciled(generation: i64, p: Progress) -> Observations {
    Observations {
        generation,
        outcome: Outcome::Reconciled(Box::new(p)),
    }
}

fn cond<'a>(s: &'a AhltEnvironmentStatus, t: &str) -> &'a Condition {
    find(&s.conditions, t).unwrap()
}

fn ready_status_for(generation: i64, now: Timestamp) -> AhltEnvironmentStatus {
    let obs = reconciled(
        generation,
        progress(
            MigrationObservation::Succeeded,
            WorkloadObservation::Available {
                image: "r/ahlt:2".into(),
                available: 1,
            },
            IngressObservation::Configured,
        ),
    );
    next_status(&AhltEnvironmentStatus::default(), &obs, now)
}

#[test]
fn a_new_generation_needs_progressing_first() {
    let empty = AhltEnvironmentStatus::default();
    assert!(needs_progressing(&empty, 1));
    let s = progressing(&empty, 1, t(0));
    assert!(!needs_progressing(&s, 1));
    assert!(needs_progressing(&s, 2));
    let ready = cond(&s, READY);
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason, reason::PROGRESSING);
    assert_eq!(ready.observed_generation, Some(1));
    assert_eq!(s.observed_generation, Some(1));
    assert_eq!(s.conditions.len(), 1);
}

#[test]
fn progressing_keeps_other_conditions_and_serving_image() {
    let s = ready_status_for(1, t(0));
    let p = progressing(&s, 2, t(10));
    assert_eq!(cond(&p, READY).status, "False");
    assert_eq!(cond(&p, READY).last_transition_time, Time(t(10)));
    assert_eq!(cond(&p, DATABASE_READY), cond(&s, DATABASE_READY));
    assert_eq!(p.image.as_deref(), Some("r/ahlt:2"));
}

#[test]
fn all_good_is_ready_and_every_condition_carries_the_generation() {
    let s = ready_status_for(3, t(0));
    assert_eq!(cond(&s, READY).status, "True");
    assert_eq!(cond(&s, READY).reason, reason::AVAILABLE);
    assert_eq!(s.image.as_deref(), Some("r/ahlt:2"));
    assert_eq!(s.migrated_image.as_deref(), Some("r/ahlt:2"));
    assert_eq!(s.database, Some(db()));
    assert_eq!(s.url.as_deref(), Some("https://dev.local"));
    let types: Vec<_> = s.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, ConditionType::ALL.map(ConditionType::as_str));
    assert!(
        s.conditions
            .iter()
            .all(|c| c.observed_generation == Some(3))
    );
    assert_eq!(cond(&s, GRAPH_SYNCED).reason, reason::NOT_CONFIGURED);
}

#[test]
fn same_observations_give_the_same_status() {
    let s = ready_status_for(1, t(0));
    let obs = reconciled(
        1,
        progress(
            MigrationObservation::Succeeded,
            WorkloadObservation::Available {
                image: "r/ahlt:2".into(),
                available: 1,
            },
            IngressObservation::Configured,
        ),
    );
    assert_eq!(next_status(&s, &obs, t(500)), s);
}

#[test]
fn transition_time_moves_only_when_status_flips() {
    let s = ready_status_for(1, t(0));
    // Same status, other reason: time stays.
    let obs = reconciled(
        1,
        progress(
            MigrationObservation::Succeeded,
            WorkloadObservation::Available {
                image: "r/ahlt:2".into(),
                available: 1,
            },
            IngressObservation::NotRequested,
        ),
    );
    let n = next_status(&s, &obs, t(100));
    assert_eq!(cond(&n, INGRESS_READY).reason, reason::NOT_REQUESTED);
    assert_eq!(cond(&n, INGRESS_READY).last_transition_time, Time(t(0)));
    // Flip: time moves.
    let obs = reconciled(
        1,
        progress(
            MigrationObservation::Failed {
                message: "job failed".into(),
            },
            WorkloadObservation::Available {
                image: "r/ahlt:2".into(),
                available: 1,
            },
            IngressObservation::Configured,
        ),
    );
    let n = next_status(&s, &obs, t(200));
    assert_eq!(
        cond(&n, MIGRATIONS_APPLIED).last_transition_time,
        Time(t(200))
    );
    assert_eq!(cond(&n, DATABASE_READY).last_transition_time, Time(t(0)));
}

#[test]
fn image_moves_only_when_new_pods_are_available() {
    let s = ready_status_for(1, t(0));
    let mut p = progress(
        MigrationObservation::Succeeded,
        WorkloadObservation::RollingOut {
            image: "r/ahlt:3".into(),
            available: 1,
        },
        IngressObservation::Configured,
    );
    p.spec_image = "r/ahlt:3".into();
    let n = next_status(&s, &reconciled(2, p.clone()), t(10));
    assert_eq!(n.image.as_deref(), Some("r/ahlt:2"));
    assert_eq!(n.migrated_image.as_deref(), Some("r/ahlt:3"));
    assert_eq!(cond(&n, READY).status, "False");
    assert_eq!(cond(&n, READY).reason, reason::PROGRESSING);
    assert_eq!(cond(&n, WORKLOAD_AVAILABLE).reason, reason::ROLLING_OUT);

    p.workload = WorkloadObservation::Available {
        image: "r/ahlt:3".into(),
        available: 1,
    };
    let n = next_status(&n, &reconciled(2, p), t(20));
    assert_eq!(n.image.as_deref(), Some("r/ahlt:3"));
    assert_eq!(cond(&n, READY).status, "True");
}

#[test]
fn failed_migration_keeps_old_image_and_says_why() {
    let s = ready_status_for(1, t(0));
    let mut p = progress(
        MigrationObservation::Failed {
            message: "BackoffLimitExceeded".into(),
        },
        WorkloadObservation::Available {
            image: "r/ahlt:2".into(),
            available: 1,
        },
        IngressObservation::Configured,
    );
    p.spec_image = "r/ahlt:1".into();
    let n = next_status(&s, &reconciled(2, p), t(10));
    assert_eq!(n.image.as_deref(), Some("r/ahlt:2"));
    assert_eq!(cond(&n, READY).reason, reason::MIGRATION_FAILED);
    assert_eq!(cond(&n, MIGRATIONS_APPLIED).status, "False");
    assert!(
        cond(&n, MIGRATIONS_APPLIED)
            .message
            .contains("BackoffLimitExceeded")
    );
    let events = transition_events(&s, &n);
    assert_eq!(
        events,
        vec![TransitionEvent {
            warning: true,
            reason: reason::MIGRATION_FAILED.into(),
            note: cond(&n, READY).message.clone(),
        }]
    );
    // The same failure again: no new event.
    assert!(transition_events(&n, &n).is_empty());
}

#[test]
fn database_failure_is_reported_on_database_ready_and_ready() {
    let mut p = progress(
        MigrationObservation::NotStarted,
        WorkloadObservation::NotCreated,
        IngressObservation::Pending,
    );
    p.database = DatabaseObservation::Failed {
        reason: "Unreachable",
        message: "connection refused".into(),
    };
    let n = next_status(&AhltEnvironmentStatus::default(), &reconciled(1, p), t(0));
    assert_eq!(cond(&n, DATABASE_READY).status, "False");
    assert_eq!(cond(&n, DATABASE_READY).reason, "Unreachable");
    assert_eq!(cond(&n, READY).reason, "Unreachable");
    assert_eq!(n.database, None);
    let events = transition_events(&AhltEnvironmentStatus::default(), &n);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason, "Unreachable");
}

#[test]
fn invalid_and_suspended_touch_only_ready() {
    let s = ready_status_for(1, t(0));
    let n = next_status(
        &s,
        &Observations {
            generation: 2,
            outcome: Outcome::Invalid {
                reason: "InvalidSpec",
                message: "bad".into(),
            },
        },
        t(5),
    );
    assert_eq!(cond(&n, READY).reason, "InvalidSpec");
    assert_eq!(cond(&n, READY).observed_generation, Some(2));
    assert_eq!(cond(&n, DATABASE_READY), cond(&s, DATABASE_READY));
    assert_eq!(transition_events(&s, &n).len(), 1);

    let n = next_status(
        &s,
        &Observations {
            generation: 2,
            outcome: Outcome::Suspended,
        },
        t(5),
    );
    assert_eq!(cond(&n, READY).reason, reason::SUSPENDED);
    assert_eq!(n.image, s.image);
    assert!(transition_events(&s, &n).is_empty());
}

#[test]
fn first_creation_waits_for_migrations() {
    let p = progress(
        MigrationObservation::Running,
        WorkloadObservation::NotCreated,
        IngressObservation::Pending,
    );
    let n = next_status(&AhltEnvironmentStatus::default(), &reconciled(1, p), t(0));
    assert_eq!(cond(&n, READY).reason, reason::PROGRESSING);
    assert_eq!(cond(&n, MIGRATIONS_APPLIED).reason, reason::RUNNING);
    assert_eq!(cond(&n, WORKLOAD_AVAILABLE).reason, reason::NOT_CREATED);
    assert_eq!(cond(&n, INGRESS_READY).status, "False");
    assert_eq!(n.image, None);
    assert_eq!(n.replicas, Some(0));
    assert!(transition_events(&AhltEnvironmentStatus::default(), &n).is_empty());
}

#[test]
fn ready_true_emits_a_normal_event_once() {
    let s = ready_status_for(1, t(0));
    let events = transition_events(&AhltEnvironmentStatus::default(), &s);
    assert_eq!(events.len(), 1);
    assert!(!events[0].warning);
    assert_eq!(ready_status(&s), "True");
}

fn with_graph(graph: GraphObservation) -> Progress {
    let mut p = progress(
        MigrationObservation::Succeeded,
        WorkloadObservation::Available {
            image: "r/ahlt:2".into(),
            available: 1,
        },
        IngressObservation::Configured,
    );
    p.graph = graph;
    p
}

#[test]
fn a_resync_reports_resyncing_then_synced_and_stays_put() {
    let s = ready_status_for(1, t(0));
    let running = GraphObservation::Resyncing {
        image: "r/ahlt:2".into(),
        request: None,
    };
    let n = next_status(&s, &reconciled(1, with_graph(running)), t(10));
    assert_eq!(cond(&n, GRAPH_SYNCED).status, "False");
    assert_eq!(cond(&n, GRAPH_SYNCED).reason, reason::RESYNCING);
    assert_eq!(
        cond(&n, READY).status,
        "True",
        "Ready does not wait for the graph"
    );
    assert!(
        transition_events(&s, &n).is_empty(),
        "in progress: no Warning"
    );

    let done = GraphObservation::Succeeded {
        image: "r/ahlt:2".into(),
        request: Some("r1".into()),
        completion_time: Some("2024-05-01T10:00:00Z".into()),
    };
    let synced = next_status(&n, &reconciled(1, with_graph(done)), t(20));
    assert_eq!(
        synced.graph,
        Some(GraphStatus {
            last_resync_request: Some("r1".into()),
            last_resync_time: Some("2024-05-01T10:00:00Z".into()),
            last_resync_image: Some("r/ahlt:2".into()),
            failed_job: None,
        })
    );
    let c = cond(&synced, GRAPH_SYNCED);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", reason::SYNCED)
    );
    assert!(
        c.message.contains("r/ahlt:2") && c.message.contains("r1"),
        "{}",
        c.message
    );
    assert_eq!(c.last_transition_time, Time(t(20)));

    // The Job is gone, status remembers: the same status, so nothing is written.
    let later = next_status(
        &synced,
        &reconciled(1, with_graph(GraphObservation::UpToDate)),
        t(99),
    );
    assert_eq!(later, synced);
}

#[test]
fn a_failed_resync_warns_once_records_the_job_and_leaves_ready_alone() {
    let s = ready_status_for(1, t(0));
    let failed = GraphObservation::Failed {
        job: "dev-resync-abc".into(),
        image: "r/ahlt:2".into(),
        request: Some("r2".into()),
        message: "BackoffLimitExceeded: Job has reached the specified backoff limit".into(),
    };
    let n = next_status(&s, &reconciled(1, with_graph(failed.clone())), t(10));
    let c = cond(&n, GRAPH_SYNCED);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", reason::RESYNC_FAILED)
    );
    assert!(c.message.contains("BackoffLimitExceeded"));
    assert_eq!(cond(&n, READY).status, "True");
    assert_eq!(
        n.graph.as_ref().unwrap().failed_job.as_deref(),
        Some("dev-resync-abc")
    );
    let events = transition_events(&s, &n);
    assert_eq!(
        events,
        vec![TransitionEvent {
            warning: true,
            reason: reason::RESYNC_FAILED.into(),
            note: c.message.clone(),
        }]
    );
    let again = next_status(&n, &reconciled(1, with_graph(failed)), t(20));
    assert_eq!(again, n);
    assert!(transition_events(&n, &again).is_empty());
}

#[test]
fn missing_credentials_are_a_warning_not_a_job() {
    let s = ready_status_for(1, t(0));
    let g = GraphObservation::CredentialsMissing {
        message: "Secret creds not found".into(),
    };
    let n = next_status(&s, &reconciled(1, with_graph(g)), t(10));
    assert_eq!(cond(&n, GRAPH_SYNCED).reason, reason::CREDENTIALS_MISSING);
    assert_eq!(cond(&n, READY).status, "True");
    assert_eq!(
        transition_events(&s, &n)[0].reason,
        reason::CREDENTIALS_MISSING
    );
}

#[test]
fn graph_reasons_before_and_without_resyncs() {
    let s = AhltEnvironmentStatus::default();
    let reason_for = |g: GraphObservation| {
        let n = next_status(&s, &reconciled(1, with_graph(g)), t(0));
        let c = cond(&n, GRAPH_SYNCED).clone();
        (c.status, c.reason)
    };
    assert_eq!(
        reason_for(GraphObservation::WaitingForRollout {
            image: "r/ahlt:2".into()
        }),
        ("False".into(), reason::PENDING.into())
    );
    assert_eq!(
        reason_for(GraphObservation::UpToDate),
        ("Unknown".into(), reason::NOT_REQUESTED.into())
    );
    assert_eq!(
        reason_for(GraphObservation::NotConfigured),
        ("True".into(), reason::NOT_CONFIGURED.into())
    );
}

#[test]
fn an_unobserved_graph_keeps_its_condition_for_the_new_generation() {
    let failed = GraphObservation::Failed {
        job: "j".into(),
        image: "r/ahlt:2".into(),
        request: None,
        message: "boom".into(),
    };
    let s = next_status(
        &AhltEnvironmentStatus::default(),
        &reconciled(1, with_graph(failed)),
        t(0),
    );
    let n = next_status(
        &s,
        &reconciled(2, with_graph(GraphObservation::Unobserved)),
        t(5),
    );
    let (before, after) = (cond(&s, GRAPH_SYNCED), cond(&n, GRAPH_SYNCED));
    assert_eq!(
        (
            &after.status,
            &after.reason,
            &after.message,
            &after.last_transition_time
        ),
        (
            &before.status,
            &before.reason,
            &before.message,
            &before.last_transition_time
        )
    );
    assert_eq!(after.observed_generation, Some(2));
}
