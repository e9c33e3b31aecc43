/* simulate.c: what learning from decisions buys (docs/scoring.md,
 * "Learning from decisions").
 *
 * fm_simulate plays an analyst who knows the gold answers: the gold
 * queries are split at random into halves, the first half is decided in
 * review-queue order (most uncertain first) and the layer re-learnt every
 * `step` decisions; the second half is scored with and without the layer.
 * fm_learn_cv scores gold folds (random K folds, or one category at a time)
 * with a layer learnt from the other folds' pairs, and without.
 *
 * Ownership: results own their curve (fm_sim_result_free); gold and model
 * are borrowed. */
#include "model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One distinct gold query: its model index and its acceptable answers. */
typedef struct gq {
  long qi;
  const char *id;
  const char **refs; size_t nrefs, caprefs;
  double unc;   /* review-queue uncertainty under the static model */
  size_t order; /* position after the seeded shuffle */
} gq;

static void gq_free(gq *g, size_t n) {
  for (size_t i = 0; i < n; i++) fm_free(g[i].refs);
  fm_free(g);
}

/* The gold queries the model knows, first-appearance order. */
static fm_rc gq_group(const fm_model *m, const fm_pairs *gold, gq **out, size_t *nout,
                      fm_error *err) {
  fm_strmap idx;
  fm_strmap_init(&idx);
  gq *g = NULL;
  size_t n = 0, cap = 0;
  for (size_t i = 0; i < gold->n; i++) {
    const char *q = gold->v[i].query;
    long qi = fm_model_find_query(m, q);
    if (qi < 0) continue;
    uint32_t at;
    int ins;
    if (fm_strmap_put(&idx, q, strlen(q), (uint32_t)n, &at, &ins)) goto nomem;
    if (ins) {
      if (fm_grow((void **)&g, &cap, n + 1, sizeof *g)) goto nomem;
      memset(&g[n], 0, sizeof g[n]);
      g[n].qi = qi;
      g[n++].id = q;
    }
    gq *e = &g[at];
    if (fm_grow((void **)&e->refs, &e->caprefs, e->nrefs + 1, sizeof *e->refs)) goto nomem;
    e->refs[e->nrefs++] = gold->v[i].ref;
  }
  fm_strmap_free(&idx);
  *out = g;
  *nout = n;
  return FM_OK;
nomem:
  fm_strmap_free(&idx);
  gq_free(g, n);
  return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
}

/* 1-based rank of the first acceptable answer among c[0..n), 0 if none. */
static int answer_rank(const fm_model *m, const gq *g, const fm_candidate *c, int n) {
  for (int r = 0; r < n; r++) {
    const char *rid = fm_str(m, m->refs[c[r].ref].id);
    for (size_t j = 0; j < g->nrefs; j++)
      if (!strcmp(rid, g->refs[j])) return r + 1;
  }
  return 0;
}

/* Top-1 hits among the queries g[idx[0..n)] with layer L (NULL: none). */
static fm_rc top1_hits(fm_matcher *mt, const fm_model *m, const fm_learn *L, const gq *g,
                       const size_t *idx, size_t n, size_t *hits, fm_error *err) {
  *hits = 0;
  for (size_t i = 0; i < n; i++) {
    fm_candidate c[1];
    int nc = 0;
    fm_rc rc = fm_match_learned(mt, L, g[idx[i]].id, NULL, 1, c, &nc, err);
    if (rc) return rc;
    *hits += answer_rank(m, &g[idx[i]], c, nc) == 1;
  }
  return FM_OK;
}

void fm_sim_opts_default(fm_sim_opts *o) {
  memset(o, 0, sizeof *o);
  o->seed = 42;
  o->step = 5;
  o->threshold = 2.0;
  o->margin = 0.5;
}

void fm_sim_result_free(fm_sim_result *r) {
  fm_free(r->curve);
  r->curve = NULL;
  r->ncurve = 0;
}

/* Seeded Fisher-Yates over 0..n-1 into perm. */
static void shuffle(size_t *perm, size_t n, uint64_t seed) {
  uint64_t s = seed ^ 0x51afd7edULL;
  for (size_t i = 0; i < n; i++) perm[i] = i;
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)(fm_splitmix64(&s) % i);
    size_t t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
}

/* Does query a come before b in the queue: more uncertain first, then the
 * shuffled order. */
