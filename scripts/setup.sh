#!/usr/bin/env bash
# The system packages the test command needs, installed from Debian's packages when missing.
# `scripts/test-all.sh` runs this first (SKIP_SETUP=1 skips it); run it alone with
# `bash scripts/setup.sh`. It installs nothing that is already there, and nothing else: the
# Python and Node test peers go into git-ignored folders (conformance/.venv,
# conformance/interop/node_modules) when their steps run.
#
#   tcpdump    captures loopback traffic for the passive permessage-deflate check (interop)
#              and the reference capture of the live step
#   libpcap-dev   links `wscope inspect -i` (cargo feature `live`; the live step)
#   iproute2   network namespaces, veth pairs and the tc mirror of the live step
#              and the passive wss:// check (tls_capture)
#   tshark, editcap   the passive wss:// check compares with tshark's decryption and makes a
#              pcapng with a Decryption Secrets Block (tls_capture; packages tshark and
#              wireshark-common)
#   valgrind   runs the C API example under memcheck (c_api)
#   openssl    makes the test certificates (interop, c_api)
#   gcc, g++   build the C example and check the header as C99 and C++ (c_api)
#   nodejs, npm, python3-venv   run the Node `ws` and Python `websockets` peers (interop,
#              autobahn), when the machine has no node, npm or python3 of its own
set -euo pipefail

# command -> Debian package
declare -A PACKAGE=([tcpdump]=tcpdump [valgrind]=valgrind [openssl]=openssl [cc]=gcc [c++]=g++
  [node]=nodejs [npm]=npm [python3]=python3-venv [ip]=iproute2 [tc]=iproute2
  [tshark]=tshark [editcap]=wireshark-common)
missing=()
for cmd in tcpdump valgrind openssl cc c++ node npm python3 ip tc tshark editcap; do
  command -v "$cmd" > /dev/null || missing+=("${PACKAGE[$cmd]}")
done
# A library, not a command: its header and link-time library.
have_libpcap_dev() {
  [[ -e /usr/include/pcap/pcap.h ]] || return 1
  compgen -G '/usr/lib/*/libpcap.so' > /dev/null || [[ -e /usr/lib/libpcap.so ]]
}
have_libpcap_dev || missing+=(libpcap-dev)
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d')
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: system packages present (tcpdump libpcap-dev iproute2 valgrind openssl gcc g++ node npm python3 tshark editcap)"
  exit 0
fi
if [[ $(id -u) != 0 ]] || ! command -v apt-get > /dev/null; then
  echo "setup: missing ${missing[*]}; install them (e.g. sudo apt-get install ${missing[*]})," \
    "or the steps that need them fail" >&2
  exit 0
fi
echo "setup: apt-get install ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
