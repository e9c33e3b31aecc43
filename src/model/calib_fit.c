/* calib_fit.c: fitting the confidence calibrator at training time
 * (fm_calib_train, the last step of fm_train), and reading the lists of
 * fields with no equivalent.
 *
 * Observations: for every labelled query its top CALIB_K candidates, each
 * labelled right (1) or wrong (0), once as the model knows the field (its
 * name, description, category) and once as a bare mnemonic (its id alone,
 * the way an unknown field is looked up).  Labelled queries come from
 *   - the training pairs, scored by models trained without them
 *     (cross-fitting: config calibration_folds inner trainings, each without
 *     one fold of the pairs' queries), so the calibrator never learns from
 *     the optimistic scores of pairs the model has seen;
 *   - the config's calibration_pairs, scored by the model itself (it did not
 *     learn from them);
 *   - the config's no_equivalent fields: every candidate wrong.
 * Ownership: everything allocated here is freed before return; the fit goes
 * into m->calib. */
#define _GNU_SOURCE
#include "calib.h"
#include "model_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALIB_K 10

typedef struct obsvec {
  fm_calib_obs *v;
  size_t n, cap;
} obsvec;

/* Add the observations of one ranking (cand[0..n), next_score) for a query
 * whose right answers are ans[0..nans) (reference ids; none for a field
 * with no equivalent). */
static fm_rc add_ranking(const fm_model *mm, const fm_candidate *cand, int n, float next,
                         int bare, const char *const *ans, size_t nans, float w, obsvec *ov) {
  for (int i = 0; i < n; i++) {
    if (fm_grow((void **)&ov->v, &ov->cap, ov->n + 1, sizeof *ov->v)) return FM_ERR_NOMEM;
    fm_calib_obs *o = &ov->v[ov->n++];
    fm_calib_features(cand, n, i, next, bare, o->x);
    const char *rid = fm_str(mm, mm->refs[cand[i].ref].id);
    int y = 0;
    for (size_t a = 0; a < nans && !y; a++) y = strcmp(rid, ans[a]) == 0;
    o->y = (float)y;
    o->w = w;
  }
  return FM_OK;
}

/* Score one query (by id) with model mm, full and bare, into ov.  A query
 * the model does not hold is skipped. */
static fm_rc score_query(const fm_model *mm, fm_matcher *mt, const char *qid,
                         const char *const *ans, size_t nans, float w, obsvec *ov,
                         fm_error *err) {
  long qi = fm_model_find_query(mm, qid);
  if (qi < 0) return FM_OK;
  fm_field f;
  fm_rec_to_field(mm, &mm->qrys[qi], &f);
  fm_candidate cand[CALIB_K + 1];
  for (int bare = 0; bare < 2; bare++) {
    fm_field q = f;
    uint32_t kind = mm->qrys[qi].kind;
    if (bare) {
      if (!f.name[0] && !f.description[0]) break; /* already bare */
      memset(&q, 0, sizeof q);
      q.vendor = q.name = q.description = q.type = q.category = q.source = "";
      q.id = f.id;
      kind = FM_NO_KIND;
    }
    int n = 0;
    fm_rc rc = fm_match_vec(mt, &q, kind, CALIB_K + 1, cand, &n, err);
    if (rc) return rc;
    float next = n > CALIB_K ? cand[CALIB_K].score : NAN;
    int nn = n > CALIB_K ? CALIB_K : n;
    int isbare = bare || (!f.name[0] && !f.description[0]);
    if (add_ranking(mm, cand, nn, next, isbare, ans, nans, w, ov))
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  return FM_OK;
}

/* Fold of a query (cross-fitting): FNV-1a of its id, mixed with the seed. */
static int query_fold(const char *q, uint64_t seed, int folds) {
  uint64_t h = 1469598103934665603ULL ^ seed;
  for (const unsigned char *p = (const unsigned char *)q; *p; p++) {
    h ^= *p;
    h *= 1099511628211ULL;
  }
  uint64_t s = h;
  return (int)(fm_splitmix64(&s) % (uint64_t)folds);
}

/* Score every distinct query of ps (fold < 0: all; else those of that fold)
 * with mm; a pair's ref "" marks a field with no equivalent. */
static fm_rc score_pairs(const fm_model *mm, const fm_pairs *ps, int fold, int folds,
                         uint64_t seed, float w, obsvec *ov, fm_error *err) {
  fm_matcher *mt;
  fm_rc rc = fm_matcher_new(mm, &mt, err);
  if (rc) return rc;
  fm_strmap seen;
  fm_strmap_init(&seen);
  const char **ans = fm_calloc(ps->n ? ps->n : 1, sizeof *ans);
  if (!ans) rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < ps->n && rc == FM_OK; i++) {
    const char *q = ps->v[i].query;
    int ins = 0;
    if (fm_strmap_put(&seen, q, strlen(q), 0, NULL, &ins)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      break;
    }
    if (!ins) continue;
    if (fold >= 0 && query_fold(q, seed, folds) != fold) continue;
    size_t nans = 0;
    for (size_t j = i; j < ps->n; j++)
      if (!strcmp(ps->v[j].query, q) && ps->v[j].ref[0]) ans[nans++] = ps->v[j].ref;
    rc = score_query(mm, mt, q, ans, nans, w, ov, err);
  }
  fm_free(ans);
  fm_strmap_free(&seen);
  fm_matcher_free(mt);
  return rc;
}

