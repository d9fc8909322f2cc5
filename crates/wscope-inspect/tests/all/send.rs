//! The types a program keeps or hands to another thread are `Send`: an analyzer, a capture
//! reader and the sinks built in one thread and run in another (or held across an `.await`).
//! A type that stops being `Send` fails to compile here.

fn send<T: Send>() {}

#[test]
fn analyzers_captures_sinks_and_their_parts_can_move_to_another_thread() {
    use wscope_inspect::*;
    send::<Analyzer>();
    send::<AnalyzerConfig>();
    send::<analyzer::Error>();
    send::<Stats>();
    send::<capture::Capture>();
    send::<capture::CaptureReader<std::fs::File>>();
    send::<decode::Decoder>();
    send::<tcp::FlowTable<analyzer::Slot>>();
    send::<session::Session>();
    send::<http2::H2Conn>();
    send::<tls::TlsLayer>();
    send::<tls::keylog::KeyLog>();
    send::<tls::keylog::KeyLogFollower>();
    send::<uid::UidGenerator>();
    send::<sink::VecSink>();
    send::<log::ZeekLogs<std::fs::File>>();
    // Not when it writes into a worker's in-memory output (the `LocalWriter` of a parallel
    // run stays in its thread), but with any `Send` writer.
    send::<log::json::JsonLines<std::fs::File>>();
    send::<log::json::JsonLines<std::io::Stdout>>();
    #[cfg(feature = "live")]
    send::<live::LiveCapture>();
}
