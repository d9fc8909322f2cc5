//! Integration tests of wscope-inspect, in one binary (shorter link times).

#[path = "suite/capture.rs"]
mod capture;
#[path = "suite/corpus.rs"]
mod corpus;
#[path = "suite/decode.rs"]
mod decode;
#[path = "suite/flows.rs"]
mod flows;
#[path = "suite/reassembly.rs"]
mod reassembly;
#[path = "suite/seeds.rs"]
mod seeds;
#[path = "suite/support.rs"]
mod support;
