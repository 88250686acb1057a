//! Partition assignors of the classic "consumer" protocol, as pure functions.
//!
//! The group leader computes the assignment for everyone, so a group mixing our consumers with
//! Java ones must compute exactly what Java would: the same member order, the same split.
//! Implemented: `range` (Java's `RangeAssignor` without rack information), `roundrobin`
//! (`RoundRobinAssignor`) and `cooperative-sticky` (KIP-429, in `sticky.rs`: balanced, keeps
//! owned partitions, never moves one between members within a generation).
//!
//! Member order (Java's `MemberInfo`): static members (with a `group.instance.id`) first,
//! ordered by instance id; then dynamic members ordered by member id. Topics without a known
//! partition count are skipped (Java logs and skips them too). Every member appears in the
//! result, possibly with nothing assigned; within a member, topics are sorted by name and
//! partitions ascending.

mod sticky;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

pub(crate) use sticky::{cooperative_sticky, COOPERATIVE_STICKY};

/// Protocol name of the range assignor.
pub(crate) const RANGE: &str = "range";
/// Protocol name of the round-robin assignor.
pub(crate) const ROUND_ROBIN: &str = "roundrobin";

/// Assignment per member id: `(topic, partitions)` pairs.
pub(crate) type Plan = BTreeMap<String, Vec<(String, Vec<i32>)>>;

/// A group member as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// Subscribed topics (from its ConsumerProtocolSubscription).
    pub topics: Vec<String>,
    /// Partitions it claims to own (subscription v1+); only the sticky assignor reads them.
    pub owned: Vec<(String, i32)>,
    /// Generation of `owned` (subscription v2+, else the cooperative-sticky user data); -1 unknown.
    pub generation: i32,
}

/// Anything that describes a member: [`Member`], or `(member_id, topics)` for dynamic members.
pub(crate) trait MemberSubscription {
    fn member_id(&self) -> &str;
    fn group_instance_id(&self) -> Option<&str>;
    fn topics(&self) -> &[String];
    /// Partitions the member claims to own from its last generation.
    fn owned(&self) -> &[(String, i32)] {
        &[]
    }
    /// The generation of those claims (-1: unknown).
    fn generation(&self) -> i32 {
        -1
    }
}

impl MemberSubscription for Member {
    fn member_id(&self) -> &str {
        &self.member_id
    }
    fn group_instance_id(&self) -> Option<&str> {
        self.group_instance_id.as_deref()
    }
    fn topics(&self) -> &[String] {
        &self.topics
    }
    fn owned(&self) -> &[(String, i32)] {
        &self.owned
    }
    fn generation(&self) -> i32 {
        self.generation
    }
}

impl MemberSubscription for (String, Vec<String>) {
    fn member_id(&self) -> &str {
        &self.0
    }
    fn group_instance_id(&self) -> Option<&str> {
        None
    }
    fn topics(&self) -> &[String] {
        &self.1
    }
}

/// Java's `MemberInfo.compareTo`.
fn member_order<M: MemberSubscription>(a: &M, b: &M) -> Ordering {
    match (a.group_instance_id(), b.group_instance_id()) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.member_id().cmp(b.member_id()),
    }
}

fn sorted<M: MemberSubscription>(members: &[M]) -> Vec<&M> {
    let mut v: Vec<&M> = members.iter().collect();
    v.sort_by(|a, b| member_order(*a, *b));
    v
}

/// Turns per-member (topic, partition) lists into a [`Plan`] with every member present.
fn plan<M: MemberSubscription>(members: &[M], owned: BTreeMap<&str, Vec<(&str, i32)>>) -> Plan {
    let mut out: Plan = members
        .iter()
        .map(|m| (m.member_id().to_owned(), Vec::new()))
        .collect();
    for (member, tps) in owned {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in tps {
            by_topic.entry(t).or_default().push(p);
        }
        out.insert(
            member.to_owned(),
            by_topic
                .into_iter()
                .map(|(t, mut ps)| {
                    ps.sort_unstable();
                    (t.to_owned(), ps)
                })
                .collect(),
        );
    }
    out
}

