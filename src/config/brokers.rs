//! Bootstrap broker lists, in every shape they arrive in.
//!
//! Event Streams' Code Engine binding flattens a JSON array into `MESSAGEHUB_KAFKA_BROKERS_SASL`
//! (`["h1:9093","h2:9093"]`), people type `h1:9093,h2:9093` on the command line, and the IBM
//! sample simply deletes `[`, `]` and `"` and splits on commas — so half-mangled variants exist
//! in the wild too. One forgiving parser accepts all of them, while still rejecting entries that
//! cannot be a broker, with a message that names the source and the offending entry.

use std::fmt;
use std::net::Ipv6Addr;

use super::ConfigError;

/// Why one `host:port` entry is not a broker address; each message says how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerAddrError {
    #[error("expected host:port, got '{entry}' (an empty entry); write it like 'broker-0.example.com:9093'")]
    Empty { entry: String },
    #[error("expected [ipv6]:port, got '{entry}' (no closing ']'); write it like '[::1]:9092'")]
    Unclosed { entry: String },
    #[error("'{inside}' in '{entry}' is not an IPv6 address; only IPv6 literals go in brackets, e.g. '[::1]:9092'")]
    NotIpv6 { entry: String, inside: String },
    #[error("expected [ipv6]:port, got '{entry}' (no port); add it, e.g. '[{inside}]:9092'")]
    NoIpv6Port { entry: String, inside: String },
    #[error("expected host:port, got '{entry}' (no port); add it, e.g. '{body}:9093'")]
    NoPort { entry: String, body: String },
    #[error(
        "expected host:port, got '{entry}'; an IPv6 address needs brackets, e.g. '[::1]:9092'"
    )]
    BareIpv6 { entry: String },
    #[error("expected host:port, got '{entry}' (the host is empty); write it like 'broker-0.example.com:9093'")]
    EmptyHost { entry: String },
    #[error("expected host:port, got '{entry}' (the host '{host}' has characters a host name cannot have)")]
    BadHost { entry: String, host: String },
    #[error(
        "expected host:port, got '{entry}' (the port '{port}' is not a number from 1 to 65535)"
    )]
    BadPort { entry: String, port: String },
}

/// One bootstrap broker. `host` holds an IPv6 literal without brackets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerAddr {
    /// Host name, IPv4 literal, or IPv6 literal (no brackets).
    pub host: String,
    /// TCP port, never 0.
    pub port: u16,
}

impl fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl BrokerAddr {
    /// Parses one strict `host:port` / `[ipv6]:port` entry (an optional `SCHEME://` prefix, as
    /// in Kafka listener strings, is ignored). The error explains the problem and the fix.
    pub fn parse(entry: &str) -> Result<Self, BrokerAddrError> {
        let entry = entry.trim();
        let body = match entry.find("://") {
            Some(i) => &entry[i + 3..],
            None => entry,
        };
        if body.is_empty() {
            return Err(BrokerAddrError::Empty {
                entry: entry.into(),
            });
        }
        let (host, port) = if let Some(rest) = body.strip_prefix('[') {
            let Some((inside, after)) = rest.split_once(']') else {
                return Err(BrokerAddrError::Unclosed {
                    entry: entry.into(),
                });
            };
            if inside.parse::<Ipv6Addr>().is_err() {
                return Err(BrokerAddrError::NotIpv6 {
                    entry: entry.into(),
                    inside: inside.into(),
                });
            }
            let Some(port) = after.strip_prefix(':') else {
                return Err(BrokerAddrError::NoIpv6Port {
                    entry: entry.into(),
                    inside: inside.into(),
                });
            };
            (inside, port)
        } else {
            let Some((host, port)) = body.rsplit_once(':') else {
                return Err(BrokerAddrError::NoPort {
                    entry: entry.into(),
                    body: body.into(),
                });
            };
            if host.contains(':') {
                return Err(BrokerAddrError::BareIpv6 {
                    entry: entry.into(),
                });
            }
            (host, port)
        };
        if host.is_empty() {
            return Err(BrokerAddrError::EmptyHost {
                entry: entry.into(),
            });
        }
        if !host.contains(':')
            && !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return Err(BrokerAddrError::BadHost {
                entry: entry.into(),
                host: host.into(),
            });
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => {
                return Err(BrokerAddrError::BadPort {
                    entry: entry.into(),
                    port: port.into(),
                })
            }
        };
        Ok(BrokerAddr {
            host: host.to_string(),
            port,
        })
    }
}

/// Parses a bootstrap list: a JSON array of strings, or entries separated by commas and/or
/// whitespace, tolerating stray `[`, `]` and `"` around entries. Duplicates are dropped, order
/// is kept. `origin` names where the text came from (e.g. `--bootstrap`,
/// `MESSAGEHUB_KAFKA_BROKERS_SASL`) and appears in errors.
pub(crate) fn parse_brokers(text: &str, origin: &str) -> Result<Vec<BrokerAddr>, ConfigError> {
    let err = |message: String| ConfigError::Brokers {
        origin: origin.to_string(),
        message,
    };
    let trimmed = text.trim();
    // `["h1:9093", …` is meant as JSON (the Event Streams binding): broken JSON is refused
    // instead of being read loosely into half an address that fails later as a DNS error.
    let meant_as_json = trimmed
        .strip_prefix('[')
        .is_some_and(|rest| rest.trim_start().starts_with(['"', ']']));
    let entries: Vec<String> = match serde_json::from_str::<serde_json::Value>(trimmed) {
        Err(e) if meant_as_json => {
            return Err(err(format!(
                "it starts like a JSON array but is not valid JSON ({e}); write it like [\"host:9093\",\"host2:9093\"] or host:9093,host2:9093"
            )))
        }
        Ok(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                other => Err(err(format!(
                    "the JSON array must hold strings like \"host:9093\", got {other}"
                ))),
            })
            .collect::<Result<_, _>>()?,
        _ => loose_entries(text),
    };
    let mut out: Vec<BrokerAddr> = Vec::new();
    for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let addr = BrokerAddr::parse(entry).map_err(|e| err(e.to_string()))?;
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    if out.is_empty() {
        return Err(err(format!(
            "no brokers found in '{}'; give at least one host:port, e.g. 'broker-0.example.com:9093'",
            text.trim()
        )));
    }
    Ok(out)
}

