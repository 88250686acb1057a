//! Wake-up policies against the real broker, with the stand-in consumer: fewer records than
//! `min_lag` wake the job when the oldest turns `max_wait` old (not before, not much after, with
//! no fast tick to find it: the idle tick is a minute), `min_lag` records wake it at once, and
//! `records_per_instance` / `max_instances` set the instance counts; a job's `idle_timeout`
//! reaches its runs as `IDLE_TIMEOUT`.

use std::time::{Duration, Instant};

use crate::harness;
use crate::support::observer::{local_observer, StandIn};
use crate::support::{run as ko, text};

#[test]
fn min_lag_max_wait_and_records_per_instance() {
    let b = harness::broker();
    let standin = StandIn::new();
    let names = ["wake-batch", "wake-activation", "wake-split", "wake-capped"];
    let topics: Vec<String> = names.iter().map(|n| harness::unique(n)).collect();
    let jobs: Vec<String> = names.iter().map(|n| harness::unique(n)).collect();
    let partitions = [1, 1, 4, 4];
    let policies = [
        "min_lag: 20, max_wait: 6s",
        "min_lag: 20, max_wait: 1h, idle_timeout: 3s",
        "records_per_instance: 45",
        "records_per_instance: 10, max_instances: 3",
    ];
    let mut mapping = String::new();
    for i in 0..4 {
        b.create_topic(&topics[i], partitions[i]);
        mapping.push_str(&format!(
            "{}:\n  jobs:\n    - {{name: {}, consumer_group: {}, {}}}\n",
            topics[i],
            jobs[i],
            harness::unique("wake-g"),
            policies[i]
        ));
    }
    let file = standin.dir.join("kafkadata");
    std::fs::write(&file, &mapping).unwrap();

    // `check` spells the effective policy out.
    let out = ko(&["check", "--kafkadata", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("    wake-up: wake from 20 records, or when the oldest waiting record is 6s old; one instance per lagging partition, at most --max-instances\n"),
        "{said}"
    );
    assert!(
        said.contains("    wake-up: wake from 20 records, or when the oldest waiting record is 1h old; one instance per lagging partition, at most --max-instances; runs exit after 3s without records (IDLE_TIMEOUT=3)\n"),
        "{said}"
    );
    assert!(
        said.contains("    wake-up: wake at the first record; one instance per 10 records (at most one per lagging partition), at most 3\n"),
        "{said}"
    );

    // A minute of idle tick: only the scheduled wake-up (or the long poll) runs a cycle.
    let mut obs = local_observer(&standin, &file, &["--idle-ticker-ms", "60000"]);
    obs.wait_cycles(1);
    let wakeups = |job: &str, reason: &str| {
        obs.metric(&format!(
            "kafka_observer_wakeups_total{{job=\"{job}\",reason=\"{reason}\"}}"
        ))
        .unwrap_or(0.0)
    };

    // 5 records, fewer than min_lag: the job wakes when the first is 6 s old.
    let before = Instant::now();
    b.produce(&topics[0], 0, 5);
    let after = Instant::now();
    let woke = loop {
        let now = Instant::now();
        let n = wakeups(&jobs[0], "age");
        assert!(
            n == 0.0 || now >= before + Duration::from_secs(6),
            "woken {:?} after the records, before max_wait; log:\n{}",
            now - before,
            obs.log_text()
        );
        if n >= 1.0 {
            break now;
        }
        assert!(
            now < after + Duration::from_secs(60),
            "never woken; log:\n{}",
            obs.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        woke <= after + Duration::from_secs(9),
        "woken {:?} after the records: more than 3 s late; log:\n{}",
        woke - after,
        obs.log_text()
    );
    assert_eq!(wakeups(&jobs[0], "lag"), 0.0);
    let runs = standin.wait(30, "the batch job's instance", |s| {
        s.runs().get(&jobs[0]).cloned()
    });
    assert_eq!(runs.values().sum::<usize>(), 1, "{runs:?}");

    // min_lag records wake at once (max_wait is an hour): the long poll's latency, well
    // under the 10 s allowed here for a loaded machine.
    b.produce(&topics[1], 0, 25);
    let after = Instant::now();
    loop {
        if wakeups(&jobs[1], "lag") >= 1.0 {
            break;
        }
        assert!(
            Instant::now() < after + Duration::from_secs(10),
            "min_lag records did not wake the job at once; log:\n{}",
            obs.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(wakeups(&jobs[1], "age"), 0.0);
    // Its run got the job's idle timeout; the observer (started without IDLE_TIMEOUT) passes
    // none to the others.
    let starts = standin.wait(30, "the activation job's instance", |si| {
        let all = si.starts();
        all.iter().any(|s| s[0] == jobs[1]).then_some(all)
    });
    for s in &starts {
        let want = if s[0] == jobs[1] { "3" } else { "-" };
        assert_eq!(s.get(6).map(String::as_str), Some(want), "{s:?}");
    }

    // Instances: ceil(90 / 45) = 2 (not one per lagging partition, 3); ceil(200 / 10) = 20,
    // capped by the 4 lagging partitions and max_instances 3.
    b.produce_spread(&topics[2], &[(0, 40), (1, 40), (2, 10)]);
    b.produce_spread(&topics[3], &[(0, 50), (1, 50), (2, 50), (3, 50)]);
    for (job, want) in [(&jobs[2], 2), (&jobs[3], 3)] {
        standin.wait(60, "instances", |s| {
            let n: usize = s.runs().get(job).map_or(0, |r| r.values().sum());
            (n >= want).then_some(())
        });
    }
    // Still so after more cycles (the stand-ins never commit: the lag stays).
    obs.wait_cycles(10);
    for (job, want) in [(&jobs[2], 2), (&jobs[3], 3)] {
        let n: usize = standin.runs().get(job).map_or(0, |r| r.values().sum());
        assert_eq!(n, want, "{job}: {:?}", standin.runs());
        let desired = obs.metric(&format!(
            "kafka_observer_job_desired_instances{{job=\"{job}\"}}"
        ));
        assert_eq!(desired, Some(want as f64), "{job}");
    }
    standin.release_all();
    assert_eq!(obs.stop(), Some(0), "{}", obs.log_text());
}
