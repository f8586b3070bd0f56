# Shared by the bench/*.sh scripts (sourced, not run): the release binary, a broker, and timing.
#
# After sourcing: $bin is the kafka-once release binary, $bootstrap the broker (KAFKA_BOOTSTRAP or
# one started here and stopped on exit), `measure CMD…` prints "wall cpu" seconds (cpu = user+sys),
# and `stat CLIENT CASE FIELD best|median` summarises the rounds stored in results[CLIENT,CASE,ROUND]
# (FIELD 1 = wall, 2 = cpu; $rounds must be set).

command -v kcat >/dev/null || { echo "kcat missing: apt-get install -y kcat" >&2; exit 1; }
cargo build --release --locked --bin kafka-once >&2
bin=target/release/kafka-once
home=$(mktemp -d)
export KAFKA_ONCE_HOME=$home
cleanup() { [ -z "${KAFKA_BOOTSTRAP:-}" ] && "$bin" broker stop >/dev/null 2>&1 || true; rm -rf "$home"; }
trap cleanup EXIT
bootstrap=${KAFKA_BOOTSTRAP:-$("$bin" broker start)}

declare -A results
TIMEFORMAT='%R %U %S'
measure() {
    local t
    t=$( { time "$@" >/dev/null 2>/dev/null; } 2>&1 | tail -1)
    echo "$t" | awk '{printf "%s %.3f", $1, $2 + $3}'
}
stat() { # client case field(1=wall,2=cpu) how(best|median)
    for r in $(seq 1 "$rounds"); do echo "${results[$1,$2,$r]}" | awk -v f="$3" '{print $f}'; done | sort -g |
        awk -v how="$4" '{v[NR]=$1} END {if (how=="best") print v[1]; else print v[int((NR+1)/2)]}'
}
# "Machine: …; broker: …" and "kcat … with librdkafka …; kafka-once <rev>; <date>." lines.
describe_run() {
    echo "Machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; broker: Apache Kafka 4.1.1 (KRaft, 1 node, local);"
    echo "kcat $(kcat -V 2>&1 | grep -o 'Version [0-9.]*' | head -1 | cut -d' ' -f2) with librdkafka $(kcat -V 2>&1 | grep -o 'librdkafka [0-9.]*' | head -1 | cut -d' ' -f2); kafka-once $(git rev-parse --short HEAD); $(date -u +%F)."
}
