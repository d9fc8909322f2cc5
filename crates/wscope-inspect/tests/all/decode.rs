//! Link/IP/TCP decoding.

use wscope_inspect::capture::LinkType;
use wscope_inspect::decode::{decode, Decoder, FlowKey, Skip, TcpFlags};
use wscope_proto::time::Instant;
use wscope_test_support::capture::{encode_tcp, fragment_ip, Framing, TcpSpec};

use crate::support::addr;

const FRAMINGS: [Framing; 8] = [
    Framing::Ethernet,
    Framing::Vlan(42),
    Framing::QinQ(100, 200),
    Framing::LinuxSll,
    Framing::LinuxSll2,
    Framing::Raw,
    Framing::Null,
    Framing::Loop,
];

#[test]
fn every_framing_and_family_decodes_to_the_same_segment() {
    for (src, dst) in [
        ("192.168.1.10:51000", "93.184.216.34:443"),
        ("[2001:db8::1]:51000", "[2001:db8::2]:443"),
    ] {
        for framing in FRAMINGS {
            let spec = TcpSpec::new(addr(src), addr(dst))
                .seq(0xFFFF_FFF0)
                .ack(12345)
                .flags(TcpFlags::PSH | TcpFlags::FIN)
                .payload(b"hello");
            let mut pkt = Vec::new();
            encode_tcp(framing, &spec, &mut pkt).unwrap();
            let seg = decode(framing.link_type(), Instant::from_micros(9), &pkt)
                .unwrap_or_else(|e| panic!("{framing:?} {src}: {e:?}"));
            assert_eq!(seg.src, addr(src), "{framing:?}");
            assert_eq!(seg.dst, addr(dst));
            assert_eq!(seg.seq, 0xFFFF_FFF0);
            assert_eq!(seg.ack, 12345);
            assert!(seg.flags.fin() && seg.flags.ack() && !seg.flags.syn() && !seg.flags.rst());
            assert_eq!(seg.payload, b"hello");
            assert_eq!(seg.missing, 0);
            assert_eq!(seg.ts, Instant::from_micros(9));
        }
    }
}

#[test]
fn raw_ipv4_and_ipv6_link_types() {
    let v4 = TcpSpec::new(addr("1.2.3.4:1"), addr("5.6.7.8:2")).flags(TcpFlags::SYN);
    let v6 = TcpSpec::new(addr("[::1]:1"), addr("[::2]:2")).flags(TcpFlags::SYN);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    encode_tcp(Framing::Raw, &v4, &mut a).unwrap();
    encode_tcp(Framing::Raw, &v6, &mut b).unwrap();
    assert!(decode(LinkType::IPV4, Instant::ZERO, &a).is_ok());
    assert!(decode(LinkType::IPV6, Instant::ZERO, &b).is_ok());
    assert_eq!(
        decode(LinkType::IPV4, Instant::ZERO, &b).unwrap_err(),
        Skip::Malformed
    );
    assert_eq!(
        decode(LinkType::IPV6, Instant::ZERO, &a).unwrap_err(),
        Skip::Malformed
    );
    assert!(decode(LinkType::RAW_BSD12, Instant::ZERO, &a).is_ok());
    assert_eq!(
        decode(LinkType(147), Instant::ZERO, &a).unwrap_err(),
        Skip::UnsupportedLink
    );
}

#[test]
fn ethernet_padding_is_not_payload() {
    let spec = TcpSpec::new(addr("10.0.0.1:1000"), addr("10.0.0.2:80")).ack(5);
    let mut pkt = Vec::new();
    encode_tcp(Framing::Ethernet, &spec, &mut pkt).unwrap();
    assert_eq!(pkt.len(), 54);
    pkt.extend_from_slice(&[0xAA; 6]); // pad to the 60-byte minimum
    let seg = decode(LinkType::ETHERNET, Instant::ZERO, &pkt).unwrap();
    assert!(seg.payload.is_empty());
}

