//! Throw-away TLS material made with the `openssl` CLI: a CA, a server certificate it signs
//! (SAN IP:127.0.0.1 and DNS:localhost, unencrypted PKCS#8 key), and an unrelated second CA.
//! Our own minimal configs are passed with `-config`, so the system openssl.cnf does not matter.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::{expect_success, run_with_timeout};

#[derive(Clone)]
pub struct Tls {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub wrong_ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

const CA_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = @CN@
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
";

const SERVER_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = localhost
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
";

fn openssl(dir: &Path, what: &str, args: &[&str]) {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(args);
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    expect_success(&format!("openssl ({what})"), &out);
}

fn make_ca(dir: &Path, name: &str, cn: &str) {
    let cnf = format!("{name}.cnf");
    fs::write(dir.join(&cnf), CA_CNF.replace("@CN@", cn)).expect("write CA config");
    let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
    openssl(
        dir,
        name,
        &[
            "req", "-x509", "-config", &cnf, "-newkey", "rsa:2048", "-nodes", "-keyout", &key,
            "-out", &crt, "-days", "3",
        ],
    );
}

pub fn generate(dir: &Path) -> Tls {
    fs::create_dir_all(dir).expect("create tls dir");
    make_ca(dir, "ca", "Kafka Observer Test CA");
    make_ca(dir, "wrong-ca", "Kafka Observer Unrelated CA");
    fs::write(dir.join("server.cnf"), SERVER_CNF).expect("write server config");
    openssl(
        dir,
        "server key",
        &[
            "req",
            "-new",
            "-config",
            "server.cnf",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    openssl(
        dir,
        "server cert",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3",
            "-extfile",
            "server.cnf",
            "-extensions",
            "v3_server",
            "-out",
            "server.crt",
        ],
    );
    let tls = Tls {
        dir: dir.to_path_buf(),
        ca_cert: dir.join("ca.crt"),
        wrong_ca_cert: dir.join("wrong-ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    };
    let key = fs::read_to_string(&tls.server_key).expect("read server key");
    assert!(
        key.contains("-----BEGIN PRIVATE KEY-----"),
        "harness: openssl did not write an unencrypted PKCS#8 key"
    );
    tls
}
