#!/usr/bin/env bash
# Fails when the library's or binary's dependency graph (normal and build edges, all features,
# every target platform) contains a crate that compiles or links C: cc, cmake, pkg-config,
# bindgen, or any *-sys crate other than known pure-Rust ones.
set -euo pipefail
cd "$(dirname "$0")/.."

# *-sys crates that contain no C: raw syscall/ABI bindings written in Rust.
allow_sys='^(linux-raw-sys|windows-sys|wasi|js-sys|web-sys)$'

deps=$(cargo tree --locked -e normal,build --all-features --target all --prefix none --format '{p}' \
    | awk '{print $1}' | sort -u)
bad=()
while read -r name; do
    [ -z "$name" ] && continue
    case "$name" in
        cc|cmake|pkg-config|bindgen|vcpkg|autocfg-c) bad+=("$name") ;;
        *-sys)
            if ! [[ "$name" =~ $allow_sys ]]; then bad+=("$name"); fi ;;
    esac
done <<< "$deps"

if [ ${#bad[@]} -gt 0 ]; then
    echo "no-C check FAILED: these crates compile or link C:" >&2
    for b in "${bad[@]}"; do
        echo "  $b  (pulled in by: $(cargo tree --locked -e normal,build --all-features --target all -i "$b" --prefix none --format '{p}' 2>/dev/null | sed -n 2p))" >&2
    done
    exit 1
fi
echo "no-C check passed: $(echo "$deps" | wc -l) crates, none compiles C"
