//! `run.sh` against a stub `ibmcloud` (proto-tests/runsh/ibmcloud-stub.sh) that records every
//! call: the exact Code Engine commands of deploy and clean, in order, for the sample kafkadata
//! and for a mapping with one group on two topics; with and without IMAGE; the one-line errors
//! (exit 2) when the CLI, the API key, the Event Streams instance or a project is missing; the
//! CLI's own message and a hint when a call fails (plugin missing, not logged in, no project);
//! `clean` trying every deletion and listing what is left; `help`. And `./run.sh local`, the
//! demo, against the suite's broker: banner, named consumer lines, the lag table on change, the
//! printed produce command, the summary on Ctrl-C.
//! IBM Cloud is unreachable from here, so the command lines are checked against the CLI reference
//! (`research/code-engine-api.md`), not against Code Engine.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::support::wait::exit_within;
use crate::support::{eventually_every, text};

const API_KEY: &str = "test-api-key-0123456789";
/// What run.sh (deploy, clean) and the stub run. PATH holds only links to these (and the stub), so
/// a real `ibmcloud` on this machine is never reached.
const TOOLS: &[&str] = &[
    "bash", "env", "dirname", "awk", "sed", "mktemp", "chmod", "rm", "wc", "head", "cat", "tr",
    "tee",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory with `bin/ibmcloud` (the stub) and the stub's log.
struct Sandbox {
    dir: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ko-runsh-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::create_dir_all(dir.join("tools")).unwrap();
        for tool in TOOLS {
            std::os::unix::fs::symlink(which(tool), dir.join("tools").join(tool)).unwrap();
        }
        let stub = dir.join("bin/ibmcloud");
        std::fs::copy(repo().join("proto-tests/runsh/ibmcloud-stub.sh"), &stub).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
        Sandbox { dir }
    }

    fn log(&self) -> PathBuf {
        self.dir.join("calls")
    }

    /// The recorded calls, one per line (an env file's lines follow its call, as `  | ...`).
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Runs `run.sh ARGS` with only the given environment (plus PATH, the stub log, HOME and
    /// TMPDIR). PATH: the sandbox's tools, and with `stub` the stub `ibmcloud` first.
    fn run(&self, args: &[&str], env: &[(&str, &str)], stub: bool) -> Output {
        let tools = self.dir.join("tools");
        let path = if stub {
            format!("{}:{}", self.dir.join("bin").display(), tools.display())
        } else {
            tools.display().to_string()
        };
        let mut cmd = Command::new(repo().join("run.sh"));
        cmd.args(args)
            .env_clear()
            .env("PATH", path)
            .env("HOME", &self.dir)
            .env("TMPDIR", &self.dir)
            .env("IBMCLOUD_STUB_LOG", self.log())
            .current_dir(&self.dir);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run run.sh")
    }
}

/// The first `name` on this process's PATH.
fn which(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("'{name}' is not on PATH (run.sh needs it)"))
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn deploy_env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![("IAM_API_KEY", API_KEY), ("ES_SERVICE_INSTANCE", "my-es")];
    env.extend_from_slice(extra);
    env
}

