/* test_model.c: the model module end to end on a tiny hand-written fixture
 * (tests/data/model: 35 RDM reference fields, 30 Bloomberg-style query
 * fields, gold and training pairs).
 *
 * Covers: training (config errors: test_config.c), write -> open round
 * trip (every match identical), pairs kept out of abbreviation mining,
 * deterministic bytes, another seed, top-k
 * ordering against a rank-everything run, bare mnemonics, and allocation
 * fault injection over loading, matching, writing, evaluation, config
 * parsing and training.  Damaged model files: test_model_damage.c.
 * Evaluation and cross-validation: test_eval.c.  The score's parts (order
 * prior, numbered copies, code ids, residual items, dates): test_score.c. */
#include "fm_model.h"
#include "fm_test.h"
#include "fm_test_mfile.h"
#include "fm_test_util.h"
#include "fm_test_train.h"
#include "mfile.h"

#include <dirent.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#define D "tests/data/model/"
#define TINY FM_TEST_TINY
#define GOLD D "tiny-gold.tsv"
#define TRAIN D "tiny-train.tsv"
#define NREFS 35
#define NQUERIES 30
#define NGOLDQ 14 /* distinct queries of tiny-gold.tsv (15 rows) */

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* The settings record each pairs file less the folder they all share: two
 * files of one name in different folders stay apart, and no cwd-dependent
 * prefix enters the model's bytes. */
static void test_pairs_file_names(void) {
  size_t n = 0;
  unsigned char *pairs = read_bytes(TRAIN, &n);
  CHECK(pairs != NULL);
  if (!pairs) return;
  CHECK(mkdir(tmp("a"), 0700) == 0 && mkdir(tmp("b"), 0700) == 0);
  CHECK(write_bytes(tmp("a/p.tsv"), pairs, n) == 0 && write_bytes(tmp("b/p.tsv"), pairs, n) == 0);
  fm_free(pairs);
  char json[1024];
  snprintf(json, sizeof json, "{\"extends\": \"%s/" TINY "\", \"train_pairs\": "
           "[\"a/p.tsv\", \"b/p.tsv\"]}", getcwd((char[4096]){0}, 4096));
  CHECK(write_text(tmp("twofiles.json"), json) == 0);
  fm_model *m = train_file(tmp("twofiles.json"), 0, NULL);
  if (m) {
    fm_model_info info;
    fm_model_info_get(m, &info);
    CHECK(strstr(info.config_json, "\"train_pairs_files\":[\"a/p.tsv\",\"b/p.tsv\"]") != NULL);
    fm_model_close(m);
  }
  m = train_tiny(0, 0); /* one file: its name */
  if (m) {
    fm_model_info info;
    fm_model_info_get(m, &info);
    CHECK(strstr(info.config_json, "\"train_pairs_files\":[\"tiny-train.tsv\"]") != NULL);
    fm_model_close(m);
  }
  unlink(tmp("a/p.tsv"));
  unlink(tmp("b/p.tsv"));
  rmdir(tmp("a"));
  rmdir(tmp("b"));
}

/* Training pairs do not feed abbreviation mining.  Each pair below would
 * attest `qwdg` -> "quartz widget" (a Bloomberg mnemonic part against the
 * Refinitiv name), twice, which is the mining threshold; but the two
 * vendors' words paraphrase one another, so such letter matches are
 * coincidences (docs/scoring.md).  The table is the same with and without
 * the pairs, and the pairs still reach the model. */
