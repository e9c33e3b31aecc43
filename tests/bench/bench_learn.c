/*
 * bench_learn.c: what a rebuild of the learning layer costs as decisions
 * accumulate (docs/scoring.md, "Learning from decisions"; the server runs
 * one after each decision, src/http/learn_ref.c).
 *
 *   bench_learn MODEL.fmm [decisions...]   (default 100 1000 5000 20000)
 *
 * For each count n, n query fields taken at an even stride over the model's
 * own (every source and category represented) are decided: accepted with
 * their top candidate, or every third one with its second (so the fit has
 * something to move), as an analyst's picks would be.  fm_learn_build is
 * then timed on them once (the pairs are ranked beforehand and not timed),
 * and the figure is printed beside the server's default --learn-wait
 * (2000 ms): past it a decision's answer no longer waits for its layer,
 * which the learner thread finishes in the background.
 * Built by the `bench_learn` target (not part of ctest); run by
 * tests/bench/bench.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fm_model.h"

#define LEARN_WAIT_MS 2000.0 /* fm_http_opts_default's learn_wait_ms */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Parse a positive count, or exit with a usage message. */
static size_t arg_count(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v <= 0 || v > 10000000) {
    fprintf(stderr, "bench_learn: a decision count must be 1..10000000, got '%s'\n", s);
    exit(2);
  }
  return (size_t)v;
}

/* Decide n queries of m (see the header) into pairs[0..n) (the caller's);
 * the ids are the model's. */
static fm_rc decide(const fm_model *m, fm_matcher *mt, size_t n, fm_learn_pair *pairs,
                    fm_error *err) {
  size_t nq = fm_model_nqueries(m), step = nq / n ? nq / n : 1;
  for (size_t i = 0; i < n; i++) {
    fm_field q, r;
    fm_model_query(m, (i * step) % nq, &q);
    fm_candidate c[2];
    int k = 0;
    fm_rc rc = fm_match(mt, q.id, NULL, 2, c, &k, err);
    if (rc) return rc;
    if (k == 0) return fm_error_set(err, FM_ERR_INTERNAL, "%s: no candidate", q.id);
    fm_model_ref(m, c[i % 3 == 0 && k > 1 ? 1 : 0].ref, &r);
    pairs[i] = (fm_learn_pair){.query = q.id, .ref = r.id, .kind = FM_LEARN_ACCEPT};
  }
  return FM_OK;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench_learn MODEL.fmm [decisions...]\n");
    return 2;
  }
  size_t defaults[] = {100, 1000, 5000, 20000}, nruns = argc > 2 ? (size_t)argc - 2 : 4;
  fm_error err;
  fm_error_init(&err);
  fm_model *m = NULL;
  fm_matcher *mt = NULL;
  fm_learn_pair *pairs = NULL;
  if (fm_model_open(argv[1], &m, &err) || fm_matcher_new(m, &mt, &err)) goto fail;
  printf("model %s: %zu query fields; the server's default --learn-wait is %.0f ms\n", argv[1],
         fm_model_nqueries(m), LEARN_WAIT_MS);
  for (size_t t = 0; t < nruns; t++) {
    size_t n = argc > 2 ? arg_count(argv[t + 2]) : defaults[t];
    if (n > fm_model_nqueries(m)) n = fm_model_nqueries(m);
    fm_free(pairs);
    if (!(pairs = fm_calloc(n, sizeof *pairs))) {
      fm_error_set(&err, FM_ERR_NOMEM, "out of memory");
      goto fail;
    }
    if (decide(m, mt, n, pairs, &err)) goto fail;
    fm_learn *L = NULL;
    double t0 = now_s();
    if (fm_learn_build(m, pairs, n, NULL, &L, &err)) goto fail;
    double ms = (now_s() - t0) * 1e3;
    fm_learn_info info;
    fm_learn_info_get(L, &info);
    fm_learn_free(L);
    printf("rebuild: %6zu decisions %9.1f ms  %.3f ms per decision  %s --learn-wait (%zu queries"
           " ranked, %zu associations)\n",
           n, ms, ms / (double)n, ms <= LEARN_WAIT_MS ? "within" : "past  ", info.queries,
           info.associations);
  }
  fm_free(pairs);
  fm_matcher_free(mt);
  fm_model_close(m);
  return 0;
fail:
  fprintf(stderr, "bench_learn: %s\n", err.msg);
  fm_free(pairs);
  fm_matcher_free(mt);
  fm_model_close(m);
  return 1;
}
