//! Capture reading: formats, link types, timestamps, streaming, several files, bad input.

use std::io::{Cursor, Read};

use wscope_inspect::capture::{Capture, CaptureErrorKind, CaptureReader, Format, LinkType, Source};
use wscope_inspect::decode::TcpFlags;
use wscope_proto::time::Instant;
use wscope_test_support::capture::{encode_tcp, Framing, PcapNgWriter, PcapWriter, TcpSpec};

use crate::support::{addr, Rng};

fn syn_packet(framing: Framing) -> Vec<u8> {
    let mut v = Vec::new();
    let spec = TcpSpec::new(addr("10.0.0.1:40000"), addr("10.0.0.2:80"))
        .seq(7)
        .flags(TcpFlags::SYN);
    encode_tcp(framing, &spec, &mut v).unwrap();
    v
}

type Read1 = (Instant, LinkType, Vec<u8>, u32);

fn read_all(bytes: &[u8]) -> (Vec<Read1>, Option<CaptureErrorKind>) {
    let mut out = Vec::new();
    let mut r = match CaptureReader::with_buffer_len(Cursor::new(bytes.to_vec()), "mem", 1 << 16) {
        Ok(r) => r,
        Err(e) => return (out, Some(e.kind())),
    };
    loop {
        match r.next_packet() {
            Ok(Some(p)) => out.push((p.ts, p.link, p.data.to_vec(), p.orig_len)),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e.kind())),
        }
    }
}

/// A classic pcap written by hand, in either byte order and time precision.
fn manual_pcap(big_endian: bool, nanos: bool, link: u32, packets: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let magic: u32 = if nanos { 0xA1B2_3C4D } else { 0xA1B2_C3D4 };
    let w32 = |v: &mut Vec<u8>, x: u32| {
        if big_endian {
            v.extend_from_slice(&x.to_be_bytes())
        } else {
            v.extend_from_slice(&x.to_le_bytes())
        }
    };
    let w16 = |v: &mut Vec<u8>, x: u16| {
        if big_endian {
            v.extend_from_slice(&x.to_be_bytes())
        } else {
            v.extend_from_slice(&x.to_le_bytes())
        }
    };
    let mut v = Vec::new();
    w32(&mut v, magic);
    w16(&mut v, 2);
    w16(&mut v, 4);
    w32(&mut v, 0);
    w32(&mut v, 0);
    w32(&mut v, 65535);
    w32(&mut v, link);
    for (sec, frac, data) in packets {
        w32(&mut v, *sec);
        w32(&mut v, *frac);
        w32(&mut v, data.len() as u32);
        w32(&mut v, data.len() as u32);
        v.extend_from_slice(data);
    }
    v
}

#[test]
fn pcap_round_trip_keeps_time_link_and_bytes() {
    let pkt = syn_packet(Framing::Ethernet);
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap();
    w.write_packet(Instant::from_micros(1_500_000_123_456), &pkt)
        .unwrap();
    w.write_packet(Instant::from_micros(1_500_000_999_999), &pkt)
        .unwrap();
    let (pkts, err) = read_all(&w.into_inner());
    assert_eq!(err, None);
    assert_eq!(pkts.len(), 2);
    assert_eq!(pkts[0].0, Instant::from_micros(1_500_000_123_456));
    assert_eq!(pkts[1].0, Instant::from_micros(1_500_000_999_999));
    assert_eq!(pkts[0].1, LinkType::ETHERNET);
    assert_eq!(pkts[0].2, pkt);
}

#[test]
fn big_endian_and_nanosecond_pcaps() {
    let pkt = syn_packet(Framing::Raw);
    for big in [false, true] {
        for nanos in [false, true] {
            let frac = if nanos { 123_456_789 } else { 123_456 };
            let bytes = manual_pcap(big, nanos, 101, &[(10, frac, &pkt)]);
            let (pkts, err) = read_all(&bytes);
            assert_eq!(err, None, "big={big} nanos={nanos}");
            assert_eq!(pkts.len(), 1);
            assert_eq!(
                pkts[0].0,
                Instant::from_micros(10_123_456),
                "big={big} nanos={nanos}"
            );
            assert_eq!(pkts[0].1, LinkType::RAW);
            assert_eq!(pkts[0].2, pkt);
        }
    }
}