static void test_pairs_not_mined(void) {
  CHECK(write_text(tmp("pm-refs.csv"), "id,name,description\n"
                                       "QZ1,QUARTZ WIDGET,Count of quartz widgets.\n"
                                       "QZ2,QUARTZ WIDGET VALUE,Value of the quartz widgets.\n"
                                       "LV1,LEVER ARM,Length of the lever.\n") == 0);
  CHECK(write_text(tmp("pm-qrys.csv"), "id,name,description\n"
                                       "BB_QWDG,Gizmo count,Gizmos counted.\n"
                                       "CC_QWDG_VAL,Gizmo value,Gizmos valued.\n"
                                       "DD_LEV,Lever length,How long the lever is.\n") == 0);
  CHECK(write_text(tmp("pm-pairs.tsv"), "bloomberg_field\trefinitiv_field\n"
                                        "BB_QWDG\tQZ1\nCC_QWDG_VAL\tQZ2\n") == 0);
  size_t nabbrev[2] = {0, 0}, npairs[2] = {9, 9};
  fm_model *m[2];
  /* without pairs, then the same config extended with them */
  m[0] = train_json("pm", "[{\"vendor\": \"refinitiv\", \"format\": \"csv\", \"path\": \"pm-refs.csv\"}]",
                    "[{\"vendor\": \"bloomberg\", \"format\": \"csv\", \"path\": \"pm-qrys.csv\"}]",
                    "{\"dims\": 2, \"calibration_folds\": 0}", 0);
  char json[512];
  snprintf(json, sizeof json, "{\"extends\": \"%s\", \"train_pairs\": [\"pm-pairs.tsv\"]}",
           tmp("pm.json"));
  CHECK(write_text(tmp("pm-pairs.json"), json) == 0);
  m[1] = train_file(tmp("pm-pairs.json"), 0, NULL);
  for (int with = 0; with < 2; with++) {
    if (!m[with]) continue;
    fm_model_info info;
    fm_model_info_get(m[with], &info);
    nabbrev[with] = info.nabbrev;
    npairs[with] = info.ntrain_pairs;
    fm_model_close(m[with]);
  }
  CHECK(nabbrev[0] > 0);
  CHECK(nabbrev[1] == nabbrev[0]);
  CHECK(npairs[0] == 0 && npairs[1] == 2);
}

/* ---- training, round trip, determinism ----------------------------------- */

static void same_matches(const fm_model *a, const fm_model *b) {
  fm_error err;
  fm_error_init(&err);
  fm_matcher *ma = NULL, *mb = NULL;
  CHECK(fm_matcher_new(a, &ma, &err) == FM_OK);
  CHECK(fm_matcher_new(b, &mb, &err) == FM_OK);
  if (!ma || !mb) goto out;
  int bad = 0;
  for (size_t i = 0; i < fm_model_nqueries(a); i++) {
    fm_field qa, qb;
    fm_model_query(a, i, &qa);
    fm_model_query(b, i, &qb);
    CHECK_STR(qa.id, qb.id);
    CHECK_STR(qa.name, qb.name);
    CHECK_STR(qa.description, qb.description);
    fm_candidate ca[10], cb[10];
    int na = -1, nb = -2;
    CHECK(fm_match(ma, qa.id, NULL, 10, ca, &na, &err) == FM_OK);
    CHECK(fm_match(mb, qa.id, NULL, 10, cb, &nb, &err) == FM_OK);
    CHECK(na == nb && na > 0);
    for (int j = 0; j < na && j < nb; j++) {
      if (ca[j].ref != cb[j].ref || fabs(ca[j].score - cb[j].score) > 1e-6 ||
          fabs(ca[j].s_lsa - cb[j].s_lsa) > 1e-6 || fabs(ca[j].s_title - cb[j].s_title) > 1e-6 ||
          fabs(ca[j].s_prior - cb[j].s_prior) > 1e-6 || ca[j].s_order != cb[j].s_order)
        bad++;
    }
  }
  CHECK(bad == 0);
  for (size_t i = 0; i < fm_model_nrefs(a); i++) {
    fm_field ra, rb;
    fm_model_ref(a, i, &ra);
    fm_model_ref(b, i, &rb);
    CHECK_STR(ra.id, rb.id);
    CHECK_STR(ra.type, rb.type);
    CHECK(fm_model_find_ref(b, ra.id) == fm_model_find_ref(a, ra.id));
  }
out:
  fm_matcher_free(ma);
  fm_matcher_free(mb);
}

