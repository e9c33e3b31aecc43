/* learn.c: the learning layer (docs/scoring.md, "Learning from decisions").
 *
 * Built from decisions (accepted pairs are positives, rejected ones
 * negatives) against one model, it re-scores the model's best candidates:
 *
 *   score' = score + sum_j d_j x_j            (x: the nine components, signed
 *                                              as they enter the score)
 *          + sum_{a in T(q), b in D} A[a,b] / sqrt(|T(q)| |D|)
 *          + sum_{a in T(q)} K[a, kind(r)] / sqrt(|T(q)|)
 *          - taken * [r accepted for another query field]
 *
 * T(.) are the title-block terms of the model's vocabulary, D = T(r) \ T(q)
 * the reference's title words the query lacks, kind(r) the
 * reference kind of the prior (file:type).  d, A and K minimise a pairwise
 * logistic ranking loss, log(1 + exp(-beta (s(pos) - s(neg)))), over the
 * decided queries' candidates, plus L2 penalties: l2_weights |d|^2 / 2 pulls
 * the weights toward the model's (today's defaults), so one query can move
 * a delta by at most beta * D / l2_weights (D: the component's spread among
 * the query's candidates); l2_assoc |A|^2 / 2 keeps an association learnt
 * from one pair small.  An association learnt on one field (a Bloomberg
 * prefix word ~ a glossary word, "ardr" ~ "supplemental") moves every
 * sibling field that carries the same word.
 *
 * Ownership: fm_learn_build returns a layer the caller frees with
 * fm_learn_free; it borrows the model (close the model after the layer)
 * and copies nothing else from the pairs.  Immutable once built. */
#include "learn_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_POOL = 256, NEG_PER_QUERY = 20 };

static void kmap_free(kmap *h) {
  fm_free(h->key);
  fm_free(h->val);
  memset(h, 0, sizeof *h);
}

/* The index of k, inserted as h->n when new; UINT32_MAX on NOMEM. */
static uint32_t kmap_put(kmap *h, uint64_t k) {
  if (2 * (h->n + 1) > h->cap) {
    size_t nc = h->cap ? 2 * h->cap : 1024;
    uint64_t *nk = fm_malloc(nc * sizeof *nk);
    uint32_t *nv = fm_malloc(nc * sizeof *nv);
    if (!nk || !nv) {
      fm_free(nk);
      fm_free(nv);
      return UINT32_MAX;
    }
    for (size_t i = 0; i < nc; i++) nv[i] = UINT32_MAX;
    for (size_t i = 0; i < h->cap; i++)
      if (h->val[i] != UINT32_MAX) {
        size_t j = kmap_slot(h->key[i], nc);
        while (nv[j] != UINT32_MAX) j = (j + 1) & (nc - 1);
        nk[j] = h->key[i];
        nv[j] = h->val[i];
      }
    fm_free(h->key);
    fm_free(h->val);
    h->key = nk;
    h->val = nv;
    h->cap = nc;
  }
  size_t i = kmap_slot(k, h->cap);
  for (; h->val[i] != UINT32_MAX; i = (i + 1) & (h->cap - 1))
    if (h->key[i] == k) return h->val[i];
  h->key[i] = k;
  h->val[i] = (uint32_t)h->n++;
  return h->val[i];
}

void fm_learn_opts_default(fm_learn_opts *o) {
  /* kind associations and the taken penalty lost top-1 in simulation and
   * cross-validation (docs/scoring.md): available, not on by default */
  o->parts = FM_LEARN_WEIGHTS | FM_LEARN_ASSOC;
  o->pool = 0; /* the model's re-scored candidates */
  o->beta = 10.0f;
  o->l2_weights = 100.0f;
  o->l2_assoc = 0.1f;
  o->taken = 0.05f;
  o->epochs = 200;
  o->model_pairs = 1;
}

void fm_learn_free(fm_learn *L) {
  if (!L) return;
  kmap_free(&L->keys);
  fm_free(L->theta);
  fm_free(L->taken);
  fm_free(L->qword);
  fm_free(L);
}

void fm_learn_info_get(const fm_learn *L, fm_learn_info *info) {
  if (!L) {
    memset(info, 0, sizeof *info);
    return;
  }
  *info = L->info;
}

