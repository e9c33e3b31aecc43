/* train_prior.c: the kinds of fields and the category/type prior of a
 * training run (self-trained from confident matches on threads, plus the
 * training pairs); train.c runs the rest of the training. */
#include "train_internal.h"
#include "linalg_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Kinds of fields (query "vendor:category", reference "file:type"). */
fm_rc fm_train_assign_kinds(trainer *t, fm_field_rec *qrecs, fm_field_rec *rrecs,
                            fm_strmap *rk, fm_error *err) {
  fm_model *m = t->m;
  fm_buf b;
  fm_buf_init(&b);
  fm_rc rc = FM_OK;
  for (size_t i = 0; i < t->qrys->n && rc == FM_OK; i++) {
    if (fm_kind_query(&b, &t->qrys->v[i])) { rc = FM_ERR_NOMEM; break; }
    uint32_t id;
    rc = fm_strmap_put(&m->qkind_map, b.buf, b.len, (uint32_t)fm_strmap_count(&m->qkind_map), &id, NULL);
    qrecs[i].kind = id;
  }
  for (size_t i = 0; i < t->refs->n && rc == FM_OK; i++) {
    if (fm_kind_ref(&b, &t->refs->v[i])) { rc = FM_ERR_NOMEM; break; }
    uint32_t id;
    rc = fm_strmap_put(rk, b.buf, b.len, (uint32_t)fm_strmap_count(rk), &id, NULL);
    rrecs[i].kind = id;
  }
  fm_buf_free(&b);
  if (rc) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  m->nqk = (uint32_t)fm_strmap_count(&m->qkind_map);
  m->nrk = (uint32_t)fm_strmap_count(rk);
  uint32_t *qo = fm_calloc(m->nqk ? m->nqk : 1, sizeof *qo);
  uint32_t *ro = fm_calloc(m->nrk ? m->nrk : 1, sizeof *ro);
  size_t nprior = (size_t)m->nqk * m->nrk;
  float *prior = fm_calloc(nprior ? nprior : 1, sizeof *prior);
  if (fm_model_own_n(m, 3, (void *[]){qo, ro, prior}))
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  for (uint32_t i = 0; i < m->nqk; i++)
    if (fm_train_strtab_add(&t->st, fm_strmap_key(&m->qkind_map, i, NULL), &qo[i]))
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  for (uint32_t i = 0; i < m->nrk; i++)
    if (fm_train_strtab_add(&t->st, fm_strmap_key(rk, i, NULL), &ro[i]))
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  m->qkind_off = qo;
  m->rkind_off = ro;
  m->prior = prior;
  return FM_OK;
}

/* The prior: PMI of (query kind, reference kind) estimated from confident
 * matches of a deterministic sample of queries (self-training), plus every
 * training pair counted PAIR_WEIGHT times.  Smoothed towards independence. */
#define PRIOR_SAMPLE 8000
#define PAIR_WEIGHT 5.0
#define PRIOR_ALPHA 20.0

/* One thread's share of the self-training sample: blocks of PRIOR_BLOCK
 * samples (sample s is query s * step) taken from a shared cursor, so a
 * thread slowed down by other work (the model file being written beside
 * the prior) takes fewer of them; counted into its own arrays.  The counts
 * are whole numbers, so their sum does not depend on which thread counted
 * what, and the prior does not depend on the number of threads. */
#define PRIOR_BLOCK 64
typedef struct prior_part {
  const fm_model *m;
  size_t step, nsample, nr;
  atomic_size_t *next; /* shared cursor (samples) */
  float wsum;
  double *cnt, *rowc;  /* nqk x nrk, nqk */
  fm_progress *pg;     /* thread 0 only */
  fm_rc rc;
  fm_error err;
} prior_part;

