/* test_match_golden.c: the ranking of every query field of the sample model
 * is bit for bit what it was when tests/data/model/sample-match.golden was
 * written.  Speed work on the matcher (encoding, candidate generation,
 * re-scoring) must not move a single score bit or tie order; this test is
 * what says so.
 *
 * The sample config is trained in-process (deterministic: fixed seed, no
 * FMA in the kernels), each query is matched with k = the model's candidate
 * count (the whole re-scored list), and every result row -- reference id,
 * score and the components (title, full, chars, lsa, prior, variant,
 * other, date) as exact hex floats -- is hashed per query.
 * The golden file holds "query_id<TAB>hash<TAB>count" per query, plus the
 * same for a few bare mnemonics the model has never seen.
 *
 * Also checked: top 10 is the prefix of the full list, fm_match_all gives
 * the same rows as fm_match, and a query field encoded afresh (not
 * recognized as the model's own, so not using the vector stored at
 * training) gives the same rows too, as does candidate generation with
 * the mark array (the path a zero block weight takes).
 *
 * To regenerate after an intended change of scoring (say why in the
 * commit):  FM_WRITE_GOLDEN=1 build/tests/test_match_golden */
#include "fm_model.h"
#include "fm_test.h"
#include "fm_util.h"
#include "model_internal.h" /* inv_min_ok: both candidate-generation paths */

#define CONFIG "train/sample.json"
#define GOLDEN "tests/data/model/sample-match.golden"
#define KALL 64

static const char *bare[] = {"PX_LASTX", "EQY_WEIRD_FLD", "ZZZ", "BID_YLD_9", "CUR_MKT_CAP_USD"};

/* Append one result list to b as text with exact floats. */
static int rows_text(fm_buf *b, const fm_model *m, const fm_candidate *c, int n) {
  for (int i = 0; i < n; i++) {
    fm_field rf;
    fm_model_ref(m, c[i].ref, &rf);
    if (fm_buf_printf(b, "%d\t%s\t%a\t%a\t%a\t%a\t%a\t%a\t%a\t%a\t%a\n", i + 1, rf.id,
                      (double)c[i].score, (double)c[i].s_title, (double)c[i].s_full,
                      (double)c[i].s_chars, (double)c[i].s_lsa, (double)c[i].s_prior,
                      (double)c[i].s_variant, (double)c[i].s_other,
                      (double)c[i].s_date))
      return -1;
  }
  return 0;
}

static int same_rows(const fm_candidate *a, const fm_candidate *b, int n) {
  for (int i = 0; i < n; i++)
    if (a[i].ref != b[i].ref || memcmp(&a[i], &b[i], sizeof a[i]) != 0) return 0;
  return 1;
}

static void test_golden(void) {
  fm_error err;
  fm_error_init(&err);
  fm_config *c = NULL;
  fm_rc rc = fm_config_load(CONFIG, &c, &err);
  CHECK(rc == FM_OK);
  if (rc) {
    fprintf(stderr, "  config: %s\n", err.msg);
    return;
  }
  fm_train_input in = {.config = c, .quiet = 1};
  fm_model *m = NULL;
  rc = fm_train(&in, &m, &err);
  fm_config_free(c);
  CHECK(rc == FM_OK);
  if (rc) {
    fprintf(stderr, "  train: %s\n", err.msg);
    return;
  }
  fm_matcher *mt = NULL;
  CHECK(fm_matcher_new(m, &mt, &err) == FM_OK);
  size_t nq = fm_model_nqueries(m);
  size_t nb = sizeof bare / sizeof bare[0];
  fm_candidate *all = calloc(nq * KALL, sizeof *all);
  int *nall = calloc(nq, sizeof *nall);
  fm_candidate cand[KALL], top[10], enc[KALL];
  int nenc_bad = 0;
  fm_buf out, rows;
  fm_buf_init(&out);
  fm_buf_init(&rows);
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
    fm_buf_reset(&rows);
    CHECK(rows_text(&rows, m, cand, n) == 0);
    CHECK(fm_buf_printf(&out, "%s\t%016llx\t%d\n", id,
                        (unsigned long long)fm_hash64(rows.buf, rows.len), n) == FM_OK);
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
    FILE *f = fopen(GOLDEN, "w");
    CHECK(f && fwrite(out.buf, 1, out.len, f) == out.len);
    if (f) fclose(f);
    fprintf(stderr, "  wrote %s (%zu queries)\n", GOLDEN, nq + nb);
    goto done;
  }
  size_t glen = 0;
  char *g = NULL;
  CHECK(fm_read_file(GOLDEN, &g, &glen, &err) == FM_OK);
  if (g) {
    /* report the first query that differs, then compare the whole text */
    const char *a = g, *b = out.buf;
    while (*a && *b) {
      const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
      if (!ea || !eb) break;
      if (ea - a != eb - b || memcmp(a, b, (size_t)(ea - a)) != 0) {
        fprintf(stderr, "  first difference:\n    want %.*s\n    got  %.*s\n", (int)(ea - a), a,
                (int)(eb - b), b);
        break;
      }
      a = ea + 1;
      b = eb + 1;
    }
    CHECK(glen == out.len && memcmp(g, out.buf, glen) == 0);
    fm_free(g);
  }
done:
  fm_buf_free(&out);
  fm_buf_free(&rows);
  free(all);
  free(nall);
  fm_matcher_free(mt);
  fm_model_close(m);
}

int main(void) {
  FM_RUN(test_golden);
  FM_TEST_EXIT();
}
