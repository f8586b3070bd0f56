#!/usr/bin/env bash
# Consumer benchmark: read 1,000,000 records of 100 B and of 1 KB from a 12-partition topic,
# kafka-once vs kcat (librdkafka), same local broker, same run, alternating rounds. MODE `assign`
# (the default): manual assignment for both, `kafka-once consume --from-beginning -n N` and
# `kcat -C -o beginning -c N`. MODE `group`: each round a new consumer group with no committed
# offsets, starting from the earliest offset: `kafka-once consume -G G --from-beginning -n N` and
# `kcat -G G -X auto.offset.reset=earliest -c N` (joining the group is part of the time). Output
# goes to /dev/null; both print the value per line.
#
#   bench/consume.sh [ROUNDS] [assign|group]   (KAFKA_BOOTSTRAP=host:port to use another broker)
#
# Writes bench/results/consume.md (assign) or bench/results/consume-group.md (group).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
mode=${2:-assign}
case $mode in
assign) out=bench/results/consume.md; how="Manual assignment from the beginning" ;;
group) out=bench/results/consume-group.md; how="Group mode (a new group per round and client, from the earliest offset)" ;;
*) echo "mode must be assign or group, not $mode" >&2; exit 2 ;;
esac
count=1000000
source bench/lib.sh
for size in 100 1000; do
    topic="bench-consume-$size-$$"
    "$bin" topics create "$topic" -p 12 -b "$bootstrap" >/dev/null
    "$bin" produce -b "$bootstrap" -t "$topic" -n $count -s $size -X batch.size=1000000 2>/dev/null
    for r in $(seq 1 "$rounds"); do
        if [ "$mode" = group ]; then
            results[ours,$size,$r]=$(measure "$bin" consume -b "$bootstrap" -t "$topic" -G "ours-$topic-$r" --from-beginning -n $count)
            results[kcat,$size,$r]=$(measure kcat -b "$bootstrap" -G "kcat-$topic-$r" -X auto.offset.reset=earliest -c $count -q "$topic")
        else
            results[ours,$size,$r]=$(measure "$bin" consume -b "$bootstrap" -t "$topic" --from-beginning -n $count)
            results[kcat,$size,$r]=$(measure kcat -C -b "$bootstrap" -t "$topic" -o beginning -c $count -q)
        fi
        echo "size=$size round $r: ours ${results[ours,$size,$r]}, kcat ${results[kcat,$size,$r]} (wall cpu)" >&2
    done
done
mkdir -p bench/results
{
    echo "# Consumer: 1,000,000 records from a 12-partition topic"
    echo
    describe_run
    echo "$how, values printed to /dev/null; best and median of $rounds alternating"
    echo "rounds. Command: \`bench/consume.sh $rounds $mode\`."
    echo
    echo "| value size | client | best s | median s | records/s (best) | MB/s (best) | CPU s (median) | CPU s / M records | throughput ours/kcat | CPU ours/kcat |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for size in 100 1000; do
        ob=$(stat ours $size 1 best); kb=$(stat kcat $size 1 best)
        oc=$(stat ours $size 2 median); kc=$(stat kcat $size 2 median)
        for c in ours kcat; do
            b=$(stat $c $size 1 best); m=$(stat $c $size 1 median); cpu=$(stat $c $size 2 median)
            if [ $c = ours ]; then name=kafka-once; tr=$(printf '%.2f' "$(echo "$kb / $ob" | bc -l)"); cr=$(printf '%.2f' "$(echo "$oc / $kc" | bc -l)"); else name=kcat; tr=; cr=; fi
            printf "| %s B | %s | %.2f | %.2f | %.0f | %.1f | %.2f | %.2f | %s | %s |\n" "$size" "$name" "$b" "$m" \
                "$(echo "$count / $b" | bc -l)" "$(echo "$count * $size / 1000000 / $b" | bc -l)" "$cpu" \
                "$(echo "$cpu * 1000000 / $count" | bc -l)" "$tr" "$cr"
        done
    done
    echo
    echo "Raw rounds (wall s, CPU s):"
    echo
    for size in 100 1000; do for r in $(seq 1 "$rounds"); do
        echo "- ${size} B round $r: kafka-once ${results[ours,$size,$r]}; kcat ${results[kcat,$size,$r]}"
    done; done
} > "$out"
cat "$out"