static void test_train_roundtrip(void) {
  fm_model *m = train_tiny(0, 0);
  if (!m) return;
  fm_model_info in;
  fm_model_info_get(m, &in);
  CHECK(in.nrefs == NREFS);
  CHECK(in.nqueries == NQUERIES);
  CHECK(in.dims == 8);
  CHECK(in.ntrain_pairs == 7);
  CHECK(in.nterms > 0);
  CHECK_STR(in.name, "tiny");
  CHECK(in.format_version == FM_MODEL_FORMAT_VERSION);
  CHECK(in.config_json && strstr(in.config_json, "\"seed\":7"));
  /* float weights in their shortest form, not 0.10000000149011612 */
  CHECK(in.config_json && strstr(in.config_json, "\"prior\":0.1,") &&
        strstr(in.config_json, "\"variant\":0.2}"));
  CHECK(fm_model_find_query(m, "PX_LAST") >= 0);
  CHECK(fm_model_find_ref(m, "TRDPRC_1") >= 0);
  CHECK(fm_model_find_query(m, "TRDPRC_1") == -1);
  CHECK(fm_model_find_ref(m, "PX_LAST") == -1);
  long qi = fm_model_find_query(m, "CRNCY");
  if (qi >= 0) {
    fm_field f;
    fm_model_query(m, (size_t)qi, &f);
    CHECK_STR(f.vendor, "bloomberg");
    CHECK_STR(f.name, "Currency");
    CHECK(f.line == 12);
    CHECK_STR(f.code, ""); /* a CSV source has no codes */
  }

  fm_error err;
  fm_error_init(&err);
  const char *p = tmp("tiny.fmm");
  CHECK(fm_model_write(m, p, &err) == FM_OK);
  CHECK(no_temp_files());
  fm_model *l = NULL;
  fm_rc rc = fm_model_open(p, &l, &err);
  CHECK(rc == FM_OK);
  if (rc) {
    fprintf(stderr, "  open: %s\n", err.msg);
    fm_model_close(m);
    return;
  }
  fm_model_info li;
  fm_model_info_get(l, &li);
  CHECK(li.nrefs == in.nrefs && li.nqueries == in.nqueries && li.nterms == in.nterms);
  CHECK(li.dims == in.dims && li.nabbrev == in.nabbrev);
  CHECK(li.ntrain_pairs == in.ntrain_pairs);
  CHECK_STR(li.name, in.name);
  CHECK_STR(li.config_json, in.config_json);
  CHECK(li.checksum != 0);
  same_matches(m, l);
  /* the RDM FIDs travel with the reference fields (section "codes") */
  long ri = fm_model_find_ref(l, "BID");
  CHECK(ri >= 0);
  if (ri >= 0) {
    fm_field f;
    fm_model_ref(l, (size_t)ri, &f);
    CHECK_STR(f.code, "22");
  }

  /* a loaded model written again gives the same bytes */
  CHECK(fm_model_write(l, tmp("again.fmm"), &err) == FM_OK);
  CHECK(files_equal(p, tmp("again.fmm")));
  fm_model_close(l);
  fm_model_close(m);
}

static void test_determinism(void) {
  fm_model *a = train_tiny(0, 0), *b = train_tiny(0, 0);
  fm_error err;
  fm_error_init(&err);
  if (a && b) {
    CHECK(fm_model_write(a, tmp("det-a.fmm"), &err) == FM_OK);
    CHECK(fm_model_write(b, tmp("det-b.fmm"), &err) == FM_OK);
    CHECK(files_equal(tmp("det-a.fmm"), tmp("det-b.fmm")));
  }
  /* the training threads (features, prior) do not change a byte */
  for (int th = 1; th <= 5; th += 2) {
    fm_model *t = train_tiny_threads(0, 0, th);
    if (t && a) {
      CHECK(fm_model_write(t, tmp("det-t.fmm"), &err) == FM_OK);
      CHECK(files_equal(tmp("det-a.fmm"), tmp("det-t.fmm")));
    }
    fm_model_close(t);
  }
  /* another seed trains fine, ranks sensibly, and is recorded */
  fm_model *c = train_tiny(12345, 1);
  if (c) {
    fm_model_info ci;
    fm_model_info_get(c, &ci);
    CHECK(strstr(ci.config_json, "\"seed\":12345") != NULL);
    CHECK(fm_model_write(c, tmp("det-c.fmm"), &err) == FM_OK);
    CHECK(!files_equal(tmp("det-a.fmm"), tmp("det-c.fmm")));
    fm_pairs gold;
    fm_pairs_init(&gold);
    CHECK(fm_pairs_load(GOLD, &gold, &err) == FM_OK);
    fm_eval_result r;
    CHECK(fm_eval(c, &gold, &r, NULL, NULL, &err) == FM_OK);
    CHECK(r.queries == NGOLDQ);
    CHECK(r.recall_at_10 >= 0.5);
    fm_pairs_free(&gold);
  }
  fm_model_close(a);
  fm_model_close(b);
  fm_model_close(c);
}

