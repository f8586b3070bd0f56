#!/usr/bin/env bash
# Runs the Java peer (see Peer.java for the subcommands), building it first when needed.
# Needs Java 17+ and Maven (kafka-clients comes from Maven Central, then ~/.m2).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -f "$here/target/classpath.txt" ] || [ "$here/src/main/java/Peer.java" -nt "$here/target/classpath.txt" ] \
    || [ "$here/pom.xml" -nt "$here/target/classpath.txt" ]; then
    mvn -q -f "$here/pom.xml" package >&2
fi
exec java -cp "$here/target/classes:$(cat "$here/target/classpath.txt")" Peer "$@"