/* Load a list of files: pairs files (none = 0) or no-equivalent lists. */
static fm_rc load_files(char *const *paths, size_t n, int none, fm_pairs *out, fm_error *err) {
  fm_rc rc = FM_OK;
  for (size_t i = 0; i < n && rc == FM_OK; i++)
    rc = none ? fm_none_load(paths[i], out, err) : fm_pairs_load(paths[i], out, err);
  return rc;
}

/* Cross-fitting over the training pairs: `folds` models, each trained from
 * in without one fold's queries, score that fold. */
static fm_rc crossfit(const fm_train_input *in, const fm_pairs *tp, const fm_fieldset *refs,
                      const fm_fieldset *qrys, int folds, obsvec *ov, fm_error *err) {
  uint64_t seed = in->config->opts.seed;
  fm_pairs sub;
  fm_pairs_init(&sub);
  fm_rc rc = FM_OK;
  for (int f = 0; f < folds && rc == FM_OK; f++) {
    sub.n = 0;
    size_t held = 0;
    for (size_t i = 0; i < tp->n; i++) {
      if (query_fold(tp->v[i].query, seed, folds) == f) { held++; continue; }
      if (fm_grow((void **)&sub.v, &sub.cap, sub.n + 1, sizeof *sub.v)) {
        rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
        break;
      }
      sub.v[sub.n++] = tp->v[i];
    }
    if (rc || held == 0) continue;
    fm_train_input fin = *in;
    fin.pairs_override = &sub;
    fin.use_pairs_override = 1;
    fin.refs = refs;
    fin.queries = qrys;
    fin.quiet = 1;
    fin.output = NULL;
    fin.no_calibrate = 1;
    fm_model *fm;
    if ((rc = fm_train(&fin, &fm, err))) break;
    rc = score_pairs(fm, tp, f, folds, seed, 1.0f, ov, err);
    fm_model_close(fm);
  }
  fm_free(sub.v); /* entries borrowed from tp */
  return rc;
}

fm_rc fm_calib_train(fm_model *m, const fm_train_input *in, const fm_pairs *tp,
                     const fm_fieldset *refs, const fm_fieldset *qrys, fm_error *err) {
  const fm_config *c = in->config;
  obsvec ov = {0};
  fm_pairs cal, none;
  fm_pairs_init(&cal);
  fm_pairs_init(&none);
  const fm_pairs *calp = &cal, *nonep = &none;
  fm_rc rc = FM_OK;
  if (in->use_calib_override) calp = in->calib_override;
  else rc = load_files(c->calibration_pairs, c->ncalibration_pairs, 0, &cal, err);
  if (rc == FM_OK) {
    if (in->use_none_override) nonep = in->none_override;
    else rc = load_files(c->no_equivalent, c->nno_equivalent, 1, &none, err);
  }
  int folds = c->calibration_folds;
  if (rc == FM_OK && folds >= 2 && tp->n > 0)
    rc = crossfit(in, tp, refs, qrys, folds, &ov, err);
  if (rc == FM_OK && calp && calp->n) rc = score_pairs(m, calp, -1, 1, 0, 1.0f, &ov, err);
  if (rc == FM_OK && nonep && nonep->n && c->no_equivalent_weight > 0)
    rc = score_pairs(m, nonep, -1, 1, 0, (float)c->no_equivalent_weight, &ov, err);
  if (rc == FM_OK && ov.n > 0 && fm_calib_fit(ov.v, ov.n, &m->calib))
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory fitting the calibrator");
  if (rc == FM_OK && !in->quiet && ov.n > 0)
    fprintf(stderr, "calibrated confidence on %zu candidates\n", ov.n);
  fm_free(ov.v);
  fm_pairs_free(&cal);
  fm_pairs_free(&none);
  return rc;
}

fm_rc fm_none_load(const char *path, fm_pairs *out, fm_error *err) {
  FILE *fp = fopen(path, "r");
  if (!fp) return fm_error_set(err, FM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  unsigned lineno = 0;
  fm_rc rc = FM_OK;
  while (rc == FM_OK && (len = getline(&line, &cap, fp)) >= 0) {
    if (++lineno == 1) continue; /* header */
    char *s = line, *e = line + len;
    char *tab = memchr(s, '\t', (size_t)(e - s));
    if (tab) e = tab;
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ')) e--;
    if (s == e) continue;
    const char *q = fm_arena_strndup(&out->arena, s, (size_t)(e - s));
    if (!q || fm_grow((void **)&out->v, &out->cap, out->n + 1, sizeof *out->v)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "%s:%u: out of memory", path, lineno);
      break;
    }
    out->v[out->n].query = q;
    out->v[out->n].ref = "";
    out->n++;
  }
  if (rc == FM_OK && ferror(fp)) rc = fm_error_set(err, FM_ERR_IO, "%s: read error", path);
  free(line);
  fclose(fp);
  return rc;
}
