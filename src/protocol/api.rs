//! Kafka API keys by name, and the names people know them by (for messages and metrics).

pub(crate) const PRODUCE: i16 = 0;
pub(crate) const FETCH: i16 = 1;
pub(crate) const LIST_OFFSETS: i16 = 2;
pub(crate) const METADATA: i16 = 3;
pub(crate) const OFFSET_COMMIT: i16 = 8;
pub(crate) const OFFSET_FETCH: i16 = 9;
pub(crate) const FIND_COORDINATOR: i16 = 10;
pub(crate) const JOIN_GROUP: i16 = 11;
pub(crate) const HEARTBEAT: i16 = 12;
pub(crate) const LEAVE_GROUP: i16 = 13;
pub(crate) const SYNC_GROUP: i16 = 14;
pub(crate) const DESCRIBE_GROUPS: i16 = 15;
pub(crate) const LIST_GROUPS: i16 = 16;
pub(crate) const SASL_HANDSHAKE: i16 = 17;
pub(crate) const API_VERSIONS: i16 = 18;
pub(crate) const INIT_PRODUCER_ID: i16 = 22;
pub(crate) const SASL_AUTHENTICATE: i16 = 36;

/// Every API this client speaks: (key, protocol name).
const NAMES: &[(i16, &str)] = &[
    (PRODUCE, "Produce"),
    (FETCH, "Fetch"),
    (LIST_OFFSETS, "ListOffsets"),
    (METADATA, "Metadata"),
    (OFFSET_COMMIT, "OffsetCommit"),
    (OFFSET_FETCH, "OffsetFetch"),
    (FIND_COORDINATOR, "FindCoordinator"),
    (JOIN_GROUP, "JoinGroup"),
    (HEARTBEAT, "Heartbeat"),
    (LEAVE_GROUP, "LeaveGroup"),
    (SYNC_GROUP, "SyncGroup"),
    (DESCRIBE_GROUPS, "DescribeGroups"),
    (LIST_GROUPS, "ListGroups"),
    (SASL_HANDSHAKE, "SaslHandshake"),
    (API_VERSIONS, "ApiVersions"),
    (INIT_PRODUCER_ID, "InitProducerId"),
    (SASL_AUTHENTICATE, "SaslAuthenticate"),
];

/// The protocol name of an API key ("Kafka API" for keys this client never sends).
pub(crate) fn api_name(key: i16) -> &'static str {
    NAMES
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("Kafka API", |(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::*;

    /// Each decoder's own key and name agree with the table.
    #[test]
    fn decoders_agree_with_the_table() {
        fn check<R: Response>() {
            assert_eq!(api_name(R::API_KEY), R::NAME, "key {}", R::API_KEY);
        }
        check::<ApiVersionsResponse>();
        check::<DescribeGroupsResponse>();
        check::<FindCoordinatorResponse>();
        check::<ListGroupsResponse>();
        check::<ListOffsetsResponse>();
        check::<MetadataResponse>();
        check::<OffsetFetchResponse>();
        check::<fetch::FetchResponse>();
        check::<heartbeat::HeartbeatResponse>();
        check::<join_group::JoinGroupResponse>();
        check::<leave_group::LeaveGroupResponse>();
        check::<offset_commit::OffsetCommitResponse>();
        check::<sync_group::SyncGroupResponse>();
        check::<SaslHandshakeResponse>();
        check::<SaslAuthenticateResponse>();
        check::<produce::ProduceResponse>();
        check::<init_producer_id::InitProducerIdResponse>();
        assert_eq!(api_name(FETCH), "Fetch");
        assert_eq!(api_name(99), "Kafka API");
    }
}
