//! One round of FindCoordinator for many groups: one batched request when the broker supports
//! v4, else one per group, sent together. The request and the reading of its answer are pure;
//! the glue around them only sends.

use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::protocol::StrBytes;

use super::{Cluster, ClusterError};
use crate::protocol::error::{code, ErrorCode};
use crate::protocol::find_coordinator::FindCoordinatorResponse;
use crate::wire::WireError;

/// Where a coordinator is: node id, host, port.
pub(super) type Found = (i32, String, i32);

/// The FindCoordinator request for `groups` (all of them when `batched`, else the first one)
/// at version `v`.
pub(super) fn request(groups: &[String], batched: bool, v: i16) -> FindCoordinatorRequest {
    if batched {
        return FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(
                groups
                    .iter()
                    .map(|g| StrBytes::from_string(g.clone()))
                    .collect(),
            );
    }
    let key = StrBytes::from_string(groups.first().cloned().unwrap_or_default());
    let req = FindCoordinatorRequest::default().with_key(key);
    if v >= 1 {
        req.with_key_type(0)
    } else {
        req
    }
}

/// Per group, where its coordinator is or why the broker would not say (pure). `asked` is the
/// group of a single-key request (v0–3 answers do not repeat the key); `None` for v4+.
pub(super) fn answers(
    asked: Option<&str>,
    resp: FindCoordinatorResponse,
) -> Vec<(String, Result<Found, ClusterError>)> {
    resp.coordinators
        .into_iter()
        .map(|c| {
            let group = match (c.key.is_empty(), asked) {
                (true, Some(a)) => a.to_string(),
                _ => c.key,
            };
            let answer = if c.error_code != code::NONE {
                Err(ClusterError::Coordinator {
                    group: group.clone(),
                    code: ErrorCode(c.error_code),
                    message: c.error_message,
                })
            } else {
                Ok((c.node_id, c.host, c.port))
            };
            (group, answer)
        })
        .collect()
}

/// One round for `groups`: an answer for each of them.
pub(super) async fn find(
    cluster: &Cluster,
    groups: Vec<String>,
) -> Vec<(String, Result<i32, ClusterError>)> {
    let conn = match cluster.any().await {
        Ok(c) => c,
        Err(e) => return all_failed(&groups, e),
    };
    let batched = matches!(
        conn.version::<FindCoordinatorRequest, FindCoordinatorResponse>(),
        Ok(v) if v >= 4
    );
    let mut read: Vec<(String, Result<Found, ClusterError>)> = Vec::new();
    if batched {
        match cluster.call(&conn, |v| request(&groups, true, v)).await {
            Ok(resp) => read.extend(answers(None, resp)),
            Err(e) => return all_failed(&groups, e),
        }
    } else {
        for g in &groups {
            let one = std::slice::from_ref(g);
            match cluster.call(&conn, |v| request(one, false, v)).await {
                Ok(resp) => read.extend(answers(Some(g), resp)),
                Err(e) => read.push((g.clone(), Err(e.into()))),
            }
        }
    }
    // The coordinator may be a broker the metadata cache has not seen yet.
    cluster.learn_brokers(
        read.iter()
            .filter_map(|(_, a)| a.as_ref().ok().cloned())
            .collect(),
    );
    groups
        .into_iter()
        .map(|g| {
            let answer = match read.iter().position(|(k, _)| *k == g) {
                Some(i) => read.swap_remove(i).1.map(|(node, _, _)| node),
                None => Err(ClusterError::NoCoordinator),
            };
            (g, answer)
        })
        .collect()
}

fn all_failed(groups: &[String], e: WireError) -> Vec<(String, Result<i32, ClusterError>)> {
    groups
        .iter()
        .map(|g| (g.clone(), Err(ClusterError::Wire(e.clone()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::find_coordinator::Coordinator;
    use crate::retry::Retriable;

    fn coord(key: &str, node: i32, error: i16, message: Option<&str>) -> Coordinator {
        Coordinator {
            key: key.into(),
            node_id: node,
            host: format!("h{node}"),
            port: 9000 + node,
            error_code: error,
            error_message: message.map(Into::into),
        }
    }

    #[test]
    fn answers_table() {
        type Want = Result<(i32, String, i32), (String, bool)>;
        let found = |n: i32| Ok((n, format!("h{n}"), 9000 + n));
        let failed = |m: &str, retriable| Err((m.to_string(), retriable));
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Vec<Coordinator>,
            Vec<(&'a str, Want)>,
        );
        let cases: Vec<Case> = vec![
            (
                "batched, both found",
                None,
                vec![coord("a", 1, 0, None), coord("b", 2, 0, None)],
                vec![("a", found(1)), ("b", found(2))],
            ),
            (
                "single key: the answer has no key",
                Some("g"),
                vec![coord("", 3, 0, None)],
                vec![("g", found(3))],
            ),
            (
                "loading: retriable, message kept",
                None,
                vec![coord("a", -1, 14, Some("loading"))],
                vec![(
                    "a",
                    failed(
                        "FindCoordinator for group 'a': COORDINATOR_LOAD_IN_PROGRESS (loading)",
                        true,
                    ),
                )],
            ),
            (
                "denied: final",
                Some("g"),
                vec![coord("", -1, 30, None)],
                vec![(
                    "g",
                    failed(
                        "FindCoordinator for group 'g': GROUP_AUTHORIZATION_FAILED",
                        false,
                    ),
                )],
            ),
        ];
        for (name, asked, coordinators, want) in cases {
            let resp = FindCoordinatorResponse {
                throttle_time_ms: 0,
                coordinators,
            };
            let got: Vec<(String, Want)> = answers(asked, resp)
                .into_iter()
                .map(|(g, a)| (g, a.map_err(|e| (e.to_string(), e.is_retriable()))))
                .collect();
            let want: Vec<(String, Want)> =
                want.into_iter().map(|(g, w)| (g.to_string(), w)).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn requests_for_each_version() {
        let groups = vec!["a".to_string(), "b".to_string()];
        let batched = request(&groups, true, 4);
        assert_eq!(batched.coordinator_keys.len(), 2);
        assert_eq!(batched.key_type, 0);
        let v0 = request(&groups, false, 0);
        assert_eq!(v0.key.as_str(), "a");
        assert!(v0.coordinator_keys.is_empty());
        let v1 = request(&groups, false, 1);
        assert_eq!((v1.key.as_str(), v1.key_type), ("a", 0));
    }
}