fn partition_count(counts: &BTreeMap<String, i32>, topic: &str) -> Option<i32> {
    counts.get(topic).map(|&n| n.max(0))
}

/// Range: per topic, the subscribed members (in member order) get contiguous ranges; the
/// first `partitions % members` members get one extra partition.
pub(crate) fn range<M: MemberSubscription>(members: &[M], counts: &BTreeMap<String, i32>) -> Plan {
    let order = sorted(members);
    let topics: BTreeSet<&str> = members
        .iter()
        .flat_map(|m| m.topics().iter().map(String::as_str))
        .collect();
    let mut owned: BTreeMap<&str, Vec<(&str, i32)>> = BTreeMap::new();
    for topic in topics {
        let Some(n) = partition_count(counts, topic) else {
            continue;
        };
        let consumers: Vec<&M> = order
            .iter()
            .copied()
            .filter(|m| m.topics().iter().any(|t| t == topic))
            .collect();
        let c = consumers.len() as i32;
        let (per, extra) = (n / c, n % c);
        for (i, m) in consumers.iter().enumerate() {
            let i = i as i32;
            let start = per * i + i.min(extra);
            let len = per + i32::from(i < extra);
            owned
                .entry(m.member_id())
                .or_default()
                .extend((start..start + len).map(|p| (topic, p)));
        }
    }
    plan(members, owned)
}

/// Round-robin: all partitions of all subscribed topics, sorted by (topic, partition), dealt
/// one by one over the members in member order, skipping members not subscribed to the topic.
/// The dealing position carries over from one topic to the next (as in Java).
pub(crate) fn round_robin<M: MemberSubscription>(
    members: &[M],
    counts: &BTreeMap<String, i32>,
) -> Plan {
    let order = sorted(members);
    let topics: BTreeSet<&str> = members
        .iter()
        .flat_map(|m| m.topics().iter().map(String::as_str))
        .collect();
    let mut owned: BTreeMap<&str, Vec<(&str, i32)>> = BTreeMap::new();
    let mut next = 0usize;
    for topic in topics {
        let Some(n) = partition_count(counts, topic) else {
            continue;
        };
        // At least one member subscribes to `topic` (it came from a subscription), so each
        // search below ends within one lap.
        for p in 0..n {
            while !order[next % order.len()]
                .topics()
                .iter()
                .any(|t| t == topic)
            {
                next += 1;
            }
            let m = order[next % order.len()];
            owned.entry(m.member_id()).or_default().push((topic, p));
            next += 1;
        }
    }
    plan(members, owned)
}

/// Whether `protocol` rebalances cooperatively: members keep what they own across a join.
pub(crate) fn is_cooperative(protocol: &str) -> bool {
    protocol == COOPERATIVE_STICKY
}

/// Every assignor this member can run, in the default order of preference.
pub(crate) const SUPPORTED: [&str; 3] = [COOPERATIVE_STICKY, RANGE, ROUND_ROBIN];

/// The group chose an assignor this member cannot run (its name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported partition assignor '{name}' (supported: {COOPERATIVE_STICKY}, {RANGE}, {ROUND_ROBIN})", name = .0)]
pub(crate) struct UnsupportedAssignor(pub String);

