//! One plan per consumer group: how many instances each job of a group should have.
//!
//! Jobs that share a consumer group compete for its partitions: the group coordinator hands
//! each partition to one member, whatever job that member belongs to. Planned job by job, one
//! record on each of three topics read by jobs on topics {1}, {1, 2} and {1, 2, 3} woke
//! 1 + 2 + 3 = 6 instances for 3 partitions, and half of them paid a start, a join and a
//! leave for nothing. So the observer plans a group as a whole: every lagging partition is
//! given one member (the parallelism promise: k lagging partitions, k instances), from a job
//! that reads its topic; members already running count first, whatever job they belong to;
//! the group never gets more members than it has lagging partitions.
//!
//! It is a greedy cover by the jobs' topic sets, in two passes over the lagging topics, most
//! constrained first (the fewest jobs read it): first the running instances take partitions
//! (narrowest job first: its instances are the least use elsewhere), then new instances are
//! planned for what is left, narrowest job first (a wide job's room under its cap stays for
//! the topics only it reads). A job at its cap (`--max-instances`) or held back by its
//! crash-loop back-off gets no new instance; a partition no job has room for shares a member.
//!
//! Wake-up policies compose here, before the cover: a policy that says a partition needs no
//! member yet leaves it out of the needs; one that limits a job's instances lowers its `cap`.

use std::collections::HashMap;

use super::group::GroupLag;

/// The jobs of one consumer group, and which of them read which topic: built once from the
/// mapping.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shared {
    /// The jobs, by their index in the observer's job list.
    pub jobs: Vec<usize>,
    /// Topic → positions in `jobs` of the jobs that read it.
    readers: HashMap<String, Vec<usize>>,
    /// How many topics each job reads (by position).
    width: Vec<usize>,
}

impl Shared {
    /// `jobs`: (index, topics) of every job of the group.
    pub(crate) fn new<'a>(jobs: impl IntoIterator<Item = (usize, &'a [String])>) -> Shared {
        let mut s = Shared::default();
        for (pos, (index, topics)) in jobs.into_iter().enumerate() {
            s.jobs.push(index);
            s.width.push(topics.len());
            for t in topics {
                let r = s.readers.entry(t.clone()).or_default();
                if r.last() != Some(&pos) {
                    r.push(pos);
                }
            }
        }
        s
    }

    /// Positions (in `jobs`) of the jobs that read `topic`.
    pub(crate) fn readers(&self, topic: &str) -> &[usize] {
        self.readers.get(topic).map_or(&[], Vec::as_slice)
    }
}

/// One job of the group as the cover sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member {
    /// Instances believed active.
    pub active: u32,
    /// Most instances of the job; `None`: no cap.
    pub cap: Option<u32>,
    /// Whether new instances may be planned for it (not held back by a back-off).
    pub may_start: bool,
}

/// The plan before groups were planned as a whole (each job alone: its own lagging partitions,
/// capped), kept only as the "before" of the `group_scaleout` benchmark (the observer's hidden
/// `--group-plan false`).
pub(crate) fn per_job(shared: &Shared, needs: &[(&str, u32)], caps: &[Option<u32>]) -> Vec<u32> {
    let mut desired = vec![0u32; shared.jobs.len()];
    for (t, k) in needs {
        for &j in shared.readers(t) {
            desired[j] = desired[j].saturating_add(*k);
        }
    }
    for (d, cap) in desired.iter_mut().zip(caps) {
        *d = cap.map_or(*d, |c| (*d).min(c));
    }
    desired
}

/// Lagging partitions per topic: what needs a member.
pub(crate) fn needs(lag: &GroupLag) -> Vec<(&str, u32)> {
    let mut out: Vec<(&str, u32)> = Vec::new();
    for p in &lag.partitions {
        if p.lag.is_none_or(|l| l <= 0) {
            continue;
        }
        // A group's partitions come topic by topic: the search is short.
        match out.iter_mut().rev().find(|(t, _)| *t == &*p.tp.topic) {
            Some((_, n)) => *n += 1,
            None => out.push((&p.tp.topic, 1)),
        }
    }
    out
}