/* The components of c as they enter the score (fm_weights order). */
void fm_learn_comp_vec(const fm_candidate *c, float x[NW]) {
  x[0] = c->s_title;
  x[1] = c->s_full;
  x[2] = c->s_chars;
  x[3] = c->s_lsa;
  x[4] = c->s_prior;
  x[5] = -c->s_variant;
  x[6] = c->s_order;
  x[7] = -c->s_other;
  x[8] = -c->s_date;
}

/* Title-block terms of reference r (borrowed from the model's CSR row). */
size_t fm_learn_ref_title(const fm_model *m, uint32_t r, const uint32_t **t) {
  uint64_t p = m->csr_ptr[r], e = m->csr_ptr[r + 1], q = p;
  while (q < e && m->csr_col[q] < m->nblk[0]) q++;
  *t = m->csr_col + p;
  return (size_t)(q - p);
}

/* Title-block terms of the matcher's last query. */
size_t fm_learn_query_title(const fm_matcher *mt, const fm_model *m, const uint32_t **t) {
  size_t n = fm_matcher_last_terms(mt, t, NULL), k = 0;
  while (k < n && (*t)[k] < m->nblk[0]) k++;
  return k;
}

/* Is v among the ascending a[0..n)? */
int fm_learn_in_sorted(const uint32_t *a, size_t n, uint32_t v) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && a[lo] == v;
}

/* The prefix family of a query id: its first part ("ARDR" of
 * "ARDR_TOT_ASSETS"), when the id has more than one, hashed (FNV-1a) into
 * the keys' upper half with the top two bits set, so it never meets a term
 * id; 0 when there is none. */
uint32_t fm_learn_prefix(const char *id) {
  if (!id) return 0;
  const char *us = strchr(id, '_');
  if (!us || us == id || us - id > 8) return 0;
  uint32_t h = 2166136261u;
  for (const char *p = id; p < us; p++) {
    char ch = *p >= 'a' && *p <= 'z' ? (char)(*p - 32) : *p;
    h = (h ^ (uint8_t)ch) * 16777619u;
  }
  return 0xC0000000u | (h & 0x3fffffffu);
}

/* See learn_internal.h. */
int fm_learn_each_feat(const fm_model *m, unsigned parts, const uint32_t *qt, size_t nq,
                       uint32_t pfx, const uint8_t *only, const uint8_t *only_ref, uint32_t r,
                       feat_fn fn, void *ctx) {
  const uint32_t *rt;
  size_t nr = fm_learn_ref_title(m, r, &rt);
  if ((parts & FM_LEARN_PREFIX) && pfx) {
    uint64_t hi = (uint64_t)pfx << 32;
    uint32_t kind = m->refs[r].kind;
    if (kind != FM_NO_KIND && fn(ctx, hi | KIND_BIT | kind, 1.0f)) return 1;
    size_t nd = 0;
    for (size_t j = 0; j < nr; j++) nd += !fm_learn_in_sorted(qt, nq, rt[j]);
    for (size_t j = 0; j < nr && nd; j++)
      if (!fm_learn_in_sorted(qt, nq, rt[j]) &&
          fn(ctx, hi | rt[j], (float)(1.0 / sqrt((double)nd))))
        return 1;
  }
  if (!nq) return 0;
  if ((parts & FM_LEARN_ASSOC) && nr) {
    /* the reference's words the query lacks: what tells near-identical
     * candidates apart ("supplemental", "foreign", "preferred") */
    size_t nd = 0;
    uint64_t lack = 0; /* bit j: the query lacks rt[j] (j < 64; past that, searched again) */
    for (size_t j = 0; j < nr; j++)
      if (!fm_learn_in_sorted(qt, nq, rt[j])) {
        nd++;
        if (j < 64) lack |= 1ull << j;
      }
    if (nd) {
      float v = (float)(1.0 / sqrt((double)nq * (double)nd));
      for (size_t i = 0; i < nq; i++) {
        if (only && !only[qt[i]]) continue;
        for (size_t j = 0; j < nr; j++) {
          if (j < 64 ? !(lack >> j & 1) : fm_learn_in_sorted(qt, nq, rt[j])) continue;
          if (only_ref && !only_ref[rt[j]]) continue;
          if (fn(ctx, (uint64_t)qt[i] << 32 | rt[j], v)) return 1;
        }
      }
    }
  }
  uint32_t kind = m->refs[r].kind;
  if ((parts & FM_LEARN_KIND) && kind != FM_NO_KIND) {
    float v = (float)(1.0 / sqrt((double)nq));
    for (size_t i = 0; i < nq; i++)
      if (fn(ctx, (uint64_t)qt[i] << 32 | KIND_BIT | kind, v)) return 1;
  }
  return 0;
}

