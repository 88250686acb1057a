//! Bad input of every kind, through the real binary with a clean environment: each must exit 2
//! (a usage or configuration error no retry fixes) with a message that names the flag,
//! variable or field to change. No broker is needed: every case fails before a connection.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use crate::harness;

/// One bad input: the arguments, the environment, and what the message must contain.
struct Case {
    args: Vec<String>,
    env: Vec<(String, OsString)>,
    want: Vec<String>,
}

fn case(args: &[&str], env: &[(&str, &[u8])], want: &[&str]) -> Case {
    Case {
        args: args.iter().map(|s| s.to_string()).collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from_vec(v.to_vec())))
            .collect(),
        want: want.iter().map(|s| s.to_string()).collect(),
    }
}

/// Files the cases point at: a good mapping, broken ones, a program that cannot run.
struct Files {
    good: String,
    big: String,
    not_utf8: String,
    bad_yaml: String,
    bad_job: String,
    bad_group_mix: String,
    not_exe: String,
    missing: String,
}

fn files(dir: &Path) -> Files {
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    };
    let job = "t: {jobs: [{name: j, consumer_group: g}]}\n";
    let mut big = String::new();
    let mut i = 0;
    while big.len() <= 1024 * 1024 {
        big.push_str(&format!(
            "t{i}: {{jobs: [{{name: j{i}, consumer_group: g{i}}}]}}\n"
        ));
        i += 1;
    }
    Files {
        good: write("good", job.as_bytes()),
        big: write("big", big.as_bytes()),
        not_utf8: write("latin1", b"t\xe9: {jobs: [{name: j, consumer_group: g}]}\n"),
        bad_yaml: write("yaml", b"t: {jobs: [\n"),
        bad_job: write("job", b"t: {jobs: [{name: Pay_Job, consumer_group: g}]}\n"),
        bad_group_mix: write(
            "mix",
            b"a: {jobs: [{name: j, consumer_group: g1}]}\nb: {jobs: [{name: j, consumer_group: g2}]}\n",
        ),
        not_exe: write("consumer.txt", b"not a program"),
        missing: dir.join("nothing-here").display().to_string(),
    }
}