/// (job, group, topics) as run.sh should read them.
type Jobs<'a> = &'a [(&'a str, &'a str, &'a str)];

const SAMPLE_JOBS: Jobs = &[
    ("payments-consumer", "payments-consumer-group", "payments"),
    ("foobar-consumer", "foobar-consumer-group", "payments"),
    ("shipping-consumer", "shipping-consumer-group", "shipping"),
];

const SHARED_GROUP_JOBS: Jobs = &[
    ("audit-consumer", "audit-group", "orders,refunds"),
    ("orders-consumer", "orders-group", "orders"),
    ("refunds-consumer", "refunds-group", "refunds"),
];

/// The calls deploy must make, in order. `image`: (IMAGE, REGISTRY_SECRET) or None for a
/// Code Engine build; `kafkadata`: the `--from-file` value.
fn expected_deploy(
    prefix: &str,
    kafkadata: &str,
    image: Option<(&str, Option<&str>)>,
    jobs: Jobs,
) -> Vec<String> {
    let observer = format!("{prefix}kafka-observer");
    let secret = format!("{prefix}kafka-observer-secret");
    let configmap = format!("{prefix}kafka-observer-kafkadata");
    let mut calls = vec![
        "ce project current".to_string(),
        format!("ce secret create --name {secret} --from-env-file <env-file>"),
        format!("  | IAM_API_KEY={API_KEY}"),
        format!("ce configmap create --name {configmap} --from-file kafkadata={kafkadata}"),
    ];
    let pull = |image: &str, secret: Option<&str>| match secret {
        Some(s) => format!("--image {image} --registry-secret {s}"),
        None => format!("--image {image}"),
    };
    let observer_image = match image {
        Some((i, s)) => pull(i, s),
        None => "--build-source . --build-dockerfile Containerfile --build-size large \
                 --build-timeout 1800"
            .to_string(),
    };
    calls.push(format!(
        "ce job create --name {observer} --mode daemon {observer_image} --cpu 0.25 --memory 0.5G \
         --env-from-secret {secret} --env-from-configmap {configmap} --argument observe"
    ));
    let consumer_image = match image {
        Some((i, s)) => pull(i, s),
        None => {
            calls.push(format!(
                "ce job get --name {observer} --output jsonpath={{.buildRun.output_image}}"
            ));
            calls.push(format!(
                "ce job get --name {observer} --output jsonpath={{.buildRun.output_secret}}"
            ));
            pull(
                "private.us.icr.io/ce--stub/job-built",
                Some("ce-auto-icr-private-us-south"),
            )
        }
    };
    for (job, group, topics) in jobs {
        calls.push(format!(
            "ce job create --name {job} --mode daemon {consumer_image} --cpu 0.25 --memory 0.5G \
             --env CONSUMER_GROUP={group} --env KAFKA_TOPIC={topics} --env IDLE_TIMEOUT=60 \
             --env CE_REMOVE_COMPLETED_JOBS=IMMEDIATELY --argument consume"
        ));
    }
    calls.push(format!(
        "ce job bind --name {observer} --service-instance my-es"
    ));
    for (job, _, _) in jobs {
        calls.push(format!("ce job bind --name {job} --service-instance my-es"));
    }
    calls.push(format!("ce jobrun submit --job {observer}"));
    calls
}

fn expected_clean(prefix: &str, jobs: Jobs) -> Vec<String> {
    let mut calls = vec![
        "ce project current".to_string(),
        format!("ce job delete --name {prefix}kafka-observer --force --ignore-not-found"),
    ];
    for (job, _, _) in jobs {
        calls.push(format!(
            "ce job delete --name {job} --force --ignore-not-found"
        ));
    }
    calls.push(format!(
        "ce configmap delete --name {prefix}kafka-observer-kafkadata --force --ignore-not-found"
    ));
    calls.push(format!(
        "ce secret delete --name {prefix}kafka-observer-secret --force --ignore-not-found"
    ));
    calls
}

fn assert_calls(s: &Sandbox, out: &Output, expected: &[String]) {
    assert_eq!(out.status.code(), Some(0), "{}", text(out));
    let calls = s.calls();
    assert_eq!(
        calls,
        expected,
        "recorded calls differ\nrecorded:\n{}\nexpected:\n{}\n{}",
        calls.join("\n"),
        expected.join("\n"),
        text(out)
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains(API_KEY),
        "run.sh printed the API key:\n{text}"
    );
}

fn shared_group_kafkadata() -> PathBuf {
    repo().join("proto-tests/runsh/kafkadata-shared-group")
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kafka-observer")
}

#[test]
fn deploy_sample_builds_once_and_reuses_the_image() {
    let s = Sandbox::new();
    // With the binary: run.sh's reading of kafkadata is cross-checked against `check`.
    let out = s.run(&[], &deploy_env(&[("KAFKA_OBSERVER_BIN", bin())]), true);
    assert_calls(
        &s,
        &out,
        &expected_deploy("", "kafkadata", None, SAMPLE_JOBS),
    );
}

#[test]
fn deploy_sample_with_image_and_prefix() {
    let s = Sandbox::new();
    let env = deploy_env(&[
        ("IMAGE", "icr.io/team/kafka-observer:1.0"),
        ("REGISTRY_SECRET", "team-pull"),
        ("NAME_PREFIX", "demo-"),
        // The failure policy reaches every consumer job as set.
        ("MAX_ATTEMPTS", "3"),
        ("DEAD_LETTER_TOPIC", "failed.DLT"),
    ]);
    let out = s.run(&["deploy"], &env, true);
    let expected: Vec<String> = expected_deploy(
        "demo-",
        "kafkadata",
        Some(("icr.io/team/kafka-observer:1.0", Some("team-pull"))),
        SAMPLE_JOBS,
    )
    .into_iter()
    .map(|c| {
        c.replace(
            "IMMEDIATELY --argument consume",
            "IMMEDIATELY --env MAX_ATTEMPTS=3 --env DEAD_LETTER_TOPIC=failed.DLT --argument consume",
        )
    })
    .collect();
    assert!(expected.iter().any(|c| c.contains("MAX_ATTEMPTS=3")));
    assert_calls(&s, &out, &expected);
}

#[test]
fn deploy_shared_group_without_and_with_image() {
    let file = shared_group_kafkadata();
    let path = file.to_str().unwrap();
    let s = Sandbox::new();
    let out = s.run(
        &[],
        &deploy_env(&[("KAFKADATA", path), ("KAFKA_OBSERVER_BIN", bin())]),
        true,
    );
    assert_calls(
        &s,
        &out,
        &expected_deploy("", path, None, SHARED_GROUP_JOBS),
    );

    let s = Sandbox::new();
    let env = deploy_env(&[("KAFKADATA", path), ("IMAGE", "docker.io/me/ko:2")]);
    let out = s.run(&[], &env, true);
    assert_calls(
        &s,
        &out,
        &expected_deploy(
            "",
            path,
            Some(("docker.io/me/ko:2", None)),
            SHARED_GROUP_JOBS,
        ),
    );
}

#[test]
fn clean_deletes_what_deploy_created() {
    for (image, prefix) in [(None, ""), (Some("icr.io/team/ko:1"), "demo-")] {
        let s = Sandbox::new();
        // clean needs neither the API key nor the Event Streams instance.
        let mut env = vec![("NAME_PREFIX", prefix)];
        if let Some(i) = image {
            env.push(("IMAGE", i));
        }
        let out = s.run(&["clean"], &env, true);
        assert_calls(&s, &out, &expected_clean(prefix, SAMPLE_JOBS));

        let s = Sandbox::new();
        let file = shared_group_kafkadata();
        env.push(("KAFKADATA", file.to_str().unwrap()));
        env.push(("KAFKA_OBSERVER_BIN", bin()));
        let out = s.run(&["clean"], &env, true);
        assert_calls(&s, &out, &expected_clean(prefix, SHARED_GROUP_JOBS));
    }
}

/// Exit 2, the message on stderr, and no Code Engine resource touched.
fn assert_usage_error(s: &Sandbox, out: &Output, message: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", text(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(message),
        "expected '{message}' in stderr\n{}",
        text(out)
    );
    let calls = s.calls();
    assert!(
        calls.iter().all(|c| c == "ce project current"),
        "nothing may be created: {calls:?}"
    );
}

#[test]
fn missing_prerequisites_are_one_line_errors() {
    let s = Sandbox::new();
    let out = s.run(&[], &deploy_env(&[]), false);
    assert_usage_error(&s, &out, "the IBM Cloud CLI 'ibmcloud' is not installed");
    let out = s.run(&["clean"], &[], false);
    assert_usage_error(&s, &out, "the IBM Cloud CLI 'ibmcloud' is not installed");

    let s = Sandbox::new();
    let out = s.run(&[], &[("ES_SERVICE_INSTANCE", "my-es")], true);
    assert_usage_error(&s, &out, "IAM_API_KEY is not set: export IAM_API_KEY=");

    let s = Sandbox::new();
    let out = s.run(&[], &[("IAM_API_KEY", API_KEY)], true);
    assert_usage_error(&s, &out, "ES_SERVICE_INSTANCE is not set");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(API_KEY));

    let s = Sandbox::new();
    let env = deploy_env(&[("IBMCLOUD_STUB_NO_PROJECT", "1")]);
    let out = s.run(&[], &env, true);
    assert_usage_error(
        &s,
        &out,
        "hint: no Code Engine project is selected: ibmcloud ce project select --name PROJECT",
    );
    // The CLI's own words come first.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("    No project is currently targeted."),
        "{}",
        text(&out)
    );
    let out = s.run(&["clean"], &[("IBMCLOUD_STUB_NO_PROJECT", "1")], true);
    assert_usage_error(&s, &out, "no Code Engine project is selected");

    let s = Sandbox::new();
    let out = s.run(&["destroy"], &deploy_env(&[]), true);
    assert_usage_error(&s, &out, "unknown command 'destroy'");
}