#[test]
fn pcapng_interfaces_have_their_own_link_type_and_resolution() {
    let eth = syn_packet(Framing::Ethernet);
    let raw = syn_packet(Framing::Raw);
    let sll = syn_packet(Framing::LinuxSll2);
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    let i0 = w.add_interface(LinkType::ETHERNET, 6).unwrap();
    let i1 = w.add_interface(LinkType::RAW, 9).unwrap();
    let i2 = w.add_interface(LinkType::LINUX_SLL2, 0x80 | 20).unwrap();
    w.write_packet_units(i0, 5_000_001, &eth).unwrap(); // microseconds
    w.write_packet_units(i1, 5_000_002_999, &raw).unwrap(); // nanoseconds
    w.write_packet_units(i2, 5 << 20, &sll).unwrap(); // 2^-20 seconds
    let bytes = w.into_inner();
    let r = CaptureReader::with_name(Cursor::new(bytes.clone()), "ng").unwrap();
    assert_eq!(r.format(), Format::PcapNg);
    let (pkts, err) = read_all(&bytes);
    assert_eq!(err, None);
    let got: Vec<_> = pkts.iter().map(|p| (p.0, p.1)).collect();
    assert_eq!(
        got,
        vec![
            (Instant::from_micros(5_000_001), LinkType::ETHERNET),
            (Instant::from_micros(5_000_002), LinkType::RAW),
            (Instant::from_micros(5_000_000), LinkType::LINUX_SLL2),
        ]
    );
    assert_eq!(pkts[0].2, eth);
    assert_eq!(pkts[1].2, raw);
    assert_eq!(pkts[2].2, sll);
}

#[test]
fn pcapng_new_section_resets_interfaces() {
    let raw = syn_packet(Framing::Raw);
    let eth = syn_packet(Framing::Ethernet);
    let mut a = PcapNgWriter::new(Vec::new()).unwrap();
    a.add_interface(LinkType::RAW, 6).unwrap();
    a.write_packet(0, Instant::from_micros(1), &raw).unwrap();
    let mut bytes = a.into_inner();
    let mut b = PcapNgWriter::new(Vec::new()).unwrap();
    b.add_interface(LinkType::ETHERNET, 6).unwrap();
    b.write_packet(0, Instant::from_micros(2), &eth).unwrap();
    bytes.extend_from_slice(&b.into_inner());
    let (pkts, err) = read_all(&bytes);
    assert_eq!(err, None);
    assert_eq!(pkts.len(), 2);
    assert_eq!(pkts[0].1, LinkType::RAW);
    assert_eq!(pkts[1].1, LinkType::ETHERNET);
}

#[test]
fn pcapng_packet_on_undescribed_interface_is_skipped_and_counted() {
    let raw = syn_packet(Framing::Raw);
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    w.add_interface(LinkType::RAW, 6).unwrap();
    w.write_packet(0, Instant::from_micros(1), &raw).unwrap();
    let mut bytes = w.into_inner();
    // Same EPB but with interface id 5.
    let epb_start = bytes.len() - (12 + 20 + raw.len().div_ceil(4) * 4);
    let mut bad = bytes[epb_start..].to_vec();
    bad[8..12].copy_from_slice(&5u32.to_le_bytes());
    bytes.extend_from_slice(&bad);
    let mut r = CaptureReader::with_name(Cursor::new(bytes), "ng").unwrap();
    let mut n = 0;
    while r.next_packet().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 1);
    assert_eq!(r.stats().unknown_interface, 1);
}

#[test]
fn streams_files_larger_than_the_buffer_and_blocks_larger_than_it() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::RAW).unwrap();
    let mut expect = Vec::new();
    let mut rng = Rng::new(42);
    for i in 0..3000u32 {
        let len = 20 + rng.below(3000) as usize;
        let data: Vec<u8> = (0..len).map(|j| (i as usize + j) as u8).collect();
        w.write_packet(Instant::from_micros(u64::from(i)), &data)
            .unwrap();
        expect.push(data);
    }
    // One packet of 200 KB, far over the 64 KiB buffer.
    let big: Vec<u8> = (0..200_000).map(|j| (j % 251) as u8).collect();
    w.write_packet(Instant::from_micros(99_999), &big).unwrap();
    expect.push(big);
    let bytes = w.into_inner();
    assert!(bytes.len() > 4 << 20);

    // A reader that hands out at most 1000 bytes per read, like a pipe.
    struct Trickle(Cursor<Vec<u8>>);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(1000);
            self.0.read(&mut buf[..n])
        }
    }
    let mut r =
        CaptureReader::with_buffer_len(Trickle(Cursor::new(bytes)), "pipe", 1 << 16).unwrap();
    let mut i = 0;
    while let Some(p) = r.next_packet().unwrap() {
        assert_eq!(p.data, &expect[i][..], "packet {i}");
        assert_eq!(p.number, i as u64 + 1);
        i += 1;
    }
    assert_eq!(i, expect.len());
    assert_eq!(r.stats().packets, expect.len() as u64);
}

