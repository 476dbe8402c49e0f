#!/usr/bin/env bash
# check-exports.sh LIB -- the shared library exports hlr_ names only.
set -euo pipefail
lib=${1:-lib/libhlr.so}
bad=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^hlr_' || true)
if [ -n "$bad" ]; then
    echo "check-exports: $lib exports names outside the hlr_ prefix:" >&2
    echo "$bad" >&2
    exit 1
fi
count=$(nm -D --defined-only "$lib" | grep -c ' hlr_')
internal=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep '^hlr__' || true)
if [ -n "$internal" ]; then
    echo "check-exports: internal hlr__ names are exported: $internal" >&2
    exit 1
fi
echo "exports: passed ($count public hlr_ functions, nothing else)"
