//! KIP-227 fetch sessions of the long poll (`offsets::fetch::fetch_in_session`) against the real
//! broker: after one full request, requests carry only changes and answers only changed
//! partitions.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_observer::cluster::Cluster;
use kafka_observer::config::BrokerAddr;
use kafka_observer::offsets::TopicPartition;
use kafka_observer::offsets::{fetch, fetch_in_session, FetchOptions, FetchSession};
use kafka_observer::wire::ConnectOptions;

use crate::harness;

fn opts(max_wait_ms: u64) -> FetchOptions {
    FetchOptions {
        max_wait: Duration::from_millis(max_wait_ms),
        partition_max_bytes: 1,
        max_bytes: 1,
        read_committed: false,
        lane: kafka_observer::cluster::Lane::LongPoll,
    }
}

#[test]
fn a_session_answers_only_for_partitions_that_changed() {
    let b = harness::broker();
    let topic = harness::unique("session");
    b.create_topic(&topic, 40);
    b.produce(&topic, 7, 2);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addr = BrokerAddr::parse(&b.plaintext()).unwrap();
        let cluster = Cluster::new(vec![addr], ConnectOptions::default());
        let md = cluster
            .refresh_metadata(Some(std::slice::from_ref(&topic)))
            .await
            .unwrap();
        let leader = md.leader(&topic, 0).unwrap();
        let mut positions: BTreeMap<TopicPartition, i64> = (0..40)
            .map(|p| {
                (
                    TopicPartition::new(topic.clone(), p),
                    if p == 7 { 2 } else { 0 },
                )
            })
            .collect();

        // Without a session every answer lists every partition.
        let all = fetch(&cluster, leader, &positions, opts(100))
            .await
            .unwrap();
        assert_eq!(all.len(), 40);

        // The full request that opens the session: every partition once.
        let mut session = FetchSession::default();
        let first = fetch_in_session(&cluster, leader, positions.clone(), opts(100), &mut session)
            .await
            .unwrap();
        assert_eq!(first.len(), 40);
        assert!(session.is_open(), "the broker gave no session");

        // Nothing changed: the broker holds the request to max_wait and answers for nobody.
        let t = Instant::now();
        let quiet = fetch_in_session(&cluster, leader, positions.clone(), opts(300), &mut session)
            .await
            .unwrap();
        assert!(quiet.is_empty(), "{quiet:?}");
        assert!(
            t.elapsed() >= Duration::from_millis(250),
            "{:?}",
            t.elapsed()
        );

        // A record on one partition: the held request returns with exactly that one.
        let produce = {
            let topic = topic.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                harness::broker().produce(&topic, 12, 1);
            })
        };
        let moved = fetch_in_session(
            &cluster,
            leader,
            positions.clone(),
            opts(60_000),
            &mut session,
        )
        .await
        .unwrap();
        produce.join().unwrap();
        let names: Vec<(i32, i64)> = moved
            .iter()
            .map(|(tp, p)| (tp.partition, p.high_watermark))
            .collect();
        assert_eq!(names, vec![(12, 1)]);
        assert!(moved[0].1.records.as_ref().is_some_and(|r| !r.is_empty()));

        // Move partition 12 to its end and forget partition 7: an answer with records for 7
        // would show the forget was ignored.
        positions.insert(TopicPartition::new(topic.clone(), 12), 1);
        positions.remove(&TopicPartition::new(topic.clone(), 7));
        b.produce(&topic, 7, 1);
        let after = fetch_in_session(&cluster, leader, positions.clone(), opts(300), &mut session)
            .await
            .unwrap();
        assert!(after.is_empty(), "{after:?}");
        assert!(session.is_open());

        // A session the broker does not know (evicted, or the broker restarted) heals into a
        // new one within the same call.
        let mut evicted = FetchSession::resumed(0x5eed, 9);
        let healed = fetch_in_session(&cluster, leader, positions.clone(), opts(100), &mut evicted)
            .await
            .unwrap();
        assert_eq!(healed.len(), positions.len());
        assert!(evicted.is_open());
    });
}
