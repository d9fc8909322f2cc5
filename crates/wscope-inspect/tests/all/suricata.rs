//! The suricata-verify WebSocket captures: frames, messages and payloads their rules check.

use std::path::PathBuf;

use wscope_inspect::analyzer::AnalyzerConfig;
use wscope_inspect::event::{OwnedEvent, OwnedKind};
use wscope_proto::deflate::Inflater;
use wscope_proto::frame::OpCode;

use crate::support::*;

fn pcap(test: &str, file: &str) -> Option<PathBuf> {
    Some(corpus()?.join("suricata-verify").join(test).join(file))
}

/// Whole messages per direction: (opcode, application payload).
fn messages(events: &[OwnedEvent]) -> [Vec<(OpCode, Vec<u8>)>; 2] {
    let mut out: [Vec<(OpCode, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
    let mut cur: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut ctl: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for e in events {
        let d = e.dir.index();
        match &e.kind {
            OwnedKind::MessageData { data, .. } => cur[d].extend_from_slice(data),
            OwnedKind::FrameData { data, info } if info.opcode.is_control() => {
                ctl[d].extend_from_slice(data);
            }
            OwnedKind::Message { opcode, len, .. } => {
                let body = if opcode.is_control() {
                    core::mem::take(&mut ctl[d])
                } else {
                    core::mem::take(&mut cur[d])
                };
                assert_eq!(body.len() as u64, *len, "message len is the payload's");
                out[d].push((*opcode, body));
            }
            _ => {}
        }
    }
    out
}

fn frames(events: &[OwnedEvent]) -> Vec<(bool, wscope_proto::frame::FrameHeader, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            OwnedKind::Frame {
                header,
                header_bytes,
            } => Some((e.is_orig(), *header, header_bytes.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn basic_websockets() {
    let Some(p) = pcap("websocket", "basic_websockets.pcap") else {
        return;
    };
    let (ev, st) = run_file(&p, AnalyzerConfig::default());
    assert_eq!(st.sessions, 1);
    let fr = frames(&ev);
    assert_eq!(fr.len(), 17);
    assert!(fr.iter().all(|(_, h, _)| h.opcode == OpCode::TEXT && h.fin));
    let client: Vec<_> = fr.iter().filter(|f| f.0).collect();
    assert_eq!(client.len(), 3, "sid 4/5: three masked FIN client frames");
    assert!(client.iter().all(|(_, h, _)| h.mask.is_some()));
    assert!(client
        .iter()
        .all(|(_, _, b)| b[..2] == [0x81, 0x88] || b[0] == 0x81));
    assert_eq!(client[0].2[..2], [0x81, 0x88], "sid 1: header starts 81 88");
    // Exactly one frame with mask 0xe2b695ed, the client's "version,".
    let masked: Vec<_> = fr
        .iter()
        .filter(|(_, h, _)| h.mask.map(u32::from_be_bytes) == Some(3_803_616_749))
        .collect();
    assert_eq!(masked.len(), 1);
    assert_eq!(
        fr.iter().filter(|f| !f.0).count(),
        14,
        "sid 3: 14 server text frames"
    );
    let m = messages(&ev);
    assert_eq!(m[0][0].1, b"version,");
    assert_eq!(
        m[0].iter().filter(|(_, b)| b == b"version,").count(),
        1,
        "sid 6"
    );
    assert_eq!(m[1][0].1, b"connected,", "the frame coalesced with the 101");
    // sid 2/21: the server pdu "81 15 version,hybi-draft-13".
    let pos = m[1]
        .iter()
        .position(|(_, b)| b == b"version,hybi-draft-13")
        .unwrap();
    let server_hdrs: Vec<_> = fr.iter().filter(|f| !f.0).collect();
    assert_eq!(server_hdrs[pos].2, [0x81, 0x15]);
    assert_eq!(m[0][1].1, b"echo,test message");
    assert_eq!(
        m[1].iter()
            .filter(|(_, b)| b.starts_with(b"time,2023/11/10 05:56:"))
            .count(),
        11
    );
}

#[test]
fn compressed_inflates_with_context_takeover() {
    let Some(p) = pcap("websocket-compressed", "example_websocket.pcap") else {
        return;
    };
    let cfg = AnalyzerConfig {
        session: wscope_inspect::session::SessionConfig {
            digest: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let (ev, st) = run_file(&p, cfg);
    assert_eq!(st.sessions, 1);
    assert!(
        !ev.iter()
            .any(|e| matches!(e.kind, OwnedKind::Anomaly { .. })),
        "no anomaly: {:?}",
        ev.iter()
            .filter(|e| matches!(e.kind, OwnedKind::Anomaly { .. }))
            .collect::<Vec<_>>()
    );
    let m = messages(&ev);
    assert_eq!(m[1].len(), 10);
    assert!(m[1][0].1.starts_with(b"KEY="));
    for (op, body) in &m[1][1..] {
        assert_eq!(*op, OpCode::TEXT);
        assert!(
            body.starts_with(b"TOGGLE="),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    assert_eq!(
        m[1][9].1, b"TOGGLE=5659131662f54334",
        "the last message, sid 1"
    );
    // Digests are of the inflated payload.
    let digests: Vec<[u8; 32]> = ev
        .iter()
        .filter_map(|e| match &e.kind {
            OwnedKind::Message { sha256, .. } if !e.is_orig() => *sha256,
            _ => None,
        })
        .collect();
    use sha2::Digest as _;
    assert_eq!(
        digests[9],
        <[u8; 32]>::from(sha2::Sha256::digest(b"TOGGLE=5659131662f54334"))
    );
    // Without the sliding window of earlier messages, messages 3.. do not inflate.
    let raw: Vec<Vec<u8>> = {
        let mut v = Vec::new();
        for e in &ev {
            match &e.kind {
                OwnedKind::FrameData { data, info } if info.compressed => v.push(data.clone()),
                _ => {}
            }
        }
        v
    };
    assert_eq!(raw.len(), 10);
    let fresh_ok: Vec<bool> = raw
        .iter()
        .map(|r| {
            let mut inf = Inflater::new(true);
            inf.inflate(r, true, 1 << 20).is_ok() && inf.output().starts_with(b"KEY=") || {
                let mut inf = Inflater::new(true);
                inf.inflate(r, true, 1 << 20).is_ok() && inf.output().starts_with(b"TOGGLE=")
            }
        })
        .collect();
    assert!(fresh_ok[0] && fresh_ok[1]);
    assert!(
        fresh_ok[2..].iter().any(|ok| !ok),
        "later messages need context takeover"
    );
}

#[test]
fn control_frame_between_fragments() {
    let Some(p) = pcap("websocket-control-frag", "input.pcap") else {
        return;
    };
    let (ev, _) = run_file(&p, AnalyzerConfig::default());
    let m = messages(&ev);
    let client: Vec<_> = m[0].iter().collect();
    assert_eq!(client.len(), 2, "{client:?}");
    assert_eq!(client[0].0, OpCode::PING);
    assert_eq!(client[0].1, b"ping");
    assert_eq!(client[1].0, OpCode::TEXT);
    assert_eq!(
        client[1].1,
        b"MALWARE_DOWNLOAD cmd.exe /c powershell -enc AAAA"
    );
    assert_eq!(m[1], [(OpCode::PONG, b"ping".to_vec())]);
}

#[test]
fn ping_pong_opcodes() {
    let Some(p) = pcap("websocket-ping", "input.pcap") else {
        return;
    };
    let (ev, st) = run_file(&p, AnalyzerConfig::default());
    assert_eq!(st.connections, 2);
    assert_eq!(st.sessions, 1, "conn 2 is a TCP handshake and FIN only");
    let fr = frames(&ev);
    let pings: Vec<_> = fr.iter().filter(|f| f.1.opcode == OpCode::PING).collect();
    let pongs: Vec<_> = fr.iter().filter(|f| f.1.opcode == OpCode::PONG).collect();
    assert_eq!(pings.len(), 1);
    assert_eq!(pongs.len(), 1);
    assert!(pings[0].0 && pings[0].1.payload_len == 0 && pings[0].1.mask.is_none());
    assert!(!pongs[0].0);
    let m = messages(&ev);
    assert!(m[1].contains(&(OpCode::TEXT, b"\"who\"".to_vec())));
    // The unmasked client ping is an anomaly (Suricata says nothing).
    assert!(ev.iter().any(|e| e.is_orig()
        && matches!(&e.kind, OwnedKind::Anomaly { name, .. } if name.contains("mask"))));
}
