#!/usr/bin/env bash
# test.sh: the second command of the README, and what CI runs (.ci/run).
# Installs what is missing, then builds and runs the whole ctest suite in
# several builds:
#   build/       normal build (RelWithDebInfo, the system cc: gcc on Debian),
#                then its matching tests again under other OpenBLAS kernels
#   build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer, leaks checked
#   build-clang/ the normal build compiled by clang, whose -Wall -Wextra
#                -Werror set differs from gcc's (-Wstring-concatenation, ...)
#                and whose optimizer may read undefined behaviour otherwise
#   build-release/ gcc -O3 (Release), compiled only: its warnings differ
#   build-tsan/  ThreadSanitizer, over the tests that start threads only
# All builds always run; the exit status is non-zero if any fails, and the
# last lines are one summary per build.  Works from any directory.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

bash scripts/setup.sh || exit 1

jobs=2
# Cap each test's OpenBLAS thread pool at the CI machine's two cores, so a
# larger machine running two tests at once does not start one BLAS thread per
# core in each, and every machine exercises the same threaded code paths.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-2}"

summary=()
status=0

# run_build NAME DIR [cmake options...]: configure, build, ctest (only the
# tests matching $ctest_filter when it is set; none when $ctest_skip is
# set); records a summary line and sets status=1 on any failure.
ctest_filter=
ctest_exclude=
ctest_skip=
run_build() {
  local name=$1 dir=$2 filter=()
  shift 2
  [ -n "$ctest_filter" ] && filter=(--no-tests=error -R "$ctest_filter")
  [ -n "$ctest_exclude" ] && filter+=(-E "$ctest_exclude")
  local t0=$SECONDS stage=configure
  printf '\n== %s build (%s/)\n' "$name" "$dir"
  if cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null &&
     { stage=build; cmake --build "$dir" -j"$jobs"; } &&
     { stage=ctest; [ -n "$ctest_skip" ] ||
       (cd "$dir" && ctest --output-on-failure -j"$jobs" "${filter[@]}"); }; then
    summary+=("$(printf '%-6s PASS  (%s/, %ds)' "$name" "$dir" $((SECONDS - t0)))")
    built=1
  else
    [ "$stage" = ctest ] && built=1
    summary+=("$(printf '%-6s FAIL  at %s (%s/, %ds)' "$name" "$stage" "$dir" $((SECONDS - t0)))")
    status=1
  fi
}

# run_kernels DIR: the tests whose results come from the SVD (training,
# matching, the golden rankings) again, reusing DIR's binaries, once per
# OpenBLAS kernel this CPU can run (OPENBLAS_CORETYPE: each rounds
# differently; docs/model-format.md, "Reproducibility", says what must hold
# across them), so a test that pins one kernel's bits fails on any machine.
kernel_tests='^(test_match_golden|test_model|test_eval|test_score|test_linalg|test_pipeline|cli_test_cli)$'
run_kernels() {
  local dir=$1 t0=$SECONDS ct failed=() types=() flags
  flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null) "
  [[ $flags == *" avx2 "* ]] && types+=(Haswell)
  [[ $flags == *" avx "* ]] && types+=(Sandybridge)
  types+=(Prescott) # SSE3: any x86-64 CPU
  [[ $flags == *" avx512f "* ]] && types+=(SkylakeX)
  for ct in "${types[@]}"; do
    printf '\n== kernel %s (%s/)\n' "$ct" "$dir"
    (cd "$dir" && OPENBLAS_CORETYPE=$ct ctest --output-on-failure -j"$jobs" \
       --no-tests=error -R "$kernel_tests") || failed+=("$ct")
  done
  if [ ${#failed[@]} -eq 0 ]; then
    summary+=("$(printf '%-6s PASS  (%s; %s/, %ds)' kernel "${types[*]}" "$dir" $((SECONDS - t0)))")
  else
    summary+=("$(printf '%-6s FAIL  under %s (of %s; %s/, %ds)' kernel "${failed[*]}" \
                 "${types[*]}" "$dir" $((SECONDS - t0)))")
    status=1
  fi
}

built=0
run_build normal build
if [ $built = 1 ]; then
  run_kernels build
else
  summary+=("$(printf '%-6s SKIP  (the normal build failed)' kernel)")
  status=1
fi

# Sanitizer settings for the ASan build's tests (the normal build's binaries
# ignore them).  LeakSanitizer suppressions, for third-party caches only,
# live in tests/lsan.supp when there are any.
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if [ -f tests/lsan.supp ]; then
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp"
fi
FM_TEST_WAIT_SCALE=3 run_build asan build-asan -DFM_SANITIZE=ON
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

# A fresh cache each time: CMake does not change the compiler of an
# existing build directory.
rm -rf build-clang
# The browser tests drive the same web app and the same server code as in
# the gcc and ASan passes: the clang pass leaves them out (2 minutes).
ctest_exclude='^e2e_'
run_build clang build-clang -DCMAKE_C_COMPILER=clang
ctest_exclude=

# A Release build (gcc -O3), compiled only: its inliner sees further than
# -O2's, and -Wmaybe-uninitialized under -Werror then fails builds the other
# passes accept (it did, in src/graphql/parse.c).  The tests run in the
# passes above; this one checks that a user's Release build compiles.
# (The later -DCMAKE_BUILD_TYPE wins over run_build's RelWithDebInfo.)
ctest_skip=1
run_build release build-release -DCMAKE_BUILD_TYPE=Release
ctest_skip=

# ThreadSanitizer over the tests that start threads: the HTTP server, the
# batch worker, the provisioning runner, the snapshot scheduler, and the
# model tests that train or match on threads (fm_par_run).  OpenBLAS's own
# pool is not instrumented, so it is kept to one thread (the library's
# threads are what is checked); suppressions, for third-party code only,
# live in tests/tsan.supp.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp"
# Every test that starts a thread of ours: the unit tests of the server,
# batch runs, leases, provisioning, snapshots and the model's threaded
# training and matching, and the CLI scripts that start a server (its
# worker pool, batch controller, provisioning worker, snapshot scheduler
# and learner thread).  cli_test_batch is left out: its batch runs are
# the ones test_batch already runs on threads, and under TSan it takes ~9
# minutes.
# Deadlines of the scripts' waits scale by 5 (tests/cli/lib.sh).
ctest_filter='^(test_(http|http_store|batch|pipeline|match_golden|provision|snapshot|lease|model|eval|score)|cli_test_(http|http_admin|http_protocol|graphql|learn|openrefine|provision|snapshot))$'
# The fault-injection loops over whole trainings are single-threaded (every
# other pass runs them): FM_TEST_NO_TRAIN_FAULTS skips them here.
FM_TEST_NO_TRAIN_FAULTS=1 FM_TEST_WAIT_SCALE=5 OPENBLAS_NUM_THREADS=1 run_build tsan build-tsan -DFM_TSAN=ON
ctest_filter=
unset TSAN_OPTIONS

printf '\n== summary\n'
printf '%s\n' "${summary[@]}"
exit $status