/* ---- training data ------------------------------------------------------- */
typedef struct sfeat { uint32_t k; float v; } sfeat;
typedef struct tcand {
  float base, x[NW];
  size_t f0, nf; /* its features in td.f */
} tcand;
typedef struct tpair { uint32_t pos, neg; float w; } tpair;
typedef struct tdata {
  tcand *c; size_t nc, capc;
  sfeat *f; size_t nf, capf;
  tpair *p; size_t np, capp;
  kmap *keys;
} tdata;

static int add_feat(void *ctx, uint64_t key, float v) {
  tdata *td = ctx;
  uint32_t k = kmap_put(td->keys, key);
  if (k == UINT32_MAX) return 1;
  if (fm_grow((void **)&td->f, &td->capf, td->nf + 1, sizeof *td->f)) return 1;
  td->f[td->nf++] = (sfeat){k, v};
  return 0;
}

static int add_pair(tdata *td, uint32_t pos, uint32_t neg, float w) {
  if (fm_grow((void **)&td->p, &td->capp, td->np + 1, sizeof *td->p)) return 1;
  td->p[td->np++] = (tpair){pos, neg, w};
  return 0;
}

/* Decisions of one query field, by reference index. */
typedef struct qdec {
  long qi;
  uint32_t *acc; size_t nacc, capacc;
  uint32_t *rej; size_t nrej, caprej;
} qdec;

static int has(const uint32_t *a, size_t n, uint32_t v) {
  for (size_t i = 0; i < n; i++)
    if (a[i] == v) return 1;
  return 0;
}

/* Rank query qd with the model, record its pool's features and the
 * preference pairs its decisions imply: every accepted candidate above
 * each of the first NEG_PER_QUERY others (weight 1 / their number), and
 * the best candidate neither accepted nor rejected above each rejected
 * one. */
static fm_rc add_query(tdata *td, fm_matcher *mt, const fm_model *m, unsigned parts, int pool,
                       const qdec *qd, fm_candidate *buf, size_t *used, fm_error *err) {
  fm_field f;
  fm_rec_to_field(m, &m->qrys[qd->qi], &f);
  int n = 0;
  fm_rc rc = fm_match(mt, f.id, NULL, pool, buf, &n, err);
  if (rc) return rc;
  const uint32_t *qt;
  size_t nq = fm_learn_query_title(mt, m, &qt);
  uint32_t pfx = fm_learn_prefix(f.id);
  /* the preference pairs first, in the pool's indexes */
  size_t p0 = td->np;
  int any = 0;
  for (int i = 0; i < n; i++) {
    if (!has(qd->acc, qd->nacc, buf[i].ref)) continue;
    int nneg = 0;
    for (int j = 0; j < n && nneg < NEG_PER_QUERY; j++) nneg += !has(qd->acc, qd->nacc, buf[j].ref);
    int seen = 0;
    for (int j = 0; j < n && seen < nneg; j++) {
      if (has(qd->acc, qd->nacc, buf[j].ref)) continue;
      seen++;
      if (add_pair(td, (uint32_t)i, (uint32_t)j, 1.0f / (float)nneg)) goto nomem;
    }
    any = 1;
  }
  int best = -1;
  for (int i = 0; i < n && best < 0; i++)
    if (!has(qd->rej, qd->nrej, buf[i].ref)) best = i;
  for (int i = 0; i < n && best >= 0; i++)
    if (has(qd->rej, qd->nrej, buf[i].ref)) {
      if (add_pair(td, (uint32_t)best, (uint32_t)i, 1.0f)) goto nomem;
      any = 1;
    }
  *used += any;
  /* then the candidates some pair names, with their features: the fit
   * never scores the others, and a key only they carry would stay 0 */
  uint32_t at[MAX_POOL]; /* pool index -> td->c index, UINT32_MAX: unnamed */
  for (int i = 0; i < n; i++) at[i] = UINT32_MAX;
  for (size_t p = p0; p < td->np; p++) at[td->p[p].pos] = at[td->p[p].neg] = 0;
  for (int i = 0; i < n; i++) {
    if (at[i] == UINT32_MAX) continue;
    if (fm_grow((void **)&td->c, &td->capc, td->nc + 1, sizeof *td->c)) goto nomem;
    at[i] = (uint32_t)td->nc;
    tcand *c = &td->c[td->nc++];
    c->base = buf[i].score;
    fm_learn_comp_vec(&buf[i], c->x);
    c->f0 = td->nf;
    if (fm_learn_each_feat(m, parts, qt, nq, pfx, NULL, NULL, buf[i].ref, add_feat, td))
      goto nomem;
    c->nf = td->nf - c->f0;
  }
  for (size_t p = p0; p < td->np; p++) {
    td->p[p].pos = at[td->p[p].pos];
    td->p[p].neg = at[td->p[p].neg];
  }
  return FM_OK;
nomem:
  return fm_error_set(err, FM_ERR_NOMEM, "out of memory learning from decisions");
}

