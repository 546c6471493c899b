#!/bin/sh
# A bounded libFuzzer run for `meson test --suite fuzz`:
#   run-libfuzzer.sh FUZZER WORKDIR SEEDDIR [libFuzzer flags...]
# New inputs go to WORKDIR/corpus (in the build tree: the seed directory in
# the source tree is only read), crashes to WORKDIR/crash-*, leak-*,
# timeout-*, oom-*. Exits non-zero when libFuzzer found something.
set -eu
fuzzer=$1 workdir=$2 seeds=$3
shift 3
mkdir -p "$workdir/corpus"
exec "$fuzzer" -artifact_prefix="$workdir/" -print_final_stats=1 \
    -error_exitcode=1 -timeout_exitcode=1 "$@" \
    "$workdir/corpus" "$seeds"
