# lib.sh: the assertion helpers every CLI test script uses.  Source it after
# setting T (the script's scratch directory); the counters start at zero.
#   run CMD...           run it: stdout in $T/out, stderr in $T/err, exit in $rc
#   expect_rc D WANT     the last run exited with WANT
#   expect_in D F TEXT   file F contains TEXT (fixed string)
#   expect_not_in D F T  file F does not contain T
#   expect D CMD...      CMD succeeds
#   expect_eq D GOT WANT the two strings are equal
#   wait_for D SECS CMD... poll CMD until it succeeds, for at most SECS
#                        seconds; on timeout says what it waited for
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
run() { "$@" >"$T/out" 2>"$T/err"; rc=$?; }
expect_rc() {
  if [[ $rc == "$2" ]]; then ok; else
    bad "$1: exit $rc, want $2"
    sed 's/^/    stderr: /' "$T/err" | head -5 >&2
  fi
}
expect_in() {
  if grep -qF -- "$3" "$2"; then ok; else
    bad "$1: '$3' not in $(basename "$2")"
    sed 's/^/    | /' "$2" | head -5 >&2
  fi
}
expect_not_in() {
  if ! grep -qF -- "$3" "$2"; then ok; else bad "$1: '$3' unexpectedly in $(basename "$2")"; fi
}
expect() {
  local d=$1
  shift
  if "$@"; then ok; else bad "$d"; fi
}
expect_eq() { if [[ "$2" == "$3" ]]; then ok; else bad "$1: got '$2', want '$3'"; fi; }

# wait_for DESC SECS CMD...: the one way a test waits for something another
# process does (a server's port, a job's status, a lock taken, a lease run
# out): run CMD every 0.1 s until it succeeds, for at most SECS seconds, a
# deadline generous enough for a loaded machine (60 s unless the work itself
# is long).  Counts as one check: passes as soon as the state is there, and
# on timeout fails saying what it was waiting for.  Returns CMD's status.
# The 0.1 s pause is the polling interval, never what the test relies on.
# FM_TEST_WAIT_SCALE (an integer, default 1) multiplies every deadline: the
# sanitizer passes of scripts/test.sh set it, since ThreadSanitizer runs the
# same work several times slower.
wait_for() {
  local desc=$1 secs=$(($2 * ${FM_TEST_WAIT_SCALE:-1}))
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      bad "gave up after ${secs}s waiting for $desc"
      return 1
    fi
    sleep 0.1
  done
  ok
}