/* Minimise the regularised pairwise loss by preconditioned gradient
 * descent (each parameter's step is the inverse of a bound on its own
 * curvature, damped by half).  Deterministic.  Returns 0, or 1 when out of
 * memory (nothing learnt). */
static int fit(fm_learn *L, const tdata *td, size_t ntheta) {
  const fm_learn_opts *o = &L->o;
  int learn_w = (o->parts & FM_LEARN_WEIGHTS) != 0;
  float beta = o->beta;
  double hw[NW] = {0};
  double *ht = fm_calloc(ntheta ? ntheta : 1, sizeof *ht);
  double *gt = fm_calloc(ntheta ? ntheta : 1, sizeof *gt);
  float *diff = fm_calloc(ntheta ? ntheta : 1, sizeof *diff);
  float *sc = NULL;
  int nomem = 1;
  if (!ht || !gt || !diff) goto out;
  /* curvature bounds: beta^2 / 4 * sum w * (dx)^2 + l2 */
  for (size_t p = 0; p < td->np; p++) {
    const tcand *a = &td->c[td->p[p].pos], *b = &td->c[td->p[p].neg];
    double w = td->p[p].w * (double)beta * beta / 4;
    for (int j = 0; j < NW; j++) hw[j] += w * (a->x[j] - b->x[j]) * (a->x[j] - b->x[j]);
    for (size_t i = 0; i < a->nf; i++) diff[td->f[a->f0 + i].k] += td->f[a->f0 + i].v;
    for (size_t i = 0; i < b->nf; i++) diff[td->f[b->f0 + i].k] -= td->f[b->f0 + i].v;
    for (size_t i = 0; i < a->nf; i++) {
      uint32_t k = td->f[a->f0 + i].k;
      ht[k] += w * diff[k] * diff[k];
      diff[k] = 0;
    }
    for (size_t i = 0; i < b->nf; i++) {
      uint32_t k = td->f[b->f0 + i].k;
      ht[k] += w * diff[k] * diff[k];
      diff[k] = 0;
    }
  }
  for (int j = 0; j < NW; j++) hw[j] += o->l2_weights;
  for (size_t k = 0; k < ntheta; k++) ht[k] += o->l2_assoc;
  if (!(sc = fm_malloc((td->nc ? td->nc : 1) * sizeof *sc))) goto out;
  nomem = 0;
  for (int e = 0; e < o->epochs; e++) {
    for (size_t c = 0; c < td->nc; c++) {
      const tcand *t = &td->c[c];
      double s = t->base;
      for (int j = 0; j < NW; j++) s += (double)L->d[j] * t->x[j];
      for (size_t i = 0; i < t->nf; i++) s += (double)L->theta[td->f[t->f0 + i].k] * td->f[t->f0 + i].v;
      sc[c] = (float)s;
    }
    double gw[NW];
    for (int j = 0; j < NW; j++) gw[j] = (double)o->l2_weights * L->d[j];
    for (size_t k = 0; k < ntheta; k++) gt[k] = (double)o->l2_assoc * L->theta[k];
    for (size_t p = 0; p < td->np; p++) {
      const tcand *a = &td->c[td->p[p].pos], *b = &td->c[td->p[p].neg];
      double z = beta * ((double)sc[td->p[p].pos] - sc[td->p[p].neg]);
      double g = -td->p[p].w * beta / (1.0 + exp(z)); /* d loss / d (s_a - s_b) */
      for (int j = 0; j < NW; j++) gw[j] += g * (a->x[j] - b->x[j]);
      for (size_t i = 0; i < a->nf; i++) gt[td->f[a->f0 + i].k] += g * td->f[a->f0 + i].v;
      for (size_t i = 0; i < b->nf; i++) gt[td->f[b->f0 + i].k] -= g * td->f[b->f0 + i].v;
    }
    if (learn_w)
      for (int j = 0; j < NW; j++) L->d[j] -= (float)(0.5 * gw[j] / hw[j]);
    for (size_t k = 0; k < ntheta; k++) L->theta[k] -= (float)(0.5 * gt[k] / ht[k]);
  }
out:
  fm_free(sc);
  fm_free(ht);
  fm_free(gt);
  fm_free(diff);
  return nomem;
}

