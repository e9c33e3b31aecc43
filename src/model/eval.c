/* eval.c: top-1 / recall@5 / recall@10 / MRR@10 against gold pairs, and
 * k-fold cross-validation of the pair-learning parts. */
#include "model_internal.h"

#include <math.h>
#include <string.h>

/* Top-1 confidences gathered over an evaluation (all folds): of the gold
 * queries (with whether the top candidate was right) and of the
 * no-equivalent fields.  Owned arrays, freed by conf_free. */
typedef struct conf_acc {
  double *p; int *ok; size_t n, cap;
  double *np; size_t nn, ncap;
} conf_acc;

static void conf_free(conf_acc *a) {
  fm_free(a->p);
  fm_free(a->ok);
  fm_free(a->np);
  memset(a, 0, sizeof *a);
}

static fm_rc conf_add(conf_acc *a, double p, int ok) {
  size_t cap = a->cap;
  if (fm_grow((void **)&a->p, &cap, a->n + 1, sizeof *a->p)) return FM_ERR_NOMEM;
  if (fm_grow((void **)&a->ok, &a->cap, a->n + 1, sizeof *a->ok)) return FM_ERR_NOMEM;
  a->p[a->n] = p;
  a->ok[a->n++] = ok;
  return FM_OK;
}

/* Score no-equivalent fields none->v[i] for which pick is NULL or
 * pick[i] != 0: their top-1 confidence into a (a field the model does not
 * hold is skipped). */
static fm_rc eval_none_fields(const fm_model *m, const fm_pairs *none, const int *pick,
                              conf_acc *a, fm_error *err) {
  fm_matcher *mt;
  fm_rc rc = fm_matcher_new(m, &mt, err);
  if (rc) return rc;
  for (size_t i = 0; i < none->n && rc == FM_OK; i++) {
    if (pick && !pick[i]) continue;
    if (fm_model_find_query(m, none->v[i].query) < 0) continue;
    fm_candidate top[2];
    int n = 0;
    if ((rc = fm_match(mt, none->v[i].query, NULL, 2, top, &n, err))) break;
    if (fm_grow((void **)&a->np, &a->ncap, a->nn + 1, sizeof *a->np)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      break;
    }
    a->np[a->nn++] = n ? top[0].confidence : 0.0;
  }
  fm_matcher_free(mt);
  return rc;
}

/* Distinct gold queries in first-appearance order, each with the range of
 * its acceptable answers (gold rows grouped by query). */
typedef struct gold_q {
  const char *query;
  size_t *rows; size_t nrows;
} gold_q;

static void gold_free(gold_q *g, size_t n) {
  for (size_t i = 0; i < n; i++) fm_free(g[i].rows);
  fm_free(g);
}

static fm_rc gold_group(const fm_pairs *gold, gold_q **out, size_t *nout) {
  fm_strmap seen;
  fm_strmap_init(&seen);
  gold_q *g = NULL;
  size_t n = 0, cap = 0;
  for (size_t i = 0; i < gold->n; i++) {
    const char *q = gold->v[i].query;
    uint32_t idx;
    int ins;
    if (fm_strmap_put(&seen, q, strlen(q), (uint32_t)n, &idx, &ins)) goto nomem;
    if (ins) {
      if (fm_grow((void **)&g, &cap, n + 1, sizeof *g)) goto nomem;
      memset(&g[n], 0, sizeof g[n]);
      g[n++].query = q;
    }
    size_t rc = g[idx].nrows;
    size_t *rows = fm_realloc(g[idx].rows, (rc + 1) * sizeof *rows);
    if (!rows) goto nomem;
    rows[rc] = i;
    g[idx].rows = rows;
    g[idx].nrows = rc + 1;
  }
  fm_strmap_free(&seen);
  *out = g;
  *nout = n;
  return FM_OK;
nomem:
  fm_strmap_free(&seen);
  gold_free(g, n);
  return FM_ERR_NOMEM;
}

