//! Tests of the analyzer layer (sessions, events, logs): Zeek golden outputs, suricata-verify
//! captures, robustness, the bundled sample. One binary for shorter link times.

mod golden;
mod robustness;
mod sample;
mod session;
mod support;
mod suricata;