#[test]
fn several_sources_in_order_with_continuing_numbers() {
    let dir = std::env::temp_dir().join(format!("wscope-inspect-cap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut paths = Vec::new();
    for f in 0..3u64 {
        let mut w = PcapWriter::new(Vec::new(), LinkType::RAW).unwrap();
        for k in 0..2u64 {
            w.write_packet(Instant::from_micros(f * 10 + k), &syn_packet(Framing::Raw))
                .unwrap();
        }
        let p = dir.join(format!("f{f}.pcap"));
        std::fs::write(&p, w.into_inner()).unwrap();
        paths.push(p);
    }
    let mut cap = Capture::from_paths(&paths);
    let mut seen = Vec::new();
    while let Some(p) = cap.next_packet().unwrap() {
        seen.push((p.source, p.number, p.ts.as_micros()));
    }
    assert_eq!(
        seen,
        vec![
            (0, 1, 0),
            (0, 2, 1),
            (1, 3, 10),
            (1, 4, 11),
            (2, 5, 20),
            (2, 6, 21)
        ]
    );
    assert_eq!(cap.stats().sources, 3);
    assert_eq!(cap.stats().packets, 6);

    // A missing file ends the run with an I/O error after the earlier files.
    let mut cap = Capture::from_paths([paths[0].clone(), dir.join("missing.pcap")]);
    let mut n = 0;
    let err = loop {
        match cap.next_packet() {
            Ok(Some(_)) => n += 1,
            Ok(None) => panic!("expected an error"),
            Err(e) => break e,
        }
    };
    assert_eq!(n, 2);
    assert_eq!(err.kind(), CaptureErrorKind::Io);
    assert_eq!(err.io_kind(), Some(std::io::ErrorKind::NotFound));
    assert!(cap.next_packet().unwrap().is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reader_sources_work_like_files() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::RAW).unwrap();
    w.write_packet(Instant::from_micros(5), &syn_packet(Framing::Raw))
        .unwrap();
    let bytes = w.into_inner();
    let mut cap = Capture::new([
        Source::Reader(Box::new(Cursor::new(bytes.clone())), "one".into()),
        Source::Reader(Box::new(Cursor::new(bytes)), "two".into()),
    ]);
    let mut n = 0;
    while cap.next_packet().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 2);
}

#[test]
fn empty_garbage_and_short_headers_are_typed_errors() {
    assert_eq!(read_all(b"").1, Some(CaptureErrorKind::Empty));
    assert_eq!(read_all(b"\xd4\xc3").1, Some(CaptureErrorKind::Truncated));
    assert_eq!(
        read_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").1,
        Some(CaptureErrorKind::NotACapture)
    );
    // A pcap magic followed by too little header.
    assert_eq!(
        read_all(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]).1,
        Some(CaptureErrorKind::Truncated)
    );
    // A pcapng magic with a broken section header.
    let e = read_all(&[
        0x0a, 0x0d, 0x0d, 0x0a, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0,
    ])
    .1;
    assert!(e.is_some());
}

