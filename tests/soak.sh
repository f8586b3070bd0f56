#!/usr/bin/env bash
# The reliability suite's long mode (issue 8): runs the fault scenarios with KAFKA_ONCE_SOAK=1
# (more records, kills and faults per run) one test at a time, over and over, for MINUTES
# (default 60). Each run's output goes to target/soak/<start>/, one line per run to results.tsv
# (round, test, pass|FAIL, seconds). RELIABILITY.md is written from such a run.
#
#   tests/soak.sh [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-60}
out=${SOAK_OUT:-target/soak/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
cargo build --locked --all-features --tests
tests=(
    crash::
    storm::
    faults::
    failover::exactly_once_through
    failover::leader_and_coordinator
    slow::
    handoff::
    dispatch::a_journal_write_failure
    diskfull::
    model::
)
end=$(($(date +%s) + minutes * 60))
round=0
echo "soak: $minutes min, output in $out"
while [ "$(date +%s)" -lt "$end" ]; do
    round=$((round + 1))
    for t in "${tests[@]}"; do
        [ "$(date +%s)" -lt "$end" ] || break
        start=$(date +%s)
        log="$out/$round-${t//:/_}.log"
        if KAFKA_ONCE_SOAK=1 cargo test --locked --all-features --test it -- \
            --test-threads=1 --nocapture "$t" >"$log" 2>&1; then
            result=pass
        else
            result=FAIL
        fi
        printf '%s\t%s\t%s\t%s\n' "$round" "$t" "$result" "$(($(date +%s) - start))" |
            tee -a "$out/results.tsv"
    done
done
