//! Every response decoder of `kafka_observer::protocol` (add a new one to `DECODERS`), chosen by the input's first bytes.
//!
//! Input: API key (i16 BE), version (i16 BE), then a response body. An unknown key still picks
//! a decoder (key modulo the table), so mutations of the key keep exercising decoders. A body
//! that decodes as Fetch also has every partition's records run through the batch decoder, as
//! the consumer does. Nothing may panic, abort or allocate beyond the input's size.
#![no_main]

use bytes::Bytes;
use kafka_observer::protocol::fetch::FetchResponse;
use kafka_observer::protocol::heartbeat::HeartbeatResponse;
use kafka_observer::protocol::init_producer_id::InitProducerIdResponse;
use kafka_observer::protocol::join_group::JoinGroupResponse;
use kafka_observer::protocol::leave_group::LeaveGroupResponse;
use kafka_observer::protocol::offset_commit::OffsetCommitResponse;
use kafka_observer::protocol::produce::ProduceResponse;
use kafka_observer::protocol::records::BatchIter;
use kafka_observer::protocol::sync_group::SyncGroupResponse;
use kafka_observer::protocol::{
    decode_api_versions, decode_body, decode_body_bytes, decode_response_header,
    ApiVersionsResponse, DescribeGroupsResponse, FindCoordinatorResponse, ListGroupsResponse,
    ListOffsetsResponse, MetadataResponse, OffsetFetchResponse, Reader, Response,
    SaslAuthenticateResponse, SaslHandshakeResponse,
};
use libfuzzer_sys::fuzz_target;

/// Both decode paths (copying and sharing) must agree.
fn both<R: Response + PartialEq + std::fmt::Debug>(body: &Bytes, version: i16) -> Option<R> {
    let shared = decode_body_bytes::<R>(body, version);
    let copied = decode_body::<R>(body, version);
    assert_eq!(shared.is_ok(), copied.is_ok(), "decode paths disagree");
    shared.ok()
}

fn fetch(body: &Bytes, version: i16) {
    let Some(resp) = both::<FetchResponse>(body, version) else {
        return;
    };
    for topic in &resp.responses {
        for p in &topic.partitions {
            if let Some(records) = &p.records {
                for batch in BatchIter::new(records, 1 << 20) {
                    if batch.is_err() {
                        break;
                    }
                }
            }
        }
    }
}

/// (API key, decoder) for every response the project reads.
const DECODERS: &[(i16, fn(&Bytes, i16))] = &[
    (ApiVersionsResponse::API_KEY, |b, v| {
        let _ = both::<ApiVersionsResponse>(b, v);
        let _ = decode_api_versions(b, v);
    }),
    (SaslHandshakeResponse::API_KEY, |b, v| {
        let _ = both::<SaslHandshakeResponse>(b, v);
    }),
    (SaslAuthenticateResponse::API_KEY, |b, v| {
        let _ = both::<SaslAuthenticateResponse>(b, v);
    }),
    (MetadataResponse::API_KEY, |b, v| {
        let _ = both::<MetadataResponse>(b, v);
    }),
    (FindCoordinatorResponse::API_KEY, |b, v| {
        let _ = both::<FindCoordinatorResponse>(b, v);
    }),
    (ListOffsetsResponse::API_KEY, |b, v| {
        let _ = both::<ListOffsetsResponse>(b, v);
    }),
    (OffsetFetchResponse::API_KEY, |b, v| {
        let _ = both::<OffsetFetchResponse>(b, v);
    }),
    (OffsetCommitResponse::API_KEY, |b, v| {
        let _ = both::<OffsetCommitResponse>(b, v);
    }),
    (ListGroupsResponse::API_KEY, |b, v| {
        let _ = both::<ListGroupsResponse>(b, v);
    }),
    (DescribeGroupsResponse::API_KEY, |b, v| {
        let _ = both::<DescribeGroupsResponse>(b, v);
    }),
    (FetchResponse::API_KEY, fetch),
    (JoinGroupResponse::API_KEY, |b, v| {
        let _ = both::<JoinGroupResponse>(b, v);
    }),
    (SyncGroupResponse::API_KEY, |b, v| {
        let _ = both::<SyncGroupResponse>(b, v);
    }),
    (HeartbeatResponse::API_KEY, |b, v| {
        let _ = both::<HeartbeatResponse>(b, v);
    }),
    (LeaveGroupResponse::API_KEY, |b, v| {
        let _ = both::<LeaveGroupResponse>(b, v);
    }),
    (ProduceResponse::API_KEY, |b, v| {
        let _ = both::<ProduceResponse>(b, v);
    }),
    (InitProducerIdResponse::API_KEY, |b, v| {
        let _ = both::<InitProducerIdResponse>(b, v);
    }),
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let key = i16::from_be_bytes([data[0], data[1]]);
    let version = i16::from_be_bytes([data[2], data[3]]);
    let body = Bytes::copy_from_slice(&data[4..]);
    let decode = DECODERS
        .iter()
        .find(|(k, _)| *k == key)
        .unwrap_or(&DECODERS[key.unsigned_abs() as usize % DECODERS.len()])
        .1;
    decode(&body, version);
    // The same bytes as a whole frame: response header (both shapes), then whatever follows.
    for flexible in [false, true] {
        let _ = decode_response_header(&mut Reader::new(&data[4..]), flexible);
    }
});
