#!/usr/bin/env bash
# Every binary answers --help (usage on stdout, exit 0) and --version ("NAME VERSION").
# usage: help_version_test.sh BINARY...
set -uo pipefail
fail=0
for b in "$@"; do
  name=$(basename "$b")
  if ! out=$("$b" --help </dev/null 2>&1) || ! grep -qi "usage\|weft-cni" <<<"$out"; then
    echo "FAIL: $name --help"; fail=1
  fi
  if ! v=$("$b" --version </dev/null 2>&1) || ! grep -q "^$name [0-9]" <<<"$v"; then
    echo "FAIL: $name --version printed: $v"; fail=1
  else
    echo "$v"
  fi
done
exit $fail
