#!/usr/bin/env bash
# Runs the Java peer (see Peer.java for the subcommands), building it first when needed.
# Needs Java 17+ and Maven (kafka-clients comes from Maven Central, then ~/.m2).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
stamp="$here/target/peer.built"
stale() { [ ! -f "$stamp" ] || [ "$here/src/main/java/Peer.java" -nt "$stamp" ] || [ "$here/pom.xml" -nt "$stamp" ]; }
if stale; then
    # Tests run in parallel: one build at a time, and the others reuse it.
    mkdir -p "$here/target"
    exec 9>"$here/target/.build.lock"
    command -v flock >/dev/null && flock 9
    if stale; then
        mvn -q -B -Dstyle.color=never -f "$here/pom.xml" package >&2
        touch "$stamp"
    fi
    exec 9>&-
fi
exec java -cp "$here/target/classes:$(cat "$here/target/classpath.txt")" Peer "$@"
