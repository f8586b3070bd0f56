#!/usr/bin/env bash
# Re-captures the golden record batches in testdata/batches/ from real producers (kcat and the
# Java client) on a fresh local Apache Kafka, then regenerates the corrupt variants and the
# partitioner vectors.
# See testdata/README.md. Needs: kcat (apt-get install kcat), Java 17 and Maven, cargo.
#
#   testdata/capture.sh                     # everything, on a broker started for the purpose
#   testdata/capture.sh --only java-txn     # some scenarios (comma-separated names)
#   KAFKA_BOOTSTRAP=host:port testdata/capture.sh   # on an existing broker instead
#   testdata/capture.sh --bench             # the decoding benchmark's data (testdata/bench/) only
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bench=false
if [ "${1:-}" = "--bench" ]; then
    bench=true
    shift
fi
if ! $bench; then
    command -v kcat >/dev/null || { echo "kcat is missing: apt-get install -y kcat" >&2; exit 1; }
fi

echo "building the Java peer (tests/peers/java)" >&2
mvn -q -B -Dstyle.color=never -f "$root/tests/peers/java/pom.xml" package >&2
touch "$root/tests/peers/java/target/peer.built"   # tests/peers/java/peer.sh: up to date

echo "building the capture tool (tests/peers/capture)" >&2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/peers}"
cargo build --quiet --manifest-path "$root/tests/peers/capture/Cargo.toml"

if $bench; then
    exec "$CARGO_TARGET_DIR/debug/capture" bench --out "$root/testdata/bench" "$@"
fi
"$CARGO_TARGET_DIR/debug/capture" all --out "$root/testdata/batches" "$@"
"$CARGO_TARGET_DIR/debug/capture" partitions --out "$root/testdata/partitioner/murmur2.json"
