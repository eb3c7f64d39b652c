#!/usr/bin/env bash
# The Dockerfile is built elsewhere (no Docker engine here), so check what can be checked:
# every COPY source exists in the repository, and every apt-get install names a package
# Debian knows (when the apt lists are present).
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
while read -r src; do
  [ -e "$src" ] || { echo "Dockerfile copies $src, which does not exist"; fail=1; }
done < <(awk '/^COPY/ && !/--from=/ { for (i = 2; i < NF; i++) print $i }' Dockerfile)
pkgs=$(sed -n '/apt-get install/,/rm -rf/p' Dockerfile | tr ' \\' '\n\n' |
       grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vE '^(apt-get|install|rm|update|and|lists|var|lib|apt|-y)$' | sort -u)
if apt-cache policy bash 2>/dev/null | grep 'Candidate: [0-9]' >/dev/null; then
  for p in $pkgs; do
    apt-cache policy "$p" 2>/dev/null | grep 'Candidate: [0-9]' >/dev/null || { echo "Dockerfile installs $p, unknown to apt"; fail=1; }
  done
fi
[ $fail -eq 0 ] && echo "Dockerfile: $(echo "$pkgs" | wc -w) packages and every COPY source check out"
exit $fail