/* Group the pairs by query field (model indexes); unknown ids skipped. */
static fm_rc group(fm_learn *L, const fm_learn_pair *pairs, size_t n, qdec **out, size_t *nout,
                   fm_error *err) {
  const fm_model *m = L->m;
  fm_strmap idx;
  fm_strmap_init(&idx);
  qdec *q = NULL;
  size_t nq = 0, capq = 0;
  for (size_t i = 0; i < n; i++) {
    const fm_learn_pair *p = &pairs[i];
    if (p->kind == FM_LEARN_NONE) {
      L->info.none++;
      continue;
    }
    long qi = p->query ? fm_model_find_query(m, p->query) : -1;
    long ri = p->ref ? fm_model_find_ref(m, p->ref) : -1;
    if (qi < 0 || ri < 0 || (p->kind != FM_LEARN_ACCEPT && p->kind != FM_LEARN_REJECT)) {
      L->info.skipped++;
      continue;
    }
    uint32_t g;
    int ins;
    if (fm_strmap_put(&idx, p->query, strlen(p->query), (uint32_t)nq, &g, &ins)) goto nomem;
    if (ins) {
      if (fm_grow((void **)&q, &capq, nq + 1, sizeof *q)) goto nomem;
      memset(&q[nq], 0, sizeof q[nq]);
      q[nq++].qi = qi;
    }
    qdec *d = &q[g];
    if (p->kind == FM_LEARN_ACCEPT) {
      if (fm_grow((void **)&d->acc, &d->capacc, d->nacc + 1, sizeof *d->acc)) goto nomem;
      d->acc[d->nacc++] = (uint32_t)ri;
      L->info.positives++;
      uint32_t *t = &L->taken[ri];
      *t = *t == UINT32_MAX || *t == (uint32_t)qi ? (uint32_t)qi : UINT32_MAX - 1;
    } else {
      if (fm_grow((void **)&d->rej, &d->caprej, d->nrej + 1, sizeof *d->rej)) goto nomem;
      d->rej[d->nrej++] = (uint32_t)ri;
      L->info.negatives++;
    }
  }
  fm_strmap_free(&idx);
  *out = q;
  *nout = nq;
  return FM_OK;
nomem:
  fm_strmap_free(&idx);
  for (size_t i = 0; i < nq; i++) {
    fm_free(q[i].acc);
    fm_free(q[i].rej);
  }
  fm_free(q);
  return fm_error_set(err, FM_ERR_NOMEM, "out of memory grouping decisions");
}

/* pairs[0..n) followed by the model's training pairs ("q\tr\n" lines of
 * its pairs section) as positives, into *out (the caller's: fm_free
 * (*out)[0].query, the one block of the copied lines, then *out); *out
 * NULL when the model has none. */
