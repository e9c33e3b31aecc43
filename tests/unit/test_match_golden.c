/* test_match_golden.c: the ranking of every query field of the sample model
 * is what it was when tests/data/model/sample-match.golden was written, to
 * the tolerance docs/model-format.md ("Reproducibility") promises across
 * OpenBLAS kernels and CPUs.  Speed work on the matcher (encoding,
 * candidate generation, re-scoring) must not move a ranking or a score
 * beyond that; this test is what says so.
 *
 * The sample config is trained in-process (fixed seed), each query is
 * matched with k = the model's candidate count (the whole re-scored list),
 * and every result row is compared with the golden row at the same rank:
 * the reference id, and the score and each component (title, full, chars,
 * lsa, prior, variant, order, other, date) within |a - b| <= ATOL + RTOL *
 * max(|a|, |b|).  The golden file is text, one row per ranked candidate:
 * "query rank ref score title full chars lsa prior variant order other
 * date" (tab separated, %.9g: every float round-trips), plus the same for
 * a few bare mnemonics the model has never seen; a query without any
 * candidate is one row "query 0".
 *
 * Near-ties: the library breaks exact ties by reference index, but two
 * scores within the tolerance of each other may come out in either order
 * on another kernel.  So the golden rows of a query are cut into tie
 * groups (adjacent golden scores at most 2 * the score tolerance apart:
 * each may move by the tolerance), and within a group the rows may come in
 * any order (same multiset of references, each compared with its own
 * golden row).  A passing run prints the largest deviation per component
 * and the number of rows that moved within their group.
 *
 * Also checked, exactly (same process, same kernel): top 10 is the prefix
 * of the full list, fm_match_all gives the same rows as fm_match, and a
 * query field encoded afresh (not recognized as the model's own, so not
 * using the vector stored at training) gives the same rows too, as does
 * candidate generation with the mark array (the path a zero block weight
 * takes).
 *
 * To regenerate after an intended change of scoring (say why in the
 * commit; any OpenBLAS kernel will do):
 *   FM_WRITE_GOLDEN=1 build/tests/test_match_golden */
#include "fm_model.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_test_train.h"
#include "fm_util.h"
#include "model_internal.h" /* inv_min_ok: both candidate-generation paths */

#include <errno.h>

#define CONFIG "train/sample.json"
#define GOLDEN "tests/data/model/sample-match.golden"
#define KALL 64

/* The tolerance (docs/model-format.md, "Reproducibility"). */
#define ATOL 1e-4
#define RTOL 1e-5

static const char *bare[] = {"PX_LASTX", "EQY_WEIRD_FLD", "ZZZ", "BID_YLD_9", "CUR_MKT_CAP_USD"};

enum { NCOMP = 10 };
static const char *comp_name[NCOMP] = {"score", "title",   "full",  "chars", "lsa",
                                       "prior", "variant", "order", "other", "date"};

/* One ranked row: ids borrowed (from the model or the golden text). */
typedef struct row {
  const char *q, *ref;
  int rank; /* 1-based; 0 for the one row of a query without candidates */
  double v[NCOMP];
} row;

typedef struct rows {
  row *r;
  size_t n, cap;
} rows;

static int rows_add(rows *rs, const row *r) {
  if (fm_grow((void **)&rs->r, &rs->cap, rs->n + 1, sizeof *rs->r)) return -1;
  rs->r[rs->n++] = *r;
  return 0;
}

/* Append one query's result list to rs (ids borrowed from m). */
static int rows_from(rows *rs, const fm_model *m, const char *q, const fm_candidate *c, int n) {
  row r = {.q = q, .ref = "-", .rank = 0};
  if (n == 0) return rows_add(rs, &r);
  for (int i = 0; i < n; i++) {
    fm_field rf;
    fm_model_ref(m, c[i].ref, &rf);
    r.ref = rf.id;
    r.rank = i + 1;
    const float v[NCOMP] = {c[i].score,  c[i].s_title,   c[i].s_full,  c[i].s_chars,
                            c[i].s_lsa,  c[i].s_prior,   c[i].s_variant, c[i].s_order,
                            c[i].s_other, c[i].s_date};
    for (int j = 0; j < NCOMP; j++) r.v[j] = v[j];
    if (rows_add(rs, &r)) return -1;
  }
  return 0;
}

