/* eval.c: top-1 / recall@5 / recall@10 / MRR@10 against gold pairs, and
 * k-fold cross-validation of the pair-learning parts. */
#include "model_internal.h"

#include <string.h>

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
                         fm_error *err) {
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

static void finish(fm_eval_result *res) {
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
  fm_rc rc = eval_groups(m, gold, g, ng, res, d, err);
  gold_free(g, ng);
  finish(res);
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

fm_rc fm_eval_cv(const fm_config *c, const fm_pairs *gold, int folds, int quiet,
                 fm_eval_result *res, fm_error *err) {
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
  /* deterministic shuffle of the groups -> fold of each group */
  int *fold = fm_calloc(ng, sizeof *fold);
  size_t *perm = fm_calloc(ng, sizeof *perm);
  fm_pairs all, train;
  fm_pairs_init(&all);
  fm_pairs_init(&train);
  fm_fieldset refs, qrys;
  int imported = 0;
  fm_rc rc = FM_OK;
  if (!fold || !perm) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); goto done; }
  uint64_t s = c->opts.seed ^ 0x5eedf01dULL;
  for (size_t i = 0; i < ng; i++) perm[i] = i;
  for (size_t i = ng; i > 1; i--) {
    size_t j = (size_t)(fm_splitmix64(&s) % i);
    size_t tmp = perm[i - 1]; perm[i - 1] = perm[j]; perm[j] = tmp;
  }
  if (folds != FM_EVAL_LOCO)
    for (size_t i = 0; i < ng; i++) fold[perm[i]] = (int)(i % (size_t)folds);
  /* every pair a fold may learn from: config train_pairs + gold */
  for (size_t i = 0; i < c->ntrain_pairs; i++)
    if ((rc = fm_pairs_load(c->train_pairs[i], &all, err))) goto done;
  size_t nconf = all.n;
  if ((rc = fm_config_import(c, &refs, &qrys, quiet, err))) goto done;
  imported = 1;
  if (folds == FM_EVAL_LOCO && (rc = category_folds(&qrys, g, ng, fold, &folds, err))) goto done;
  fm_strmap gidx;
  fm_strmap_init(&gidx);
  for (size_t i = 0; i < ng; i++)
    if (fm_strmap_put(&gidx, g[i].query, strlen(g[i].query), (uint32_t)i, NULL, NULL)) {
      fm_strmap_free(&gidx);
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      goto done;
    }
  for (int f = 0; f < folds && rc == FM_OK; f++) {
    train.n = 0;
    /* config pairs, minus any whose query is in this fold */
    for (size_t i = 0; i < nconf + gold->n; i++) {
      fm_pair p = i < nconf ? all.v[i] : gold->v[i - nconf];
      uint32_t gi;
      if (fm_strmap_get(&gidx, p.query, strlen(p.query), &gi) && fold[gi] == f) continue;
      if (fm_grow((void **)&train.v, &train.cap, train.n + 1, sizeof p)) {
        rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
        break;
      }
      train.v[train.n++] = p;
    }
    if (rc) break;
    fm_train_input in = {.config = c, .pairs_override = &train, .use_pairs_override = 1,
                         .refs = &refs, .queries = &qrys, .quiet = 1};
    fm_model *m;
    if ((rc = fm_train(&in, &m, err))) break;
    /* the fold's groups */
    size_t nf = 0;
    gold_q *fg = fm_calloc(ng, sizeof *fg);
    if (!fg) { fm_model_close(m); rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); break; }
    for (size_t i = 0; i < ng; i++)
      if (fold[i] == f) fg[nf++] = g[i];
    rc = eval_groups(m, gold, fg, nf, res, NULL, err);
    fm_free(fg); /* rows are borrowed from g */
    fm_model_close(m);
    if (!quiet) fprintf(stderr, "fold %d/%d done\n", f + 1, folds);
  }
  fm_strmap_free(&gidx);
  finish(res);
done:
  if (imported) {
    fm_fieldset_free(&refs);
    fm_fieldset_free(&qrys);
  }
  fm_free(train.v); /* entries borrowed from all/gold */
  fm_pairs_free(&all);
  fm_free(fold);
  fm_free(perm);
  gold_free(g, ng);
  return rc;
}
