/* test_pipeline.c: the overlapped paths on the tiny fixture
 * (tests/data/model): matching that hands finished queries to a sink in
 * order while later ones are matched (fm_match_all_ordered, what `map`
 * writes its output from), and training that writes the model file while
 * its prior is computed (fm_train_input.output over the mfile writer's
 * later sections and two-step write).  Both must give exactly the bytes of
 * the plain paths, and a failing write must leave nothing behind. */
#include "fm_model.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "mfile.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define TINY "tests/data/model/tiny.json"
#define K 4

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Train the tiny config; with output, written there by fm_train.  NULL on
 * failure (*rc says why). */
static fm_model *train(int threads, const char *output, fm_rc *rc, fm_error *err) {
  fm_config *c = NULL;
  fm_error_init(err);
  *rc = fm_config_load(TINY, &c, err);
  CHECK(*rc == FM_OK);
  if (*rc) return NULL;
  if (threads) c->opts.threads = threads;
  fm_train_input in = {.config = c, .quiet = 1, .output = output};
  fm_model *m = NULL;
  *rc = fm_train(&in, &m, err);
  fm_config_free(c);
  return m;
}

/* ---- ordered matching ----------------------------------------------------- */

typedef struct sink_log {
  size_t next;          /* first query the next call must start at */
  size_t chunk, calls, fail_at;
  int bad_order, bad_rows, bad_size, after_fail;
  const fm_candidate *out;
  const int *nout;
  fm_candidate *copy;   /* rows as delivered */
  int *ncopy;
  int active;           /* a call in progress (calls must not overlap) */
  int overlap;
} sink_log;

static fm_rc sink(void *ctx, size_t first, size_t count, const fm_candidate *rows,
                  const int *nout, fm_error *err) {
  sink_log *l = ctx;
  if (l->active) l->overlap = 1;
  l->active = 1;
  if (l->fail_at && l->calls >= l->fail_at) l->after_fail = 1;
  if (first != l->next) l->bad_order = 1;
  if (count == 0 || (l->chunk && count > l->chunk)) l->bad_size = 1;
  if (rows != l->out + first * K || nout != l->nout + first) l->bad_rows = 1;
  /* what the sink sees must already be final */
  memcpy(l->copy + first * K, rows, count * K * sizeof *rows);
  memcpy(l->ncopy + first, nout, count * sizeof *nout);
  l->next = first + count;
  l->calls++;
  l->active = 0;
  if (l->fail_at && l->calls == l->fail_at)
    return fm_error_set(err, FM_ERR_IO, "sink says no at call %zu", l->calls);
  return FM_OK;
}

static void test_match_ordered(void) {
  fm_rc rc;
  fm_error err;
  fm_model *m = train(0, NULL, &rc, &err);
  if (!m) return;
  size_t nq = fm_model_nqueries(m);
  fm_candidate *ref = fm_calloc(nq * K, sizeof *ref), *out = fm_calloc(nq * K, sizeof *out);
  fm_candidate *copy = fm_calloc(nq * K, sizeof *copy);
  int *nref = fm_calloc(nq, sizeof *nref), *nout = fm_calloc(nq, sizeof *nout);
  int *ncopy = fm_calloc(nq, sizeof *ncopy);
  CHECK(fm_match_all(m, K, 1, 1, ref, nref, &err) == FM_OK);
  size_t chunks[] = {1, 2, 7, 29, 30, 31, 256, 0};
  for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++)
    for (int th = 1; th <= 4; th++) {
      memset(out, 0xa5, nq * K * sizeof *out);
      memset(copy, 0x5a, nq * K * sizeof *copy);
      memset(nout, 0, nq * sizeof *nout);
      sink_log l = {.chunk = chunks[c], .out = out, .nout = nout, .copy = copy, .ncopy = ncopy};
      rc = fm_match_all_ordered(m, K, th, 1, chunks[c], out, nout, sink, &l, &err);
      CHECK(rc == FM_OK);
      CHECK(l.next == nq);
      CHECK(!l.bad_order && !l.bad_rows && !l.bad_size && !l.overlap);
      size_t want = chunks[c] ? (nq + chunks[c] - 1) / chunks[c] : 1;
      CHECK(l.calls == want);
      CHECK(memcmp(nout, nref, nq * sizeof *nout) == 0);
      CHECK(memcmp(ncopy, nref, nq * sizeof *nout) == 0);
      int same = 1;
      for (size_t i = 0; i < nq; i++)
        for (int j = 0; j < nref[i]; j++) {
          same &= memcmp(&out[i * K + j], &ref[i * K + j], sizeof *out) == 0;
          same &= memcmp(&copy[i * K + j], &ref[i * K + j], sizeof *out) == 0;
        }
      CHECK(same);
    }
  /* no sink: fm_match_all */
  CHECK(fm_match_all_ordered(m, K, 2, 1, 3, out, nout, NULL, NULL, &err) == FM_OK);
  CHECK(memcmp(nout, nref, nq * sizeof *nout) == 0);
  /* a failing sink stops the delivery; its error comes back */
  for (int th = 1; th <= 3; th++) {
    sink_log l = {.chunk = 2, .fail_at = 3, .out = out, .nout = nout, .copy = copy,
                  .ncopy = ncopy};
    fm_error_init(&err);
    rc = fm_match_all_ordered(m, K, th, 1, 2, out, nout, sink, &l, &err);
    CHECK(rc == FM_ERR_IO);
    CHECK(strstr(err.msg, "sink says no at call 3") != NULL);
    CHECK(l.calls == 3 && !l.after_fail && !l.bad_order);
  }
  CHECK(fm_match_all_ordered(m, 0, 1, 1, 0, out, nout, sink, NULL, &err) == FM_ERR_ARG);
  fm_free(ref);
  fm_free(out);
  fm_free(copy);
  fm_free(nref);
  fm_free(nout);
  fm_free(ncopy);
  fm_model_close(m);
}