static int rows_text(fm_buf *b, const rows *rs) {
  if (fm_buf_puts(b, "# written by FM_WRITE_GOLDEN=1 build/tests/test_match_golden; "
                     "see tests/unit/test_match_golden.c\n# query\trank\tref") != FM_OK)
    return -1;
  for (int j = 0; j < NCOMP; j++)
    if (fm_buf_printf(b, "\t%s", comp_name[j]) != FM_OK) return -1;
  if (fm_buf_putc(b, '\n') != FM_OK) return -1;
  for (size_t i = 0; i < rs->n; i++) {
    const row *r = &rs->r[i];
    if (r->rank == 0) {
      if (fm_buf_printf(b, "%s\t0\n", r->q) != FM_OK) return -1;
      continue;
    }
    if (fm_buf_printf(b, "%s\t%d\t%s", r->q, r->rank, r->ref) != FM_OK) return -1;
    for (int j = 0; j < NCOMP; j++)
      if (fm_buf_printf(b, "\t%.9g", r->v[j]) != FM_OK) return -1;
    if (fm_buf_putc(b, '\n') != FM_OK) return -1;
  }
  return 0;
}

/* Parse the golden text g (modified in place: the rows borrow its
 * strings) into rs.  Returns 0, or -1 after naming the line. */
static int rows_parse(char *g, rows *rs) {
  int line = 0;
  for (char *p = g, *next; p && *p; p = next) {
    line++;
    char *e = strchr(p, '\n');
    next = e ? e + 1 : NULL;
    if (e) *e = 0;
    if (*p == '#' || *p == 0) continue;
    row r = {.ref = "-"};
    char *f[3 + NCOMP];
    int nf = 0;
    for (char *s = p; nf < 3 + NCOMP; nf++) {
      f[nf] = s;
      char *t = strchr(s, '\t');
      if (!t) { nf++; break; }
      *t = 0;
      s = t + 1;
    }
    r.q = f[0];
    char *end;
    long rank = nf >= 2 ? strtol(f[1], &end, 10) : -1;
    int ok = nf >= 2 && *end == 0 && rank >= 0 && rank <= KALL;
    if (ok && rank > 0) {
      ok = nf == 3 + NCOMP;
      r.ref = f[2];
      for (int j = 0; ok && j < NCOMP; j++) {
        errno = 0;
        r.v[j] = strtof(f[3 + j], &end); /* the floats, exactly */
        ok = *end == 0 && end != f[3 + j] && errno == 0;
      }
    } else if (ok) {
      ok = nf == 2;
    }
    r.rank = (int)rank;
    if (!ok) {
      fprintf(stderr, "  %s:%d: not a golden row (query, rank, ref, %d values)\n", GOLDEN, line,
              NCOMP);
      return -1;
    }
    if (rows_add(rs, &r)) return -1;
  }
  return 0;
}

static double tol(double a, double b) { return ATOL + RTOL * fmax(fabs(a), fabs(b)); }

typedef struct dev {
  double abs[NCOMP], rel[NCOMP]; /* largest deviations seen */
  size_t moved;                  /* rows at another rank within their tie group */
  int bad;                       /* rows reported */
  int quiet;                     /* count them without printing */
} dev;

static void report(dev *d, const char *what, const row *g, const row *r) {
  if (d->bad++ >= 10 || d->quiet) return;
  fprintf(stderr, "  %s rank %d: %s\n    want %s", g->q, g->rank, what, g->ref);
  for (int j = 0; j < NCOMP; j++) fprintf(stderr, " %.9g", g->v[j]);
  fprintf(stderr, "\n    got  %s", r ? r->ref : "(none)");
  for (int j = 0; r && j < NCOMP; j++) fprintf(stderr, " %.9g", r->v[j]);
  fputc('\n', stderr);
}

/* Compare one query's rows r[0..n) with its golden rows g[0..n), tie group
 * by tie group. */