fn table(f: &Files) -> Vec<Case> {
    const BS: &str = "127.0.0.1:9";
    let observe = |extra: &[&str]| -> Vec<String> {
        let mut a = vec![
            "observe",
            "--kafkadata",
            &f.good,
            "--bootstrap",
            BS,
            "--launcher",
            "local",
            "--consumer-exe",
            "/bin/true",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let o = |extra: &[&str], env: &[(&str, &[u8])], want: &[&str]| {
        let args = observe(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        case(&refs, env, want)
    };
    let consume = ["consume", "--topic", "t", "--group", "g", "--bootstrap", BS];
    let c = |extra: &[&str], env: &[(&str, &[u8])], want: &[&str]| {
        let mut args: Vec<&str> = consume.to_vec();
        args.extend_from_slice(extra);
        case(&args, env, want)
    };
    let p = |extra: &[&str], want: &[&str]| {
        let mut args = vec!["produce", "--topic", "t", "--bootstrap", BS];
        args.extend_from_slice(extra);
        case(&args, &[], want)
    };
    let lag = ["lag", "--group", "g", "--bootstrap", BS];
    let l = |extra: &[&str], env: &[(&str, &[u8])], want: &[&str]| {
        let mut args: Vec<&str> = lag.to_vec();
        args.extend_from_slice(extra);
        case(&args, env, want)
    };
    let ce = |extra: &[&str], env: &[(&str, &[u8])], want: &[&str]| {
        let mut args = vec![
            "observe",
            "--kafkadata",
            &f.good,
            "--bootstrap",
            BS,
            "--iam-api-key",
            "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH",
            "--project-id",
            "p-1",
            "--api-base",
            "http://127.0.0.1:9",
        ];
        args.extend_from_slice(extra);
        case(&args, env, want)
    };
    vec![
        // kafkadata: files and the variable, for check and observe.
        case(
            &["check", "--kafkadata", &f.big],
            &[],
            &["--kafkadata", "1048576", "big"],
        ),
        case(
            &["check", "--kafkadata", &f.not_utf8],
            &[],
            &["--kafkadata", "not UTF-8", "latin1"],
        ),
        case(
            &["check", "--kafkadata", &f.bad_yaml],
            &[],
            &["yaml", "not valid YAML", "line"],
        ),
        case(
            &["check", "--kafkadata", &f.bad_job],
            &[],
            &["t.jobs[0].name", "Pay_Job"],
        ),
        case(
            &["check", "--kafkadata", &f.bad_group_mix],
            &[],
            &["b.jobs[0]", "consumer group"],
        ),
        case(
            &["check", "--kafkadata", &f.missing],
            &[],
            &["--kafkadata", "nothing-here"],
        ),
        case(&["check"], &[], &["--kafkadata", "required"]),
        case(
            &["check"],
            &[(
                "kafkadata",
                b"t: {jobs: [{name: j, consumer_group: g}]}\n\xff",
            )],
            &["kafkadata", "UTF-8"],
        ),
        case(
            &["check"],
            &[("kafkadata", b"t: [1, 2]")],
            &["env kafkadata", "t"],
        ),
        case(
            &["check"],
            &[("kafkadata", b"\"\": {jobs: [{name: j, consumer_group: g}]}")],
            &["env kafkadata", "topic name"],
        ),
        case(
            &["check"],
            &[("kafkadata", b"t: {jobs: []}")],
            &["t.jobs", "empty"],
        ),
        case(
            &["check"],
            &[(
                "kafkadata",
                b"t: {partitions: 0, jobs: [{name: j, consumer_group: g}]}",
            )],
            &["t.partitions"],
        ),
        case(
            &["check"],
            &[("kafkadata", b"t: {jobs: [{name: j}]}")],
            &["t.jobs[0].consumer_group", "missing"],
        ),
        // Wake-up policies: the topic, the job and the key, and how to write it.
        case(
            &["check"],
            &[("kafkadata", b"t: {jobs: [{name: j, consumer_group: g, min_lag: 0}]}")],
            &["t.jobs[0].min_lag", "job 'j'", "from 1"],
        ),
        case(
            &["check"],
            &[("kafkadata", b"t: {jobs: [{name: j, consumer_group: g, max_wait: 30}]}")],
            &["t.jobs[0].max_wait", "job 'j'", "'30s'"],
        ),
        case(
            &["observe", "--bootstrap", BS],
            &[("kafkadata", b"t: {jobs: [{name: j, consumer_group: g, records_per_instance: '5'}]}")],
            &["t.jobs[0].records_per_instance", "job 'j'", "remove the quotes"],
        ),
        case(
            &["check"],
            &[("kafkadata", b"t: {jobs: [{name: j, consumer_group: g, max_instances: 0}]}")],
            &["t.jobs[0].max_instances", "job 'j'", "from 1 to 1000"],
        ),
        case(
            &["observe", "--bootstrap", BS],
            &[("kafkadata", b"t: {jobs: [{name: j, consumer_group: g, idle_timeout: 1500ms}]}")],
            &["t.jobs[0].idle_timeout", "job 'j'", "whole seconds", "IDLE_TIMEOUT"],
        ),
        case(
            &["check"],
            &[(
                "kafkadata",
                b"a: {jobs: [{name: j, consumer_group: g, min_lag: 5}]}\nb: {jobs: [{name: j, consumer_group: g}]}\n",
            )],
            &["b.jobs[0]", "job 'j'", "wake-up policy", "topic 'a'"],
        ),
        case(
            &["check", "--kafkadata", &f.good, "--bootstrap", "nohost"],
            &[],
            &["--bootstrap", "nohost"],
        ),
        case(
            &["check", "--kafkadata", &f.good],
            &[("MESSAGEHUB_KAFKA_BROKERS_SASL", b"[\"a:1\",")],
            &["MESSAGEHUB_KAFKA_BROKERS_SASL", "JSON"],
        ),
        case(
            &["observe", "--bootstrap", BS],
            &[],
            &["--kafkadata", "required"],
        ),
        case(
            &["observe", "--kafkadata", &f.big, "--bootstrap", BS],
            &[],
            &["--kafkadata", "1048576"],
        ),
        // Broker settings shared by every subcommand.
        case(
            &["lag", "--group", "g"],
            &[("MESSAGEHUB_KAFKA_BROKERS_SASL", b"[\"a:1\",")],
            &["MESSAGEHUB_KAFKA_BROKERS_SASL", "not valid JSON"],
        ),
        case(
            &["lag", "--group", "g"],
            &[("MESSAGEHUB_KAFKA_BROKERS_SASL", b"h1:9093\xff")],
            &["MESSAGEHUB_KAFKA_BROKERS_SASL", "UTF-8"],
        ),
        case(
            &["lag", "--group", "g"],
            &[],
            &["--bootstrap", "MESSAGEHUB_KAFKA_BROKERS_SASL"],
        ),
        case(
            &["lag", "--group", "g", "--bootstrap", "h1:70000"],
            &[],
            &["--bootstrap", "70000"],
        ),
        case(
            &["lag", "--group", "g", "--bootstrap", "[::1"],
            &[],
            &["--bootstrap", "[::1"],
        ),
        case(
            &[
                "lag",
                "--group",
                "g",
                "--bootstrap",
                "[\"h1:9093\" \"h2:9093\"]",
            ],
            &[],
            &["--bootstrap", "JSON"],
        ),
        l(&["--tls", "maybe"], &[], &["--tls", "maybe"]),
        l(
            &[],
            &[("KAFKA_TLS", b"sometimes")],
            &["KAFKA_TLS", "sometimes"],
        ),
        l(&[], &[("KAFKA_TLS", b"tr\xffue")], &["KAFKA_TLS", "UTF-8"]),
        l(
            &["--sasl-mechanism", "KERBEROS"],
            &[],
            &["--sasl-mechanism", "KERBEROS"],
        ),
        l(
            &[],
            &[("KAFKA_SASL_MECHANISM", b"GSSAPI")],
            &["KAFKA_SASL_MECHANISM", "GSSAPI"],
        ),
        l(
            &["--username", "alice"],
            &[],
            &["--password", "MESSAGEHUB_PASSWORD"],
        ),
        l(&["--password", "secret-pw"], &[], &["--username"]),
        l(
            &[],
            &[
                ("MESSAGEHUB_USER", b"alice"),
                ("MESSAGEHUB_PASSWORD", b"pw\xff"),
            ],
            &["MESSAGEHUB_PASSWORD", "UTF-8"],
        ),
        l(
            &["--username", "alice", "--password", "pw"],
            &[],
            &["--sasl-mechanism", "clear text"],
        ),
        l(
            &["--username", "a", "--password", "p"],
            &[("KAFKA_ALLOW_PLAIN_WITHOUT_TLS", b"perhaps")],
            &["KAFKA_ALLOW_PLAIN_WITHOUT_TLS", "perhaps"],
        ),
        l(&["--ca-file", "/nonexistent/ca.pem"], &[], &["--tls"]),
        l(&["--tls", "--ca-file", &f.missing], &[], &["nothing-here"]),
        l(&["--request-timeout", "0"], &[], &["--request-timeout"]),
        l(&["--connect-timeout", "0"], &[], &["--connect-timeout"]),
        l(
            &["--max-frame-bytes", "0"],
            &[],
            &["--max-frame-bytes", "1024"],
        ),
        l(
            &["--max-frame-bytes", "1023"],
            &[],
            &["--max-frame-bytes", "1023"],
        ),
        l(
            &["--max-frame-bytes", "2147483648"],
            &[],
            &["--max-frame-bytes", "2147483647"],
        ),
        l(
            &["--sasl-mechanism", "OAUTHBEARER", "--tls"],
            &[],
            &["--password", "IAM_API_KEY"],
        ),
        l(
            &[
                "--sasl-mechanism",
                "OAUTHBEARER",
                "--tls",
                "--password",
                "k-123456789012345678901234567890123456789",
                "--sasl-iam-url",
                "ftp://iam",
            ],
            &[],
            &["--sasl-iam-url", "ftp://iam"],
        ),
        l(
            &[
                "--sasl-mechanism",
                "OAUTHBEARER",
                "--tls",
                "--password",
                "k-123456789012345678901234567890123456789",
            ],
            &[("IAM_URL", b"iam.example/token")],
            &["IAM_URL", "iam.example"],
        ),
        l(&["--watch", "0"], &[], &["--watch"]),
        case(&["lag", "--bootstrap", BS], &[], &["--group"]),
        l(&[], &[("LOG_LEVEL", b"info,x=[")], &["LOG_LEVEL"]),
        l(&[], &[("RUST_LOG", b"de\xffbug")], &["RUST_LOG", "UTF-8"]),
        // observe.
        o(&["--ticker-ms", "5"], &[], &["--ticker-ms", "10"]),
        o(
            &[],
            &[("OBSERVER_TICKER", b"fast")],
            &["OBSERVER_TICKER", "fast"],
        ),
        o(
            &[],
            &[("OBSERVER_TICKER", b"5\xff")],
            &["OBSERVER_TICKER", "UTF-8"],
        ),
        o(&["--max-instances", "0"], &[], &["--max-instances"]),
        o(&[], &[("MAX_INSTANCES", b"-3")], &["MAX_INSTANCES"]),
        o(
            &["--isolation", "serializable"],
            &[],
            &["--isolation", "serializable"],
        ),
        o(
            &[],
            &[("OFFSET_RESET", b"middle")],
            &["OFFSET_RESET", "middle"],
        ),
        o(
            &["--metrics-addr", "localhost"],
            &[],
            &["--metrics-addr", "IP:PORT"],
        ),
        o(&[], &[("METADATA_REFRESH", b"0")], &["METADATA_REFRESH"]),
        o(&["--stuck-cycles", "x"], &[], &["--stuck-cycles"]),
        o(&[], &[("STUCK_BACKOFF", b"999999999")], &["STUCK_BACKOFF"]),
        o(
            &["--long-poll", "sometimes"],
            &[],
            &["--long-poll", "sometimes"],
        ),
        o(
            &[],
            &[("OBSERVER_LONG_POLL", b"TRUEISH")],
            &["OBSERVER_LONG_POLL"],
        ),
        o(&["--idle-ticker-ms", "1"], &[], &["--idle-ticker-ms"]),
        // The consumers' failure policy, in the environment they inherit: refused at the
        // observer's start with the consumer's own message, before any connection.
        o(
            &[],
            &[("MAX_ATTEMPTS", b"many"), ("ON_EXHAUSTED", b"skip")],
            &["The setting MAX_ATTEMPTS is invalid", "'many'"],
        ),
        o(
            &[],
            &[("MAX_ATTEMPTS", b"3")],
            &["MAX_ATTEMPTS needs somewhere", "--dead-letter-topic"],
        ),
        o(
            &[],
            &[("DEAD_LETTER_TOPIC", b"t")],
            &["DEAD_LETTER_TOPIC", "a topic this consumer reads"],
        ),
        case(
            &[
                "observe",
                "--kafkadata",
                &f.good,
                "--bootstrap",
                BS,
                "--launcher",
                "k8s",
            ],
            &[],
            &["--launcher", "k8s"],
        ),
        o(
            &[],
            &[("OBSERVER_LAUNCHER", b"lo\xffcal")],
            &["OBSERVER_LAUNCHER", "UTF-8"],
        ),
        case(
            &[
                "observe",
                "--kafkadata",
                &f.good,
                "--bootstrap",
                BS,
                "--launcher",
                "local",
                "--consumer-exe",
                &f.missing,
            ],
            &[],
            &["--consumer-exe", "nothing-here"],
        ),
        case(
            &[
                "observe",
                "--kafkadata",
                &f.good,
                "--bootstrap",
                BS,
                "--launcher",
                "local",
                "--consumer-exe",
                &f.not_exe,
            ],
            &[],
            &["--consumer-exe", "not an executable"],
        ),
        case(
            &[
                "observe",
                "--kafkadata",
                &f.good,
                "--bootstrap",
                BS,
                "--launcher",
                "local",
                "--consumer-exe",
                "no-such-program-4242",
            ],
            &[],
            &["--consumer-exe", "PATH"],
        ),
        case(
            &["observe", "--kafkadata", &f.good, "--bootstrap", BS],
            &[],
            &["--iam-api-key", "IAM_API_KEY"],
        ),
        ce(
            &["--iam-url", "ftp://iam.example"],
            &[],
            &["--iam-url", "ftp://iam.example"],
        ),
        ce(&[], &[("IAM_URL", b"not a url")], &["IAM_URL", "not a url"]),
        case(
            &[
                "observe",
                "--kafkadata",
                &f.good,
                "--bootstrap",
                BS,
                "--project-id",
                "p",
                "--api-base",
                "http://127.0.0.1:9",
            ],
            &[("IAM_API_KEY", b"\"quoted\"")],
            &["IAM_API_KEY", "not usable"],
        ),
        case(
            &[
                "observe",
                "--kafkadata",
                &f.good,
                "--bootstrap",
                BS,
                "--iam-api-key",
                "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH",
                "--project-id",
                "p",
            ],
            &[("CE_API_BASE_URL", b"api.example")],
            &["CE_API_BASE_URL", "http"],
        ),
        case(
            &[
                "observe",
                "--kafkadata",
                &f.good,
                "--bootstrap",
                BS,
                "--iam-api-key",
                "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH",
                "--project-id",
                "p",
            ],
            &[],
            &["--api-base", "CE_REGION"],
        ),
        case(
            &[
                "observe",
                "--kafkadata",
                &f.good,
                "--bootstrap",
                BS,
                "--iam-api-key",
                "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH",
                "--api-base",
                "http://x",
            ],
            &[],
            &["--project-id", "CE_PROJECT_ID"],
        ),
        // consume.
        case(
            &["consume", "--group", "g", "--bootstrap", BS],
            &[],
            &["--topic", "KAFKA_TOPIC"],
        ),
        case(
            &[
                "consume",
                "--topic",
                " , ",
                "--group",
                "g",
                "--bootstrap",
                BS,
            ],
            &[],
            &["--topic"],
        ),
        case(
            &["consume", "--topic", "t", "--bootstrap", BS],
            &[],
            &["--group", "CONSUMER_GROUP"],
        ),
        case(
            &["consume", "--group", "g", "--bootstrap", BS],
            &[("KAFKA_TOPIC", b"t\xff")],
            &["KAFKA_TOPIC", "UTF-8"],
        ),
        c(&["--idle-timeout", "0"], &[], &["--idle-timeout"]),
        c(
            &[],
            &[("IDLE_TIMEOUT", b"5\xff")],
            &["IDLE_TIMEOUT", "UTF-8"],
        ),
        c(&[], &[("IDLE_TIMEOUT", b"soon")], &["IDLE_TIMEOUT", "soon"]),
        c(&["--handler-timeout", "0"], &[], &["--handler-timeout"]),
        c(&["--sink", "ftp://sink.example/x"], &[], &["--sink", "ftp"]),
        c(
            &[],
            &[("CONSUMER_SINK", b"not a url")],
            &["CONSUMER_SINK", "not a url"],
        ),
        c(
            &["--sink", "https://user:pw@sink.example/x"],
            &[],
            &["--sink"],
        ),
        c(
            &[],
            &[("CONSUMER_EXEC", b"cat"), ("CONSUMER_SINK", b"http://h/x")],
            &["--exec", "--sink"],
        ),
        c(&["--assignors", "sticky"], &[], &["--assignors", "sticky"]),
        c(
            &["--commit-interval-ms", "1"],
            &[],
            &["--commit-interval-ms"],
        ),
        c(&[], &[("BATCH_SIZE", b"0")], &["BATCH_SIZE"]),
        c(&["--session-timeout", "1"], &[], &["--session-timeout"]),
        c(
            &[],
            &[("STATIC_MEMBERSHIP", b"maybe")],
            &["STATIC_MEMBERSHIP", "maybe"],
        ),
        c(
            &[],
            &[("STATIC_MEMBERSHIP", b"TRUE"), ("CE_JOBRUN", b"run\xff")],
            &["CE_JOBRUN", "UTF-8"],
        ),
        c(
            &["--offset-reset", "newest"],
            &[],
            &["--offset-reset", "newest"],
        ),
        c(
            &[],
            &[("KAFKA_ISOLATION", b"dirty")],
            &["KAFKA_ISOLATION", "dirty"],
        ),
        // The failure policy.
        c(
            &["--max-attempts", "0", "--on-exhausted", "skip"],
            &[],
            &["--max-attempts", "'0'"],
        ),
        c(
            &["--on-exhausted", "skip"],
            &[("MAX_ATTEMPTS", b"many")],
            &["MAX_ATTEMPTS", "many"],
        ),
        c(
            &["--max-attempts", "3"],
            &[],
            &[
                "--max-attempts",
                "--dead-letter-topic",
                "--on-exhausted skip",
            ],
        ),
        c(
            &[],
            &[("MAX_RECORD_AGE", b"60")],
            &["MAX_RECORD_AGE", "--dead-letter-topic"],
        ),
        c(
            &["--max-record-age", "1h", "--on-exhausted", "skip"],
            &[],
            &["--max-record-age", "1h"],
        ),
        c(
            &["--dead-letter-topic", "t"],
            &[],
            &["--dead-letter-topic", "'t'", "reads"],
        ),
        c(
            &[],
            &[("DEAD_LETTER_TOPIC", b"t")],
            &["DEAD_LETTER_TOPIC", "reads"],
        ),
        c(
            &["--dead-letter-topic", "dead letters"],
            &[],
            &["--dead-letter-topic", "dead letters"],
        ),
        c(
            &["--on-exhausted", "drop"],
            &[],
            &["--on-exhausted", "drop"],
        ),
        c(
            &["--dead-letter-topic", "t.DLT"],
            &[("ON_EXHAUSTED", b"skip")],
            &["ON_EXHAUSTED", "--dead-letter-topic", "exclude"],
        ),
        // produce: flags refused before any connection.
        p(&["--compression", "brotli"], &["--compression", "brotli"]),
        p(&["-H", "novalue"], &["-H", "novalue"]),
        p(&["--delimiter", ""], &["--delimiter"]),
        p(&["--key-delimiter", "\\xZZ"], &["--key-delimiter"]),
        p(&["--batch-bytes", "0"], &["--batch-bytes"]),
        p(&["--linger-ms", "soon"], &["--linger-ms", "soon"]),
        p(&["--partition=-1"], &["--partition", "-1"]),
        case(
            &["produce", "--bootstrap", BS],
            &[],
            &["--topic", "KAFKA_TOPIC"],
        ),
        case(
            &["produce", "--bootstrap", BS, "--topic", "a,b"],
            &[],
            &["--topic", "one topic"],
        ),
    ]
}

#[test]
fn every_bad_input_exits_2_and_names_what_to_fix() {
    let dir = std::env::temp_dir().join(harness::unique("bad-input"));
    std::fs::create_dir_all(&dir).unwrap();
    let f = files(&dir);
    let cases = table(&f);
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let mut cmd = crate::support::command(&args);
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        let out = harness::run_with_timeout(cmd, std::time::Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let named = c.want.iter().all(|w| stderr.contains(w.as_str()));
        let env: Vec<String> = c.env.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        // A clap complaint about the table itself (a flag given twice) would prove nothing.
        let table_bug = stderr.contains("cannot be used multiple times");
        if out.status.code() != Some(2) || !named || table_bug || stderr.contains("panicked") {
            failures.push(format!(
                "{env:?} {args:?}: exit {:?}, wanted {:?} in: {stderr}",
                out.status.code(),
                c.want
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