#[test]
fn snaplen_cut_payload_is_reported_missing() {
    let payload = [7u8; 1000];
    let spec = TcpSpec::new(addr("10.0.0.1:1000"), addr("10.0.0.2:80"))
        .ack(5)
        .payload(&payload);
    let mut pkt = Vec::new();
    encode_tcp(Framing::Ethernet, &spec, &mut pkt).unwrap();
    let cut = &pkt[..14 + 20 + 20 + 100];
    let seg = decode(LinkType::ETHERNET, Instant::ZERO, cut).unwrap();
    assert_eq!(seg.payload.len(), 100);
    assert_eq!(seg.missing, 900);
    assert_eq!(seg.wire_len(), 1000);
    // Cut inside the TCP header: no segment.
    assert_eq!(
        decode(LinkType::ETHERNET, Instant::ZERO, &pkt[..14 + 20 + 10]).unwrap_err(),
        Skip::Truncated
    );
    // IPv6 as well.
    let spec6 = TcpSpec::new(addr("[::1]:1000"), addr("[::2]:80")).payload(&payload);
    let mut p6 = Vec::new();
    encode_tcp(Framing::Raw, &spec6, &mut p6).unwrap();
    let seg = decode(LinkType::RAW, Instant::ZERO, &p6[..40 + 20 + 10]).unwrap();
    assert_eq!((seg.payload.len(), seg.missing), (10, 990));
}

#[test]
fn non_tcp_is_skipped_and_counted() {
    let mut d = Decoder::new();
    let pkt = |link, data: &[u8]| wscope_inspect::capture::Packet {
        ts: Instant::ZERO,
        link,
        data: leak(data),
        orig_len: data.len() as u32,
        number: 1,
        source: 0,
    };
    // ARP.
    let mut arp = vec![0u8; 42];
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert!(d.decode(&pkt(LinkType::ETHERNET, &arp)).is_none());
    // UDP over IPv4: take a TCP packet and change the protocol byte.
    let mut udp = Vec::new();
    encode_tcp(
        Framing::Raw,
        &TcpSpec::new(addr("10.0.0.1:53"), addr("10.0.0.2:53")),
        &mut udp,
    )
    .unwrap();
    udp[9] = 17;
    assert!(d.decode(&pkt(LinkType::RAW, &udp)).is_none());
    // An IPv4 fragment (more-fragments flag).
    let mut frag = Vec::new();
    encode_tcp(
        Framing::Raw,
        &TcpSpec::new(addr("10.0.0.1:1"), addr("10.0.0.2:2")).payload(&[1; 64]),
        &mut frag,
    )
    .unwrap();
    frag[6] = 0x20;
    assert!(d.decode(&pkt(LinkType::RAW, &frag)).is_none());
    // A later fragment (offset 8, no MF).
    frag[6] = 0x00;
    frag[7] = 0x08;
    assert!(d.decode(&pkt(LinkType::RAW, &frag)).is_none());
    // Garbage IP version, short frames, unknown link.
    assert!(d.decode(&pkt(LinkType::RAW, &[0x70; 40])).is_none());
    assert!(d.decode(&pkt(LinkType::ETHERNET, &[0; 5])).is_none());
    assert!(d.decode(&pkt(LinkType(9999), &[0; 60])).is_none());
    // A VLAN stack too deep.
    let mut deep = vec![0u8; 12];
    for _ in 0..6 {
        deep.extend_from_slice(&[0x81, 0x00, 0, 1]);
    }
    deep.extend_from_slice(&[0x08, 0x00]);
    deep.extend_from_slice(&[0x45; 40]);
    assert!(d.decode(&pkt(LinkType::ETHERNET, &deep)).is_none());
    // And one good one.
    let mut ok = Vec::new();
    encode_tcp(
        Framing::Vlan(7),
        &TcpSpec::new(addr("10.0.0.1:1"), addr("10.0.0.2:2")),
        &mut ok,
    )
    .unwrap();
    assert!(d.decode(&pkt(LinkType::ETHERNET, &ok)).is_some());

    let s = d.stats();
    assert_eq!(s.packets, 9);
    assert_eq!(s.tcp, 1);
    assert_eq!(s.not_ip, 2);
    assert_eq!(s.not_tcp, 1);
    assert_eq!(s.fragments, 2);
    assert_eq!(s.malformed, 1);
    assert_eq!(s.truncated, 1);
    assert_eq!(s.unsupported_link, 1);
}

