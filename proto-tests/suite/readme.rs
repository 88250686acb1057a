//! The README against the program: every troubleshooting message is produced by the program in
//! the situation it describes (against the real broker), or, for the few that need a running
//! observer or Code Engine, found in the source; the `check`, `lag` and `lag --json` examples are
//! printed exactly as shown; every flag the `lag`, `observe`, `consume` and connection tables name
//! is one the program knows, and every flag `lag --help` lists is in the `lag` table.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::harness;
use crate::support::run;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).expect("README.md")
}

/// The text of the `## {title}` section, up to the next `## ` heading.
fn section(readme: &str, title: &str) -> String {
    let head = format!("\n## {title}\n");
    let start = readme
        .find(&head)
        .unwrap_or_else(|| panic!("README has no section '## {title}'"));
    let rest = &readme[start + head.len()..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_string()
}

/// The body of the first fenced block of `lang` in `text`.
fn fenced(text: &str, lang: &str) -> String {
    let open = format!("```{lang}\n");
    let start = text
        .find(&open)
        .unwrap_or_else(|| panic!("no ```{lang} block"))
        + open.len();
    let end = text[start..].find("```").unwrap() + start;
    text[start..end].to_string()
}

/// Code spans that open a bullet (`- \`message\` — …`): the quoted messages. A span may wrap
/// onto the next line only in prose, never in a quote, so one line holds it.
fn quoted_messages(section: &str) -> Vec<String> {
    section
        .lines()
        .filter_map(|l| l.strip_prefix("- `"))
        .filter_map(|l| l.split_once('`').map(|(q, _)| q.to_string()))
        .collect()
}

/// Whether `text` holds the pieces of `quote` between its `…`, in order.
fn shows(text: &str, quote: &str) -> bool {
    let mut rest = text;
    for piece in quote.split('…').filter(|p| !p.is_empty()) {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    true
}

fn all(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every `.rs` file under `dir`, and `run.sh`, as one text.
fn source() -> String {
    fn walk(dir: &Path, out: &mut String) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut s = std::fs::read_to_string(repo().join("run.sh")).unwrap();
    walk(&repo().join("src"), &mut s);
    s
}

/// Quotes that need an observer with consumers, or Code Engine: the source is checked instead
/// (the words themselves are covered by lag_cli and runsh tests where they can be produced).
const FROM_SOURCE: &[&str] = &[
    "Consumer group '…' has no active members.",
    "run.sh: error: 'ibmcloud …' failed:",
    "run.sh: clean: … left behind (messages above):",
];

/// Log lines and hints the troubleshooting prose names (not bullet quotes): in the source.
const NAMED_IN_PROSE: &[&str] = &[
    "lag is stuck",
    "woke consumers",
    "consumers ended without committing (crash loop?); wake-ups back off",
    "IBM Cloud call failed",
    "launcher recovered: its calls succeed again",
    "is not a region name",
    "needs somewhere for exhausted records to go",
    "cannot use the Kafka cluster: ",
    "launcher call failed; asked again after a back-off",
    "does not exist in the cluster",
    "the Code Engine plugin is not installed: ibmcloud plugin",
    "not logged in to IBM Cloud: ibmcloud login",
    "no Code Engine project is selected: ibmcloud ce project select --name PROJECT",
    "resources of an earlier deploy? './run.sh clean' removes them",
];

#[test]
fn troubleshooting_messages_are_the_programs() {
    let b = harness::broker();
    let (user, pass) = harness::USERS[0];
    let (plain, sasl, ssl) = (b.plaintext(), b.sasl_plaintext(), b.sasl_ssl());
    let refused = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    // Accepts and says nothing, as an HTTP server waiting for a request line does.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming().flatten() {
            held.push(c);
        }
    });
    let t = harness::unique("ts");
    b.create_topic(&t, 1);
    let g = harness::unique("tsg");
    b.commit_offset(&g, &t, 0, 0);
    let gone = harness::unique("gone");
    let scram = ["--sasl-mechanism", "SCRAM-SHA-256"];
    let creds = |p: &'static str| ["--username", user, "--password", p];
    let scenarios: Vec<Vec<&str>> = vec![
        [
            &["--bootstrap", &sasl][..],
            &creds("wrong-Secret-1"),
            &scram,
        ]
        .concat(),
        [&["--bootstrap", &ssl, "--tls"][..], &creds(pass), &scram].concat(),
        vec!["--bootstrap", &plain, "--tls"],
        [&["--bootstrap", &ssl][..], &creds(pass), &scram].concat(),
        vec!["--bootstrap", &silent_addr],
        vec!["--bootstrap", &refused],
        [&["--bootstrap", &sasl][..], &creds(pass)].concat(),
        [&["--bootstrap", &plain][..], &creds(pass), &scram].concat(),
        vec!["--bootstrap", &sasl],
        vec!["--bootstrap", &plain, "--group", "no-such-group-ts"],
        vec!["--bootstrap", &plain, "--topic", &t, "--topic", &gone],
    ];
    let outputs: Vec<String> = scenarios
        .iter()
        .map(|extra| {
            let mut args = vec!["lag"];
            if !extra.contains(&"--group") {
                args.extend(["--group", &g]);
            }
            args.extend(extra);
            let out = run(&args);
            assert_ne!(out.status.code(), Some(0), "{args:?}: {}", all(&out));
            all(&out)
        })
        .collect();
    // The check's line for a missing topic, from `check` itself.
    let dir = std::env::temp_dir().join(harness::unique("tskd"));
    std::fs::create_dir_all(&dir).unwrap();
    let kd = dir.join("kafkadata");
    std::fs::write(
        &kd,
        format!("{gone}:\n  jobs:\n    - name: j\n      consumer_group: g\n"),
    )
    .unwrap();
    let check = all(&run(&[
        "check",
        "--kafkadata",
        kd.to_str().unwrap(),
        "--bootstrap",
        &plain,
    ]));

    let text = section(&readme(), "Troubleshooting");
    let quotes = quoted_messages(&text);
    assert!(quotes.len() >= 12, "{quotes:#?}");
    let src = source();
    for q in &quotes {
        if FROM_SOURCE.contains(&q.as_str()) {
            for piece in q.split('…').filter(|p| !p.trim().is_empty()) {
                assert!(
                    src.contains(piece),
                    "'{piece}' (of `{q}`) is not in the source"
                );
            }
            continue;
        }
        assert!(
            outputs.iter().any(|o| shows(o, q)),
            "no scenario prints `{q}`; they print:\n{}",
            outputs.join("\n---\n")
        );
    }
    // Every scenario's error is one the README explains.
    for (o, args) in outputs.iter().zip(&scenarios) {
        assert!(
            quotes.iter().any(|q| shows(o, q)),
            "{args:?} prints a message the README does not quote:\n{o}"
        );
    }
    // Prose wraps: compare with single spaces.
    let prose = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for s in NAMED_IN_PROSE {
        assert!(prose.contains(s), "the README no longer names '{s}'");
        assert!(
            src.contains(s) || check.contains(s),
            "'{s}' is not in the source"
        );
    }
    assert!(
        check.contains(&format!("topic {gone}: does not exist in the cluster")),
        "{check}"
    );
}