#[test]
fn truncated_file_gives_packets_then_an_error() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap();
    for i in 0..5 {
        w.write_packet(Instant::from_micros(i), &syn_packet(Framing::Ethernet))
            .unwrap();
    }
    let bytes = w.into_inner();
    let cut = &bytes[..bytes.len() - 10];
    let (pkts, err) = read_all(cut);
    assert_eq!(pkts.len(), 4);
    assert_eq!(err, Some(CaptureErrorKind::Truncated));

    // The error names the offset of the broken record.
    let mut r = CaptureReader::with_name(Cursor::new(cut.to_vec()), "cut.pcap").unwrap();
    let e = loop {
        match r.next_packet() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("expected error"),
            Err(e) => break e,
        }
    };
    let rec = 16 + syn_packet(Framing::Ethernet).len() as u64;
    assert_eq!(e.offset(), 24 + 4 * rec);
    assert!(e.to_string().contains("cut.pcap"));
    assert!(
        r.next_packet().unwrap().is_none(),
        "finished after an error"
    );

    // pcapng cut in the middle of a block.
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    w.add_interface(LinkType::ETHERNET, 6).unwrap();
    for i in 0..3 {
        w.write_packet(0, Instant::from_micros(i), &syn_packet(Framing::Ethernet))
            .unwrap();
    }
    let bytes = w.into_inner();
    let (pkts, err) = read_all(&bytes[..bytes.len() - 7]);
    assert_eq!(pkts.len(), 2);
    assert_eq!(err, Some(CaptureErrorKind::Truncated));
}

#[test]
fn absurd_record_length_is_an_error_not_an_allocation() {
    let mut bytes = manual_pcap(false, false, 1, &[]);
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    bytes.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    bytes.extend_from_slice(&[0; 100]);
    let (pkts, err) = read_all(&bytes);
    assert!(pkts.is_empty());
    assert!(matches!(
        err,
        Some(CaptureErrorKind::BlockTooLarge | CaptureErrorKind::Truncated)
    ));
}

#[test]
fn random_damage_never_panics() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap();
    for i in 0..20 {
        w.write_packet(Instant::from_micros(i), &syn_packet(Framing::Ethernet))
            .unwrap();
    }
    let pcap = w.into_inner();
    let mut ng = PcapNgWriter::new(Vec::new()).unwrap();
    ng.add_interface(LinkType::ETHERNET, 9).unwrap();
    for i in 0..20 {
        ng.write_packet(0, Instant::from_micros(i), &syn_packet(Framing::Ethernet))
            .unwrap();
    }
    let ng = ng.into_inner();
    let mut rng = Rng::new(7);
    for round in 0..400 {
        let base = if round % 2 == 0 { &pcap } else { &ng };
        let mut b = base.clone();
        let flips = 1 + rng.below(8);
        for _ in 0..flips {
            let at = 4 + rng.below(b.len() as u64 - 4) as usize;
            b[at] = rng.next_u64() as u8;
        }
        if rng.below(4) == 0 {
            let keep = rng.below(b.len() as u64) as usize;
            b.truncate(keep.max(4));
        }
        let (pkts, _err) = read_all(&b);
        assert!(pkts.len() <= 20);
        // Decoding and reassembling damaged packets must not panic either.
        let (_c, _s) = crate::support::run_bytes(b, Default::default());
    }
}

#[test]
fn pcapng_unknown_blocks_are_skipped_even_empty_ones() {
    // Issue 23: a valid empty block of local-use type 0x80000001 ended the analysis
    // ("capture truncated"). pcapng says readers skip blocks they do not know.
    let raw = syn_packet(Framing::Raw);
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    w.add_interface(LinkType::RAW, 6).unwrap();
    w.write_packet(0, Instant::from_micros(1), &raw).unwrap();
    let mut bytes = w.into_inner();
    for (kind, body) in [
        (0x8000_0001u32, &[][..]),
        (0x0000_0BADu32, &[1, 2, 3, 4, 5, 6, 7, 8][..]),
        (0x8000_0001u32, &[9, 9, 9, 9][..]),
    ] {
        let total = 12 + body.len() as u32;
        bytes.extend_from_slice(&kind.to_le_bytes());
        bytes.extend_from_slice(&total.to_le_bytes());
        bytes.extend_from_slice(body);
        bytes.extend_from_slice(&total.to_le_bytes());
    }
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    w.add_interface(LinkType::RAW, 6).unwrap();
    w.write_packet(0, Instant::from_micros(2), &raw).unwrap();
    // The second writer's packet block only (its section and interface headers dropped: the
    // interface is the same).
    let second = w.into_inner();
    let epb = 12 + 20 + raw.len().div_ceil(4) * 4;
    bytes.extend_from_slice(&second[second.len() - epb..]);
    let (pkts, err) = read_all(&bytes);
    assert_eq!(err, None);
    assert_eq!(pkts.len(), 2);
}
