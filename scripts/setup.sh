#!/usr/bin/env bash
# The system packages the test command needs, installed from Debian's packages when missing.
# `scripts/test-all.sh` runs this first (SKIP_SETUP=1 skips it); run it alone with
# `bash scripts/setup.sh`. It installs nothing that is already there, and nothing else: the
# Python and Node test peers go into git-ignored folders (conformance/.venv,
# conformance/interop/node_modules) when their steps run.
#
#   tcpdump    captures loopback traffic for the passive permessage-deflate check (interop)
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
  [node]=nodejs [npm]=npm [python3]=python3-venv [tshark]=tshark [editcap]=wireshark-common)
missing=()
for cmd in tcpdump valgrind openssl cc c++ node npm python3 tshark editcap; do
  command -v "$cmd" > /dev/null || missing+=("${PACKAGE[$cmd]}")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: system packages present (tcpdump valgrind openssl gcc g++ node npm python3 tshark editcap)"
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