/// Creates `topic` with `partitions` unless the broker has it.
fn ensure_topic(b: &harness::Broker, topic: &str, partitions: i32) {
    let have = b
        .metadata(&[topic])
        .and_then(|m| m.topic(topic).map(|t| t.partitions.len()));
    if have != Some(partitions as usize) {
        b.create_topic(topic, partitions);
    }
}

#[test]
fn check_example_is_printed_as_shown() {
    let b = harness::broker();
    ensure_topic(b, "payments", 4);
    ensure_topic(b, "shipping", 3);
    let example = fenced(&section(&readme(), "`kafka-observer check`"), "console");
    let (command, shown) = example.split_once('\n').unwrap();
    let args: Vec<String> = command
        .strip_prefix("$ kafka-observer ")
        .unwrap()
        .split_whitespace()
        .map(|a| a.replace("127.0.0.1:9092", &b.plaintext()))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = crate::support::command(&args)
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), shown);
}

#[test]
fn lag_examples_are_printed_as_shown() {
    let b = harness::broker();
    let topic = harness::unique("payments");
    b.create_topic(&topic, 2);
    b.produce(&topic, 0, 10);
    b.produce(&topic, 1, 7);
    let group = harness::unique("payments-consumer-group");
    b.commit_offsets(&group, &[(&topic, 0, 2), (&topic, 1, 7)]);
    let lag = section(&readme(), "`kafka-observer lag`");
    let named = |s: &str| {
        s.replace("payments-consumer-group", "GROUP-NAME")
            .replace("payments", &topic)
            .replace("GROUP-NAME", &group)
    };

    // The table: the same words on every line (column widths follow the names).
    let example = named(&fenced(&lag, "console"));
    let (command, shown) = example.split_once('\n').unwrap();
    let mut args: Vec<String> = command
        .strip_prefix("$ kafka-observer ")
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    let i = args.iter().position(|a| a == "127.0.0.1:9092").unwrap();
    args[i] = b.plaintext();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    // TIME-LAG (the last column) is the records' age: any duration; the caught-up row's is 0s.
    let words = |s: &str| -> Vec<Vec<String>> {
        s.lines()
            .map(|l| {
                let mut w: Vec<String> = l.split_whitespace().map(String::from).collect();
                if w.len() == 12 && w[2].parse::<i32>().is_ok() && w[11] != "0s" {
                    let age =
                        w[11].trim_end_matches(|c: char| c.is_ascii_digit() || "smhd".contains(c));
                    assert!(age.is_empty() && w[11].ends_with('s'), "a TIME-LAG: {l}");
                    w[11] = "AGE".into();
                }
                w
            })
            .collect()
    };
    assert_eq!(
        words(&String::from_utf8_lossy(&out.stdout)),
        words(shown),
        "{}",
        all(&out)
    );

    // The JSON: the same document, but for the time and the broker's address.
    let shown: Value = serde_json::from_str(&named(&fenced(&lag, "json"))).unwrap();
    let mut json_args = args.clone();
    json_args.push("--json");
    let out = run(&json_args);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("{\n  \"time\""), "pretty-printed: {text}");
    let mut printed: Value = serde_json::from_str(&text).unwrap();
    printed["time"] = shown["time"].clone();
    printed["groups"][0]["coordinator"] = shown["groups"][0]["coordinator"].clone();
    let age = &mut printed["groups"][0]["partitions"][0]["time_lag_ms"];
    assert!(age.as_i64().is_some_and(|ms| ms >= 0), "{age}");
    *age = shown["groups"][0]["partitions"][0]["time_lag_ms"].clone();
    assert_eq!(printed, shown);
}

