use super::*;

const SAMPLE: &str = "\
payments:
  partitions: 4
  jobs:
    - name: payments-consumer
      consumer_group: payments-consumer-group
    - name: foobar-consumer
      consumer_group: foobar-consumer-group
shipping:
  partitions: 3
  jobs:
    - name: shipping-consumer
      consumer_group: shipping-consumer-group
";

const SHARED_GROUP: &str = "\
payments:
  partitions: 2
  jobs:
    - name: foobar-consumer
      consumer_group: foobar-consumer-group
shipping:
  partitions: 3
  jobs:
    - name: foobar-consumer
      consumer_group: foobar-consumer-group
";

fn job(name: &str, group: &str) -> JobSpec {
    JobSpec {
        wake: WakePolicy::default(),
        name: name.into(),
        consumer_group: group.into(),
    }
}

fn parse_ok(text: &str) -> (Kafkadata, Vec<String>) {
    Kafkadata::parse(text, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn sample_expected() -> Kafkadata {
    Kafkadata {
        topics: vec![
            TopicSpec {
                name: "payments".into(),
                partitions: Some(4),
                jobs: vec![
                    job("payments-consumer", "payments-consumer-group"),
                    job("foobar-consumer", "foobar-consumer-group"),
                ],
            },
            TopicSpec {
                name: "shipping".into(),
                partitions: Some(3),
                jobs: vec![job("shipping-consumer", "shipping-consumer-group")],
            },
        ],
    }
}

#[test]
fn seed_sample_mapping() {
    let (data, warnings) = parse_ok(SAMPLE);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(data, sample_expected());
    let jobs: Vec<(String, String, Vec<String>)> = data
        .jobs()
        .into_iter()
        .map(|j| (j.name, j.consumer_group, j.topics))
        .collect();
    assert_eq!(
        jobs,
        vec![
            (
                "payments-consumer".into(),
                "payments-consumer-group".into(),
                vec!["payments".into()]
            ),
            (
                "foobar-consumer".into(),
                "foobar-consumer-group".into(),
                vec!["payments".into()]
            ),
            (
                "shipping-consumer".into(),
                "shipping-consumer-group".into(),
                vec!["shipping".into()]
            ),
        ]
    );
    assert_eq!(
        data.groups(),
        vec![
            ("payments-consumer-group".into(), vec!["payments".into()]),
            ("foobar-consumer-group".into(), vec!["payments".into()]),
            ("shipping-consumer-group".into(), vec!["shipping".into()]),
        ]
    );
    assert_eq!(data.topic("shipping").unwrap().partitions, Some(3));
    assert!(data.topic("nope").is_none());
}

#[test]
fn repository_kafkadata_file_is_the_sample() {
    let (data, warnings) = parse_ok(include_str!("../../../kafkadata"));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(data, sample_expected());
}

#[test]
fn same_group_for_multiple_topics_merges_into_one_job() {
    let (data, warnings) = parse_ok(SHARED_GROUP);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        data.jobs(),
        vec![Job {
            name: "foobar-consumer".into(),
            consumer_group: "foobar-consumer-group".into(),
            topics: vec!["payments".into(), "shipping".into()],
            wake: WakePolicy::default(),
        }]
    );
    assert_eq!(
        data.groups(),
        vec![(
            "foobar-consumer-group".into(),
            vec!["payments".into(), "shipping".into()]
        )]
    );
}

#[test]
fn accepted_variants() {
    let cases: &[(&str, &str)] = &[
        // partitions is optional
        ("t:\n  jobs:\n    - {name: a, consumer_group: g}\n", "t"),
        (
            "t:\n  partitions: ~\n  jobs:\n    - {name: a, consumer_group: g}\n",
            "t",
        ),
        // flow style and comments
        (
            "# comment\nt: {partitions: 1, jobs: [{name: a1, consumer_group: 'g 1'}]}\n",
            "t",
        ),
        // Kafka allows dots, underscores, upper case in topic names
        (
            "My.Topic_v2-x:\n  jobs: [{name: a, consumer_group: g}]\n",
            "My.Topic_v2-x",
        ),
        ("'123':\n  jobs: [{name: a, consumer_group: g}]\n", "123"),
    ];
    for (text, topic) in cases {
        let (data, _) = parse_ok(text);
        assert_eq!(data.topics[0].name, *topic, "{text}");
    }
    let long_job = format!(
        "t: {{jobs: [{{name: a{}, consumer_group: g}}]}}",
        "b".repeat(62)
    );
    parse_ok(&long_job);
    let long_topic = format!(
        "{}: {{jobs: [{{name: a, consumer_group: g}}]}}",
        "t".repeat(249)
    );
    parse_ok(&long_topic);
}

#[test]
fn rejected_documents_name_the_place_and_the_fix() {
    let too_long_job = format!(
        "t: {{jobs: [{{name: a{}, consumer_group: g}}]}}",
        "b".repeat(63)
    );
    let too_long_topic = format!(
        "{}: {{jobs: [{{name: a, consumer_group: g}}]}}",
        "t".repeat(250)
    );
    let cases: Vec<(&str, &str, &str)> = vec![
            // (input, expected path, expected message fragment)
            ("", "(document)", "the document is empty"),
            ("# only a comment\n", "(document)", "the document is empty"),
            ("{}", "(document)", "no topics are listed"),
            ("- a\n- b\n", "(document)", "got a list"),
            ("just text", "(document)", "got the string 'just text'"),
            ("payments:\n", "payments", "has no settings"),
            ("payments: 4\n", "payments", "got the number 4"),
            ("payments:\n  partitions: 4\n", "payments.jobs", "has no 'jobs'"),
            ("payments:\n  jobs: []\n", "payments.jobs", "is empty"),
            ("payments:\n  jobs: a-job\n", "payments.jobs", "expected a list of jobs"),
            ("payments:\n  jobs:\n    - a-job\n", "payments.jobs[0]", "expected a job"),
            ("p:\n  jobs:\n    - consumer_group: g\n", "p.jobs[0].name", "'name' is missing"),
            ("p:\n  jobs:\n    - name: ''\n      consumer_group: g\n", "p.jobs[0].name", "'name' is empty"),
            ("p:\n  jobs:\n    - name: 42\n      consumer_group: g\n", "p.jobs[0].name", "must be a string"),
            ("p:\n  jobs:\n    - name: Payments_Consumer\n      consumer_group: g\n", "p.jobs[0].name", "e.g. 'payments-consumer'"),
            ("p:\n  jobs:\n    - name: 1job\n      consumer_group: g\n", "p.jobs[0].name", "not a valid Code Engine job name"),
            ("p:\n  jobs:\n    - name: job-\n      consumer_group: g\n", "p.jobs[0].name", "end with a letter or digit"),
            (too_long_job.as_str(), "t.jobs[0].name", "at most 63 characters"),
            ("p:\n  jobs:\n    - {name: a, consumer_group: b}\n    - name: c\n", "p.jobs[1].consumer_group", "'consumer_group' is missing"),
            ("p:\n  jobs:\n    - {name: a, consumer_group: '  '}\n", "p.jobs[0].consumer_group", "'consumer_group' is empty"),
            ("p:\n  partitions: 0\n  jobs: [{name: a, consumer_group: g}]\n", "p.partitions", "got the number 0"),
            ("p:\n  partitions: -3\n  jobs: [{name: a, consumer_group: g}]\n", "p.partitions", "got the number -3"),
            ("p:\n  partitions: 2.5\n  jobs: [{name: a, consumer_group: g}]\n", "p.partitions", "got the number 2.5"),
            ("p:\n  partitions: '4'\n  jobs: [{name: a, consumer_group: g}]\n", "p.partitions", "remove the quotes"),
            ("p:\n  partitions: [4]\n  jobs: [{name: a, consumer_group: g}]\n", "p.partitions", "got a list"),
            ("p:\n  partitions: 99999999999\n  jobs: [{name: a, consumer_group: g}]\n", "p.partitions", "whole number of at least 1"),
            ("pay ments:\n  jobs: [{name: a, consumer_group: g}]\n", "pay ments", "not a valid Kafka topic name (' '"),
            ("'..':\n  jobs: [{name: a, consumer_group: g}]\n", "..", "not '.' or '..'"),
            ("'.':\n  jobs: [{name: a, consumer_group: g}]\n", ".", "not a valid Kafka topic name"),
            ("'':\n  jobs: [{name: a, consumer_group: g}]\n", "", "the topic name is empty"),
            (too_long_topic.as_str(), &too_long_topic[..250], "250 characters long"),
            ("123:\n  jobs: [{name: a, consumer_group: g}]\n", "123", "quote it"),
            (
                "a:\n  jobs: [{name: j, consumer_group: g1}]\nb:\n  jobs: [{name: k, consumer_group: g}, {name: j, consumer_group: g2}]\n",
                "b.jobs[1]",
                "job 'j' uses consumer group 'g2' here but 'g1' under topic 'a'",
            ),
        ];
    for (text, path, fragment) in cases {
        match Kafkadata::parse(text, "env kafkadata") {
            Err(ConfigError::Kafkadata {
                origin,
                path: got_path,
                message,
            }) => {
                assert_eq!(origin, "env kafkadata");
                assert_eq!(got_path, path, "{text:?}: {message}");
                assert!(message.contains(fragment), "{text:?}: {message}");
            }
            other => panic!("{text:?}: expected a kafkadata error, got {other:?}"),
        }
    }
}

#[test]
fn yaml_syntax_errors_carry_line_and_column() {
    let cases: &[(&str, usize)] = &[
        (
            "payments:\n  jobs:\n    - name: a\n   consumer_group: g\n",
            4,
        ),
        ("payments: [unclosed\n", 2),
        ("a: 1\na: 2\n", 1),
        ("t:\n\tjobs: []\n", 2),
    ];
    for (text, line) in cases {
        match Kafkadata::parse(text, "kafkadata") {
            Err(e @ ConfigError::Yaml { .. }) => {
                let ConfigError::Yaml {
                    line: got, column, ..
                } = &e
                else {
                    unreachable!()
                };
                assert_eq!(got, line, "{text:?}: {e}");
                assert!(*column >= 1, "{e}");
                let shown = e.to_string();
                assert!(
                    shown.contains("kafkadata") && shown.contains("not valid YAML"),
                    "{shown}"
                );
            }
            other => panic!("{text:?}: expected a YAML error, got {other:?}"),
        }
    }
}

#[test]
fn unknown_keys_are_warnings_with_suggestions() {
    let text = "\
payments:
  partition: 4
  color: blue
  jobs:
    - name: payments-consumer
      consumer-group: payments-consumer-group
      consumer_group: payments-consumer-group
      image: x
";
    let (data, warnings) = parse_ok(text);
    assert_eq!(data.topics[0].partitions, None);
    assert_eq!(
            warnings,
            vec![
                "payments: unknown key 'partition' (did you mean 'partitions'?); it is ignored",
                "payments: unknown key 'color' (known keys: partitions, jobs); it is ignored",
                "payments.jobs[0]: unknown key 'consumer-group' (did you mean 'consumer_group'?); it is ignored",
                "payments.jobs[0]: unknown key 'image' (known keys: name, consumer_group, min_lag, max_wait, records_per_instance, max_instances, idle_timeout); it is ignored",
            ]
        );
    // The typo alone is still an error, because the real key is then missing.
    let err = Kafkadata::parse(
        "p:\n  jobs:\n    - name: a\n      consumerGroup: g\n",
        "kafkadata",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("'consumer_group' is missing"),
        "{err}"
    );
}

#[test]
fn suspicious_but_legal_combinations_warn() {
    let text = "\
t:
  jobs:
    - {name: a, consumer_group: g}
    - {name: a, consumer_group: g}
    - {name: b, consumer_group: g}
";
    let (data, warnings) = parse_ok(text);
    assert_eq!(data.topics[0].jobs.len(), 2);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("t.jobs[1]: job 'a' is listed twice"));
    assert!(
        warnings[1].contains(
            "consumer group 'g' is shared by jobs 'a' and 'b': they split its partitions"
        ),
        "{warnings:?}"
    );
}