/* Score the given gold groups with model m, accumulating into res/details. */
static fm_rc eval_groups(const fm_model *m, const fm_pairs *gold, const gold_q *g,
                         size_t ng, fm_eval_result *res, fm_eval_query *details,
                         conf_acc *acc, fm_error *err) {
  fm_matcher *mt;
  fm_rc rc = fm_matcher_new(m, &mt, err);
  if (rc) return rc;
  for (size_t i = 0; i < ng; i++) {
    long qi = fm_model_find_query(m, g[i].query);
    fm_eval_query *d = details ? &details[i] : NULL;
    if (d) {
      memset(d, 0, sizeof *d);
      d->query = g[i].query;
      d->qindex = qi;
    }
    if (qi < 0) {
      res->missing_queries++;
      continue;
    }
    for (size_t j = 0; j < g[i].nrows; j++)
      if (fm_model_find_ref(m, gold->v[g[i].rows[j]].ref) < 0) res->missing_refs++;
    fm_candidate top[10];
    int n = 0;
    if ((rc = fm_match(mt, g[i].query, NULL, 10, top, &n, err))) break;
    int rank = 0;
    for (int r = 0; r < n && !rank; r++) {
      const char *rid = fm_str(m, m->refs[top[r].ref].id);
      for (size_t j = 0; j < g[i].nrows; j++)
        if (strcmp(rid, gold->v[g[i].rows[j]].ref) == 0) { rank = r + 1; break; }
    }
    res->queries++;
    if (n && conf_add(acc, top[0].confidence, rank == 1)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      break;
    }
    if (rank == 1) res->top1 += 1;
    if (rank && rank <= 3) res->recall_at_3 += 1;
    if (rank && rank <= 5) res->recall_at_5 += 1;
    if (rank) res->recall_at_10 += 1;
    if (rank) res->mrr_at_10 += 1.0 / rank;
    if (d) {
      d->rank = rank;
      d->ntop = n;
      memcpy(d->top, top, (size_t)n * sizeof *top);
    }
  }
  fm_matcher_free(mt);
  return rc;
}

/* The ECE's noise floor (fm_eval_result.ece_null): labels drawn from the
 * confidences themselves, 200 times (fixed seed). */
static double ece_null(const double *p, size_t n) {
  if (n == 0) return 0;
  int *y = fm_malloc(n * sizeof *y);
  if (!y) return NAN;
  uint64_t s = 0x6563656eULL;
  double sum = 0;
  for (int r = 0; r < 200; r++) {
    for (size_t i = 0; i < n; i++)
      y[i] = (double)(fm_splitmix64(&s) >> 11) * 0x1p-53 < p[i];
    sum += fm_calib_ece(p, y, n);
  }
  fm_free(y);
  return sum / 200;
}

/* ECE over the gold queries and the none fields together. */
static double ece_all(const conf_acc *a) {
  size_t n = a->n + a->nn;
  if (a->nn == 0) return NAN;
  double *p = fm_malloc(n * sizeof *p);
  int *y = fm_malloc(n * sizeof *y);
  double e = NAN;
  if (p && y) {
    for (size_t i = 0; i < a->n; i++) { p[i] = a->p[i]; y[i] = a->ok[i]; }
    for (size_t i = 0; i < a->nn; i++) { p[a->n + i] = a->np[i]; y[a->n + i] = 0; }
    e = fm_calib_ece(p, y, n);
  }
  fm_free(p);
  fm_free(y);
  return e;
}

/* Precision and coverage of the gold queries, and the share of none fields,
 * at or above threshold t. */
static void at_threshold(const conf_acc *a, size_t nq, double t, double *prec, double *cov,
                         double *none) {
  size_t nauto = 0, nright = 0, nprop = 0;
  for (size_t i = 0; i < a->n; i++)
    if (a->p[i] >= t) {
      nauto++;
      nright += a->ok[i] != 0;
    }
  for (size_t i = 0; i < a->nn; i++) nprop += a->np[i] >= t;
  *cov = nq ? (double)nauto / (double)nq : 0;
  *prec = nauto ? (double)nright / (double)nauto : NAN;
  *none = a->nn ? (double)nprop / (double)a->nn : NAN;
}