/// Test packets live for the whole test; leaking them keeps the helper simple.
fn leak(data: &[u8]) -> &'static [u8] {
    Box::leak(data.to_vec().into_boxed_slice())
}

#[test]
fn flow_key_is_direction_independent() {
    let a = addr("10.0.0.1:40000");
    let b = addr("10.0.0.2:80");
    let (k1, lo1) = FlowKey::new(a, b);
    let (k2, lo2) = FlowKey::new(b, a);
    assert_eq!(k1, k2);
    assert!(lo1 && !lo2);
    assert_eq!(k1.lo(), a);
    assert_eq!(k1.hi(), b);
    assert!(!k1.is_ipv6());
    // Same addresses, other ports: another key.
    assert_ne!(k1, FlowKey::new(a, addr("10.0.0.2:81")).0);
    // IPv4 and its IPv4-mapped IPv6 form are different flows.
    let m = addr("[::ffff:10.0.0.1]:40000");
    let n = addr("[::ffff:10.0.0.2]:80");
    assert_ne!(k1, FlowKey::new(m, n).0);
    let k6 = FlowKey::new(addr("[2001:db8::1]:1"), addr("[2001:db8::2]:2")).0;
    assert!(k6.is_ipv6());
    assert_eq!(k6.lo(), addr("[2001:db8::1]:1"));
}

fn packet_of(link: LinkType, ts: u64, data: &[u8]) -> wscope_inspect::capture::Packet<'static> {
    wscope_inspect::capture::Packet {
        ts: Instant::from_micros(ts),
        link,
        data: leak(data),
        orig_len: data.len() as u32,
        number: 1,
        source: 0,
    }
}

#[test]
fn ip_fragments_are_reassembled_in_any_order() {
    let payload: Vec<u8> = (0..5000u32).map(|i| (i * 31 + 7) as u8).collect();
    for (src, dst) in [
        ("10.0.0.1:40000", "10.0.0.2:80"),
        ("[2001:db8::1]:40000", "[2001:db8::2]:80"),
    ] {
        for framing in [Framing::Ethernet, Framing::Vlan(9), Framing::Raw] {
            let spec = TcpSpec::new(addr(src), addr(dst))
                .seq(77)
                .ack(88)
                .flags(TcpFlags::ACK | TcpFlags::PSH)
                .payload(&payload);
            let mut ip = Vec::new();
            encode_tcp(Framing::Raw, &spec, &mut ip).unwrap();
            let frags = fragment_ip(&ip, 1400, 0xabcd).unwrap();
            assert_eq!(frags.len(), 4, "{src}");
            // Last fragment first, then the middle ones reversed, the first one last.
            let mut d = Decoder::new();
            let mut got = None;
            for (i, f) in frags.iter().rev().enumerate() {
                let mut pkt = Vec::new();
                framing.write_header(spec.src.is_ipv6(), &mut pkt);
                pkt.extend_from_slice(f);
                let seg = d.decode(&packet_of(framing.link_type(), 10 + i as u64, &pkt));
                if i + 1 < frags.len() {
                    assert!(seg.is_none(), "{src} {framing:?}: complete too early");
                } else {
                    let seg = seg.expect("the last fragment completes the datagram");
                    got = Some((
                        seg.src,
                        seg.dst,
                        seg.seq,
                        seg.ack,
                        seg.flags,
                        seg.payload.to_vec(),
                    ));
                }
            }
            let (s, t, seq, ack, flags, data) = got.unwrap();
            assert_eq!((s, t, seq, ack), (addr(src), addr(dst), 77, 88));
            assert!(flags.contains(TcpFlags::PSH));
            assert_eq!(data, payload);
            let st = d.stats();
            assert_eq!(
                (
                    st.packets,
                    st.fragments,
                    st.reassembled,
                    st.tcp,
                    st.bad_fragments
                ),
                (4, 4, 1, 1, 0),
                "{src} {framing:?}"
            );
            assert_eq!(st.tcp_ipv6, u64::from(spec.src.is_ipv6()));
        }
    }
}

