#!/usr/bin/env bash
# check-install.sh -- install libhlr into a temporary folder, then compile,
# link and run a C program and a C++ program against that copy using only
# `pkg-config --cflags --libs hlr`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=/opt/hlr-check
make -s -C "$here" install PREFIX=$prefix DESTDIR="$tmp" >/dev/null
root="$tmp$prefix"
# The .pc file names the final prefix; point pkg-config at the staged copy.
export PKG_CONFIG_PATH="$root/lib/pkgconfig"
flags=$(pkg-config --define-variable=prefix="$root" --define-variable=libdir="$root/lib" \
        --define-variable=includedir="$root/include" --cflags --libs hlr)
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/hello_c" "$here/tests/install/hello.c" $flags
c++ -std=c++17 -Wall -Wextra -Werror -o "$tmp/hello_cpp" "$here/tests/install/hello.cpp" $flags
LD_LIBRARY_PATH="$root/lib" "$tmp/hello_c"
LD_LIBRARY_PATH="$root/lib" "$tmp/hello_cpp"
make -s -C "$here" uninstall PREFIX=$prefix DESTDIR="$tmp" >/dev/null
left=$(find "$root" -type f | head -n 5)
if [ -n "$left" ]; then
    echo "check-install: uninstall left files behind: $left" >&2
    exit 1
fi
echo "install: passed (C and C++ programs built with pkg-config against an installed copy; uninstall clean)"
