//! The connection settings: which of flag, variable and default wins, and what each refusal
//! names.

use super::*;
use crate::config::env::VarTable;

const BS: &str = "127.0.0.1:9092";

fn flags() -> KafkaFlags {
    KafkaFlags {
        bootstrap: Some(BS.into()),
        request_timeout: 30,
        connect_timeout: 10,
        max_frame_bytes: DEFAULT_FRAME_BYTES,
        ..KafkaFlags::default()
    }
}

fn ok(vars: &[(&str, &str)], f: &KafkaFlags) -> KafkaSettings {
    resolve(&VarTable::new(vars), f).unwrap()
}

fn err(vars: &[(&str, &str)], f: &KafkaFlags) -> String {
    resolve(&VarTable::new(vars), f).unwrap_err().to_string()
}

#[test]
fn bootstrap_flag_beats_the_binding_and_the_binding_implies_tls() {
    let none = flags();
    let s = ok(&[], &none);
    assert_eq!(s.bootstrap, [BrokerAddr::parse(BS).unwrap()]);
    assert_eq!(s.tls, None);
    let from_binding = KafkaFlags {
        bootstrap: None,
        ..flags()
    };
    let s = ok(&[(ENV_BROKERS, r#"["b1:9093","b2:9093"]"#)], &from_binding);
    assert_eq!(s.bootstrap.len(), 2);
    assert_eq!(s.tls, Some(TlsFiles::default()));
    // The flag wins, and then TLS is off unless asked for.
    let s = ok(&[(ENV_BROKERS, "b1:9093")], &none);
    assert_eq!(
        (s.bootstrap[0].to_string().as_str(), s.tls.is_some()),
        (BS, false)
    );
    let s = ok(
        &[(ENV_BROKERS, "b1:9093"), (ENV_TLS, "false")],
        &from_binding,
    );
    assert_eq!(s.tls, None);
    // A blank binding is no binding.
    assert_eq!(
        err(&[(ENV_BROKERS, "  ")], &from_binding),
        "The setting --bootstrap is invalid: no brokers given: pass --bootstrap HOST:PORT or set MESSAGEHUB_KAFKA_BROKERS_SASL."
    );
    // A bad list names where it came from.
    let e = err(&[(ENV_BROKERS, "b1")], &from_binding);
    assert!(
        e.starts_with("The broker list in MESSAGEHUB_KAFKA_BROKERS_SASL is invalid"),
        "{e}"
    );
}

/// `--tls`, `KAFKA_TLS`, and TLS on or the error.
type TlsCase = (
    Option<&'static str>,
    Option<&'static str>,
    Result<bool, &'static str>,
);

#[test]
fn tls_flag_beats_its_variable() {
    let cases: &[TlsCase] = &[
        (None, None, Ok(false)),
        (Some("true"), None, Ok(true)),
        (None, Some("yes"), Ok(true)),
        (Some("false"), Some("true"), Ok(false)),
        (None, Some(" "), Ok(false)),
        (
            Some("maybe"),
            None,
            Err("The setting --tls is invalid: expected true or false (also 1/0, yes/no, on/off), got 'maybe'."),
        ),
        (
            None,
            Some("maybe"),
            Err("The setting KAFKA_TLS is invalid: expected true or false (also 1/0, yes/no, on/off), got 'maybe'."),
        ),
    ];
    for (flag, value, want) in cases {
        let f = KafkaFlags {
            tls: flag.map(String::from),
            ..flags()
        };
        let vars: Vec<(&str, &str)> = value.map(|v| vec![(ENV_TLS, v)]).unwrap_or_default();
        let got = resolve(&VarTable::new(&vars), &f)
            .map(|s| s.tls.is_some())
            .map_err(|e| e.to_string());
        assert_eq!(got, want.map_err(String::from), "{flag:?} {value:?}");
    }
}

/// Variables, and the message.
type Refusal = (&'static [(&'static str, &'static str)], &'static str);

#[test]
fn user_password_and_mechanism() {
    let scram = KafkaFlags {
        username: Some("alice".into()),
        password: Some("pw".into()),
        sasl_mechanism: Some("scram-sha-512".into()),
        ..flags()
    };
    let s = ok(&[(ENV_USER, "bob"), (ENV_MECHANISM, "PLAIN")], &scram);
    assert_eq!(
        s.sasl,
        Some(Sasl::Password {
            mechanism: Mechanism::ScramSha512,
            username: "alice".into(),
            password: Secret::new("pw"),
        })
    );
    // From the variables; PLAIN when no mechanism is named (here allowed without TLS).
    let s = ok(
        &[
            (ENV_USER, "bob"),
            (ENV_PASSWORD, "secret"),
            (ENV_ALLOW_PLAIN, "on"),
        ],
        &flags(),
    );
    assert_eq!(
        s.sasl.as_ref().unwrap().as_credentials().0,
        Mechanism::Plain
    );
    assert!(s.allow_plain_without_tls);
    let cases: &[Refusal] = &[
        (
            &[(ENV_PASSWORD, "pw")],
            "The setting --username is invalid: SASL needs a user name: pass --username or set MESSAGEHUB_USER.",
        ),
        (
            &[(ENV_USER, "bob")],
            "The setting --password is invalid: SASL needs a password: pass --password or set MESSAGEHUB_PASSWORD.",
        ),
        (
            &[(ENV_MECHANISM, "GSSAPI")],
            "The setting KAFKA_SASL_MECHANISM is invalid: unknown SASL mechanism 'GSSAPI': use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER.",
        ),
        (
            &[(ENV_USER, "bob"), (ENV_PASSWORD, "pw")],
            "The setting --sasl-mechanism is invalid: PLAIN would send the password in clear text without TLS: add --tls, use SCRAM-SHA-256 or SCRAM-SHA-512, or pass --allow-plain-without-tls.",
        ),
        (
            &[(ENV_USER, "bob"), (ENV_PASSWORD, "pw"), (ENV_ALLOW_PLAIN, "perhaps")],
            "The setting KAFKA_ALLOW_PLAIN_WITHOUT_TLS is invalid: expected true or false (also 1/0, yes/no, on/off), got 'perhaps'.",
        ),
    ];
    for (vars, want) in cases {
        assert_eq!(err(vars, &flags()), *want, "{vars:?}");
    }
}

#[test]
fn iam_key_and_url_precedence() {
    let oauth = KafkaFlags {
        sasl_mechanism: Some("OAUTHBEARER".into()),
        tls: Some("true".into()),
        username: Some("ignored".into()),
        ..flags()
    };
    let iam = |vars: &[(&str, &str)], f: &KafkaFlags| match ok(vars, f).sasl {
        Some(Sasl::Iam {
            key,
            key_origin,
            url,
            url_origin,
        }) => (key.expose().to_string(), key_origin, url, url_origin),
        other => panic!("{other:?}"),
    };
    let all = [
        (ENV_PASSWORD, "from-password"),
        (ENV_IAM_API_KEY, "from-iam"),
        (ENV_IAM_URL, "https://iam.test/identity/token"),
    ];
    assert_eq!(
        iam(&all[1..2], &oauth),
        ("from-iam".into(), ENV_IAM_API_KEY, None, "--sasl-iam-url")
    );
    assert_eq!(
        iam(&all, &oauth),
        (
            "from-password".into(),
            ENV_PASSWORD,
            Some("https://iam.test/identity/token".into()),
            ENV_IAM_URL
        )
    );
    let flagged = KafkaFlags {
        password: Some("from-flag".into()),
        sasl_iam_url: Some("https://other/identity/token".into()),
        ..oauth.clone()
    };
    assert_eq!(
        iam(&all, &flagged),
        (
            "from-flag".into(),
            "--password",
            Some("https://other/identity/token".into()),
            "--sasl-iam-url"
        )
    );
    assert_eq!(
        err(&[], &oauth),
        "The setting --password is invalid: OAUTHBEARER needs an IBM Cloud API key: pass --password or set MESSAGEHUB_PASSWORD or IAM_API_KEY."
    );
    let clear = KafkaFlags {
        tls: None,
        ..oauth.clone()
    };
    assert_eq!(
        err(&all, &clear),
        "The setting --sasl-mechanism is invalid: OAUTHBEARER would send the access token in clear text without TLS: add --tls, or pass --allow-plain-without-tls."
    );
    // The consumers get user `token` and the key.
    let env = child_env(&ok(&all, &flagged), false);
    assert!(env.contains(&(ENV_USER.into(), "token".into())), "{env:?}");
    assert!(
        env.contains(&(ENV_PASSWORD.into(), "from-flag".into())),
        "{env:?}"
    );
    assert!(
        env.contains(&(ENV_MECHANISM.into(), "OAUTHBEARER".into())),
        "{env:?}"
    );
}

#[test]
fn tls_files_timeouts_and_frame_size() {
    let with_tls = KafkaFlags {
        tls: Some("true".into()),
        client_cert: Some("c.pem".into()),
        ..flags()
    };
    let s = ok(&[(ENV_CA_FILE, "/ca.pem")], &with_tls);
    let files = s.tls.clone().unwrap();
    assert_eq!(files.ca_file, Some(PathBuf::from("/ca.pem")));
    assert_eq!(files.client_cert, Some(PathBuf::from("c.pem")));
    let env = child_env(&s, true);
    assert_eq!(
        env,
        [
            (ENV_BROKERS.to_string(), BS.to_string()),
            (ENV_TLS.into(), "true".into()),
            (ENV_CA_FILE.into(), "/ca.pem".into()),
            (ENV_ALLOW_PLAIN.into(), "true".into()),
        ]
    );
    let flag_ca = KafkaFlags {
        ca_file: Some("/flag.pem".into()),
        ..with_tls.clone()
    };
    let s = ok(&[(ENV_CA_FILE, "/ca.pem")], &flag_ca);
    assert_eq!(s.tls.unwrap().ca_file, Some(PathBuf::from("/flag.pem")));
    let tls_off = "The setting --tls is invalid: a CA file or client certificate was given but TLS is off: add --tls.";
    assert_eq!(err(&[(ENV_CA_FILE, "/ca.pem")], &flags()), tls_off);
    let cert_only = KafkaFlags {
        tls: None,
        ..with_tls
    };
    assert_eq!(err(&[], &cert_only), tls_off);
    let bad = |f: KafkaFlags| err(&[], &f);
    assert_eq!(
        bad(KafkaFlags {
            request_timeout: 0,
            ..flags()
        }),
        "The setting --request-timeout is invalid: must be at least 1 second."
    );
    assert_eq!(
        bad(KafkaFlags {
            connect_timeout: 0,
            ..flags()
        }),
        "The setting --connect-timeout is invalid: must be at least 1 second."
    );
    for n in [0, MIN_FRAME_BYTES - 1, MAX_FRAME_BYTES + 1] {
        let e = bad(KafkaFlags {
            max_frame_bytes: n,
            ..flags()
        });
        assert_eq!(e, format!("The setting --max-frame-bytes is invalid: expected a size from 1024 (1 KiB) to 2147483647 (2 GiB), got {n}; the default is 104857600 (100 MiB)."));
    }
    let s = ok(&[], &flags());
    assert_eq!(
        (s.request_timeout, s.connect_timeout, s.max_frame_bytes),
        (
            Duration::from_secs(30),
            Duration::from_secs(10),
            DEFAULT_FRAME_BYTES
        )
    );
}

#[test]
fn brokers_are_given_by_the_flag_or_the_binding() {
    use std::os::unix::ffi::OsStringExt;
    let flag = Some(BS.to_string());
    assert_eq!(brokers_given(&VarTable::default(), &None), Ok(false));
    assert_eq!(
        brokers_given(&VarTable::new(&[(ENV_BROKERS, " ")]), &None),
        Ok(false)
    );
    assert_eq!(brokers_given(&VarTable::default(), &flag), Ok(true));
    assert_eq!(
        brokers_given(&VarTable::new(&[(ENV_BROKERS, BS)]), &None),
        Ok(true)
    );
    let bad = VarTable::default().with_raw(ENV_BROKERS, std::ffi::OsString::from_vec(vec![0xff]));
    // The flag given, the variable is not read.
    assert_eq!(brokers_given(&bad, &flag), Ok(true));
    let e = brokers_given(&bad, &None).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "The setting MESSAGEHUB_KAFKA_BROKERS_SASL is invalid: the value is not valid UTF-8"
        ),
        "{e}"
    );
}