fm_rc fm_learn_with_model_pairs(const fm_model *m, const fm_learn_pair *pairs, size_t n,
                                fm_learn_pair **out, size_t *nout, fm_error *err) {
  *out = NULL;
  size_t nm = 0;
  for (uint64_t i = 0; i < m->pairs_len; i++) nm += m->pairs_tsv[i] == '\n';
  if (!nm) return FM_OK;
  char *text = fm_malloc(m->pairs_len + 1);
  fm_learn_pair *v = fm_malloc((n + nm) * sizeof *v);
  if (!text || !v) {
    fm_free(text);
    fm_free(v);
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  memcpy(text, m->pairs_tsv, m->pairs_len);
  text[m->pairs_len] = 0;
  /* the block's owner comes first, so the caller can free it */
  size_t k = 0;
  for (char *p = text; *p && k < nm;) {
    char *nl = strchr(p, '\n'), *tab = strchr(p, '\t');
    if (!nl) break;
    *nl = 0;
    if (tab && tab < nl) {
      *tab = 0;
      v[k++] = (fm_learn_pair){p, tab + 1, FM_LEARN_ACCEPT};
    }
    p = nl + 1;
  }
  if (!k || v[0].query != text) { /* no line parsed, or the first one was not a pair */
    fm_free(text);
    fm_free(v);
    return FM_OK;
  }
  if (n) memcpy(v + k, pairs, n * sizeof *v);
  *out = v;
  *nout = k + n;
  return FM_OK;
}

fm_rc fm_learn_build(const fm_model *m, const fm_learn_pair *pairs, size_t n,
                     const fm_learn_opts *o, fm_learn **out, fm_error *err) {
  *out = NULL;
  fm_learn *L = fm_calloc(1, sizeof *L);
  if (!L) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  L->m = m;
  if (o) L->o = *o;
  else fm_learn_opts_default(&L->o);
  if (L->o.pool < 1) L->o.pool = m->opts.candidates; /* every re-scored candidate */
  if (L->o.pool < 1) L->o.pool = 1;
  if (L->o.pool > MAX_POOL) L->o.pool = MAX_POOL;
  L->taken = fm_malloc((m->nrefs ? m->nrefs : 1) * sizeof *L->taken);
  if (!L->taken) {
    fm_learn_free(L);
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  for (uint32_t r = 0; r < m->nrefs; r++) L->taken[r] = UINT32_MAX;
  qdec *q = NULL;
  size_t nq = 0;
  fm_learn_pair *all = NULL;
  /* the model's own pairs join the decisions, never stand in for them: with
   * no decision the layer is empty, and a store without decisions serves
   * exactly the model's ranking.  A model with its own pairs layer (format
   * 7) already ranks with them: the decisions are learnt on top of it. */
  fm_rc rc = L->o.model_pairs && n && !m->pairs_layer
                 ? fm_learn_with_model_pairs(m, pairs, n, &all, &n, err)
                 : FM_OK;
  if (!rc) rc = group(L, all ? all : pairs, n, &q, &nq, err);
  if (all) {
    fm_free((void *)all[0].query); /* the copy of the model's pairs (one block) */
    fm_free(all);
  }
  if (rc) {
    fm_learn_free(L);
    return rc;
  }
  tdata td = {.keys = &L->keys};
  fm_matcher *mt = NULL;
  fm_candidate *buf = fm_malloc((size_t)L->o.pool * sizeof *buf);
  if (!buf) rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  if (!rc && nq) rc = fm_matcher_new(m, &mt, err);
  for (size_t i = 0; i < nq && !rc; i++)
    rc = add_query(&td, mt, m, L->o.parts, L->o.pool, &q[i], buf, &L->info.queries, err);
  if (!rc && L->keys.n && !(L->theta = fm_calloc(L->keys.n, sizeof *L->theta)))
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  if (!rc && td.np && fit(L, &td, L->keys.n))
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory fitting the learning layer");
  fm_matcher_free(mt);
  fm_free(buf);
  fm_free(td.c);
  fm_free(td.f);
  fm_free(td.p);
  for (size_t i = 0; i < nq; i++) {
    fm_free(q[i].acc);
    fm_free(q[i].rej);
  }
  fm_free(q);
  if (rc) {
    fm_learn_free(L);
    return rc;
  }
  for (int j = 0; j < NW; j++) L->info.weights[j] = L->d[j];
  for (size_t k = 0; k < L->keys.n; k++) L->info.associations += L->theta[k] != 0;
  /* the query words and the reference words that carry a word association:
   * a lookup pairs only them (the others would find nothing) */
  size_t nt = m->nblk[0] ? m->nblk[0] : 1;
  if (L->keys.n && !(L->qword = fm_calloc(2 * nt, 1))) {
    fm_learn_free(L);
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  if (L->qword) L->rword = L->qword + nt;
  for (size_t i = 0; L->qword && i < L->keys.cap; i++) {
    uint32_t k = L->keys.val[i];
    uint64_t key = L->keys.key[i];
    uint32_t a = (uint32_t)(key >> 32), b = (uint32_t)key;
    if (k != UINT32_MAX && L->theta[k] != 0 && a < m->nblk[0] && !(b & KIND_BIT) &&
        b < m->nblk[0])
      L->qword[a] = L->rword[b] = 1;
  }
  L->active = td.np > 0 || ((L->o.parts & FM_LEARN_TAKEN) && L->info.positives && L->o.taken != 0);
  *out = L;
  return FM_OK;
}