/* Training splits the fields between threads by their text size, so one
 * huge description leaves the shares very uneven, some of them empty: the
 * bytes must still not depend on the thread count. */
static void test_uneven_shares(void) {
  fm_buf big;
  fm_buf_init(&big);
  int ok = fm_buf_puts(&big, "id,name,description\nAAA,Total revenue,\"") == FM_OK;
  for (int i = 0; i < 20000 && ok; i++) ok = fm_buf_puts(&big, "revenue growth margin ") == FM_OK;
  ok = ok && fm_buf_puts(&big, "\"\nBBB,Last price,last trade price\n"
                               "CCC,Net change,net change from the close\n") == FM_OK;
  CHECK(ok);
  CHECK(ok && write_bytes(tmp("uneven-refs.csv"), big.buf, big.len) == 0);
  fm_buf_free(&big);
  CHECK(write_text(tmp("uneven-q.csv"), "id,name,description\nPX_LAST,last price,last price\n"
                                        "CHG_NET_1D,net change,change\nSALES,revenue,total\n") == 0);
  static const int threads[] = {1, 3, 6};
  fm_error err;
  fm_error_init(&err);
  for (size_t i = 0; i < sizeof threads / sizeof *threads; i++) {
    fm_model *m = train_json(
        "uneven", "[{\"vendor\": \"r\", \"format\": \"csv\", \"path\": \"uneven-refs.csv\"}]",
        "[{\"vendor\": \"b\", \"format\": \"csv\", \"path\": \"uneven-q.csv\"}]", "{\"dims\": 2}",
        threads[i]);
    if (!m) continue;
    CHECK(fm_model_write(m, tmp(i ? "uneven-n.fmm" : "uneven-1.fmm"), &err) == FM_OK);
    fm_model_close(m);
    if (i) CHECK(files_equal(tmp("uneven-1.fmm"), tmp("uneven-n.fmm")));
  }
}

/* Fields whose every text is punctuation have no terms at all: training
 * (whose prior matches every query) copied a query's zero terms from a NULL
 * buffer, undefined behaviour that the sanitizer build stops on. */
static void test_query_without_terms(void) {
  CHECK(write_text(tmp("noterm-refs.csv"), "id,name\nTRDPRC_1,last trade\n___,!!!\n") == 0);
  CHECK(write_text(tmp("noterm-q.csv"), "id,name\n***,???\nPX_LAST,last price\n") == 0);
  fm_model *m = train_json(
      "noterm", "[{\"vendor\": \"r\", \"format\": \"csv\", \"path\": \"noterm-refs.csv\"}]",
      "[{\"vendor\": \"b\", \"format\": \"csv\", \"path\": \"noterm-q.csv\"}]", "{\"dims\": 2}", 1);
  CHECK(m != NULL);
  if (m) fm_model_close(m);
}

/* ---- ranking ----------------------------------------------------------------- */

/* The tiny model trained and a matcher on it, for the ranking tests; 0 on
 * success, else -1 with nothing left to free (the failure counted). */
static int ranker_new(fm_model **m, fm_matcher **mt) {
  fm_error err;
  fm_error_init(&err);
  *mt = NULL;
  *m = train_tiny(0, 0);
  if (!*m) return -1;
  CHECK(fm_matcher_new(*m, mt, &err) == FM_OK);
  if (*mt) return 0;
  fm_model_close(*m);
  *m = NULL;
  return -1;
}

static void ranker_free(fm_model *m, fm_matcher *mt) {
  fm_matcher_free(mt);
  fm_model_close(m);
}

/* Top-k against a rank-everything run: the same best, a prefix of it,
 * distinct valid references, and the same ranking for an explicit field. */
