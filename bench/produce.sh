#!/usr/bin/env bash
# Producer benchmark: 1,000,000 x 100 B records to a 12-partition topic, kafka-once vs kcat
# (librdkafka), same local broker, same run, alternating rounds. Not a test: it reports numbers.
#
#   bench/produce.sh [ROUNDS]        (KAFKA_BOOTSTRAP=host:port to use another broker)
#
# Writes bench/results/produce.md.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
count=1000000
size=100
command -v kcat >/dev/null || { echo "kcat missing: apt-get install -y kcat" >&2; exit 1; }
cargo build --release --locked --bin kafka-once >&2
bin=target/release/kafka-once
home=$(mktemp -d)
export KAFKA_ONCE_HOME=$home
cleanup() { [ -z "${KAFKA_BOOTSTRAP:-}" ] && "$bin" broker stop >/dev/null 2>&1 || true; rm -rf "$home"; }
trap cleanup EXIT
bootstrap=${KAFKA_BOOTSTRAP:-$("$bin" broker start)}
lines=$(mktemp)
head -c $size /dev/zero | tr '\0' x > "$lines.one"; echo >> "$lines.one"
yes "$(cat "$lines.one")" | head -n $count > "$lines"

# The same producer settings for both: idempotent, acks=all, no compression, 5 ms linger.
# batch.size differs by default (Java 16 KiB, librdkafka 1 MB); we run both at both sizes.
declare -A results
run_ours() { # batch
    local topic=$1 batch=$2 t0 t1
    "$bin" topics create "$topic" -p 12 -b "$bootstrap" >/dev/null
    t0=$(date +%s.%N)
    "$bin" produce -b "$bootstrap" -t "$topic" -n $count -s $size \
        -X linger.ms=5 -X batch.size="$batch" -X acks=all -X enable.idempotence=true 2>/dev/null
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
run_kcat() {
    local topic=$1 batch=$2 t0 t1
    "$bin" topics create "$topic" -p 12 -b "$bootstrap" >/dev/null
    t0=$(date +%s.%N)
    kcat -P -b "$bootstrap" -t "$topic" -X linger.ms=5 -X batch.size="$batch" \
        -X acks=all -X enable.idempotence=true < "$lines"
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
for batch in 16384 1000000; do
    for r in $(seq 1 "$rounds"); do
        results[ours,$batch,$r]=$(run_ours "bench-ours-$batch-$r-$$" "$batch")
        results[kcat,$batch,$r]=$(run_kcat "bench-kcat-$batch-$r-$$" "$batch")
        echo "batch.size=$batch round $r: ours ${results[ours,$batch,$r]} s, kcat ${results[kcat,$batch,$r]} s" >&2
    done
done
best() { # client batch
    local b=999999 v
    for r in $(seq 1 "$rounds"); do v=${results[$1,$2,$r]}; b=$(echo "if ($v < $b) $v else $b" | bc -l); done
    echo "$b"
}
mkdir -p bench/results
{
    echo "# Producer: 1,000,000 x 100 B records, 12 partitions"
    echo
    echo "Machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; broker: Apache Kafka 4.1.1 (KRaft, 1 node, local);"
    echo "kcat $(kcat -V 2>&1 | head -1 | awk '{print $2}') with $(kcat -V 2>&1 | grep -o 'librdkafka version [^ ]*' | head -1); $(date -u +%F)."
    echo "Both idempotent, acks=all, no compression, linger.ms=5; best of $rounds alternating rounds; wall time"
    echo "includes connecting and the final flush. Command: \`bench/produce.sh $rounds\`."
    echo
    echo "| batch.size | client | seconds | records/s | MB/s | ours / kcat |"
    echo "|---|---|---|---|---|---|"
    for batch in 16384 1000000; do
        o=$(best ours $batch); k=$(best kcat $batch)
        for c in ours kcat; do
            t=$(best $c $batch)
            printf "| %s | %s | %.2f | %.0f | %.1f | %s |\n" "$batch" "$([ $c = ours ] && echo kafka-once || echo kcat)" "$t" \
                "$(echo "$count / $t" | bc -l)" "$(echo "$count * $size / 1000000 / $t" | bc -l)" \
                "$([ $c = ours ] && printf '%.2f' "$(echo "$k / $o" | bc -l)" || echo)"
        done
    done
} > bench/results/produce.md
cat bench/results/produce.md
rm -f "$lines" "$lines.one"