#[test]
fn bad_kafkadata_is_refused_before_anything_is_created() {
    let s = Sandbox::new();
    let flow = s.dir.join("flow");
    std::fs::write(
        &flow,
        "payments: {partitions: 4, jobs: [{name: p, consumer_group: g}]}\n",
    )
    .unwrap();
    let missing_group = s.dir.join("missing-group");
    std::fs::write(
        &missing_group,
        "payments:\n  jobs:\n    - name: p\n  partitions: 4\n",
    )
    .unwrap();
    let two_groups = s.dir.join("two-groups");
    std::fs::write(
        &two_groups,
        "a:\n  jobs:\n    - name: j\n      consumer_group: g1\nb:\n  jobs:\n    - name: j\n      consumer_group: g2\n",
    )
    .unwrap();
    let cases: [(&Path, &str); 4] = [
        (&flow, "expected \"TOPIC:\" (block style)"),
        (&missing_group, "needs both name and consumer_group"),
        (&two_groups, "has two consumer groups"),
        (
            Path::new("/nonexistent/kafkadata"),
            "cannot read the kafkadata file",
        ),
    ];
    for (file, message) in cases {
        let env = deploy_env(&[("KAFKADATA", file.to_str().unwrap())]);
        let out = s.run(&[], &env, true);
        assert_usage_error(&s, &out, message);
    }
    // The binary's validation: the awk reader accepts a partition count of 0, `check` does not.
    let zero = s.dir.join("zero");
    std::fs::write(
        &zero,
        "payments:\n  partitions: 0\n  jobs:\n    - name: p\n      consumer_group: g\n",
    )
    .unwrap();
    let env = deploy_env(&[
        ("KAFKADATA", zero.to_str().unwrap()),
        ("KAFKA_OBSERVER_BIN", bin()),
    ]);
    let out = s.run(&[], &env, true);
    assert_usage_error(&s, &out, "is not a valid mapping");
}