static void test_topk(void) {
  fm_model *m;
  fm_matcher *mt;
  if (ranker_new(&m, &mt)) return;
  fm_error err;
  fm_error_init(&err);
  const int nrefs = (int)fm_model_nrefs(m);
  const int kall = nrefs + 17; /* more than there are references */
  fm_candidate *all = fm_calloc((size_t)kall, sizeof *all);
  const char *qs[] = {"PX_BID", "PX_ASK", "PX_LAST", "CHG_PCT_1D", "PX_VOLUME",
                      "CRNCY", "DVD_EX_DT", "HIGH_52WEEK", "ID_ISIN", "NAME",
                      "LAST_UPDATE", "TURNOVER"};
  for (size_t i = 0; all && i < sizeof qs / sizeof qs[0]; i++) {
    fm_candidate top[5], one[1];
    int n5 = -1, nall = -1, n1 = -1;
    CHECK(fm_match(mt, qs[i], NULL, 5, top, &n5, &err) == FM_OK);
    CHECK(fm_match(mt, qs[i], NULL, kall, all, &nall, &err) == FM_OK);
    CHECK(fm_match(mt, qs[i], NULL, 1, one, &n1, &err) == FM_OK);
    /* only references sharing a term with the query are ranked */
    CHECK(nall > 0 && nall <= nrefs);
    CHECK(n5 == (nall < 5 ? nall : 5));
    CHECK(n1 == 1);
    CHECK(sorted_desc(top, n5));
    CHECK(sorted_desc(all, nall));
    /* the best of the full ranking is the top-1, and the top 5 are its
     * prefix (scores; ids where not tied) */
    float best = all[0].score;
    for (int j = 1; j < nall; j++) CHECK(all[j].score <= best);
    CHECK_NEAR(top[0].score, best, 1e-6);
    CHECK_NEAR(one[0].score, best, 1e-6);
    if (nall < 2 || all[1].score < best) {
      CHECK(top[0].ref == all[0].ref);
      CHECK(one[0].ref == all[0].ref);
    }
    for (int j = 0; j < n5 && j < nall; j++) {
      CHECK_NEAR(top[j].score, all[j].score, 1e-6);
      int tied = (j > 0 && all[j - 1].score == all[j].score) ||
                 (j + 1 < nall && all[j + 1].score == all[j].score);
      if (!tied) CHECK(top[j].ref == all[j].ref);
    }
    /* every candidate is a distinct, valid reference */
    for (int j = 0; j < nall; j++) {
      CHECK(all[j].ref < (uint32_t)nrefs);
      for (int k = 0; k < j; k++) CHECK(all[k].ref != all[j].ref);
    }
    /* the same query given as an explicit field ranks the same */
    long qi = fm_model_find_query(m, qs[i]);
    CHECK(qi >= 0);
    if (qi >= 0) {
      fm_field f;
      fm_model_query(m, (size_t)qi, &f);
      fm_candidate ex[5];
      int nex = -1;
      CHECK(fm_match(mt, "ignored", &f, 5, ex, &nex, &err) == FM_OK);
      CHECK(nex == n5);
      for (int j = 0; j < nex && j < n5; j++) CHECK_NEAR(ex[j].score, top[j].score, 1e-6);
    }
  }
  fm_free(all);
  ranker_free(m, mt);
}

/* The obvious answers come first; k = 0, a missing id, bare mnemonics. */
static void test_topk_answers(void) {
  fm_model *m;
  fm_matcher *mt;
  if (ranker_new(&m, &mt)) return;
  fm_error err;
  fm_error_init(&err);
  /* the obvious answers come first */
  struct { const char *q, *want; } obvious[] = {
      {"PX_BID", "BID"}, {"PX_ASK", "ASK"}, {"CRNCY", "CURRENCY"},
      {"ID_ISIN", "ISIN_CODE"}, {"PX_OPEN", "OPEN_PRC"}};
  for (size_t i = 0; i < sizeof obvious / sizeof obvious[0]; i++) {
    fm_candidate c[3];
    int n = 0;
    CHECK(fm_match(mt, obvious[i].q, NULL, 3, c, &n, &err) == FM_OK);
    int found = 0;
    for (int j = 0; j < n; j++) {
      fm_field r;
      fm_model_ref(m, c[j].ref, &r);
      found |= !strcmp(r.id, obvious[i].want);
    }
    if (!found) fprintf(stderr, "  %s: %s not in the top 3\n", obvious[i].q, obvious[i].want);
    CHECK(found);
  }

  /* k = 0 gives nothing; a NULL id without a field is an argument error */
  fm_candidate c[4];
  int n = -1;
  CHECK(fm_match(mt, "PX_BID", NULL, 0, c, &n, &err) == FM_OK);
  CHECK(n == 0);
  fm_error_init(&err);
  CHECK(fm_match(mt, NULL, NULL, 4, c, &n, &err) == FM_ERR_ARG);

  /* an id that is not a query field is matched as a bare mnemonic */
  CHECK(fm_model_find_query(m, "BID_PX_LAST") == -1);
  n = -1;
  CHECK(fm_match(mt, "BID_PX_LAST", NULL, 4, c, &n, &err) == FM_OK);
  CHECK(n > 0);
  CHECK(sorted_desc(c, n));
  /* ... and one with no known term at all returns no candidates, no error */
  n = -1;
  CHECK(fm_match(mt, "QQZX", NULL, 4, c, &n, &err) == FM_OK);
  CHECK(n >= 0 && n <= 4);
  n = -1;
  CHECK(fm_match(mt, "", NULL, 4, c, &n, &err) == FM_OK);
  CHECK(n >= 0 && n <= 4);
  ranker_free(m, mt);
}

