//! Differential test of permessage-deflate: the same compressed frames (random messages,
//! context-takeover settings, corruption, invalid UTF-8, oversize) go to an endpoint
//! `Connection` and to the `Observer`, which must agree on every violation and every
//! inflated byte (`wscope_proto::fuzzing::check_deflate_agreement`, also the body of the
//! `deflate_diff` fuzz target).

use proptest::prelude::*;

use wscope_proto::fuzzing::{check_deflate_agreement, DeflateScript, ScriptMessage};
use wscope_proto::ProtocolError;

fn arb_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Text, mostly valid UTF-8, repetitive enough to compress with back-references.
        "(caf\u{e9} |au lait |\u{1f600}|abc){0,40}".prop_map(String::into_bytes),
        // Any bytes: invalid UTF-8 in text messages.
        proptest::collection::vec(any::<u8>(), 0..200),
        // Large and compressible: passes small caps while its frames stay small.
        (1usize..200).prop_map(|k| vec![b'z'; k * 1024]),
        // Valid text with one bad byte somewhere.
        (0usize..3000, any::<u8>()).prop_map(|(at, b)| {
            let mut v = b"0123456789".repeat(300);
            let i = at % v.len();
            v[i] = 0x80 | b;
            v
        }),
    ]
}

fn arb_message() -> impl Strategy<Value = ScriptMessage> {
    (
        any::<bool>(),
        arb_payload(),
        prop::bool::weighted(0.8),
        1usize..4,
        prop::option::weighted(0.15, (any::<usize>(), any::<u8>())),
    )
        .prop_map(
            |(text, payload, compress, fragments, corrupt)| ScriptMessage {
                text,
                payload,
                compress,
                fragments,
                corrupt,
            },
        )
}

fn arb_script() -> impl Strategy<Value = DeflateScript> {
    (
        any::<bool>(),
        prop::bool::weighted(0.7),
        prop_oneof![Just(100u64), Just(3000), Just(150_000), Just(64 << 20)],
        proptest::collection::vec(arb_message(), 1..6),
        prop_oneof![Just(1usize), 2usize..64, Just(4096)],
        prop_oneof![Just(1usize), 2usize..64, Just(1 << 20)],
    )
        .prop_map(
            |(client_no_context_takeover, sender_resets, cap, messages, e, o)| DeflateScript {
                client_no_context_takeover,
                // A sender that resets is always compatible; one that keeps its context only
                // when the agreement lets it (otherwise: corrupt data, on purpose, sometimes).
                sender_resets: sender_resets || !client_no_context_takeover,
                cap,
                messages,
                endpoint_read: e,
                observer_read: o,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn endpoint_and_observer_agree_on_compressed_messages(script in arb_script()) {
        check_deflate_agreement(&script);
    }
}

/// The mismatch the differential test is about: invalid UTF-8 inside a compressed text is
/// 1007 at the endpoint and the same `invalid_utf8` violation at the observer.
#[test]
fn invalid_utf8_inside_a_compressed_text_agrees() {
    for (endpoint_read, observer_read) in [(1, 4096), (4096, 1), (7, 13)] {
        let found = check_deflate_agreement(&DeflateScript {
            client_no_context_takeover: false,
            sender_resets: false,
            cap: 1 << 20,
            messages: vec![ScriptMessage {
                text: true,
                payload: b"caf\xc3 au lait".to_vec(),
                compress: true,
                fragments: 2,
                corrupt: None,
            }],
            endpoint_read,
            observer_read,
        });
        assert_eq!(found, Some(ProtocolError::InvalidUtf8));
    }
}