#[test]
fn a_failing_command_stops_the_deploy_with_a_hint() {
    let s = Sandbox::new();
    let env = deploy_env(&[
        ("IMAGE", "icr.io/team/ko:1"),
        ("IBMCLOUD_STUB_FAIL", "ce job create --name foobar-consumer"),
    ]);
    let out = s.run(&[], &env, true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("'ibmcloud ce job create' failed"),
        "{}",
        text(&out)
    );
    let calls = s.calls();
    assert!(
        calls
            .last()
            .unwrap()
            .starts_with("ce job create --name foobar-consumer"),
        "deploy must stop at the failing call: {calls:?}"
    );
}

#[test]
fn help_lists_every_command_and_variable() {
    let s = Sandbox::new();
    for arg in ["help", "--help", "-h"] {
        let out = s.run(&[arg], &[], false);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        for word in [
            "./run.sh clean",
            "./run.sh local",
            "./run.sh help",
            "IAM_API_KEY",
            "ES_SERVICE_INSTANCE",
            "KAFKADATA",
            "NAME_PREFIX",
            "IMAGE",
            "KAFKA_BOOTSTRAP",
            "METRICS_PORT",
            "Exit codes",
        ] {
            assert!(text.contains(word), "{arg}: no '{word}' in\n{text}");
        }
        assert!(!text.contains("set -euo"), "{text}");
    }
    assert!(s.calls().is_empty());
}