static void prior_part_run(void *ctx, int tid, int nt) {
  prior_part *pp = (prior_part *)ctx + tid;
  const fm_model *m = pp->m;
  fm_matcher *mt = NULL;
  (void)nt;
  fm_error_init(&pp->err);
  pp->rc = fm_matcher_new(m, &mt, &pp->err);
  while (pp->rc == FM_OK) {
    size_t lo = atomic_fetch_add(pp->next, PRIOR_BLOCK);
    if (lo >= pp->nsample) break;
    size_t hi = lo + PRIOR_BLOCK < pp->nsample ? lo + PRIOR_BLOCK : pp->nsample;
    if (pp->pg) fm_progress_update(pp->pg, lo);
    for (size_t s = lo; s < hi && pp->rc == FM_OK; s++) {
      size_t i = s * pp->step;
      fm_field f;
      fm_rec_to_field(m, &m->qrys[i], &f);
      fm_candidate c[2];
      int n = 0;
      if ((pp->rc = fm_match_vec(mt, &f, FM_NO_KIND, 2, c, &n, &pp->err))) break;
      if (n < 2 || c[0].score < 0.25f * pp->wsum || c[0].score - c[1].score < 0.05f) continue;
      uint32_t qk = m->qrys[i].kind, rk = m->refs[c[0].ref].kind;
      pp->cnt[(size_t)qk * pp->nr + rk] += 1;
      pp->rowc[qk] += 1;
    }
  }
  fm_matcher_free(mt);
}

fm_rc fm_train_build_prior(trainer *t, fm_error *err) {
  fm_model *m = t->m;
  size_t nq = m->nqk, nr = m->nrk;
  if (!nq || !nr || t->o.w.prior == 0) return FM_OK;
  size_t step = m->nqrys > PRIOR_SAMPLE ? m->nqrys / PRIOR_SAMPLE : 1;
  size_t nsample = (m->nqrys + step - 1) / step;
  int nt = t->nthreads;
  if ((size_t)nt > nsample / 64 + 1) nt = (int)(nsample / 64 + 1);
  prior_part *parts = fm_calloc((size_t)nt, sizeof *parts);
  double *pr = fm_calloc(nr, sizeof *pr);
  fm_rc rc = FM_OK;
  if (!parts || !pr) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); goto done; }
  for (uint32_t i = 0; i < m->nrefs; i++) pr[m->refs[i].kind] += 1.0 / m->nrefs;
  fm_progress pg;
  fm_progress_start(&pg, "prior", nsample);
  if (t->quiet) pg.enabled = 0;
  atomic_size_t next;
  atomic_init(&next, 0);
  for (int i = 0; i < nt; i++) {
    prior_part *pp = &parts[i];
    pp->m = m;
    pp->step = step;
    pp->nsample = nsample;
    pp->next = &next;
    pp->nr = nr;
    pp->wsum = t->o.w.title + t->o.w.full + t->o.w.chars + t->o.w.lsa;
    pp->pg = i == 0 ? &pg : NULL;
    pp->cnt = fm_calloc(nq * nr, sizeof *pp->cnt);
    pp->rowc = fm_calloc(nq, sizeof *pp->rowc);
    if (!pp->cnt || !pp->rowc) rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  if (rc) goto done;
  fm_par_run(nt, prior_part_run, parts);
  fm_progress_finish(&pg);
  for (int i = 0; i < nt; i++)
    if (parts[i].rc) {
      rc = parts[i].rc;
      if (err) *err = parts[i].err;
      goto done;
    }
  /* the shares' counts, summed into share 0 in thread order */
  double *cnt = parts[0].cnt, *rowc = parts[0].rowc;
  for (int i = 1; i < nt; i++) {
    for (size_t j = 0; j < nq * nr; j++) cnt[j] += parts[i].cnt[j];
    for (size_t j = 0; j < nq; j++) rowc[j] += parts[i].rowc[j];
  }
  for (size_t i = 0; i < t->pairs.n; i++) {
    long q = fm_model_find_query(m, t->pairs.v[i].query);
    long r = fm_model_find_ref(m, t->pairs.v[i].ref);
    if (q < 0 || r < 0) continue;
    uint32_t qk = m->qrys[q].kind, rk = m->refs[r].kind;
    cnt[(size_t)qk * nr + rk] += PAIR_WEIGHT;
    rowc[qk] += PAIR_WEIGHT;
  }
  float *prior = (float *)m->prior;
  for (size_t a = 0; a < nq; a++)
    for (size_t b = 0; b < nr; b++) {
      double p = (cnt[a * nr + b] + PRIOR_ALPHA * pr[b]) / (rowc[a] + PRIOR_ALPHA);
      double v = pr[b] > 0 ? log(p / pr[b]) : 0;
      prior[a * nr + b] = (float)(v > 3 ? 3 : v < -3 ? -3 : v);
    }
done:
  for (int i = 0; parts && i < nt; i++) {
    fm_free(parts[i].cnt);
    fm_free(parts[i].rowc);
  }
  fm_free(parts);
  fm_free(pr);
  return rc;
}
