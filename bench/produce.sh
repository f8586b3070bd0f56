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
source bench/lib.sh
lines=$(mktemp)
head -c $size /dev/zero | tr '\0' x > "$lines.one"; echo >> "$lines.one"
awk -v n=$count -v s="$(cat "$lines.one")" 'BEGIN { for (i = 0; i < n; i++) print s }' > "$lines"

# The same producer settings for both: idempotent, acks=all, no compression, 5 ms linger.
# batch.size differs by default (Java 16 KiB, librdkafka 1 MB); we run both at both sizes.
run_ours() { # topic batch
    "$bin" topics create "$1" -p 12 -b "$bootstrap" >/dev/null
    measure "$bin" produce -b "$bootstrap" -t "$1" -n $count -s $size \
        -X linger.ms=5 -X batch.size="$2" -X acks=all -X enable.idempotence=true
}
kcat_file() { kcat -P -b "$bootstrap" -t "$1" -X linger.ms=5 -X batch.size="$2" \
        -X acks=all -X enable.idempotence=true < "$lines"; }
run_kcat() { # topic batch
    "$bin" topics create "$1" -p 12 -b "$bootstrap" >/dev/null
    measure kcat_file "$1" "$2"
}
for batch in 16384 1000000; do
    for r in $(seq 1 "$rounds"); do
        results[ours,$batch,$r]=$(run_ours "bench-ours-$batch-$r-$$" "$batch")
        results[kcat,$batch,$r]=$(run_kcat "bench-kcat-$batch-$r-$$" "$batch")
        echo "batch.size=$batch round $r: ours ${results[ours,$batch,$r]}, kcat ${results[kcat,$batch,$r]} (wall cpu)" >&2
    done
done
mkdir -p bench/results
{
    echo "# Producer: 1,000,000 x 100 B records, 12 partitions"
    echo
    describe_run
    echo "Both idempotent, acks=all, no compression, linger.ms=5; best of $rounds alternating rounds; wall time"
    echo "includes connecting and the final flush. Command: \`bench/produce.sh $rounds\`."
    echo
    echo "| batch.size | client | best s | median s | records/s (best) | MB/s (best) | CPU s (median) | CPU s / M records | throughput ours/kcat | CPU ours/kcat |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for batch in 16384 1000000; do
        ob=$(stat ours $batch 1 best); kb=$(stat kcat $batch 1 best)
        oc=$(stat ours $batch 2 median); kc=$(stat kcat $batch 2 median)
        for c in ours kcat; do
            b=$(stat $c $batch 1 best); m=$(stat $c $batch 1 median); cpu=$(stat $c $batch 2 median)
            if [ $c = ours ]; then name=kafka-once; tr=$(printf '%.2f' "$(echo "$kb / $ob" | bc -l)"); cr=$(printf '%.2f' "$(echo "$oc / $kc" | bc -l)"); else name=kcat; tr=; cr=; fi
            printf "| %s | %s | %.2f | %.2f | %.0f | %.1f | %.2f | %.2f | %s | %s |\n" "$batch" "$name" "$b" "$m" \
                "$(echo "$count / $b" | bc -l)" "$(echo "$count * $size / 1000000 / $b" | bc -l)" "$cpu" \
                "$(echo "$cpu * 1000000 / $count" | bc -l)" "$tr" "$cr"
        done
    done
    echo
    echo "Raw rounds (wall s, CPU s):"
    echo
    for batch in 16384 1000000; do for r in $(seq 1 "$rounds"); do
        echo "- batch.size=$batch round $r: kafka-once ${results[ours,$batch,$r]}; kcat ${results[kcat,$batch,$r]}"
    done; done
} > bench/results/produce.md
cat bench/results/produce.md
rm -f "$lines" "$lines.one"
