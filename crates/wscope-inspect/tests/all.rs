//! Integration tests of wscope-inspect, in one binary (shorter link times): capture reading,
//! decoding, flows and reassembly, then the analyzer layer (sessions, events, logs) against
//! Zeek golden outputs, suricata-verify captures, the corpus and the bundled sample.

#[path = "all/capture.rs"]
mod capture;
#[path = "all/corpus.rs"]
mod corpus;
#[path = "all/decode.rs"]
mod decode;
#[path = "all/events.rs"]
mod events;
#[path = "all/flows.rs"]
mod flows;
#[path = "all/golden.rs"]
mod golden;
#[path = "all/http2.rs"]
mod http2;
#[path = "all/parallel.rs"]
mod parallel;
#[path = "all/reassembly.rs"]
mod reassembly;
#[path = "all/robustness.rs"]
mod robustness;
#[path = "all/sample.rs"]
mod sample;
#[path = "all/seeds.rs"]
mod seeds;
#[path = "all/send.rs"]
mod send;
#[path = "all/session.rs"]
mod session;
#[path = "all/source.rs"]
mod source;
#[path = "all/support.rs"]
mod support;
#[path = "all/suricata.rs"]
mod suricata;
#[path = "all/tls.rs"]
mod tls;
