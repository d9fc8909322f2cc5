#!/usr/bin/env bash
# Captures WebSocket over HTTP/2 (RFC 8441) between our client and our server, with known
# messages, for the passive analyzer's tests: a cleartext h2c capture and a TLS one (ALPN h2)
# with its key log.
#
#   bash scripts/h2-capture.sh [OUT_DIR]      (default: target/h2-capture; needs root for
#                                              tcpdump on lo, and openssl for the TLS cert)
#
# Writes into OUT_DIR:
#   h2c.pcap, h2c-manifest.tsv           100 streams x 3 text messages of 200 bytes, plus
#                                        4 streams x 2 messages of 100 KiB (several DATA
#                                        frames and WINDOW_UPDATEs per message), one TCP
#                                        connection each run
#   h2-tls.pcap, h2-tls.keylog, h2-tls-manifest.tsv   the same over TLS 1.3
# A manifest line is `STREAM_INDEX<TAB>MESSAGE_INDEX<TAB>text`: the text of every message the
# client sent (the server echoes each one back: twice as many messages on the wire). Stream
# index i is the i-th WebSocket opened on the connection, HTTP/2 stream id 2*i+1 (the big
# runs are a connection of their own: their manifest lines have indexes from 0 too, in
# h2c-big-manifest.tsv / h2-tls-big-manifest.tsv, and their pcaps h2c-big.pcap /
# h2-tls-big.pcap).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/h2-capture}
mkdir -p "$out"
out=$(cd "$out" && pwd)

cargo build -q -p wscope-cli
cargo build -q -p wscope --features http2 --example h2_echo
bin=target/debug/wscope
client=target/debug/examples/h2_echo

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# A free port: bind 0 and read it back (Python is on every machine the tests run on).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# capture NAME PORT CLIENT_ARGS...: tcpdump on lo for PORT around one client run.
capture() {
    local name=$1 port=$2
    shift 2
    # --immediate-mode: packets leave the kernel at once (else they wait up to a second in a
    # ring block and are lost when tcpdump stops); -B: a 64 MiB kernel buffer.
    tcpdump -i lo --immediate-mode -U -s 0 -B 65536 -w "$out/$name.pcap" "tcp port $port" 2>"$out/$name.tcpdump.log" &
    local tcpdump=$!
    # tcpdump is listening once it has created its file.
    for _ in $(seq 100); do [ -s "$out/$name.pcap" ] && break; sleep 0.05; done
    "$client" --addr "127.0.0.1:$port" "$@" --manifest "$out/$name-manifest.tsv"
    sleep 0.3
    kill -INT "$tcpdump"
    wait "$tcpdump" || true
    if ! grep -q '^0 packets dropped by kernel' "$out/$name.tcpdump.log"; then
        echo "tcpdump dropped packets of $name:" >&2
        cat "$out/$name.tcpdump.log" >&2
        exit 1
    fi
}

# Cleartext: h2c with prior knowledge.
port=$(free_port)
"$bin" serve --echo --http2 --port "$port" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
capture h2c "$port" --streams 100 --messages 3 --size 200 --label h2c
capture h2c-big "$port" --streams 4 --messages 2 --size 100K --label h2c-big

# TLS with ALPN h2, key log for decryption.
tls=$out/tls
mkdir -p "$tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tls/key.pem" -out "$tls/cert.pem" -days 3650 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost 2>/dev/null
port=$(free_port)
"$bin" serve --echo --http2 --port "$port" --tls-cert "$tls/cert.pem" --tls-key "$tls/key.pem" \
    2>/dev/null &
pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
rm -f "$out/h2-tls.keylog"
SSLKEYLOGFILE=$out/h2-tls.keylog capture h2-tls "$port" --streams 100 --messages 3 --size 200 \
    --tls-ca "$tls/cert.pem" --label h2-tls
SSLKEYLOGFILE=$out/h2-tls.keylog capture h2-tls-big "$port" --streams 4 --messages 2 \
    --size 100K --tls-ca "$tls/cert.pem" --label h2-tls-big

ls -l "$out"
