use super::*;

const NOW: u64 = 1_800_000_000;

fn listed(specs: &[(u32, &str, u64)]) -> Vec<Listed> {
    specs
        .iter()
        .map(|(msg, uid, size)| Listed {
            msg: *msg,
            uid: (*uid).to_owned(),
            size: *size,
        })
        .collect()
}

fn known(specs: &[(&str, u64, KnownState)]) -> HashMap<String, Known> {
    specs
        .iter()
        .map(|(uid, days_ago, state)| {
            (
                (*uid).to_owned(),
                Known {
                    first_seen: NOW - days_ago * DAY,
                    state: *state,
                },
            )
        })
        .collect()
}

fn with(policy: ServerPolicy) -> PlanOptions {
    PlanOptions {
        policy,
        ..PlanOptions::default()
    }
}

fn uids(list: &[Listed]) -> Vec<&str> {
    list.iter().map(|l| l.uid.as_str()).collect()
}

fn fetched(plan: &Plan) -> Vec<&str> {
    plan.fetch.iter().map(|f| f.message.uid.as_str()).collect()
}

#[test]
fn only_unknown_messages_are_fetched_newest_first() {
    let server = listed(&[(1, "a", 10), (2, "b", 20), (3, "c", 30), (4, "d", 40)]);
    let store = known(&[
        ("b", 1, KnownState::Stored),
        ("d", 1, KnownState::DeletedLocally),
    ]);
    let plan = plan(&server, &store, PlanOptions::default(), NOW).unwrap();
    assert_eq!(fetched(&plan), ["c", "a"]);
    assert_eq!(plan.bytes, 40);
    assert!(plan.delete.is_empty());
    assert!(!plan.delete_after_store);
    assert!(plan.gone.is_empty());
}

#[test]
fn a_second_sync_fetches_nothing_and_one_new_message_is_all_a_third_fetches() {
    let server = listed(&[(1, "a", 10), (2, "b", 20)]);
    let store = known(&[("a", 0, KnownState::Stored), ("b", 0, KnownState::Stored)]);
    let plan2 = plan(&server, &store, PlanOptions::default(), NOW).unwrap();
    assert!(plan2.fetch.is_empty());
    let server = listed(&[(1, "a", 10), (2, "b", 20), (3, "new", 5)]);
    let plan3 = plan(&server, &store, PlanOptions::default(), NOW).unwrap();
    assert_eq!(fetched(&plan3), ["new"]);
}

#[test]
fn large_messages_are_fetched_headers_first_when_the_server_has_top() {
    let server = listed(&[(1, "small", 1_000), (2, "big", 50_000_000)]);
    let plan_top = plan(&server, &HashMap::new(), PlanOptions::default(), NOW).unwrap();
    assert_eq!(plan_top.fetch[0].mode, FetchMode::HeadersOnly);
    assert_eq!(plan_top.fetch[1].mode, FetchMode::Whole);
    assert_eq!(plan_top.bytes, 1_000);
    let no_top = PlanOptions {
        top: false,
        ..PlanOptions::default()
    };
    let plan_retr = plan(&server, &HashMap::new(), no_top, NOW).unwrap();
    assert!(plan_retr.fetch.iter().all(|f| f.mode == FetchMode::Whole));
    assert_eq!(plan_retr.bytes, 50_001_000);
}

#[test]
fn each_policy_deletes_only_what_it_should() {
    let server = listed(&[
        (1, "old", 1),
        (2, "recent", 1),
        (3, "gone-locally", 1),
        (4, "headers", 1),
        (5, "new", 1),
    ]);
    let store = known(&[
        ("old", 40, KnownState::Stored),
        ("recent", 2, KnownState::Stored),
        ("gone-locally", 3, KnownState::DeletedLocally),
        ("headers", 90, KnownState::HeadersOnly),
    ]);
    let run = |policy| plan(&server, &store, with(policy), NOW).unwrap();

    let leave = run(ServerPolicy::LeaveOnServer);
    assert!(leave.delete.is_empty() && !leave.delete_after_store);

    let after_30 = run(ServerPolicy::DeleteAfterDays(30));
    assert_eq!(uids(&after_30.delete), ["old"]);
    assert!(!after_30.delete_after_store);

    let with_local = run(ServerPolicy::DeleteWhenDeletedLocally);
    assert_eq!(uids(&with_local.delete), ["gone-locally"]);

    let after_download = run(ServerPolicy::DeleteAfterDownload);
    assert_eq!(
        uids(&after_download.delete),
        ["old", "recent", "gone-locally"]
    );
    assert!(after_download.delete_after_store);
    // The new message is fetched, and deleted only once stored (the engine's job).
    assert_eq!(fetched(&after_download), ["new"]);

    // A message whose body is not stored is never deleted, whatever the policy.
    for policy in [
        ServerPolicy::DeleteAfterDays(0),
        ServerPolicy::DeleteWhenDeletedLocally,
        ServerPolicy::DeleteAfterDownload,
    ] {
        assert!(
            !uids(&run(policy).delete).contains(&"headers"),
            "{policy:?}"
        );
    }
}

