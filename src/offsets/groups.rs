//! Which consumer groups exist: ListGroups asked of every broker, since each broker lists only
//! the groups it coordinates.

use std::collections::BTreeSet;

use futures_util::future::join_all;
use kafka_protocol::messages::ListGroupsRequest;

use super::OffsetsError;
use crate::cluster::Cluster;
use crate::protocol::error::{code, ErrorCode};
use crate::protocol::list_groups::ListGroupsResponse;

/// Names of every consumer group (protocol type `consumer`, or none for groups that only
/// commit offsets), sorted. Fails if any broker could not answer: a partial list would silently
/// hide groups.
pub(crate) async fn list_groups(cluster: &Cluster) -> Result<Vec<String>, OffsetsError> {
    let md = cluster.refresh_metadata(Some(&[])).await?;
    let nodes: Vec<i32> = md.brokers.keys().copied().collect();
    let asks = nodes.iter().map(|n| async move {
        let conn = cluster.broker(*n).await?;
        let resp: ListGroupsResponse = cluster
            .call(&conn, |_| ListGroupsRequest::default())
            .await?;
        if resp.error_code != code::NONE {
            return Err(OffsetsError::Broker {
                api: "ListGroups",
                addr: conn.addr().to_string(),
                code: ErrorCode(resp.error_code),
            });
        }
        Ok(resp.groups)
    });
    let mut names = BTreeSet::new();
    for answer in join_all(asks).await {
        for g in answer? {
            if g.protocol_type.is_empty() || g.protocol_type == "consumer" {
                names.insert(g.group_id);
            }
        }
    }
    Ok(names.into_iter().collect())
}