/// Splits on commas and whitespace, removes every `"`, and peels unbalanced brackets left over
/// from a flattened array (`[h1:9093` / `h2:9093]`) without touching `[::1]:9092`.
fn loose_entries(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .map(|token| {
            let mut t: String = token.chars().filter(|&c| c != '"' && c != '\'').collect();
            while t.starts_with('[') && t.matches('[').count() > t.matches(']').count() {
                t.remove(0);
            }
            while t.ends_with(']') && t.matches(']').count() > t.matches('[').count() {
                t.pop();
            }
            // A one-element array: "[h1:9093]" is balanced but is not an IPv6 literal.
            if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                if inner.parse::<Ipv6Addr>().is_err() && BrokerAddr::parse(inner).is_ok() {
                    t = inner.to_string();
                }
            }
            t
        })
        .filter(|t| !t.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(host: &str, port: u16) -> BrokerAddr {
        BrokerAddr {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn accepted_shapes() {
        let two = vec![b("h1", 9093), b("h2", 9093)];
        let cases: Vec<(&str, Vec<BrokerAddr>)> = vec![
            (r#"["h1:9093","h2:9093"]"#, two.clone()),
            (r#"[ "h1:9093" , "h2:9093" ]"#, two.clone()),
            ("h1:9093,h2:9093", two.clone()),
            ("h1:9093, h2:9093", two.clone()),
            ("h1:9093 h2:9093\n", two.clone()),
            ("  h1:9093,,h2:9093,  ", two.clone()),
            // What the IBM sample's stripping tolerates: half-stripped arrays.
            ("[h1:9093,h2:9093]", two.clone()),
            (r#""h1:9093","h2:9093""#, two.clone()),
            ("[h1:9093]", vec![b("h1", 9093)]),
            ("h1:9093,h1:9093,h2:9093", two.clone()),
            (
                "broker-0-abc.kafka.svc01.us-south.eventstreams.cloud.ibm.com:9093",
                vec![b(
                    "broker-0-abc.kafka.svc01.us-south.eventstreams.cloud.ibm.com",
                    9093,
                )],
            ),
            ("127.0.0.1:9092", vec![b("127.0.0.1", 9092)]),
            ("[::1]:9092", vec![b("::1", 9092)]),
            (
                r#"["[::1]:9092","h1:9093"]"#,
                vec![b("::1", 9092), b("h1", 9093)],
            ),
            ("[[::1]:9092,h1:9093]", vec![b("::1", 9092), b("h1", 9093)]),
            ("[fe80::1:2]:9092", vec![b("fe80::1:2", 9092)]),
            ("SASL_SSL://h1:9093", vec![b("h1", 9093)]),
            ("kafka_1:65535", vec![b("kafka_1", 65535)]),
        ];
        for (input, want) in cases {
            let got = parse_brokers(input, "--bootstrap")
                .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn rejected_inputs_explain_themselves() {
        let cases: &[(&str, &str)] = &[
            ("", "no brokers found"),
            ("  ", "no brokers found"),
            ("[]", "no brokers found"),
            (r#"[""]"#, "no brokers found"),
            (", ,", "no brokers found"),
            ("foo", "expected host:port, got 'foo'"),
            ("h1:9093,foo", "expected host:port, got 'foo'"),
            (":9093", "host is empty"),
            ("h1:", "port '' is not a number"),
            ("h1:abc", "port 'abc' is not a number"),
            ("h1:0", "port '0'"),
            ("h1:65536", "port '65536'"),
            ("::1:9092", "needs brackets"),
            ("[::1]", "no port"),
            ("[::1:9092", "needs brackets"),
            ("[nothost]:9092", "not an IPv6 address"),
            ("h 1:9093", "expected host:port, got 'h'"),
            ("ho/st:9093", "characters a host name cannot have"),
            ("[1, 2]", "must hold strings"),
            (r#"["a:1","#, "not valid JSON"),
            (r#"["h1:9093",h2:9093"#, "not valid JSON"),
            (r#"[ "h1:9093" "h2:9093"]"#, "not valid JSON"),
            ("[]]", "not valid JSON"),
        ];
        for (input, want) in cases {
            let err = parse_brokers(input, "MESSAGEHUB_KAFKA_BROKERS_SASL")
                .expect_err(&format!("{input:?} should fail"));
            let text = err.to_string();
            assert!(text.contains(want), "{input:?}: {text}");
            assert!(text.contains("MESSAGEHUB_KAFKA_BROKERS_SASL"), "{text}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["h1:9093", "[::1]:9092", "10.0.0.1:1"] {
            let addr = BrokerAddr::parse(s).unwrap();
            assert_eq!(addr.to_string(), s);
        }
        // Strict parsing (no bracket peeling) reports an unclosed IPv6 literal as such.
        assert!(BrokerAddr::parse("[::1:9092")
            .unwrap_err()
            .to_string()
            .contains("no closing ']'"));
    }

    #[test]
    fn error_is_a_sentence() {
        let text = parse_brokers("foo", "--bootstrap").unwrap_err().to_string();
        assert!(text.starts_with("The broker list in --bootstrap is invalid: "));
        assert!(text.ends_with('.'));
    }
}