/* ---- training that writes ------------------------------------------------- */

static void test_train_output(void) {
  fm_rc rc;
  fm_error err;
  for (int th = 1; th <= 3; th++) {
    const char *out = tmp("train-out.fmm"), *plain = tmp("train-plain.fmm");
    unlink(out);
    fm_model *m = train(th, out, &rc, &err);
    CHECK(rc == FM_OK && m);
    if (!m) continue;
    CHECK(fm_model_write(m, plain, &err) == FM_OK);
    CHECK(files_equal(out, plain));
    /* and over an existing file */
    fm_model *m2 = train(th, plain, &rc, &err);
    CHECK(rc == FM_OK);
    CHECK(files_equal(out, plain));
    fm_model_close(m2);
    fm_model *l = NULL;
    CHECK(fm_model_open(out, &l, &err) == FM_OK);
    if (l) {
      fm_model_info a, b;
      fm_model_info_get(l, &a);
      fm_model_info_get(m, &b);
      CHECK(a.nrefs == b.nrefs && a.nqueries == b.nqueries && a.checksum != 0);
      fm_model_close(l);
    }
    fm_model_close(m);
  }
  CHECK(no_temp_files());
}

/* A write that fails part way (the file size limit, SIGXFSZ ignored, so
 * the write returns EFBIG) in the background thread: FM_ERR_IO naming the
 * temp file, nothing at the path, an existing file untouched. */
static void test_train_output_fails(void) {
  struct rlimit old;
  CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
  const char *keep = tmp("keep.fmm"), *none = tmp("none.fmm");
  CHECK(write_bytes(keep, "keep", 4) == 0);
  unlink(none);
  for (int th = 1; th <= 2; th++) {
    const char *paths[2] = {keep, none};
    for (int p = 0; p < 2; p++) {
      struct rlimit lim = old;
      lim.rlim_cur = 4096; /* the tiny model is ~60 KB */
      CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
      fm_rc rc;
      fm_error err;
      fm_model *m = train(th, paths[p], &rc, &err);
      CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
      CHECK(rc == FM_ERR_IO && m == NULL);
      CHECK(strstr(err.msg, "write failed") != NULL && strstr(err.msg, ".tmp.") != NULL);
      fm_model_close(m);
    }
    size_t n = 0;
    unsigned char *b = read_bytes(keep, &n);
    CHECK(b && n == 4 && memcmp(b, "keep", 4) == 0);
    fm_free(b);
    CHECK(!exists(none));
    CHECK(no_temp_files());
  }
  signal(SIGXFSZ, prev);
}

/* Allocation failures anywhere in a training run that writes: each either
 * succeeds with the right bytes or fails leaving nothing behind. */