/// `--flags` named in the first column of the markdown table rows of `text`.
fn table_flags(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("| `--"))
        .flat_map(|l| {
            let first = l.split('|').nth(1).unwrap_or("");
            first
                .split('`')
                .skip(1)
                .step_by(2)
                .map(|f| f.split([' ', '[', '=']).next().unwrap().to_string())
                .filter(|f| f.starts_with("--"))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn help(sub: &str) -> String {
    all(&run(&[sub, "--help"]))
}

#[test]
fn every_documented_flag_is_known_and_every_lag_flag_documented() {
    let readme = readme();
    let connection = table_flags(&section(&readme, "Connection settings (every subcommand)"));
    assert!(connection.len() >= 12, "{connection:?}");
    for (sub, title) in [
        ("lag", "`kafka-observer lag`"),
        ("observe", "`kafka-observer observe`"),
        ("consume", "`kafka-observer consume`"),
    ] {
        let h = help(sub);
        let documented = table_flags(&section(&readme, title));
        assert!(!documented.is_empty(), "{title}");
        for f in documented.iter().chain(&connection) {
            assert!(
                h.contains(&format!("{f} "))
                    || h.contains(&format!("{f}\n"))
                    || h.contains(&format!("{f}["))
                    || h.contains(&format!("{f}=")),
                "README names {f} for {sub}, `{sub} --help` does not:\n{h}"
            );
        }
        if sub == "lag" {
            for f in h
                .split_whitespace()
                .filter(|w| w.starts_with("--") && w.len() > 2)
                .map(|w| w.trim_end_matches(|c: char| !c.is_alphanumeric()))
            {
                if f == "--help" || f == "--version" {
                    continue;
                }
                assert!(
                    documented.iter().chain(&connection).any(|d| d == f),
                    "`lag --help` lists {f}, the README's lag or connection table does not"
                );
            }
        }
    }
}