static int before(const gq *a, const gq *b) {
  if (a->unc != b->unc) return a->unc > b->unc;
  return a->order < b->order;
}

/* Queue order of idx[0..n) (insertion sort: no global state, n is small). */
static void queue_sort(const gq *g, size_t *idx, size_t n) {
  for (size_t i = 1; i < n; i++) {
    size_t v = idx[i], j = i;
    for (; j > 0 && before(&g[v], &g[idx[j - 1]]); j--) idx[j] = idx[j - 1];
    idx[j] = v;
  }
}

static double clamp01(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

/* The queue's uncertainty of each query under the static model (the
 * formula of fm_batch_uncertainty, docs/batch.md). */
static fm_rc uncertainties(fm_matcher *mt, const fm_sim_opts *o, gq *g, size_t n, fm_error *err) {
  for (size_t i = 0; i < n; i++) {
    fm_candidate c[2];
    int nc = 0;
    fm_rc rc = fm_match(mt, g[i].id, NULL, 2, c, &nc, err);
    if (rc) return rc;
    if (!nc) {
      g[i].unc = 1.0;
      continue;
    }
    double s = o->threshold > 0 ? clamp01(c[0].score / o->threshold) : 1.0;
    double mg = nc < 2 || o->margin <= 0 ? 1.0 : clamp01((c[0].score - c[1].score) / o->margin);
    g[i].unc = 1.0 - 0.5 * s - 0.5 * mg;
  }
  return FM_OK;
}

static fm_rc add_point(fm_sim_result *r, size_t *cap, size_t decided, double top1,
                       fm_error *err) {
  if (fm_grow((void **)&r->curve, cap, r->ncurve + 1, sizeof *r->curve))
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  r->curve[r->ncurve++] = (fm_sim_point){decided, top1};
  return FM_OK;
}

/* Top-1 confidence of each of ids[0..n) with layer L (NULL: none) into p. */
static fm_rc top1_conf(fm_matcher *mt, const fm_learn *L, const char *const *ids, size_t n,
                       double *p, fm_error *err) {
  for (size_t i = 0; i < n; i++) {
    fm_candidate c[1];
    int nc = 0;
    fm_rc rc = fm_match_learned(mt, L, ids[i], NULL, 1, c, &nc, err);
    if (rc) return rc;
    p[i] = nc ? c[0].confidence : 0.0;
  }
  return FM_OK;
}

/* The no-equivalent part of a simulation (opts.none): the none fields the
 * model knows, shuffled by the seed; the first half joins the decisions as
 * FM_LEARN_NONE (dec has room for them) and the layer is rebuilt; then the
 * second half and the tested gold are scored without and with it. */
static fm_rc sim_none(fm_matcher *mt, const fm_model *m, const fm_sim_opts *o, const gq *g,
                      const size_t *test, size_t ntest, fm_learn_pair *dec, size_t ndec,
                      fm_learn **L, fm_sim_result *res, fm_error *err) {
  const fm_pairs *none = o->none;
  const char **ids = fm_malloc((none->n ? none->n : 1) * sizeof *ids);
  size_t *perm = fm_malloc((none->n ? none->n : 1) * sizeof *perm);
  double *pg = fm_malloc((ntest ? ntest : 1) * sizeof *pg);
  double *pn = fm_malloc((none->n ? none->n : 1) * sizeof *pn);
  const char **tid = fm_malloc((ntest + none->n ? ntest + none->n : 1) * sizeof *tid);
  fm_strmap seen;
  fm_strmap_init(&seen);
  fm_rc rc = FM_OK;
  if (!ids || !perm || !pg || !pn || !tid) {
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    goto done;
  }
  size_t nn = 0;
  for (size_t i = 0; i < none->n; i++) {
    const char *q = none->v[i].query;
    int ins = 0;
    if (fm_model_find_query(m, q) < 0) continue;
    if (fm_strmap_put(&seen, q, strlen(q), (uint32_t)nn, NULL, &ins)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      goto done;
    }
    if (ins) ids[nn++] = q;
  }
  shuffle(perm, nn, o->seed ^ 0x0e0e0e0eULL);
  size_t nfirst = (nn + 1) / 2, ntn = nn - nfirst;
  for (size_t i = 0; i < nfirst; i++)
    dec[ndec++] = (fm_learn_pair){ids[perm[i]], NULL, FM_LEARN_NONE};
  fm_learn_free(*L);
  *L = NULL;
  if ((rc = fm_learn_build(m, dec, ndec, o->learn, L, err))) goto done;
  for (size_t i = 0; i < ntest; i++) tid[i] = g[test[i]].id;
  for (size_t i = 0; i < ntn; i++) tid[ntest + i] = ids[perm[nfirst + i]];
  for (int w = 0; w < 2 && !rc; w++) {
    const fm_learn *lw = w ? *L : NULL;
    if ((rc = top1_conf(mt, lw, tid, ntest, pg, err)) ||
        (rc = top1_conf(mt, lw, tid + ntest, ntn, pn, err)))
      break;
    size_t prop = 0;
    for (size_t i = 0; i < ntn; i++) prop += pn[i] >= FM_AUTO_CONFIDENCE;
    res->none_proposed[w] = ntn ? (double)prop / ntn : NAN;
    res->none_auroc[w] = fm_calib_auroc(pg, ntest, pn, ntn);
  }
  res->none_queries = nn;
  res->none_decided = nfirst;
  res->none_tested = ntn;
done:
  fm_strmap_free(&seen);
  fm_free(tid);
  fm_free(ids);
  fm_free(perm);
  fm_free(pg);
  fm_free(pn);
  return rc;
}

fm_rc fm_simulate(const fm_model *m, const fm_pairs *gold, const fm_sim_opts *o,
                  fm_sim_result *res, fm_error *err) {
  memset(res, 0, sizeof *res);
  if (o->step < 1) return fm_error_set(err, FM_ERR_ARG, "simulate: --step must be at least 1");
  gq *g = NULL;
  size_t ng = 0, capcurve = 0;
  fm_rc rc = gq_group(m, gold, &g, &ng, err);
  if (rc) return rc;
  if (ng < 2) {
    gq_free(g, ng);
    return fm_error_set(err, FM_ERR_ARG,
                        "simulate: the gold names %zu query field%s the model knows; need 2",
                        ng, ng == 1 ? "" : "s");
  }
  size_t *perm = fm_malloc(ng * sizeof *perm);
  fm_learn_pair *dec = fm_malloc((ng + (o->none ? o->none->n : 0)) * sizeof *dec);
  fm_matcher *mt = NULL;
  fm_learn *L = NULL;
  if (!perm || !dec) {
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    goto done;
  }
  if ((rc = fm_matcher_new(m, &mt, err))) goto done;
  shuffle(perm, ng, o->seed);
  for (size_t i = 0; i < ng; i++) g[perm[i]].order = i;
  size_t nfirst = (ng + 1) / 2, ntest = ng - nfirst;
  size_t *first = perm, *test = perm + nfirst;
  if ((rc = uncertainties(mt, o, g, ng, err))) goto done;
  queue_sort(g, first, nfirst);
  res->queries = ng;
  res->tested = ntest;
  size_t hits;
  if ((rc = top1_hits(mt, m, NULL, g, test, ntest, &hits, err))) goto done;
  res->static_top1 = ntest ? (double)hits / ntest : 0;
  if ((rc = add_point(res, &capcurve, 0, res->static_top1, err))) goto done;
  size_t ndec = 0;
  for (size_t i = 0; i < nfirst; i++) {
    const gq *q = &g[first[i]];
    fm_candidate c[10];
    int nc = 0;
    if ((rc = fm_match_learned(mt, L, q->id, NULL, 10, c, &nc, err))) goto done;
    int r = answer_rank(m, q, c, nc);
    fm_candidate c0[10];
    int n0 = 0;
    if ((rc = fm_match(mt, q->id, NULL, 10, c0, &n0, err))) goto done;
    int r0 = answer_rank(m, q, c0, n0);
    res->keystrokes_static += r0 ? (size_t)r0 : strlen(q->refs[0]) + 1;
    if (r) { /* move down to it and accept */
      res->keystrokes += (size_t)r;
      dec[ndec++] = (fm_learn_pair){q->id, fm_str(m, m->refs[c[r - 1].ref].id), FM_LEARN_ACCEPT};
    } else { /* pick: type the answer's id and confirm */
      res->keystrokes += strlen(q->refs[0]) + 1;
      dec[ndec++] = (fm_learn_pair){q->id, q->refs[0], FM_LEARN_ACCEPT};
    }
    if (ndec % (size_t)o->step == 0 || i + 1 == nfirst) {
      fm_learn_free(L);
      L = NULL;
      if ((rc = fm_learn_build(m, dec, ndec, o->learn, &L, err))) goto done;
      if ((rc = top1_hits(mt, m, L, g, test, ntest, &hits, err))) goto done;
      if ((rc = add_point(res, &capcurve, ndec, ntest ? (double)hits / ntest : 0, err))) goto done;
    }
  }
  res->decided = ndec;
  res->learned_top1 = res->curve[res->ncurve - 1].top1_remaining;
  if (o->none && (rc = sim_none(mt, m, o, g, test, ntest, dec, ndec, &L, res, err))) goto done;
done:
  fm_learn_free(L);
  fm_matcher_free(mt);
  fm_free(perm);
  fm_free(dec);
  gq_free(g, ng);
  if (rc) fm_sim_result_free(res);
  return rc;
}

fm_rc fm_learn_cv(const fm_model *m, const fm_pairs *gold, int folds, uint64_t seed,
                  const fm_learn_opts *lo, fm_learn_cv_result *res, fm_error *err) {
  memset(res, 0, sizeof *res);
  if (folds == 1 || folds < 0) return fm_error_set(err, FM_ERR_ARG, "folds must be 0 or >= 2");
  gq *g = NULL;
  size_t ng = 0;
  fm_rc rc = gq_group(m, gold, &g, &ng, err);
  if (rc) return rc;
  int *fold = fm_calloc(ng ? ng : 1, sizeof *fold);
  size_t *perm = fm_malloc((ng ? ng : 1) * sizeof *perm);
  fm_learn_pair *pairs = fm_malloc((gold->n ? gold->n : 1) * sizeof *pairs);
  fm_matcher *mt = NULL;
  fm_strmap cats;
  fm_strmap_init(&cats);
  int nf = folds;
  if (!fold || !perm || !pairs) {
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    goto done;
  }
  if (folds >= 2) { /* random folds, as fm_eval_cv */
    if ((size_t)folds > ng) {
      rc = fm_error_set(err, FM_ERR_ARG, "%d folds for %zu gold queries", folds, ng);
      goto done;
    }
    shuffle(perm, ng, seed);
    for (size_t i = 0; i < ng; i++) fold[perm[i]] = (int)(i % (size_t)folds);
  } else { /* one fold per query category (Data License category, book) */
    nf = 0;
    for (size_t i = 0; i < ng; i++) {
      fm_field f;
      fm_model_query(m, (size_t)g[i].qi, &f);
      const char *cat = f.category ? f.category : "";
      uint32_t at;
      int ins;
      if (fm_strmap_put(&cats, cat, strlen(cat), (uint32_t)nf, &at, &ins)) {
        rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
        goto done;
      }
      nf += ins;
      fold[i] = (int)at;
    }
  }
  if ((rc = fm_matcher_new(m, &mt, err))) goto done;
  size_t hs = 0, hl = 0;
  for (int f = 0; f < nf; f++) {
    size_t np = 0, nt = 0;
    for (size_t i = 0; i < ng; i++) {
      if (fold[i] == f) {
        perm[nt++] = i;
        continue;
      }
      for (size_t j = 0; j < g[i].nrefs; j++)
        pairs[np++] = (fm_learn_pair){g[i].id, g[i].refs[j], FM_LEARN_ACCEPT};
    }
    if (!nt) continue;
    fm_learn *L = NULL;
    size_t a, b;
    if ((rc = fm_learn_build(m, pairs, np, lo, &L, err))) goto done;
    rc = top1_hits(mt, m, NULL, g, perm, nt, &a, err);
    if (!rc) rc = top1_hits(mt, m, L, g, perm, nt, &b, err);
    fm_learn_free(L);
    if (rc) goto done;
    hs += a;
    hl += b;
    res->folds++;
  }
  res->queries = ng;
  res->static_top1 = ng ? (double)hs / ng : 0;
  res->learned_top1 = ng ? (double)hl / ng : 0;
done:
  fm_strmap_free(&cats);
  fm_matcher_free(mt);
  fm_free(fold);
  fm_free(perm);
  fm_free(pairs);
  gq_free(g, ng);
  return rc;
}