#[test]
fn fragment_ids_and_addresses_keep_datagrams_apart() {
    // Two datagrams between the same hosts, fragments interleaved: each is rebuilt whole.
    let a: Vec<u8> = vec![0xaa; 3000];
    let b: Vec<u8> = vec![0xbb; 3000];
    let mut frags = Vec::new();
    for (id, (data, port)) in [(&a, 1000u16), (&b, 2000)].into_iter().enumerate() {
        let spec =
            TcpSpec::new(addr(&format!("10.0.0.1:{port}")), addr("10.0.0.2:80")).payload(data);
        let mut ip = Vec::new();
        encode_tcp(Framing::Raw, &spec, &mut ip).unwrap();
        ip[4..6].copy_from_slice(&(id as u16 + 1).to_be_bytes()); // IPv4 identification
        frags.push(fragment_ip(&ip, 1000, 0).unwrap());
    }
    let mut d = Decoder::new();
    let mut done = Vec::new();
    for i in 0..frags[0].len() {
        for f in &frags {
            if let Some(seg) = d.decode(&packet_of(LinkType::RAW, 1, &f[i])) {
                done.push((seg.src.port(), seg.payload.len(), seg.payload[0]));
            }
        }
    }
    assert_eq!(done, vec![(1000, 3000, 0xaa), (2000, 3000, 0xbb)]);
}

#[test]
fn bad_and_abandoned_fragments_are_bounded() {
    use wscope_inspect::decode::FRAGMENT_WINDOW;
    let spec = TcpSpec::new(addr("10.0.0.1:1"), addr("10.0.0.2:2")).payload(&[5; 2000]);
    let mut ip = Vec::new();
    encode_tcp(Framing::Raw, &spec, &mut ip).unwrap();
    let frags = fragment_ip(&ip, 1000, 0).unwrap();
    assert_eq!(frags.len(), 3);
    let mut d = Decoder::new();
    // The first two fragments, then a flood of lone first fragments of other datagrams.
    assert!(d.decode(&packet_of(LinkType::RAW, 1, &frags[0])).is_none());
    assert!(d.decode(&packet_of(LinkType::RAW, 1, &frags[1])).is_none());
    for id in 0..(FRAGMENT_WINDOW as u32 * 4) {
        let mut f = frags[0].clone();
        f[4..6].copy_from_slice(&((id % 60_000) as u16 + 1).to_be_bytes());
        f[12] = 11; // another source address: another datagram
        f[13] = (id >> 16) as u8;
        assert!(d.decode(&packet_of(LinkType::RAW, 2, &f)).is_none());
    }
    // The first datagram was given up: its last fragment alone completes nothing.
    assert!(d.decode(&packet_of(LinkType::RAW, 3, &frags[2])).is_none());
    assert_eq!(d.stats().reassembled, 0);
    // A fragment cut by the snapshot length is rejected, not held.
    let mut d = Decoder::new();
    assert!(d
        .decode(&packet_of(LinkType::RAW, 1, &frags[0][..100]))
        .is_none());
    assert_eq!(d.stats().bad_fragments, 1);
    // Datagrams complete within the window still work after the flood.
    for f in &frags {
        d.decode(&packet_of(LinkType::RAW, 5, f));
    }
    assert_eq!(d.stats().reassembled, 1);
}
