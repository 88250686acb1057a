use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha512};

use super::super::{Credentials, Mechanism, SaslClient, SaslError, Step};
use crate::config::secret::Secret;

fn creds(user: &str, pass: &str) -> Credentials {
    Credentials {
        username: user.into(),
        password: Secret::new(pass),
    }
}

const RFC_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

fn rfc_client() -> SaslClient {
    SaslClient::with_nonce(Mechanism::ScramSha256, &creds("user", "pencil"), RFC_NONCE).unwrap()
}

/// RFC 7677 §3.
#[test]
fn rfc7677_sha256_vector() {
    let mut c = rfc_client();
    assert_eq!(c.initial(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO".to_vec());
    let Step::Send(client_final) = c.step(RFC_SERVER_FIRST.as_bytes()).unwrap() else {
        panic!("expected client-final");
    };
    assert_eq!(
        String::from_utf8(client_final).unwrap(),
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
         p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    assert_eq!(
        c.step(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap(),
        Step::Done
    );
    assert!(matches!(c.step(b"v=x"), Err(SaslError::OutOfOrder(_))));
}

#[test]
fn wrong_server_signature_is_rejected() {
    for server_final in [
        "v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", // wrong bytes
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95A==", // truncated
        "v=",
    ] {
        let mut c = rfc_client();
        c.initial();
        c.step(RFC_SERVER_FIRST.as_bytes()).unwrap();
        let err = c.step(server_final.as_bytes()).unwrap_err();
        assert_eq!(err, SaslError::ServerSignatureMismatch, "{server_final}");
        assert_eq!(
            err.to_string(),
            "server signature mismatch: the broker could not prove it knows the password"
        );
    }
}

#[test]
fn user_names_are_escaped() {
    let mut c =
        SaslClient::with_nonce(Mechanism::ScramSha512, &creds("a=b,c", "pw"), "abc").unwrap();
    assert_eq!(c.initial(), b"n,,n=a=3Db=2Cc,r=abc".to_vec());
}

/// A minimal SCRAM-SHA-512 server, written straight from RFC 5802 §3, to check a full round.
struct Server {
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    salt: Vec<u8>,
    iterations: u32,
}

fn mac512(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha512> as KeyInit>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

impl Server {
    fn new(password: &str) -> Self {
        let salt = b"some-salt-bytes".to_vec();
        let iterations = 4096;
        let mut salted = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = mac512(&salted, b"Client Key");
        Server {
            stored_key: Sha512::digest(&client_key).to_vec(),
            server_key: mac512(&salted, b"Server Key"),
            salt,
            iterations,
        }
    }

    /// Returns (server-first, server-final or e=invalid-proof) for a client.
    fn run(&self, client: &mut SaslClient) -> Result<Step, SaslError> {
        let client_first = String::from_utf8(client.initial()).unwrap();
        let bare = client_first.strip_prefix("n,,").unwrap();
        let client_nonce = bare.split(",r=").nth(1).unwrap();
        let server_first = format!(
            "r={client_nonce}srv-nonce-123,s={},i={}",
            B64.encode(&self.salt),
            self.iterations
        );
        let Step::Send(client_final) = client.step(server_first.as_bytes())? else {
            panic!("expected client-final");
        };
        let client_final = String::from_utf8(client_final).unwrap();
        let (without_proof, proof) = client_final.rsplit_once(",p=").unwrap();
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let client_signature = mac512(&self.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = B64
            .decode(proof)
            .unwrap()
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let reply = if Sha512::digest(&client_key).to_vec() == self.stored_key {
            format!(
                "v={}",
                B64.encode(mac512(&self.server_key, auth_message.as_bytes()))
            )
        } else {
            "e=invalid-proof".to_string()
        };
        client.step(reply.as_bytes())
    }
}

#[test]
fn sha512_round_trip() {
    let server = Server::new("s3cret");
    let mut c = SaslClient::new(Mechanism::ScramSha512, &creds("alice", "s3cret")).unwrap();
    assert_eq!(server.run(&mut c).unwrap(), Step::Done);
}

#[test]
fn sha512_wrong_password_is_rejected_without_leaking_it() {
    let server = Server::new("s3cret");
    let mut c = SaslClient::new(Mechanism::ScramSha512, &creds("alice", "wrong-pass")).unwrap();
    let err = server.run(&mut c).unwrap_err();
    assert!(matches!(err, SaslError::Rejected(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("invalid-proof") && text.contains("check the user name"),
        "{text}"
    );
    assert!(!text.contains("wrong-pass") && !text.contains("s3cret"));
}

#[test]
fn sha256_client_does_not_accept_sha512_server() {
    // A SHA-256 client against a SHA-512 server must fail, not succeed by accident.
    let server = Server::new("s3cret");
    let mut c = SaslClient::new(Mechanism::ScramSha256, &creds("alice", "s3cret")).unwrap();
    assert!(server.run(&mut c).is_err());
}

#[test]
fn malformed_server_first_messages_are_errors() {
    let n = RFC_NONCE;
    let long_i = format!("r={n}x,s=QSXCR+Q6sek8bf92,i={}", "9".repeat(40));
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty"),
        ("garbage".into(), "expected 'x=value'"),
        ("s=QSXCR+Q6sek8bf92,i=4096".into(), "no 'r='"),
        (format!("r={n}x,i=4096"), "no 's='"),
        (format!("r={n}x,s=QSXCR+Q6sek8bf92"), "no 'i='"),
        (
            "r=someoneelse,s=QSXCR+Q6sek8bf92,i=4096".into(),
            "does not start with the client nonce",
        ),
        (
            format!("r={n},s=QSXCR+Q6sek8bf92,i=4096"),
            "does not start with the client nonce",
        ),
        (format!("r={n}x,s=not*base64!,i=4096"), "not base64"),
        (format!("r={n}x,s=,i=4096"), "salt is empty"),
        (
            format!("r={n}x,s=QSXCR+Q6sek8bf92,i=4095"),
            "4095 SCRAM iterations",
        ),
        (
            format!("r={n}x,s=QSXCR+Q6sek8bf92,i=0"),
            "0 SCRAM iterations",
        ),
        (
            format!("r={n}x,s=QSXCR+Q6sek8bf92,i=1000001"),
            "1000001 SCRAM iterations",
        ),
        (long_i, "SCRAM iterations"),
        (format!("r={n}x,s=QSXCR+Q6sek8bf92,i=-1"), "not a number"),
        (format!("r={n}x,s=QSXCR+Q6sek8bf92,i=4k"), "not a number"),
        (
            format!("m=ext,r={n}x,s=QSXCR+Q6sek8bf92,i=4096"),
            "unsupported extension",
        ),
        (
            "e=invalid-proof".into(),
            "rejected SCRAM authentication: invalid-proof",
        ),
        (
            "e=other-error".into(),
            "rejected SCRAM authentication: other-error",
        ),
        (format!("e={}", "\u{7}x".repeat(200)), "?x?x"),
        (format!("r={n}x,,i=4096"), "expected 'x=value'"),
    ];
    for (msg, fragment) in cases {
        let mut c = rfc_client();
        c.initial();
        let err = c.step(msg.as_bytes()).expect_err(&msg);
        let text = err.to_string();
        assert!(text.contains(fragment), "{msg:?}: {text}");
        assert!(text.len() < 400, "error text is bounded: {}", text.len());
        assert!(!text.contains("pencil"));
    }
    let mut c = rfc_client();
    c.initial();
    assert!(c
        .step(&[0xff, 0xfe, b'r', b'='])
        .unwrap_err()
        .to_string()
        .contains("not UTF-8"));
}

#[test]
fn malformed_server_final_messages_are_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "empty"),
        (b"x", "expected 'x=value'"),
        (b"w=abc", "no 'v='"),
        (b"v=***", "not base64"),
        (b"e=invalid-proof", "invalid-proof"),
        (b"\xff", "not UTF-8"),
    ];
    for (msg, fragment) in cases {
        let mut c = rfc_client();
        c.initial();
        c.step(RFC_SERVER_FIRST.as_bytes()).unwrap();
        let text = c.step(msg).unwrap_err().to_string();
        assert!(text.contains(fragment), "{msg:?}: {text}");
    }
}

#[test]
fn step_before_initial_is_an_error() {
    let mut c = rfc_client();
    assert!(matches!(
        c.step(RFC_SERVER_FIRST.as_bytes()),
        Err(SaslError::OutOfOrder(_))
    ));
    // ...and does not poison the exchange.
    c.initial();
    assert!(matches!(
        c.step(RFC_SERVER_FIRST.as_bytes()),
        Ok(Step::Send(_))
    ));
}

#[test]
fn bad_nonce_or_user_is_rejected_up_front() {
    for (user, nonce) in [("", "abc"), ("u", ""), ("u", "a,b"), ("u", "a b")] {
        assert!(
            SaslClient::with_nonce(Mechanism::ScramSha256, &creds(user, "p"), nonce).is_err(),
            "{user:?} {nonce:?}"
        );
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic fuzz: many short messages built from SCRAM-ish fragments.
    let parts: &[&str] = &[
        "r=",
        "s=",
        "i=",
        "e=",
        "v=",
        ",",
        "=",
        "rOprNGfwEbeRWgbNEkqO",
        "4096",
        "QQ==",
        "é",
        "\0",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        let mut msg = String::new();
        for _ in 0..(seed % 8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            msg.push_str(parts[(seed % parts.len() as u64) as usize]);
        }
        seed = seed.wrapping_add(1);
        let mut c = rfc_client();
        c.initial();
        if let Ok(Step::Send(_)) = c.step(msg.as_bytes()) {
            let _ = c.step(msg.as_bytes());
        }
    }
}
