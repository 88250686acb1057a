//! `run.sh` against a stub `ibmcloud` (proto-tests/runsh/ibmcloud-stub.sh) that records every
//! call: the exact Code Engine commands of deploy and clean, in order, for the sample kafkadata
//! and for a mapping with one group on two topics; with and without IMAGE; and the one-line
//! errors (exit 2) when the CLI, the API key, the Event Streams instance or a project is missing.
//! IBM Cloud is unreachable from here, so the command lines are checked against the CLI reference
//! (`research/code-engine-api.md`), not against Code Engine.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

const API_KEY: &str = "test-api-key-0123456789";
/// What run.sh (deploy, clean) and the stub run. PATH holds only links to these (and the stub), so
/// a real `ibmcloud` on this machine is never reached.
const TOOLS: &[&str] = &[
    "bash", "env", "dirname", "awk", "sed", "mktemp", "chmod", "rm", "wc", "head", "cat",
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

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
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
    assert_eq!(out.status.code(), Some(0), "{}", show(out));
    let calls = s.calls();
    assert_eq!(
        calls,
        expected,
        "recorded calls differ\nrecorded:\n{}\nexpected:\n{}\n{}",
        calls.join("\n"),
        expected.join("\n"),
        show(out)
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
    ]);
    let out = s.run(&["deploy"], &env, true);
    assert_calls(
        &s,
        &out,
        &expected_deploy(
            "demo-",
            "kafkadata",
            Some(("icr.io/team/kafka-observer:1.0", Some("team-pull"))),
            SAMPLE_JOBS,
        ),
    );
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
    assert_eq!(out.status.code(), Some(2), "{}", show(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(message),
        "expected '{message}' in stderr\n{}",
        show(out)
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
        "no Code Engine project is selected: run 'ibmcloud login' and 'ibmcloud ce project select --name PROJECT'",
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
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("'ibmcloud ce job create' failed"),
        "{}",
        show(&out)
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