#[test]
fn days_are_counted_from_first_seen() {
    let server = listed(&[(1, "x", 1)]);
    let edge = |days_ago: u64| {
        let store: HashMap<String, Known> = [(
            "x".to_owned(),
            Known {
                first_seen: NOW - days_ago,
                state: KnownState::Stored,
            },
        )]
        .into();
        !plan(&server, &store, with(ServerPolicy::DeleteAfterDays(7)), NOW)
            .unwrap()
            .delete
            .is_empty()
    };
    assert!(!edge(7 * DAY - 1));
    assert!(edge(7 * DAY));
    // A first-seen time in the future (a clock that was wrong) deletes nothing.
    let future = Known {
        first_seen: NOW + DAY,
        state: KnownState::Stored,
    };
    assert!(!deletes(ServerPolicy::DeleteAfterDays(1), &future, NOW));
}

#[test]
fn messages_the_server_dropped_are_reported_gone() {
    let server = listed(&[(1, "b", 1)]);
    let store = known(&[("a", 1, KnownState::Stored), ("b", 1, KnownState::Stored)]);
    assert_eq!(
        plan(&server, &store, PlanOptions::default(), NOW)
            .unwrap()
            .gone,
        ["a"]
    );
}

#[test]
fn duplicate_uids_and_mismatched_listings_are_refused() {
    let server = listed(&[(1, "same", 1), (2, "same", 2)]);
    assert_eq!(
        plan(&server, &HashMap::new(), PlanOptions::default(), NOW),
        Err(PlanError::DuplicateUid("same".into()))
    );
    let uids = [
        UidEntry {
            msg: 2,
            uid: "b".into(),
        },
        UidEntry {
            msg: 1,
            uid: "a".into(),
        },
    ];
    let sizes = [
        ListEntry { msg: 1, size: 10 },
        ListEntry { msg: 2, size: 20 },
    ];
    assert_eq!(
        listing(&uids, &sizes).unwrap(),
        listed(&[(1, "a", 10), (2, "b", 20)])
    );
    assert_eq!(listing(&uids, &sizes[..1]), Err(PlanError::ListingMismatch));
    let other = [
        ListEntry { msg: 1, size: 10 },
        ListEntry { msg: 3, size: 20 },
    ];
    assert_eq!(listing(&uids, &other), Err(PlanError::ListingMismatch));
    assert!(PlanError::NoUidl.to_string().contains("UIDL"));
}

#[test]
fn absurd_sizes_from_the_server_do_not_overflow() {
    let server = listed(&[(1, "a", u64::MAX), (2, "b", u64::MAX), (3, "c", 1)]);
    let no_top = PlanOptions {
        top: false,
        ..PlanOptions::default()
    };
    let plan = plan(&server, &HashMap::new(), no_top, NOW).unwrap();
    assert_eq!(plan.bytes, u64::MAX);
    assert_eq!(plan.fetch.len(), 3);
}

/// Security review: a headers-only message deleted here was recorded as `DeletedLocally`, so
/// "delete after N days" and "remove after download" deleted it from the server although its
/// body was never stored. Only "delete on server when deleted here" may remove it.
#[test]
fn a_headers_only_message_deleted_here_is_removed_from_the_server_only_by_delete_when_deleted_here()
{
    let server = listed(&[(1, "big", 50_000_000)]);
    let store = known(&[("big", 400, KnownState::DeletedLocallyHeadersOnly)]);
    for (policy, deletes) in [
        (ServerPolicy::LeaveOnServer, false),
        (ServerPolicy::DeleteAfterDays(1), false),
        (ServerPolicy::DeleteAfterDownload, false),
        (ServerPolicy::DeleteWhenDeletedLocally, true),
    ] {
        let plan = plan(&server, &store, with(policy), NOW).unwrap();
        assert_eq!(
            uids(&plan.delete),
            if deletes { vec!["big"] } else { vec![] },
            "{policy:?}"
        );
        assert!(plan.fetch.is_empty(), "{policy:?} fetched it again");
    }
}