/// Instances each job of `shared` should have (by position), given the partitions that need a
/// member (`needs`: topic, how many) and each job's `members` (by position); see the module docs.
/// The sum never exceeds the partitions needed, nor a job's share its cap.
pub(crate) fn cover(shared: &Shared, needs: &[(&str, u32)], members: &[Member]) -> Vec<u32> {
    let n = shared.jobs.len();
    let mut desired = vec![0u32; n];
    let member = |j: usize| {
        members.get(j).copied().unwrap_or(Member {
            active: 0,
            cap: Some(0),
            may_start: false,
        })
    };
    let cap = |j: usize| member(j).cap.unwrap_or(u32::MAX);
    // Running instances that can take a partition, and room for new ones.
    let mut free: Vec<u32> = (0..n).map(|j| member(j).active.min(cap(j))).collect();
    let mut room: Vec<u32> = (0..n)
        .map(|j| match member(j).may_start {
            true => cap(j).saturating_sub(member(j).active),
            false => 0,
        })
        .collect();
    // A job's width counts only the topics that need members: its usefulness here.
    let mut width = vec![0usize; n];
    for (t, _) in needs {
        for &j in shared.readers(t) {
            width[j] += 1;
        }
    }
    let mut topics: Vec<(&str, u32, Vec<usize>)> = needs
        .iter()
        .filter(|(_, k)| *k > 0)
        .map(|(t, k)| {
            let mut r = shared.readers(t).to_vec();
            r.sort_by_key(|&j| (width[j], shared.width.get(j).copied().unwrap_or(0), j));
            (*t, *k, r)
        })
        .collect();
    topics.sort_by(|a, b| a.2.len().cmp(&b.2.len()).then(a.0.cmp(b.0)));
    // Pass 1: running instances; pass 2: new ones.
    for pool in [&mut free, &mut room] {
        for (_, left, readers) in &mut topics {
            for &j in readers.iter() {
                if *left == 0 {
                    break;
                }
                let take = pool[j].min(*left);
                pool[j] -= take;
                desired[j] += take;
                *left -= take;
            }
        }
    }
    desired
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lag::group::PartitionLag;
    use crate::offsets::TopicPartition;

    fn shared(jobs: &[&[&str]]) -> (Shared, Vec<Vec<String>>) {
        let topics: Vec<Vec<String>> = jobs
            .iter()
            .map(|t| t.iter().map(|s| s.to_string()).collect())
            .collect();
        let s = Shared::new(topics.iter().enumerate().map(|(i, t)| (i, t.as_slice())));
        (s, topics)
    }

    fn idle(n: usize) -> Vec<Member> {
        vec![
            Member {
                active: 0,
                cap: None,
                may_start: true
            };
            n
        ]
    }

    fn active(a: &[u32]) -> Vec<Member> {
        a.iter()
            .map(|&active| Member {
                active,
                cap: None,
                may_start: true,
            })
            .collect()
    }

    /// The mapping of issue 12: one group, job 1 on topic 1, job 2 on 1–2, job 3 on 1–3.
    const CHAIN: &[&[&str]] = &[&["t1"], &["t1", "t2"], &["t1", "t2", "t3"]];

    #[test]
    fn cover_table() {
        let capped = |caps: &[Option<u32>]| -> Vec<Member> {
            caps.iter()
                .map(|&cap| Member {
                    active: 0,
                    cap,
                    may_start: true,
                })
                .collect()
        };
        /// (case, the jobs' topics, needs, members, desired)
        type Case<'a> = (
            &'a str,
            &'a [&'a [&'a str]],
            &'a [(&'a str, u32)],
            Vec<Member>,
            &'a [u32],
        );
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("one job, one per lagging partition", &[&["a", "b"]], &[("a", 3), ("b", 1)], idle(1), &[4]),
            ("one job, capped", &[&["a"]], &[("a", 5)], capped(&[Some(2)]), &[2]),
            ("nothing lags", CHAIN, &[], idle(3), &[0, 0, 0]),
            // One record per topic: 3 instances, not 1 + 2 + 3.
            ("chain, one per topic", CHAIN, &[("t1", 1), ("t2", 1), ("t3", 1)], idle(3), &[1, 1, 1]),
            ("chain, topic 1 only", CHAIN, &[("t1", 4)], idle(3), &[4, 0, 0]),
            ("chain, topic 3 only", CHAIN, &[("t3", 2)], idle(3), &[0, 0, 2]),
            // Two running instances of the wide job take topic 3 (only it reads it) and topic 2:
            // one new instance, for topic 1, from the narrowest job.
            ("chain, running wide instances count", CHAIN, &[("t1", 1), ("t2", 1), ("t3", 1)], active(&[0, 0, 2]), &[1, 0, 2]),
            // Running instances of job 2 serve topic 1 and 2 partitions; topic 3 needs job 3.
            ("chain, running narrow instances count", CHAIN, &[("t1", 1), ("t3", 1)], active(&[0, 2, 0]), &[0, 1, 1]),
            // More running than lagging: nothing new, the plan says one.
            ("more running than lagging", CHAIN, &[("t1", 1)], active(&[3, 1, 0]), &[1, 0, 0]),
            ("nested sets, the wide job at its cap", &[&["a"], &["a", "b"]], &[("a", 2), ("b", 3)], capped(&[None, Some(2)]), &[2, 2]),
            // Disjoint topic sets: each job its own partitions.
            ("disjoint", &[&["a"], &["b"], &["c"]], &[("a", 2), ("c", 1)], idle(3), &[2, 0, 1]),
            ("disjoint, running elsewhere does not help", &[&["a"], &["b"]], &[("a", 1)], active(&[0, 2]), &[1, 0]),
            // Overlapping, neither nested: the narrower reader of each topic.
            ("overlapping", &[&["a", "b"], &["b", "c"], &["b"]], &[("a", 1), ("b", 2), ("c", 1)], idle(3), &[1, 1, 2]),
            ("a held job gets no new instance", &[&["a"], &["a", "b"]], &[("a", 2)], vec![
                Member { active: 0, cap: None, may_start: false },
                Member { active: 0, cap: None, may_start: true },
            ], &[0, 2]),
            // A held job's running instances still count.
            ("a held job's running instances count", &[&["a"], &["a"]], &[("a", 2)], vec![
                Member { active: 1, cap: None, may_start: false },
                Member { active: 0, cap: None, may_start: true },
            ], &[1, 1]),
            ("a topic no job reads", &[&["a"]], &[("x", 2)], idle(1), &[0]),
            ("running above the cap counts up to the cap", &[&["a"]], &[("a", 5)], vec![
                Member { active: 4, cap: Some(2), may_start: true },
            ], &[2]),
        ];
        for (name, jobs, needs, members, want) in cases {
            let (s, _) = shared(jobs);
            assert_eq!(cover(&s, needs, members), *want, "{name}");
        }
    }

    /// Whatever the input: never more than the partitions needed, never above a cap, and
    /// every needed topic some job reads has a member reading it whenever any reader has room
    /// or runs.
    #[test]
    fn cover_invariants_over_many_inputs() {
        let sets: &[&[&[&str]]] = &[
            CHAIN,
            &[&["a"], &["b"], &["a", "b"]],
            &[&["a", "b", "c"], &["c"], &["d"], &["a", "d"]],
        ];
        let mut seed = 7u64;
        let mut next = |m: u32| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % u64::from(m)) as u32
        };
        for jobs in sets {
            let (s, topics) = shared(jobs);
            let all: Vec<&str> = {
                let mut t: Vec<&str> = topics.iter().flatten().map(String::as_str).collect();
                t.sort();
                t.dedup();
                t
            };
            for _ in 0..500 {
                let needs: Vec<(&str, u32)> = all.iter().map(|t| (*t, next(4))).collect();
                let members: Vec<Member> = (0..jobs.len())
                    .map(|_| Member {
                        active: next(3),
                        cap: [None, Some(1), Some(3)][next(3) as usize],
                        may_start: next(4) > 0,
                    })
                    .collect();
                let d = cover(&s, &needs, &members);
                let total: u32 = needs.iter().map(|(_, k)| k).sum();
                assert!(
                    d.iter().sum::<u32>() <= total,
                    "{needs:?} {members:?} → {d:?}"
                );
                for (j, m) in members.iter().enumerate() {
                    assert!(d[j] <= m.cap.unwrap_or(u32::MAX), "{members:?} → {d:?}");
                    // New instances only where there is room.
                    let new = d[j].saturating_sub(m.active);
                    assert!(new == 0 || m.may_start, "{members:?} → {d:?}");
                }
                for (t, k) in &needs {
                    let readers = s.readers(t);
                    let could = readers.iter().any(|&j| {
                        let m = members[j];
                        let cap = m.cap.unwrap_or(u32::MAX);
                        m.active.min(cap) > 0 || (m.may_start && cap > m.active)
                    });
                    if *k > 0 && could {
                        assert!(
                            readers.iter().any(|&j| d[j] > 0),
                            "{t} uncovered: {needs:?} {members:?} → {d:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_old_plan_per_job_wakes_every_job_for_every_topic_it_reads() {
        let (s, _) = shared(CHAIN);
        let one_each = [("t1", 1), ("t2", 1), ("t3", 1)];
        assert_eq!(per_job(&s, &one_each, &[None; 3]), [1, 2, 3]);
        assert_eq!(per_job(&s, &one_each, &[None, Some(1), Some(2)]), [1, 1, 2]);
    }

    #[test]
    fn needs_counts_lagging_partitions_per_topic() {
        let p = |t: &str, i: i32, lag: Option<i64>| PartitionLag {
            tp: TopicPartition::new(t, i),
            committed: None,
            lag,
        };
        let lag = GroupLag {
            partitions: vec![
                p("a", 0, Some(3)),
                p("a", 1, Some(0)),
                p("a", 2, None),
                p("a", 3, Some(1)),
                p("b", 0, Some(0)),
                p("c", 0, Some(9)),
            ],
        };
        assert_eq!(needs(&lag), vec![("a", 2), ("c", 1)]);
    }
}