static void compare_query(const row *g, const row *r, size_t n, dev *d) {
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && g[j - 1].v[0] - g[j].v[0] <= 2 * tol(g[j - 1].v[0], g[j].v[0])) j++;
    unsigned char used[KALL] = {0};
    for (size_t a = i; a < j; a++) {
      size_t b = i;
      while (b < j && (used[b - i] || strcmp(g[b].ref, r[a].ref) != 0)) b++;
      if (b == j) {
        report(d, "reference not in the golden tie group", &g[a], &r[a]);
        continue;
      }
      used[b - i] = 1;
      d->moved += a != b;
      for (int c = 0; c < NCOMP; c++) {
        double x = r[a].v[c], y = g[b].v[c], e = fabs(x - y);
        if (e > d->abs[c]) d->abs[c] = e;
        if (e > 0 && e / fmax(fabs(x), fabs(y)) > d->rel[c]) d->rel[c] = e / fmax(fabs(x), fabs(y));
        if (!(e <= tol(x, y))) {
          char what[64];
          snprintf(what, sizeof what, "%s beyond the tolerance", comp_name[c]);
          report(d, what, &g[b], &r[a]);
          break;
        }
      }
    }
    i = j;
  }
}

/* The end of the query block that starts at row i: the same query id and
 * ranks 1, 2, ... (a query without candidates is its one row of rank 0). */
static size_t block_end(const rows *rs, size_t i) {
  size_t e = i + 1;
  while (e < rs->n && rs->r[i].rank > 0 && rs->r[e].rank == rs->r[e - 1].rank + 1 &&
         !strcmp(rs->r[e].q, rs->r[i].q))
    e++;
  return e;
}

/* Compare the rows of every query with the golden ones: same queries in
 * the same order, same row counts, then compare_query. */
static void compare_golden(const rows *want, const rows *got) {
  dev d = {.bad = 0};
  size_t i = 0, j = 0;
  while (i < want->n && j < got->n) {
    size_t ie = block_end(want, i), je = block_end(got, j);
    if (strcmp(want->r[i].q, got->r[j].q) != 0 || ie - i != je - j || ie - i > KALL) {
      fprintf(stderr, "  query %s with %zu rows in the golden file, %s with %zu now\n",
              want->r[i].q, ie - i, got->r[j].q, je - j);
      d.bad++;
      break;
    }
    if (want->r[i].rank == 0 || got->r[j].rank == 0) {
      if (want->r[i].rank != got->r[j].rank) report(&d, "candidates / none", &want->r[i], NULL);
    } else {
      compare_query(want->r + i, got->r + j, ie - i, &d);
    }
    i = ie;
    j = je;
  }
  if (!d.bad && (i != want->n || j != got->n)) {
    fprintf(stderr, "  %zu golden rows, %zu now\n", want->n, got->n);
    d.bad++;
  }
  CHECK(d.bad == 0);
  fprintf(stderr, "  %zu rows; %zu moved within a tie group; largest deviation (abs / rel):\n ",
          got->n, d.moved);
  for (int c = 0; c < NCOMP; c++)
    fprintf(stderr, " %s %.2g/%.2g%s", comp_name[c], d.abs[c], d.rel[c], c == 4 ? "\n " : "");
  fputc('\n', stderr);
}

static int same_rows(const fm_candidate *a, const fm_candidate *b, int n) {
  for (int i = 0; i < n; i++)
    if (a[i].ref != b[i].ref || memcmp(&a[i], &b[i], sizeof a[i]) != 0) return 0;
  return 1;
}

