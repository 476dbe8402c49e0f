#!/usr/bin/env bash
# fetch-fashion.sh -- make Fashion-MNIST available: Debian's package
# dataset-fashion-mnist puts the gzipped idx files in
# /usr/share/datasets/fashion-mnist.  As root it installs the package when it
# is missing; otherwise it prints the command.
set -euo pipefail
dir=/usr/share/datasets/fashion-mnist
[ -s "$dir/train-images-idx3-ubyte.gz" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "Fashion-MNIST is not installed; run: sudo apt-get install dataset-fashion-mnist" >&2
    exit 1
fi
echo "installing dataset-fashion-mnist ..."
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; }
echo "Fashion-MNIST is in $dir"
