//! The consumer-protocol decoders: a member's subscription (JoinGroup metadata) and an
//! assignment (SyncGroup), both untrusted bytes from other members. What decodes must encode
//! again.
//!
//! Input: one selector byte (even: subscription, odd: assignment), then the bytes.
#![no_main]

use bytes::Bytes;
use kafka_observer::protocol::consumer_protocol::{Assignment, Subscription};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let buf = Bytes::copy_from_slice(rest);
    if which % 2 == 0 {
        if let Ok(s) = Subscription::decode(&buf) {
            let _ = s.encode();
        }
    } else if let Ok(a) = Assignment::decode(&buf) {
        let _ = a.encode();
    }
});