static void finish(fm_eval_result *res, const conf_acc *a) {
  for (int i = 0; i < FM_EVAL_CURVE; i++) {
    res->curve_t[i] = 0.5 + 0.05 * i;
    at_threshold(a, res->queries, res->curve_t[i], &res->curve_precision[i],
                 &res->curve_coverage[i], &res->curve_none[i]);
  }
  res->ece = fm_calib_ece(a->p, a->ok, a->n);
  res->ece_null = ece_null(a->p, a->n);
  res->ece_all = ece_all(a);
  res->none_queries = a->nn;
  at_threshold(a, res->queries, FM_AUTO_CONFIDENCE, &res->auto_precision, &res->auto_coverage,
               &res->none_proposed);
  res->none_auroc = fm_calib_auroc(a->p, a->n, a->np, a->nn);
  if (res->queries) {
    double n = (double)res->queries;
    res->top1 /= n;
    res->recall_at_3 /= n;
    res->recall_at_5 /= n;
    res->recall_at_10 /= n;
    res->mrr_at_10 /= n;
  }
}

fm_rc fm_eval(const fm_model *m, const fm_pairs *gold, fm_eval_result *res,
              fm_eval_query **details, size_t *ndetails, fm_error *err) {
  return fm_eval_none(m, gold, NULL, res, details, ndetails, err);
}

fm_rc fm_eval_none(const fm_model *m, const fm_pairs *gold, const fm_pairs *none,
                   fm_eval_result *res, fm_eval_query **details, size_t *ndetails,
                   fm_error *err) {
  memset(res, 0, sizeof *res);
  if (details && !ndetails)
    return fm_error_set(err, FM_ERR_ARG, "fm_eval: details given without ndetails");
  if (details) *details = NULL;
  if (ndetails) *ndetails = 0;
  gold_q *g;
  size_t ng;
  if (gold_group(gold, &g, &ng)) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  fm_eval_query *d = NULL;
  if (details && ng) {
    d = fm_calloc(ng, sizeof *d);
    if (!d) {
      gold_free(g, ng);
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    }
  }
  conf_acc acc = {0};
  fm_rc rc = eval_groups(m, gold, g, ng, res, d, &acc, err);
  if (rc == FM_OK && none) rc = eval_none_fields(m, none, NULL, &acc, err);
  gold_free(g, ng);
  finish(res, &acc);
  conf_free(&acc);
  if (rc) {
    fm_free(d);
    return rc;
  }
  if (details) {
    *details = d;
    *ndetails = ng;
  }
  return FM_OK;
}

fm_rc fm_eval_cv(const fm_config *c, const fm_pairs *gold, int folds, int quiet,
                 fm_eval_result *res, fm_error *err) {
  return fm_eval_cv_none(c, gold, NULL, folds, quiet, res, err);
}

/* Leave one category out: fold[i] is the index of gold query i's
 * category (its query field's category: a Data License category, a
 * BBGsymbols book; "" for a query the dictionaries lack), in order of first
 * appearance; *nfolds their number. */
static fm_rc category_folds(const fm_fieldset *qrys, const gold_q *g, size_t ng, int *fold,
                            int *nfolds, fm_error *err) {
  fm_strmap ids, cats;
  fm_strmap_init(&ids);
  fm_strmap_init(&cats);
  fm_rc rc = FM_OK;
  for (size_t i = 0; i < qrys->n && !rc; i++)
    if (fm_strmap_put(&ids, qrys->v[i].id, strlen(qrys->v[i].id), (uint32_t)i, NULL, NULL))
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  int n = 0;
  for (size_t i = 0; i < ng && !rc; i++) {
    uint32_t qi, at;
    int ins;
    const char *cat = fm_strmap_get(&ids, g[i].query, strlen(g[i].query), &qi)
                          ? qrys->v[qi].category : "";
    if (!cat) cat = "";
    if (fm_strmap_put(&cats, cat, strlen(cat), (uint32_t)n, &at, &ins)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      break;
    }
    n += ins;
    fold[i] = (int)at;
  }
  fm_strmap_free(&ids);
  fm_strmap_free(&cats);
  if (!rc && n < 2)
    rc = fm_error_set(err, FM_ERR_ARG, "--loco: the gold queries are all of one category");
  *nfolds = n;
  return rc;
}