static void test_train_output_faults(void) {
  if (fm_test_skip_train_faults("training with an output")) return;
  const char *out = tmp("fault.fmm"), *want = tmp("fault-want.fmm");
  fm_rc rc;
  fm_error err;
  fm_model *m = train(1, want, &rc, &err);
  CHECK(rc == FM_OK);
  fm_model_close(m);
  int nomem = 0, ok = 0, other = 0;
  for (long k = 1; k < 2000000 && ok < 3; k += 5) {
    unlink(out);
    fm_config *c = NULL;
    fm_error_init(&err);
    if (fm_config_load(TINY, &c, &err)) { CHECK(0); break; }
    c->opts.threads = 1; /* the fault countdown is not thread-safe */
    fm_train_input in = {.config = c, .quiet = 1, .output = out};
    fm_fault_malloc_after(k);
    rc = fm_train(&in, &m, &err);
    fm_fault_malloc_after(0);
    fm_config_free(c);
    if (rc == FM_OK) {
      ok++;
      CHECK(files_equal(out, want));
      fm_model_close(m);
    } else {
      ok = 0;
      if (rc == FM_ERR_NOMEM) nomem++;
      else other++;
      CHECK(!exists(out));
    }
    CHECK(no_temp_files());
  }
  fprintf(stderr, "  %d NOMEM runs\n", nomem);
  CHECK(nomem > 0 && other == 0 && ok == 3);
}

/* ---- the mfile writer's later sections ------------------------------------ */

static void test_mfile_later(void) {
  fm_error err;
  fm_error_init(&err);
  const char *a = tmp("later-a.fmm"), *b = tmp("later-b.fmm");
  static const char x[] = "first section", y[200] = "later section";
  /* the same sections, once plain, once with the middle one later */
  fm_mfile_writer *w = NULL, *v = NULL;
  CHECK(fm_mfile_writer_new(&w) == FM_OK && fm_mfile_writer_new(&v) == FM_OK);
  if (!w || !v) return;
  CHECK(fm_mfile_add_ref(w, "x", x, sizeof x, &err) == FM_OK);
  CHECK(fm_mfile_add_ref(w, "y", y, sizeof y, &err) == FM_OK);
  CHECK(fm_mfile_add_ref(w, "e", "", 0, &err) == FM_OK);
  CHECK(fm_mfile_add_ref(w, "z", x, 3, &err) == FM_OK);
  CHECK(fm_mfile_write(w, a, &err) == FM_OK);
  CHECK(fm_mfile_add_ref(v, "x", x, sizeof x, &err) == FM_OK);
  CHECK(fm_mfile_add_later(v, "y", sizeof y, &err) == FM_OK);
  CHECK(fm_mfile_add_later(v, "e", 0, &err) == FM_OK);
  CHECK(fm_mfile_add_ref(v, "z", x, 3, &err) == FM_OK);
  CHECK(fm_mfile_fill(v, "x", x, &err) == FM_ERR_ARG);   /* not a later one */
  CHECK(fm_mfile_fill(v, "w", x, &err) == FM_ERR_ARG);   /* no such section */
  CHECK(fm_mfile_fill(v, "y", NULL, &err) == FM_ERR_ARG);
  /* a later section never filled: an error, nothing left */
  CHECK(fm_mfile_write_begin(v, b, &err) == FM_OK);
  CHECK(fm_mfile_add_ref(v, "q", x, 1, &err) == FM_ERR_ARG); /* not while writing */
  CHECK(fm_mfile_write_begin(v, b, &err) == FM_ERR_ARG);
  fm_error_init(&err);
  CHECK(fm_mfile_write_end(v, &err) == FM_ERR_ARG);
  CHECK(strstr(err.msg, "'y' was never filled") != NULL);
  CHECK(!exists(b) && no_temp_files());
  CHECK(fm_mfile_write_end(v, &err) == FM_ERR_ARG); /* none in progress */
  /* filled while the rest is being written: the bytes of the plain write */
  CHECK(fm_mfile_write_begin(v, b, &err) == FM_OK);
  CHECK(fm_mfile_fill(v, "y", y, &err) == FM_OK);
  CHECK(fm_mfile_fill(v, "e", NULL, &err) == FM_OK);
  CHECK(fm_mfile_write_end(v, &err) == FM_OK);
  CHECK(files_equal(a, b));
  /* written again (the writer is not consumed), and a cancelled write */
  CHECK(fm_mfile_write(v, b, &err) == FM_OK);
  CHECK(files_equal(a, b));
  unlink(b);
  CHECK(fm_mfile_write_begin(v, b, &err) == FM_OK);
  fm_mfile_write_cancel(v);
  CHECK(!exists(b) && no_temp_files());
  /* freed in the middle of a write: cancelled */
  CHECK(fm_mfile_write_begin(v, b, &err) == FM_OK);
  fm_mfile_writer_free(v);
  CHECK(!exists(b) && no_temp_files());
  fm_mfile_writer_free(w);
}

int main(void) {
  if (scratch_make("fm_pipe_")) return 1;
  FM_RUN(test_match_ordered);
  FM_RUN(test_train_output);
  FM_RUN(test_train_output_fails);
  FM_RUN(test_train_output_faults);
  FM_RUN(test_mfile_later);
  scratch_remove();
  FM_TEST_EXIT();
}
