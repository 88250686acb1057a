//! The shared, per-version cache under `proto-tests/.cache/kafka-<version>/`:
//! `libs/` (every runtime jar, from Maven Central) and `kotool-<hash>/` (our compiled Java helper).
//! Kafka 4.x jars come from `proto-tests/pom.xml`, Kafka 3.x jars from `proto-tests/pom-3.x.xml`
//! (different logging backend), both with `-Dkafka.version=<version>`.
//!
//! Both are built into a temporary sibling directory and renamed into place, under an exclusive
//! file lock, so concurrent test processes neither race nor see half-written directories. A
//! complete `libs/` means Maven is not run at all.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::process::{expect_success, run_with_timeout};

/// Jars whose presence marks a complete `libs/` (the rename makes it all-or-nothing anyway).
const MARKER_JARS: [&str; 3] = ["kafka_2.13-", "kafka-tools-", "kafka-clients-"];

#[derive(Clone)]
pub struct Cache {
    pub libs: PathBuf,
    pub kotool: PathBuf,
}

fn proto_tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("proto-tests")
}

fn libs_complete(libs: &Path, version: &str) -> bool {
    MARKER_JARS
        .iter()
        .all(|m| libs.join(format!("{m}{version}.jar")).is_file())
}

/// The pom that lists the jars (and logging backend) of that Kafka major version.
fn pom_for(version: &str) -> PathBuf {
    let name = if version.starts_with("3.") {
        "pom-3.x.xml"
    } else {
        "pom.xml"
    };
    proto_tests_dir().join(name)
}

/// Ensures the jars of Kafka `version` and the compiled helper exist, downloading/compiling only
/// what is missing.
pub fn ensure(version: &str) -> Cache {
    let root = proto_tests_dir()
        .join(".cache")
        .join(format!("kafka-{version}"));
    let libs = root.join("libs");
    let source = proto_tests_dir().join("java").join("KoTool.java");
    let source_text = fs::read(&source)
        .unwrap_or_else(|e| panic!("harness: cannot read {}: {e}", source.display()));
    let kotool = root.join(format!("kotool-{:016x}", fnv1a(&source_text)));
    if libs_complete(&libs, version) && kotool.join("KoTool.class").is_file() {
        return Cache { libs, kotool };
    }

    fs::create_dir_all(&root)
        .unwrap_or_else(|e| panic!("harness: cannot create {}: {e}", root.display()));
    let lock_path = root.join(".lock");
    let lock = File::create(&lock_path)
        .unwrap_or_else(|e| panic!("harness: cannot open {}: {e}", lock_path.display()));
    // Released when `lock` is dropped, or by the kernel if this process dies.
    lock.lock()
        .unwrap_or_else(|e| panic!("harness: cannot lock {}: {e}", lock_path.display()));

    if !libs_complete(&libs, version) {
        let started = Instant::now();
        eprintln!(
            "harness: fetching Kafka {version} jars with Maven into {}",
            libs.display()
        );
        let tmp = root.join(format!("libs.tmp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let mut mvn = Command::new("mvn");
        mvn.args(["-q", "-B"])
            .arg("org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies")
            .arg(format!("-DoutputDirectory={}", tmp.display()))
            .arg("-DincludeScope=runtime")
            .arg(format!("-Dkafka.version={version}"))
            .arg("-f")
            .arg(pom_for(version));
        let out = run_with_timeout(mvn, Duration::from_secs(900));
        expect_success(
            &format!("mvn copy-dependencies ({})", pom_for(version).display()),
            &out,
        );
        if !libs_complete(&tmp, version) {
            panic!(
                "harness: Maven succeeded but {} lacks the Kafka jars",
                tmp.display()
            );
        }
        let _ = fs::remove_dir_all(&libs); // an incomplete leftover from an older layout
        fs::rename(&tmp, &libs)
            .unwrap_or_else(|e| panic!("harness: rename into {}: {e}", libs.display()));
        eprintln!(
            "harness: jars ready in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    if !kotool.join("KoTool.class").is_file() {
        let tmp = root.join(format!("kotool.tmp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).expect("create KoTool build dir");
        let mut javac = Command::new("javac");
        javac
            .args(["--release", "17", "-nowarn", "-cp"])
            .arg(libs.join("*"))
            .arg("-d")
            .arg(&tmp)
            .arg(&source);
        let out = run_with_timeout(javac, Duration::from_secs(300));
        expect_success("javac KoTool.java", &out);
        fs::rename(&tmp, &kotool)
            .unwrap_or_else(|e| panic!("harness: rename into {}: {e}", kotool.display()));
    }
    drop(lock);
    Cache { libs, kotool }
}

/// FNV-1a, 64 bit: a stable content hash to name the compiled helper's directory.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