/* fm_match_all agrees with fm_match, with 1 and several threads, and
 * refuses k = 0. */
static void test_topk_match_all(void) {
  fm_model *m;
  fm_matcher *mt;
  if (ranker_new(&m, &mt)) return;
  fm_error err;
  fm_error_init(&err);
  size_t nq = fm_model_nqueries(m);
  fm_candidate *ma = fm_calloc(nq * 5, sizeof *ma);
  int *na = fm_calloc(nq, sizeof *na);
  for (int threads = 1; ma && na && threads <= 3; threads += 2) {
    CHECK(fm_match_all(m, 5, threads, 1, ma, na, &err) == FM_OK);
    int bad = 0;
    for (size_t i = 0; i < nq; i++) {
      fm_field q;
      fm_model_query(m, i, &q);
      fm_candidate one[5];
      int n1 = 0;
      CHECK(fm_match(mt, q.id, NULL, 5, one, &n1, &err) == FM_OK);
      if (n1 != na[i]) bad++;
      for (int j = 0; j < n1 && j < na[i]; j++)
        if (one[j].ref != ma[i * 5 + (size_t)j].ref ||
            fabs(one[j].score - ma[i * 5 + (size_t)j].score) > 1e-6)
          bad++;
    }
    CHECK(bad == 0);
  }
  fm_error_init(&err);
  if (ma && na) CHECK(fm_match_all(m, 0, 1, 1, ma, na, &err) == FM_ERR_ARG);
  fm_free(ma);
  fm_free(na);
  ranker_free(m, mt);
}

/* ---- fault injection --------------------------------------------------------- */

/* Run op with the k-th allocation failing, for k = 1, 1 + step, ... until
 * it has succeeded `need_ok` times in a row.  Every run must end in FM_OK
 * or FM_ERR_NOMEM (ASan reports any leak or bad access). */
typedef fm_rc (*fault_op)(void *ctx, fm_error *err);

static void run_faults(const char *name, fault_op op, void *ctx, long step, int need_ok) {
  fm_set_warn_handler(quiet_warn, NULL);
  int ok_run = 0, nomem = 0, other = 0;
  long k;
  for (k = 1; k < 2000000 && ok_run < need_ok; k += step) {
    fm_error err;
    fm_error_init(&err);
    fm_fault_malloc_after(k);
    fm_rc rc = op(ctx, &err);
    fm_fault_malloc_after(0);
    if (rc == FM_OK) {
      ok_run++;
    } else {
      ok_run = 0;
      if (rc == FM_ERR_NOMEM) {
        nomem++;
      } else {
        other++;
        fprintf(stderr, "  %s k=%ld: rc=%s %s\n", name, k, fm_rc_name(rc), err.msg);
        break;
      }
    }
  }
  fprintf(stderr, "  %s: %d NOMEM runs, k up to %ld\n", name, nomem, k);
  CHECK(other == 0);
  CHECK(nomem > 0);
  CHECK(ok_run == need_ok);
  fm_set_warn_handler(NULL, NULL);
}

static fm_rc op_open(void *ctx, fm_error *err) {
  fm_model *m = NULL;
  fm_rc rc = fm_model_open((const char *)ctx, &m, err);
  fm_model_close(m);
  return rc;
}