static void test_golden(void) {
  fm_model *m = train_file(CONFIG, 0, NULL);
  if (!m) return;
  fm_error err;
  fm_error_init(&err);
  fm_matcher *mt = NULL;
  CHECK(fm_matcher_new(m, &mt, &err) == FM_OK);
  size_t nq = fm_model_nqueries(m);
  size_t nb = sizeof bare / sizeof bare[0];
  fm_candidate *all = calloc(nq * KALL, sizeof *all);
  int *nall = calloc(nq, sizeof *nall);
  fm_candidate cand[KALL], top[10], enc[KALL];
  int nenc_bad = 0;
  rows got = {0}, want = {0};
  fm_buf out;
  fm_buf_init(&out);
  CHECK(mt && all && nall);
  if (!mt || !all || !nall) goto done;
  CHECK(fm_match_all(m, KALL, 2, 1, all, nall, &err) == FM_OK);
  for (size_t i = 0; i < nq + nb; i++) {
    const char *id;
    if (i < nq) {
      fm_field q;
      fm_model_query(m, i, &q);
      id = q.id;
    } else {
      id = bare[i - nq];
    }
    int n = 0, n10 = 0;
    CHECK(fm_match(mt, id, NULL, KALL, cand, &n, &err) == FM_OK);
    CHECK(fm_match(mt, id, NULL, 10, top, &n10, &err) == FM_OK);
    CHECK(n10 == (n < 10 ? n : 10));
    CHECK(same_rows(cand, top, n10));
    if (i < nq) {
      /* fm_match by id looks up the first query with that id; duplicates
       * (same id in two sources) may rank differently in fm_match_all */
      size_t qi = (size_t)fm_model_find_query(m, id);
      CHECK(nall[qi] == n && same_rows(all + qi * KALL, cand, n));
      /* The same field with another source file is not the model's own
       * query, so it is tokenized and encoded afresh instead of using the
       * row stored at training: the rows must not differ by a bit. */
      fm_field q;
      fm_model_query(m, qi, &q);
      q.source = "elsewhere.csv";
      int ne = 0;
      CHECK(fm_match(mt, NULL, &q, KALL, enc, &ne, &err) == FM_OK);
      if (!(ne == n && same_rows(enc, cand, n)) && nenc_bad++ < 3)
        fprintf(stderr, "  %s: encoded afresh differs from the stored row\n", id);
    }
    CHECK(rows_from(&got, m, id, cand, n) == 0);
  }
  CHECK(nenc_bad == 0);
  /* Candidate generation without the mark array (all products positive,
   * the default weights) and with it (what a zero block weight forces)
   * give the same rows. */
  CHECK(m->inv_min_ok);
  m->inv_min_ok = 0;
  int nmark_bad = 0;
  for (size_t qi = 0; qi < nq; qi++) {
    fm_field q;
    fm_model_query(m, qi, &q);
    int n = 0;
    CHECK(fm_match(mt, NULL, &q, KALL, cand, &n, &err) == FM_OK);
    if (!(n == nall[qi] && same_rows(cand, all + qi * KALL, n))) nmark_bad++;
  }
  m->inv_min_ok = 1;
  CHECK(nmark_bad == 0);
  if (getenv("FM_WRITE_GOLDEN")) {
    CHECK(rows_text(&out, &got) == 0);
    FILE *f = fopen(GOLDEN, "w");
    CHECK(f && fwrite(out.buf, 1, out.len, f) == out.len);
    if (f) CHECK(fclose(f) == 0);
    fprintf(stderr, "  wrote %s (%zu queries, %zu rows)\n", GOLDEN, nq + nb, got.n);
    goto done;
  }
  size_t glen = 0;
  char *g = NULL;
  CHECK(fm_read_file(GOLDEN, &g, &glen, &err) == FM_OK);
  if (g) {
    int parsed = rows_parse(g, &want) == 0;
    CHECK(parsed);
    if (parsed) compare_golden(&want, &got);
  }
  fm_free(want.r);
  fm_free(g);
done:
  fm_buf_free(&out);
  fm_free(got.r);
  free(all);
  free(nall);
  fm_matcher_free(mt);
  fm_model_close(m);
}

/* The comparison itself: a swap inside a tie group, and a deviation within
 * the tolerance, pass; a swap of rows further apart, and a deviation beyond
 * it, fail. */
static void test_compare(void) {
  row g[4] = {{"Q", "A", 1, {2.0, 0.5}}, {"Q", "B", 2, {1.5, 0.4}},
              {"Q", "C", 3, {1.5 - 1e-4, 0.3}}, {"Q", "D", 4, {1.0, 0.2}}};
  row r[4];
  memcpy(r, g, sizeof r);
  dev d = {.quiet = 1};
  compare_query(g, r, 4, &d);
  CHECK(d.bad == 0 && d.moved == 0);
  r[1] = g[2]; /* B and C: scores 1e-4 apart, one tie group */
  r[2] = g[1];
  r[1].v[0] += 0.9 * ATOL;
  compare_query(g, r, 4, &d);
  CHECK(d.bad == 0 && d.moved == 2 && d.abs[0] > 0.8 * ATOL);
  r[1].v[1] += 2 * ATOL; /* a component beyond the tolerance */
  compare_query(g, r, 4, &d);
  CHECK(d.bad == 1);
  memcpy(r, g, sizeof r);
  r[2] = g[3]; /* C and D: 0.5 apart */
  r[3] = g[2];
  d.bad = 0;
  compare_query(g, r, 4, &d);
  CHECK(d.bad == 2);
}

int main(void) {
  FM_RUN(test_compare);
  FM_RUN(test_golden);
  FM_TEST_EXIT();
}
