#!/usr/bin/env bash
# Builds the kafka-once binary with a statically linked C runtime and checks that the result has
# no dynamic dependencies. (musl and aarch64 standard libraries cannot be installed on CI's
# machine; README explains those builds.)
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --locked --bin kafka-once --target "$target" --target-dir target/static
bin=target/static/$target/debug/kafka-once
info=$(file "$bin" 2>/dev/null || true)
# Captured first, then inspected: a `| grep -q` would end the pipe early and, under pipefail,
# turn a finding into a pass.
needed=$(readelf -d "$bin" 2>/dev/null | grep NEEDED || true)
interp=$(readelf -l "$bin" 2>/dev/null | grep -i "program interpreter" || true)
if [ -n "$needed" ] || [ -n "$interp" ]; then
    echo "static check FAILED: $bin links dynamically:" >&2
    [ -n "$needed" ] && echo "$needed" >&2
    [ -n "$interp" ] && echo "$interp" >&2
    exit 1
fi
"$bin" --version
echo "static check passed: $bin ${info#*: }"