static fm_rc op_match(void *ctx, fm_error *err) {
  const fm_model *m = ctx;
  fm_matcher *mt = NULL;
  fm_rc rc = fm_matcher_new(m, &mt, err);
  const char *ids[] = {"PX_LAST", "CHG_PCT_1D", "UNKNOWN_MNEMONIC_PX", "EQY_WEIGHTED_AVG_PX"};
  fm_candidate c[40];
  int n;
  for (size_t i = 0; rc == FM_OK && i < sizeof ids / sizeof ids[0]; i++)
    rc = fm_match(mt, ids[i], NULL, i == 3 ? 40 : 5, c, &n, err);
  fm_matcher_free(mt);
  return rc;
}

static fm_rc op_match_all(void *ctx, fm_error *err) {
  const fm_model *m = ctx;
  size_t nq = fm_model_nqueries(m);
  fm_candidate *c = fm_calloc(nq * 3, sizeof *c);
  int *n = fm_calloc(nq, sizeof *n);
  fm_rc rc = (c && n) ? fm_match_all(m, 3, 1, 1, c, n, err) : FM_ERR_NOMEM;
  fm_free(c);
  fm_free(n);
  return rc;
}

static fm_rc op_write(void *ctx, fm_error *err) {
  const char *p = tmp("fault-write.fmm");
  fm_rc rc = fm_model_write((const fm_model *)ctx, p, err);
  if (rc != FM_OK && (exists(p) || !no_temp_files())) return FM_ERR_INTERNAL;
  unlink(p);
  return rc;
}

static fm_rc op_eval(void *ctx, fm_error *err) {
  const fm_model *m = ctx;
  fm_pairs gold;
  fm_pairs_init(&gold);
  fm_rc rc = fm_pairs_load(GOLD, &gold, err);
  fm_eval_result r;
  fm_eval_query *d = NULL;
  size_t nd = 0;
  if (rc == FM_OK) rc = fm_eval(m, &gold, &r, &d, &nd, err);
  if (rc == FM_OK) (void)fm_model_train_overlap(m, &gold);
  fm_free(d);
  fm_pairs_free(&gold);
  return rc;
}

static fm_rc op_config(void *ctx, fm_error *err) {
  (void)ctx;
  fm_config *c = NULL;
  fm_rc rc = fm_config_load(TINY, &c, err);
  fm_config_free(c);
  return rc;
}

static fm_rc op_train(void *ctx, fm_error *err) {
  const fm_config *c = ctx;
  fm_train_input in = {.config = c, .quiet = 1};
  fm_model *m = NULL;
  fm_rc rc = fm_train(&in, &m, err);
  fm_model_close(m);
  return rc;
}

static void test_faults(void) {
  fm_model *m = train_tiny(0, 0);
  if (!m) return;
  fm_error err;
  fm_error_init(&err);
  const char *p = tmp("fault.fmm");
  CHECK(fm_model_write(m, p, &err) == FM_OK);
  run_faults("fm_model_open", op_open, (void *)p, 1, 20);
  fm_model *l = NULL;
  CHECK(fm_model_open(p, &l, &err) == FM_OK);
  if (l) {
    run_faults("fm_match", op_match, l, 1, 20);
    run_faults("fm_match_all", op_match_all, l, 1, 20);
    run_faults("fm_eval", op_eval, l, 1, 20);
    run_faults("fm_model_write", op_write, l, 1, 20);
    fm_model_close(l);
  }
  run_faults("fm_config_load", op_config, NULL, 1, 20);
  fm_config *c = NULL;
  CHECK(fm_config_load(TINY, &c, &err) == FM_OK);
  if (c && !fm_test_skip_train_faults("fm_train")) {
    c->opts.threads = 1; /* the fault countdown is not thread-safe */
    double t0 = fm_now();
    run_faults("fm_train", op_train, c, 3, 5);
    fprintf(stderr, "  fm_train faults: %.1fs\n", fm_now() - t0);
  }
  fm_config_free(c);
  fm_model_close(m);
}

int main(void) {
  if (scratch_make("fm_model_")) return 1;
  FM_RUN(test_train_roundtrip);
  FM_RUN(test_pairs_file_names);
  FM_RUN(test_pairs_not_mined);
  FM_RUN(test_determinism);
  FM_RUN(test_uneven_shares);
  FM_RUN(test_query_without_terms);
  FM_RUN(test_topk);
  FM_RUN(test_topk_answers);
  FM_RUN(test_topk_match_all);
  FM_RUN(test_faults);
  scratch_remove();
  FM_TEST_EXIT();
}