/* Deterministic fold of each of n items (a shuffle by seed, then round
 * robin), into fold[0..n). */
static void assign_folds(size_t n, int folds, uint64_t s, int *fold, size_t *perm) {
  for (size_t i = 0; i < n; i++) perm[i] = i;
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)(fm_splitmix64(&s) % i);
    size_t tmp = perm[i - 1]; perm[i - 1] = perm[j]; perm[j] = tmp;
  }
  for (size_t i = 0; i < n; i++) fold[perm[i]] = (int)(i % (size_t)folds);
}

/* Append to out the pairs of src whose query is not held out: not a gold
 * query of fold f (gidx/fold) nor a none field of fold f (nidx/nfold). */
static fm_rc keep_pairs(const fm_pairs *src, const fm_strmap *gidx, const int *fold,
                        const fm_strmap *nidx, const int *nfold, int f, fm_pairs *out) {
  for (size_t i = 0; src && i < src->n; i++) {
    fm_pair p = src->v[i];
    uint32_t gi;
    if (fm_strmap_get(gidx, p.query, strlen(p.query), &gi) && fold[gi] == f) continue;
    if (nidx && fm_strmap_get(nidx, p.query, strlen(p.query), &gi) && nfold[gi] == f) continue;
    if (fm_grow((void **)&out->v, &out->cap, out->n + 1, sizeof p)) return FM_ERR_NOMEM;
    out->v[out->n++] = p;
  }
  return FM_OK;
}

