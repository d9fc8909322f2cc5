//! RFC 8448 §3 ("Simple 1-RTT Handshake", TLS_AES_128_GCM_SHA256): the published traffic
//! secrets give the published keys and IVs, and the published records decrypt to the published
//! plaintexts; plus the layer's handling of records that are not TLS or too large.

use super::crypto::{hkdf_expand_label, suite, Hash, RecordKeys};
use super::*;

/// The bytes of a hex dump (whitespace ignored), as the RFC test vectors print them.
pub(super) fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const CLIENT_HS: &str = "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21";
const SERVER_HS: &str = "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38";
const CLIENT_AP: &str = "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5";
const SERVER_AP: &str = "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643";

fn expand(secret: &str, label: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    hkdf_expand_label(Hash::Sha256, &unhex(secret), label, b"", &mut out);
    out
}

#[test]
fn rfc8448_traffic_keys() {
    assert_eq!(
        expand(SERVER_HS, b"key", 16),
        unhex("3fce516009c21727d0f2e4e86ee403bc")
    );
    assert_eq!(
        expand(SERVER_HS, b"iv", 12),
        unhex("5d313eb2671276ee13000b30")
    );
    assert_eq!(
        expand(CLIENT_HS, b"key", 16),
        unhex("dbfaa693d1762c5b666af5d950258d01")
    );
    assert_eq!(
        expand(CLIENT_HS, b"iv", 12),
        unhex("5bd3c71b836e0b76bb73265f")
    );
    assert_eq!(
        expand(SERVER_AP, b"key", 16),
        unhex("9f02283b6c9c07efc26bb9f2ac92e356")
    );
    assert_eq!(
        expand(SERVER_AP, b"iv", 12),
        unhex("cf782b88dd83549aadf1e984")
    );
    assert_eq!(
        expand(CLIENT_AP, b"key", 16),
        unhex("17422dda596ed5d9acd890e3c63f5051")
    );
    assert_eq!(
        expand(CLIENT_AP, b"iv", 12),
        unhex("5b78923dee08579033e523d9")
    );
}

fn open(keys: &mut RecordKeys, record: &str) -> (u8, Vec<u8>) {
    let rec = unhex(record);
    let header: [u8; 5] = rec[..5].try_into().unwrap();
    let mut body = rec[5..].to_vec();
    let (ct, r) = keys.open(header, &mut body).unwrap();
    (ct, body[r].to_vec())
}

/// The client's Finished (handshake keys, sequence 0) and its first application record
/// (application keys, sequence 0).
#[test]
fn rfc8448_client_records() {
    let s = suite(0x1301).unwrap();
    let mut hs = RecordKeys::tls13(s, &unhex(CLIENT_HS));
    let (ct, plain) = open(
        &mut hs,
        "17030300 35 75ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44d87f38f80338ac98fc\
         46deb384bd1caeacab6867d726c40546",
    );
    assert_eq!(ct, HANDSHAKE);
    assert_eq!(plain.len(), 36);
    assert_eq!(&plain[..4], &[msg::FINISHED, 0, 0, 32]);
    let mut ap = RecordKeys::tls13(s, &unhex(CLIENT_AP));
    let (ct, plain) = open(
        &mut ap,
        "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a\
         9a20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4",
    );
    assert_eq!(ct, APPLICATION_DATA);
    assert_eq!(plain, (0u8..50).collect::<Vec<_>>());
    assert_eq!(ap.seq(), 1);
}

/// The server's application record is its second under the application keys (the
/// NewSessionTicket is the first): with sequence 0 it fails, with sequence 1 it decrypts.
#[test]
fn rfc8448_server_record_needs_its_sequence_number() {
    let s = suite(0x1301).unwrap();
    let rec = "17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30efaf97d90e6dffc\
               602dcb501a59a8fcc49c4bf2e5f0a21c0047c2abf332540dd032e167c2955d";
    let mut ap = RecordKeys::tls13(s, &unhex(SERVER_AP));
    let raw = unhex(rec);
    let mut body = raw[5..].to_vec();
    assert_eq!(
        ap.open(raw[..5].try_into().unwrap(), &mut body),
        Err(crypto::OpenError::BadTag)
    );
    assert_eq!(ap.seq(), 0);
    // At sequence 1 it decrypts.
    let mut ap1 = RecordKeys::tls13(s, &unhex(SERVER_AP));
    ap1.set_seq_for_test(1);
    let (ct, plain) = open(&mut ap1, rec);
    assert_eq!(ct, APPLICATION_DATA);
    assert_eq!(plain, (0u8..50).collect::<Vec<_>>());
}

fn conn_feed(c: &mut TlsConn, dir: Direction, bytes: &[u8]) -> Vec<String> {
    let mut notes = Vec::new();
    c.feed(dir, bytes, &KeyLog::new(), &mut |o, _info| match o {
        Out::Data(d) => notes.push(format!("data {}", d.len())),
        Out::Anomaly(n, d) => notes.push(format!("{n}: {d}")),
        Out::Report => notes.push("report".into()),
    });
    notes
}

#[test]
fn oversized_and_non_tls_records_stop_the_direction() {
    let mut c = TlsConn::default();
    let mut rec = vec![HANDSHAKE, 3, 3];
    rec.extend(((MAX_FRAGMENT + 1) as u16).to_be_bytes());
    let n = conn_feed(&mut c, Direction::ClientToServer, &rec);
    assert_eq!(
        n,
        ["tls_bad_record: record 1 of 18433 bytes, over 2^14 + 2048"]
    );
    // Nothing more is read or held in that direction.
    assert!(conn_feed(&mut c, Direction::ClientToServer, &[0; 100_000]).is_empty());
    assert!(c.dirs[0].buf.capacity() == 0);
    let n = conn_feed(&mut c, Direction::ServerToClient, b"HTTP/1.1 200 OK\r\n");
    assert_eq!(n, ["tls_bad_record: record 1: header 48 54 54 is not TLS"]);
}

#[test]
fn a_full_size_record_is_held_until_whole() {
    let mut c = TlsConn::default();
    let mut rec = vec![APPLICATION_DATA, 3, 3];
    rec.extend((MAX_FRAGMENT as u16).to_be_bytes());
    rec.resize(5 + MAX_FRAGMENT, 0xAA);
    for piece in rec.chunks(1000) {
        // No keys: passed over, nothing reported, no growth beyond one record.
        assert!(conn_feed(&mut c, Direction::ClientToServer, piece).is_empty());
        assert!(c.dirs[0].buf.len() <= 5 + MAX_FRAGMENT);
    }
    assert_eq!(c.dirs[0].records, 1);
    assert!(c.dirs[0].buf.is_empty());
}