#[test]
fn hostile_input_is_an_error_not_a_crash() {
    let deep = "[".repeat(10_000);
    assert!(Kafkadata::parse(&deep, "x").is_err());
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
                    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n\
                    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    assert!(Kafkadata::parse(bomb, "x").is_err());
    assert!(Kafkadata::parse("!!binary 'AAAA'", "x").is_err());
    assert!(Kafkadata::parse("t: !custom {jobs: []}", "x").is_err());
}

#[test]
fn errors_read_as_sentences() {
    let err = Kafkadata::parse("payments:\n  partitions: 4\n", "/etc/kafkadata").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("The kafkadata in /etc/kafkadata is invalid at payments.jobs: "),
        "{text}"
    );
    assert!(text.ends_with('.'), "{text}");
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn edit_distance_basics() {
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(suggest("Name", JOB_KEYS), Some("name"));
    assert_eq!(suggest("group", JOB_KEYS), Some("consumer_group"));
    assert_eq!(suggest("zzzzzz", JOB_KEYS), None);
}

#[test]
fn wake_policies_are_per_job_and_named_in_errors() {
    let text = "\
payments:
  jobs:
    - name: payments-consumer
      consumer_group: g
      min_lag: 100
      max_wait: 60s
    - name: foobar-consumer
      consumer_group: f
      records_per_instance: 500
      max_instances: 4
shipping:
  jobs:
    - name: payments-consumer
      consumer_group: g
      min_lag: 100
      max_wait: 60s
";
    let (data, warnings) = parse_ok(text);
    assert!(warnings.is_empty(), "{warnings:?}");
    let jobs = data.jobs();
    assert_eq!(jobs[0].wake.min_lag, Some(100));
    assert_eq!(
        jobs[0].wake.max_wait,
        Some(std::time::Duration::from_secs(60))
    );
    assert_eq!(jobs[1].wake.records_per_instance, Some(500));
    assert_eq!(jobs[1].wake.max_instances, Some(4));
    assert!(data.jobs().iter().all(|j| j.topics.len() <= 2));

    let bad = |text: &str| Kafkadata::parse(text, "test.yaml").unwrap_err().to_string();
    let e = bad("payments:\n  jobs:\n    - name: a\n      consumer_group: g\n      max_wait: 30\n");
    assert!(
        e.contains("payments.jobs[0].max_wait") && e.contains("job 'a'") && e.contains("'30s'"),
        "{e}"
    );
    let e = bad("payments:\n  jobs:\n    - name: a\n      consumer_group: g\n      min_lag: 0\n");
    assert!(
        e.contains("payments.jobs[0].min_lag") && e.contains("job 'a'"),
        "{e}"
    );
    let conflict = text.replace("      min_lag: 100\n      max_wait: 60s\n\"", "");
    let conflict = format!(
        "{}      min_lag: 7\n",
        conflict
            .trim_end_matches("      max_wait: 60s\n")
            .trim_end_matches("      min_lag: 100\n")
    );
    let e = bad(&conflict);
    assert!(
        e.contains("shipping.jobs[0]")
            && e.contains("another wake-up policy")
            && e.contains("payments"),
        "{e}"
    );
    // A typo in a policy key is a warning naming the key it probably meant.
    let (_, warnings) =
        parse_ok("payments:\n  jobs:\n    - name: a\n      consumer_group: g\n      min-lag: 5\n");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("min-lag") && w.contains("min_lag")),
        "{warnings:?}"
    );
}
