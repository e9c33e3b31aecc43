/* fm_test.h: a minimal test harness.  Each test file defines test
 * functions and calls them through FM_RUN; a failing check prints
 * file:line and the expression and marks the run failed.  Exit 77 means
 * "skipped" (ctest SKIP_RETURN_CODE). */
#ifndef FM_TEST_H
#define FM_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fm_test_failures;
static int fm_test_checks;

#define CHECK(cond)                                                        \
  do {                                                                     \
    fm_test_checks++;                                                      \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,     \
              #cond);                                                      \
      fm_test_failures++;                                                  \
    }                                                                      \
  } while (0)

#define CHECK_STR(a, b)                                                    \
  do {                                                                     \
    const char *fm_a_ = (a), *fm_b_ = (b);                                 \
    fm_test_checks++;                                                      \
    if (!fm_a_ || !fm_b_ || strcmp(fm_a_, fm_b_) != 0) {                   \
      fprintf(stderr, "%s:%d: CHECK_STR failed: %s == \"%s\", want \"%s\"\n", \
              __FILE__, __LINE__, #a, fm_a_ ? fm_a_ : "(null)",            \
              fm_b_ ? fm_b_ : "(null)");                                   \
      fm_test_failures++;                                                  \
    }                                                                      \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                              \
  do {                                                                     \
    double fm_a_ = (a), fm_b_ = (b);                                       \
    fm_test_checks++;                                                      \
    if (!(fabs(fm_a_ - fm_b_) <= (tol))) {                                 \
      fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %g, want %g +- %g\n", \
              __FILE__, __LINE__, #a, fm_a_, fm_b_, (double)(tol));        \
      fm_test_failures++;                                                  \
    }                                                                      \
  } while (0)

/* Fault injection over whole trainings runs single-threaded (the
 * countdown is not thread-safe), so ThreadSanitizer has nothing to check
 * in it, and under TSan it costs minutes: the TSan pass of
 * scripts/test.sh sets FM_TEST_NO_TRAIN_FAULTS=1 and the other passes run
 * it.  True (and says so) when the caller should skip `what`. */
static inline int fm_test_skip_train_faults(const char *what) {
  const char *v = getenv("FM_TEST_NO_TRAIN_FAULTS");
  if (!v || !*v || !strcmp(v, "0")) return 0;
  fprintf(stderr, "  %s: fault injection skipped (FM_TEST_NO_TRAIN_FAULTS)\n", what);
  return 1;
}

#define FM_RUN(fn)                                                         \
  do {                                                                     \
    int fm_before_ = fm_test_failures;                                     \
    fn();                                                                  \
    fprintf(stderr, "%s %s\n", fm_test_failures == fm_before_ ? "ok  " : "FAIL", #fn); \
  } while (0)

#define FM_TEST_EXIT()                                                     \
  do {                                                                     \
    fprintf(stderr, "%d checks, %d failed\n", fm_test_checks, fm_test_failures); \
    return fm_test_failures ? 1 : 0;                                       \
  } while (0)

/* Waiting for another thread or process, on state, never on the clock:
 * WAIT_FOR(desc, cond) evaluates cond every 10 ms until it holds, for at
 * most FM_TEST_WAIT_S seconds (a deadline generous enough for a loaded
 * machine).  It is one check: on timeout it fails, naming what it waited
 * for.  The 10 ms pause is the polling interval, nothing relies on it. */
#define FM_TEST_WAIT_S 60
static inline double fm_test_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}
static inline void fm_test_pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}
#define WAIT_FOR(desc, cond)                                               \
  do {                                                                     \
    double fm_t0_ = fm_test_now();                                         \
    fm_test_checks++;                                                      \
    while (!(cond)) {                                                      \
      if (fm_test_now() - fm_t0_ > FM_TEST_WAIT_S) {                       \
        fprintf(stderr, "%s:%d: gave up after %d s waiting for %s\n",      \
                __FILE__, __LINE__, FM_TEST_WAIT_S, (desc));               \
        fm_test_failures++;                                                \
        break;                                                             \
      }                                                                    \
      fm_test_pause_ms(10);                                                \
    }                                                                      \
  } while (0)

/* Path of the shared data folder, or NULL (then the test should skip). */
static inline const char *fm_test_shared(void) {
  const char *s = getenv("FM_SHARED");
  if (!s || !*s) s = "../shared";
  FILE *fp;
  char probe[4096];
  snprintf(probe, sizeof probe, "%s/gold/README.md", s);
  fp = fopen(probe, "r");
  if (!fp) return NULL;
  fclose(fp);
  return s;
}
#endif
