//! The library API: run the analyzer over a capture with a closure sink, and the same events
//! through the Net::Inspect-style callbacks.
//!
//! ```text
//! cargo run -p wscope-inspect --example inspect_lib -- samples/websocket-demo.pcap
//! ```

use wscope_inspect::analyzer::{Analyzer, AnalyzerConfig};
use wscope_inspect::capture::Capture;
use wscope_inspect::event::{Event, EventKind};
use wscope_inspect::sink::{FrameInfo, InspectAdapter, WsInspect};
use wscope_inspect::tcp::ConnMeta;
use wscope_proto::role::Direction;

/// Prints Net::Inspect-style callbacks.
struct Printer;

impl WsInspect for Printer {
    fn in_wsctl(&mut self, c: &ConnMeta, d: Direction, p: &[u8], i: Option<&FrameInfo<'_>>) {
        match i {
            Some(i) => println!("  in_wsctl  {} {d:?} {p:?} {i:02x?}", c.uid),
            None => println!("  in_wsctl  {} {d:?} end of connection", c.uid),
        }
    }

    fn in_wsdata(&mut self, c: &ConnMeta, d: Direction, p: &[u8], eom: bool, i: &FrameInfo<'_>) {
        println!(
            "  in_wsdata {} {d:?} len={} eom={eom} {i:02x?}",
            c.uid,
            p.len()
        );
    }
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "samples/websocket-demo.pcap".to_string());
    let analyzer = Analyzer::new(AnalyzerConfig::default());

    // 1. A closure sink: Zeek's events.
    let mut capture = Capture::from_paths([&path]);
    let stats = analyzer.run(&mut capture, &mut |ev: &Event<'_>| match &ev.kind {
        EventKind::Established(up, _) => println!("{} established {:?}", ev.conn.uid, up.uri()),
        EventKind::Message { opcode, len, .. } => {
            println!(
                "{} message is_orig={} opcode={} len={len}",
                ev.conn.uid,
                ev.is_orig(),
                opcode.0
            );
        }
        _ => {}
    });
    let stats = match stats {
        Ok(stats) => stats,
        Err(e) => {
            eprintln!("inspect_lib: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "{} sessions, {} messages",
        stats.sessions,
        stats.message_count()
    );

    // 2. The Net::Inspect view.
    let mut capture = Capture::from_paths([&path]);
    let mut adapter = InspectAdapter::new(Printer);
    if let Err(e) = analyzer.run(&mut capture, &mut adapter) {
        eprintln!("inspect_lib: {e}");
    }
}