#[test]
fn a_failing_cli_call_shows_its_message_and_a_hint() {
    // (what the CLI prints, the hint run.sh adds)
    let cases = [
        (
            "FAILED\n'ce' is not a registered command. See 'ibmcloud help'.",
            "hint: the Code Engine plugin is not installed: ibmcloud plugin install code-engine",
        ),
        (
            "FAILED\nNot logged in. Use 'ibmcloud login' to log in.",
            "hint: not logged in to IBM Cloud: ibmcloud login",
        ),
        (
            "FAILED\nSomething else went wrong (trace 1234)",
            "hint: see the message of 'ibmcloud' above",
        ),
    ];
    for (said, hint) in cases {
        for cmd in ["deploy", "clean"] {
            let s = Sandbox::new();
            let out = s.run(
                &[cmd],
                &deploy_env(&[
                    ("IBMCLOUD_STUB_FAIL", "ce project current"),
                    ("IBMCLOUD_STUB_FAIL_OUTPUT", said),
                ]),
                true,
            );
            assert_usage_error(&s, &out, hint);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("run.sh: error: 'ibmcloud ce project current' failed:"),
                "{}",
                text(&out)
            );
            for line in said.lines() {
                assert!(
                    stderr.contains(&format!("    {line}\n")),
                    "{line}: {}",
                    text(&out)
                );
            }
        }
    }
    // During deploy: the CLI's words, the hint, exit 1, nothing after the failed call.
    let s = Sandbox::new();
    let env = deploy_env(&[
        ("IMAGE", "icr.io/team/ko:1"),
        ("IBMCLOUD_STUB_FAIL", "ce configmap create"),
        (
            "IBMCLOUD_STUB_FAIL_OUTPUT",
            "FAILED\nResource 'kafka-observer-kafkadata' already exists.",
        ),
    ]);
    let out = s.run(&[], &env, true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("    Resource 'kafka-observer-kafkadata' already exists."),
        "{}",
        text(&out)
    );
    assert!(
        stderr.contains("hint: resources of an earlier deploy? './run.sh clean' removes them"),
        "{}",
        text(&out)
    );
    assert!(
        s.calls().last().unwrap().starts_with("ce configmap create"),
        "{:?}",
        s.calls()
    );
}

#[test]
fn clean_tries_every_deletion_and_lists_what_is_left() {
    let s = Sandbox::new();
    let env = [
        (
            "IBMCLOUD_STUB_FAIL",
            "ce job delete --name foobar-consumer|ce secret delete",
        ),
        (
            "IBMCLOUD_STUB_FAIL_OUTPUT",
            "FAILED\nThe request timed out.",
        ),
    ];
    let out = s.run(&["clean"], &env, true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // Every deletion was tried, in order, the failed ones included.
    assert_eq!(s.calls(), expected_clean("", SAMPLE_JOBS), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("run.sh: clean: 2 left behind"),
        "{}",
        text(&out)
    );
    assert!(
        stderr.contains("    job foobar-consumer\n"),
        "{}",
        text(&out)
    );
    assert!(
        stderr.contains("    secret kafka-observer-secret\n"),
        "{}",
        text(&out)
    );
    assert!(
        !stderr.contains("    job payments-consumer\n"),
        "{}",
        text(&out)
    );
    assert!(
        stderr.contains("    The request timed out."),
        "{}",
        text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("deleted job payments-consumer"),
        "{}",
        text(&out)
    );
    assert!(!stdout.contains("nothing left"), "{}", text(&out));

    // Nothing failing: nothing left, exit 0.
    let s = Sandbox::new();
    let out = s.run(&["clean"], &[], true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("clean: done, nothing left"));
}

/// Whether this process ignores SIGINT (then so would run.sh, which could not trap it: a test
/// run in the background of a non-interactive shell). Linux: the SigIgn mask of /proc/self/status.
fn sigint_ignored() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        })
        .is_some_and(|mask| mask & (1 << (2 - 1)) != 0)
}

