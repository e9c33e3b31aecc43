/*
 * bench_lookup.c: latency of one lookup (fm_match, top k) on a loaded model.
 *
 *   bench_lookup MODEL.fmm [queries [rounds [k]]]   (default 2000 5 10)
 *
 * Opens the model once, creates one matcher, then looks up `queries` query
 * fields taken from the model's own (an even stride over them, so every
 * vendor source and category is represented), `rounds` times, two ways:
 *   - "latency:" each field given in full, as a field the model has never
 *     seen (its source file renamed), so it is tokenized and encoded: the
 *     cost of an ad-hoc lookup;
 *   - "by id:" the same fields by id, which use the query rows stored in the
 *     model at training (no tokenization).
 * Each lookup is timed on its own; the first round only warms caches and is
 * not counted.  Prints mean, p50, p99 and max microseconds per lookup.
 * Built by the `bench_lookup` target (not part of ctest); run by
 * tests/bench/bench.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fm_model.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Parse a positive int argument, or exit with a usage message. */
static int arg_int(const char *s, const char *what) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v <= 0 || v > 1000000) {
    fprintf(stderr, "bench_lookup: %s must be a positive integer, got '%s'\n",
            what, s);
    exit(2);
  }
  return (int)v;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 5) {
    fprintf(stderr, "usage: bench_lookup MODEL.fmm [queries [rounds [k]]]\n");
    return 2;
  }
  const char *path = argv[1];
  int nq = argc > 2 ? arg_int(argv[2], "queries") : 2000;
  int rounds = argc > 3 ? arg_int(argv[3], "rounds") : 5;
  int k = argc > 4 ? arg_int(argv[4], "k") : 10;
  if (rounds < 2) rounds = 2; /* one warm-up round plus at least one timed */

  fm_error err;
  fm_error_init(&err);
  fm_model *m = NULL;
  fm_matcher *mt = NULL;
  const char **ids = NULL;
  fm_field *flds = NULL;
  fm_candidate *cand = NULL;
  double *lat = NULL;
  int rc = 1;

  double t0 = now_us();
  if (fm_model_open(path, &m, &err) != FM_OK) goto fail;
  double t_open = now_us() - t0;
  t0 = now_us();
  if (fm_matcher_new(m, &mt, &err) != FM_OK) goto fail;
  double t_matcher = now_us() - t0;

  size_t total = fm_model_nqueries(m);
  if (total == 0) {
    fprintf(stderr, "bench_lookup: %s: the model has no query fields\n", path);
    goto out;
  }
  if ((size_t)nq > total) nq = (int)total;

  size_t ntimed = (size_t)nq * (size_t)(rounds - 1);
  ids = malloc(sizeof(*ids) * (size_t)nq);
  flds = malloc(sizeof(*flds) * (size_t)nq);
  cand = malloc(sizeof(*cand) * (size_t)k);
  lat = malloc(sizeof(*lat) * ntimed);
  if (!ids || !flds || !cand || !lat) {
    fprintf(stderr, "bench_lookup: out of memory\n");
    goto out;
  }
  /* Even stride over the query fields: sources are stored one after the
   * other, so this mixes real-time and fundamentals mnemonics, fields with
   * and without descriptions, in the model's own proportions. */
  for (int i = 0; i < nq; i++) {
    fm_field f;
    fm_model_query(m, (size_t)i * total / (size_t)nq, &f);
    ids[i] = f.id;
    flds[i] = f;
    flds[i].source = "bench-lookup-adhoc";
  }

  printf("model:     %s (%zu query fields, %zu reference fields)\n", path,
         total, fm_model_nrefs(m));
  printf("setup:     open %.1f ms, matcher %.1f ms\n", t_open / 1e3,
         t_matcher / 1e3);
  for (int by_id = 0; by_id < 2; by_id++) {
    size_t t = 0;
    long found = 0;
    for (int r = 0; r < rounds; r++) {
      for (int i = 0; i < nq; i++) {
        int nout = 0;
        double s = now_us();
        if (fm_match(mt, by_id ? ids[i] : NULL, by_id ? NULL : &flds[i], k, cand, &nout,
                     &err) != FM_OK)
          goto fail;
        double e = now_us() - s;
        if (r > 0) {
          lat[t++] = e;
          found += nout;
        }
      }
    }
    double sum = 0;
    for (size_t i = 0; i < ntimed; i++) sum += lat[i];
    qsort(lat, ntimed, sizeof(*lat), cmp_double);
    if (!by_id)
      printf("lookups:   %d fields x %d timed rounds (1 warm-up), k=%d, "
             "%.1f candidates/lookup\n",
             nq, rounds - 1, k, (double)found / (double)ntimed);
    printf("%s mean %.1f us  p50 %.1f us  p99 %.1f us  max %.1f us\n",
           by_id ? "by id:    " : "latency:  ", sum / (double)ntimed, lat[ntimed / 2],
           lat[ntimed * 99 / 100], lat[ntimed - 1]);
  }
  rc = 0;
  goto out;

fail:
  fprintf(stderr, "bench_lookup: %s\n", err.msg);
out:
  free(lat);
  free(cand);
  free(ids);
  free(flds);
  fm_matcher_free(mt);
  fm_model_close(m);
  return rc;
}