fm_rc fm_eval_cv_none(const fm_config *c, const fm_pairs *gold, const fm_pairs *none,
                      int folds, int quiet, fm_eval_result *res, fm_error *err) {
  memset(res, 0, sizeof *res);
  if (folds < 2 && folds != FM_EVAL_LOCO)
    return fm_error_set(err, FM_ERR_ARG, "--folds must be at least 2");
  gold_q *g;
  size_t ng;
  if (gold_group(gold, &g, &ng)) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  if (folds != FM_EVAL_LOCO && (size_t)folds > ng) {
    gold_free(g, ng);
    return fm_error_set(err, FM_ERR_ARG, "--folds %d is more than the %zu gold queries",
                        folds, ng);
  }
  size_t nn = none ? none->n : 0;
  int *fold = fm_calloc(ng, sizeof *fold), *nfold = fm_calloc(nn ? nn : 1, sizeof *nfold);
  int *pick = fm_calloc(nn ? nn : 1, sizeof *pick);
  size_t *perm = fm_calloc(ng > nn ? ng : nn ? nn : 1, sizeof *perm);
  fm_pairs all, cal, cnone, train, tcal, tnone;
  fm_pairs_init(&all);
  fm_pairs_init(&cal);
  fm_pairs_init(&cnone);
  fm_pairs_init(&train);
  fm_pairs_init(&tcal);
  fm_pairs_init(&tnone);
  fm_strmap gidx, nidx;
  fm_strmap_init(&gidx);
  fm_strmap_init(&nidx);
  fm_fieldset refs, qrys;
  int imported = 0;
  conf_acc acc = {0};
  fm_rc rc = FM_OK;
  if (!fold || !nfold || !pick || !perm) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); goto done; }
  /* every pair a fold may learn from: config train_pairs + gold; and what
   * its calibrator may use: config calibration_pairs, no_equivalent + none */
  for (size_t i = 0; i < c->ntrain_pairs; i++)
    if ((rc = fm_pairs_load(c->train_pairs[i], &all, err))) goto done;
  for (size_t i = 0; i < c->ncalibration_pairs; i++)
    if ((rc = fm_pairs_load(c->calibration_pairs[i], &cal, err))) goto done;
  for (size_t i = 0; i < c->nno_equivalent; i++)
    if ((rc = fm_none_load(c->no_equivalent[i], &cnone, err))) goto done;
  if ((rc = fm_config_import(c, &refs, &qrys, quiet, err))) goto done;
  imported = 1;
  /* the fold of each gold query: its category (leave one category out), or
   * a seeded shuffle dealt round robin; none fields are dealt into as many
   * folds either way */
  if (folds == FM_EVAL_LOCO) {
    if ((rc = category_folds(&qrys, g, ng, fold, &folds, err))) goto done;
  } else {
    assign_folds(ng, folds, c->opts.seed ^ 0x5eedf01dULL, fold, perm);
  }
  if (nn) assign_folds(nn, folds, c->opts.seed ^ 0x0e0e0e0eULL, nfold, perm);
  for (size_t i = 0; i < ng; i++)
    if (fm_strmap_put(&gidx, g[i].query, strlen(g[i].query), (uint32_t)i, NULL, NULL)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      goto done;
    }
  for (size_t i = 0; i < nn; i++)
    if (fm_strmap_put(&nidx, none->v[i].query, strlen(none->v[i].query), (uint32_t)i, NULL,
                      NULL)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      goto done;
    }
  for (int f = 0; f < folds && rc == FM_OK; f++) {
    train.n = tcal.n = tnone.n = 0;
    /* config pairs and gold, minus any whose query is in this fold; the
     * calibration lists minus this fold's gold queries and none fields */
    if (keep_pairs(&all, &gidx, fold, NULL, NULL, f, &train) ||
        keep_pairs(gold, &gidx, fold, NULL, NULL, f, &train) ||
        keep_pairs(&cal, &gidx, fold, &nidx, nfold, f, &tcal) ||
        keep_pairs(&cnone, &gidx, fold, &nidx, nfold, f, &tnone) ||
        keep_pairs(none, &gidx, fold, &nidx, nfold, f, &tnone)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      break;
    }
    fm_train_input in = {.config = c, .pairs_override = &train, .use_pairs_override = 1,
                         .refs = &refs, .queries = &qrys, .quiet = 1,
                         .calib_override = &tcal, .use_calib_override = 1,
                         .none_override = &tnone, .use_none_override = 1};
    fm_model *m;
    if ((rc = fm_train(&in, &m, err))) break;
    /* the fold's groups */
    size_t nf = 0;
    gold_q *fg = fm_calloc(ng, sizeof *fg);
    if (!fg) { fm_model_close(m); rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); break; }
    for (size_t i = 0; i < ng; i++)
      if (fold[i] == f) fg[nf++] = g[i];
    rc = eval_groups(m, gold, fg, nf, res, NULL, &acc, err);
    fm_free(fg); /* rows are borrowed from g */
    for (size_t i = 0; i < nn; i++) pick[i] = nfold[i] == f;
    if (rc == FM_OK && nn) rc = eval_none_fields(m, none, pick, &acc, err);
    fm_model_close(m);
    if (!quiet) fprintf(stderr, "fold %d/%d done\n", f + 1, folds);
  }
  finish(res, &acc);
done:
  if (imported) {
    fm_fieldset_free(&refs);
    fm_fieldset_free(&qrys);
  }
  conf_free(&acc);
  fm_strmap_free(&gidx);
  fm_strmap_free(&nidx);
  fm_free(train.v); /* entries borrowed */
  fm_free(tcal.v);
  fm_free(tnone.v);
  fm_pairs_free(&all);
  fm_pairs_free(&cal);
  fm_pairs_free(&cnone);
  fm_free(fold);
  fm_free(nfold);
  fm_free(pick);
  fm_free(perm);
  gold_free(g, ng);
  return rc;
}