/// Runs the assignor named `protocol` ([`COOPERATIVE_STICKY`], [`RANGE`] or [`ROUND_ROBIN`]).
pub(crate) fn assign<M: MemberSubscription>(
    protocol: &str,
    members: &[M],
    counts: &BTreeMap<String, i32>,
) -> Result<Plan, UnsupportedAssignor> {
    match protocol {
        RANGE => Ok(range(members, counts)),
        ROUND_ROBIN => Ok(round_robin(members, counts)),
        COOPERATIVE_STICKY => Ok(cooperative_sticky(members, counts)),
        other => Err(UnsupportedAssignor(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, topics: &[&str]) -> Member {
        Member {
            member_id: id.to_owned(),
            group_instance_id: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            ..Member::default()
        }
    }

    fn s(id: &str, instance: &str, topics: &[&str]) -> Member {
        Member {
            group_instance_id: Some(instance.to_owned()),
            ..m(id, topics)
        }
    }

    fn counts(c: &[(&str, i32)]) -> BTreeMap<String, i32> {
        c.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    /// Expected plan from `member: "t0p0 t0p1 t1p0"`-style strings (topic then partition).
    fn expect(rows: &[(&str, &str)]) -> Plan {
        rows.iter()
            .map(|(member, tps)| {
                let mut by: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for tp in tps.split_whitespace() {
                    let (t, p) = tp.rsplit_once('p').unwrap();
                    by.entry(t.to_owned()).or_default().push(p.parse().unwrap());
                }
                (member.to_string(), by.into_iter().collect())
            })
            .collect()
    }

    struct Case {
        name: &'static str,
        members: Vec<Member>,
        counts: Vec<(&'static str, i32)>,
        range: Vec<(&'static str, &'static str)>,
        round_robin: Vec<(&'static str, &'static str)>,
    }

    #[test]
    fn table() {
        let cases = vec![
            Case {
                // Java RangeAssignor / RoundRobinAssignor javadoc, first example.
                name: "javadoc: two members, t0 and t1 with 3 partitions",
                members: vec![m("C0", &["t0", "t1"]), m("C1", &["t0", "t1"])],
                counts: vec![("t0", 3), ("t1", 3)],
                range: vec![("C0", "t0p0 t0p1 t1p0 t1p1"), ("C1", "t0p2 t1p2")],
                round_robin: vec![("C0", "t0p0 t0p2 t1p1"), ("C1", "t0p1 t1p0 t1p2")],
            },
            Case {
                // RoundRobinAssignor javadoc, second example (unequal subscriptions).
                name: "javadoc: C0 t0; C1 t0,t1; C2 t0,t1,t2",
                members: vec![
                    m("C0", &["t0"]),
                    m("C1", &["t0", "t1"]),
                    m("C2", &["t0", "t1", "t2"]),
                ],
                counts: vec![("t0", 1), ("t1", 2), ("t2", 3)],
                range: vec![
                    ("C0", "t0p0"),
                    ("C1", "t1p0"),
                    ("C2", "t1p1 t2p0 t2p1 t2p2"),
                ],
                round_robin: vec![
                    ("C0", "t0p0"),
                    ("C1", "t1p0"),
                    ("C2", "t1p1 t2p0 t2p1 t2p2"),
                ],
            },
            Case {
                name: "members sorted by id regardless of input order; extra goes first",
                members: vec![m("c", &["t"]), m("a", &["t"]), m("b", &["t"])],
                counts: vec![("t", 7)],
                range: vec![("a", "tp0 tp1 tp2"), ("b", "tp3 tp4"), ("c", "tp5 tp6")],
                round_robin: vec![("a", "tp0 tp3 tp6"), ("b", "tp1 tp4"), ("c", "tp2 tp5")],
            },
            Case {
                name: "more members than partitions",
                members: vec![m("m1", &["t"]), m("m2", &["t"]), m("m3", &["t"])],
                counts: vec![("t", 2)],
                range: vec![("m1", "tp0"), ("m2", "tp1"), ("m3", "")],
                round_robin: vec![("m1", "tp0"), ("m2", "tp1"), ("m3", "")],
            },
            Case {
                name: "static members first, by instance id",
                members: vec![
                    m("a-dynamic", &["t"]),
                    s("z-static", "pod-1", &["t"]),
                    s("b-static", "pod-2", &["t"]),
                ],
                counts: vec![("t", 4)],
                range: vec![
                    ("z-static", "tp0 tp1"),
                    ("b-static", "tp2"),
                    ("a-dynamic", "tp3"),
                ],
                round_robin: vec![
                    ("z-static", "tp0 tp3"),
                    ("b-static", "tp1"),
                    ("a-dynamic", "tp2"),
                ],
            },
            Case {
                name: "unknown topic skipped, zero partitions, negative count",
                members: vec![m("a", &["gone", "t", "empty", "neg"]), m("b", &["t"])],
                counts: vec![("t", 3), ("empty", 0), ("neg", -4)],
                range: vec![("a", "tp0 tp1"), ("b", "tp2")],
                round_robin: vec![("a", "tp0 tp2"), ("b", "tp1")],
            },
            Case {
                name: "round-robin position carries across topics",
                members: vec![
                    m("a", &["x", "y"]),
                    m("b", &["x", "y"]),
                    m("c", &["x", "y"]),
                ],
                counts: vec![("x", 2), ("y", 2)],
                range: vec![("a", "xp0 yp0"), ("b", "xp1 yp1"), ("c", "")],
                round_robin: vec![("a", "xp0 yp1"), ("b", "xp1"), ("c", "yp0")],
            },
            Case {
                name: "disjoint subscriptions",
                members: vec![m("a", &["x"]), m("b", &["y"])],
                counts: vec![("x", 2), ("y", 1)],
                range: vec![("a", "xp0 xp1"), ("b", "yp0")],
                round_robin: vec![("a", "xp0 xp1"), ("b", "yp0")],
            },
            Case {
                name: "no members",
                members: vec![],
                counts: vec![("t", 3)],
                range: vec![],
                round_robin: vec![],
            },
        ];
        for c in cases {
            let counts = counts(&c.counts);
            assert_eq!(
                range(&c.members, &counts),
                expect(&c.range),
                "range: {}",
                c.name
            );
            assert_eq!(
                round_robin(&c.members, &counts),
                expect(&c.round_robin),
                "roundrobin: {}",
                c.name
            );
            assert_eq!(
                assign(RANGE, &c.members, &counts).unwrap(),
                expect(&c.range)
            );
            assert_eq!(
                assign(ROUND_ROBIN, &c.members, &counts).unwrap(),
                expect(&c.round_robin)
            );
        }
    }

    #[test]
    fn every_partition_assigned_exactly_once() {
        let members: Vec<Member> = (0..7)
            .map(|i| {
                let topics: Vec<&str> = ["a", "b", "c", "d"]
                    .into_iter()
                    .enumerate()
                    .filter(|(j, _)| (i + j) % 3 != 0)
                    .map(|(_, t)| t)
                    .collect();
                m(&format!("member-{i}"), &topics)
            })
            .collect();
        let counts = counts(&[("a", 13), ("b", 1), ("c", 64), ("d", 5)]);
        for plan in [range(&members, &counts), round_robin(&members, &counts)] {
            let mut seen = BTreeSet::new();
            for (member, tps) in &plan {
                let me = members.iter().find(|m| &m.member_id == member).unwrap();
                for (t, ps) in tps {
                    assert!(me.topics.contains(t), "{member} got unsubscribed {t}");
                    for p in ps {
                        assert!(seen.insert((t.clone(), *p)), "{t}-{p} twice");
                    }
                }
            }
            assert_eq!(seen.len(), 13 + 1 + 64 + 5);
        }
    }

    #[test]
    fn tuple_input_and_unknown_protocol() {
        let subs = vec![
            ("m2".to_string(), vec!["t".to_string()]),
            ("m1".to_string(), vec!["t".to_string()]),
        ];
        let plan = assign(RANGE, &subs, &counts(&[("t", 3)])).unwrap();
        assert_eq!(plan, expect(&[("m1", "tp0 tp1"), ("m2", "tp2")]));
        let e = assign("sticky", &subs, &counts(&[])).unwrap_err();
        assert_eq!(e, UnsupportedAssignor("sticky".into()));
        assert_eq!(
            e.to_string(),
            "unsupported partition assignor 'sticky' (supported: cooperative-sticky, range, roundrobin)"
        );
    }
}
