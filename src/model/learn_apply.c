/* learn_apply.c: applying a learning layer (learn.c builds it; the
 * formula is in learn.c's header and docs/scoring.md, "Learning from
 * decisions"): the delta a layer gives one candidate, the model's own
 * pairs layer, and fm_match_learned. */
#include "learn_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct apply_ctx { const fm_learn *L; double s; } apply_ctx;
static int add_theta(void *ctx, uint64_t key, float v) {
  apply_ctx *a = ctx;
  uint32_t k = kmap_get(&a->L->keys, key);
  if (k != UINT32_MAX) a->s += (double)a->L->theta[k] * v;
  return 0;
}

int fm_learn_active(const fm_learn *L) { return L && L->active; }

double fm_learn_delta(const fm_learn *L, const uint32_t *qt, size_t nq, uint32_t pfx,
                      const fm_candidate *c) {
  float x[NW];
  fm_learn_comp_vec(c, x);
  apply_ctx a = {.L = L, .s = 0};
  for (int j = 0; j < NW; j++) a.s += (double)L->d[j] * x[j];
  if (L->keys.n)
    fm_learn_each_feat(L->m, L->o.parts, qt, nq, pfx, L->qword, L->rword, c->ref,
                       add_theta, &a);
  return a.s;
}

/* The model's training pairs as a layer: see model_internal.h. */
fm_rc fm_model_pairs_layer(fm_model *m, fm_error *err) {
  if (m->pairs_layer || !m->pairs_len) return FM_OK;
  fm_learn_pair *all = NULL;
  size_t n = 0;
  fm_rc rc = fm_learn_with_model_pairs(m, NULL, 0, &all, &n, err);
  if (rc || !all) return rc;
  fm_learn_opts o;
  fm_learn_opts_default(&o);
  o.model_pairs = 0; /* they are the pairs */
  fm_learn *L = NULL;
  rc = fm_learn_build(m, all, n, &o, &L, err);
  fm_free((void *)all[0].query); /* the copy of the pairs (one block) */
  fm_free(all);
  if (rc) return rc;
  if (L->active) m->pairs_layer = L;
  else fm_learn_free(L);
  return FM_OK;
}

static int cand_cmp(const void *pa, const void *pb) {
  const fm_candidate *a = pa, *b = pb;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  return a->ref < b->ref ? -1 : a->ref > b->ref;
}

fm_rc fm_match_learned(fm_matcher *mt, const fm_learn *L, const char *id, const fm_field *q,
                       int k, fm_candidate *out, int *nout, fm_error *err) {
  const fm_model *m = NULL;
  const uint32_t *unused;
  (void)fm_matcher_last_terms(mt, &unused, &m);
  /* no layer, nothing learnt, or a layer of another model: the model alone */
  if (!L || !L->active || L->m != m || k <= 0) return fm_match(mt, id, q, k, out, nout, err);
  int pool = L->o.pool > k ? L->o.pool : k;
  fm_candidate stackbuf[100], *buf = pool <= 100 ? stackbuf : fm_malloc((size_t)pool * sizeof *buf);
  if (!buf) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  int n = 0;
  fm_rc rc = fm_match(mt, id, q, pool, buf, &n, err);
  if (rc) goto done;
  const uint32_t *qt;
  size_t nq = fm_learn_query_title(mt, m, &qt);
  const char *qid = q ? q->id : id;
  long qi = qid ? fm_model_find_query(m, qid) : -1;
  uint32_t pfx = fm_learn_prefix(qid);
  for (int i = 0; i < n; i++) {
    fm_candidate *c = &buf[i];
    double s = c->score + fm_learn_delta(L, qt, nq, pfx, c);
    uint32_t t = L->taken[c->ref];
    if ((L->o.parts & FM_LEARN_TAKEN) && t != UINT32_MAX && (qi < 0 || t != (uint32_t)qi))
      s -= L->o.taken;
    c->score = (float)s;
  }
  qsort(buf, (size_t)n, sizeof *buf, cand_cmp);
  *nout = n < k ? n : k;
  /* the confidences follow the new order: the calibrator reads the learnt
   * scores and margins (the (k+1)-th gives the k-th its margin), so a
   * candidate the layer moved up is not left with its old rank's value */
  int bare = 0;
  if (q) {
    bare = !(q->name && q->name[0]) && !(q->description && q->description[0]);
  } else if (qi >= 0) {
    fm_field qf;
    fm_model_query(m, (size_t)qi, &qf);
    bare = !(qf.name && qf.name[0]) && !(qf.description && qf.description[0]);
  } else {
    bare = 1;
  }
  fm_calib_fill(&m->calib, buf, *nout, n > *nout ? buf[*nout].score : NAN, bare);
  memcpy(out, buf, (size_t)*nout * sizeof *out);
done:
  if (buf != stackbuf) fm_free(buf);
  return rc;
}