#[test]
fn local_demo_names_consumers_prints_lag_on_change_and_sums_up() {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::sync::{Arc, Mutex};
    let b = crate::harness::broker();
    let topic = crate::harness::unique("demo");
    b.create_topic(&topic, 2);
    let (job, group) = (
        crate::harness::unique("demo-job"),
        crate::harness::unique("demo-group"),
    );
    let s = Sandbox::new();
    let kafkadata = s.dir.join("kafkadata");
    std::fs::write(
        &kafkadata,
        format!("{topic}:\n  partitions: 2\n  jobs:\n    - name: {job}\n      consumer_group: {group}\n"),
    )
    .unwrap();
    // The suite's broker and this build: no cargo, no second broker.
    let mut child = Command::new("bash")
        .args(["-c", "exec \"$0\" local 2>&1"])
        .arg(repo().join("run.sh"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &s.dir)
        .env("TMPDIR", &s.dir)
        .env("KAFKA_BOOTSTRAP", b.plaintext())
        .env("KAFKA_OBSERVER_BIN", bin())
        .env("KAFKADATA", &kafkadata)
        .env("IDLE_TIMEOUT", "5")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let out = Arc::new(Mutex::new(String::new()));
    let reader = {
        let out = out.clone();
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = stdout.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                out.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        })
    };
    let wait_for = |what: &str, done: &dyn Fn(&str) -> bool| {
        let pause = std::time::Duration::from_millis(200);
        eventually_every(pause, 120, &format!("run.sh local: {what}"), || {
            let text = out.lock().unwrap().clone();
            if done(&text) {
                Ok(text)
            } else {
                Err(text)
            }
        })
    };
    // The banner: the metrics URL and the exact command that sends more records.
    let text = wait_for("banner", &|t| t.contains("more records"));
    let metrics = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("metrics:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no metrics URL in the banner:\n{text}"))
        .to_string();
    assert!(
        metrics.starts_with("http://127.0.0.1:") && metrics.ends_with("/metrics"),
        "{text}"
    );
    let produce = text
        .lines()
        .skip_while(|l| !l.contains("more records"))
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    assert!(produce.contains(&topic), "{produce}");
    // Run that command as a person would: two records on stdin.
    let mut producer = Command::new("sh")
        .args(["-c", &produce])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        producer.stdin.as_mut().unwrap(),
        b"first-demo-record\nsecond-demo-record\n",
    )
    .unwrap();
    drop(producer.stdin.take());
    assert!(producer.wait().unwrap().success(), "{produce}");
    // The consumer the observer woke names its job and group on every line it logs.
    let named = format!("consumer{{job={job} group={group} run=");
    let text = wait_for("records handled", &|t| {
        t.contains("value=first-demo-record") && t.contains("value=second-demo-record")
    });
    for l in text.lines().filter(|l| l.contains("value=")) {
        assert!(l.contains(&named), "an unnamed record line: {l}");
    }
    // The lag table, printed when it changes, with a timestamp: here once committed.
    let text = wait_for("lag table after the commit", &|t| {
        t.split("--- lag at ").skip(1).any(|frame| {
            let rows = crate::harness::parse_columns(frame);
            let committed: i64 = rows
                .iter()
                .filter_map(|r| r["CURRENT-OFFSET"].parse::<i64>().ok())
                .sum();
            committed == 2
        })
    });
    let frames: Vec<&str> = text.split("--- lag at ").skip(1).collect();
    // What a frame shows: its rows and its summary lines (log lines of other processes may
    // interleave with it).
    let shown = |f: &str| {
        let rows = crate::harness::parse_columns(f);
        let notes: Vec<String> = f
            .lines()
            .filter(|l| l.starts_with(group.as_str()) || l.starts_with("Consumer group"))
            .map(str::to_string)
            .collect();
        (rows, notes)
    };
    for pair in frames.windows(2) {
        assert_ne!(
            shown(pair[0]),
            shown(pair[1]),
            "a table printed twice unchanged:\n{text}"
        );
    }
    // Ctrl-C (to the whole process group, as a terminal sends it): a summary of what ran.
    let signal = if sigint_ignored() { "-TERM" } else { "-INT" };
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{}", child.id())])
        .status();
    let status = exit_within(&mut child, 60)
        .unwrap_or_else(|| panic!("run.sh did not stop:\n{}", out.lock().unwrap()));
    reader.join().unwrap();
    let text = out.lock().unwrap().clone();
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("run.sh: summary of this demo:"), "{text}");
    assert!(
        text.contains(&format!(
            "  job {job}: 1 job run(s), 1 consumer instance(s) started"
        )),
        "{text}"
    );
    assert!(text.contains("  last lag table ("), "{text}");
}
