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
if ldd "$bin" >/dev/null 2>&1 && ! ldd "$bin" 2>&1 | grep -q "statically linked\|not a dynamic executable"; then
    echo "static check FAILED: $bin links dynamically:" >&2
    ldd "$bin" >&2
    exit 1
fi
if readelf -d "$bin" 2>/dev/null | grep -q NEEDED; then
    echo "static check FAILED: $bin has NEEDED entries:" >&2
    readelf -d "$bin" | grep NEEDED >&2
    exit 1
fi
"$bin" --version
echo "static check passed: $bin ${info#*: }"
