/* match.c: ranking.  A query is featurized exactly like the references,
 * scored against the inverted index (sparse TF-IDF, all blocks weighted),
 * the best `candidates` are re-scored with the LSA cosine and the
 * category/type prior, and the top k kept with a bounded heap. */
#include "model_internal.h"
#include "calib.h"
#include "linalg_internal.h"
#include "topk.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Postings longer than this are skipped during candidate generation. */
#define MAX_POSTING 1000

struct fm_matcher {
  const fm_model *m;
  fm_featurizer feat;
  fm_tokens toks[FM_NBLK];
  fm_buf key;
  uint32_t *ids; size_t nids, capids;
  fm_qvec q;
  float *acc;          /* nrefs, zero between queries */
  uint32_t *touched;   /* refs with acc != 0 this query */
  uint8_t *mark;       /* nrefs */
  float *qdense;       /* nterms, zero between queries */
  uint64_t *qbits;     /* nterms bits: qdense[t] != 0, zero between queries */
  float *emb;          /* k */
  uint64_t *ckey; uint32_t *cidx; /* candidate heap (cand_key), then the refs */
  fm_candidate *cand;  /* the re-scored candidates, all components */
  float *lsa;          /* their LSA cosines */
  float *fscore; uint32_t *fidx; /* final heap storage */
  int fcap;
};

void fm_matcher_free(fm_matcher *mt) {
  if (!mt) return;
  fm_feat_free(&mt->feat);
  for (int b = 0; b < FM_NBLK; b++) fm_tokens_free(&mt->toks[b]);
  fm_buf_free(&mt->key);
  fm_free(mt->ids);
  fm_qvec_free(&mt->q);
  fm_free(mt->acc);
  fm_free(mt->touched);
  fm_free(mt->mark);
  fm_free(mt->qdense);
  fm_free(mt->qbits);
  fm_free(mt->emb);
  fm_free(mt->ckey);
  fm_free(mt->cidx);
  fm_free(mt->cand);
  fm_free(mt->lsa);
  fm_free(mt->fscore);
  fm_free(mt->fidx);
  fm_free(mt);
}

fm_rc fm_matcher_new(const fm_model *m, fm_matcher **out, fm_error *err) {
  *out = NULL;
  fm_matcher *mt = fm_calloc(1, sizeof *mt);
  if (!mt) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  mt->m = m;
  for (int b = 0; b < FM_NBLK; b++) fm_tokens_init(&mt->toks[b]);
  fm_buf_init(&mt->key);
  fm_rc rc = fm_feat_init(&mt->feat, m->abbrev, err);
  if (rc) {
    fm_matcher_free(mt);
    return rc;
  }
  int C = m->opts.candidates;
  mt->acc = fm_calloc(m->nrefs ? m->nrefs : 1, sizeof *mt->acc);
  /* one spare entry: the branch-free append writes before it counts */
  mt->touched = fm_malloc(((size_t)m->nrefs + 1) * sizeof *mt->touched);
  mt->mark = fm_calloc(m->nrefs ? m->nrefs : 1, 1);
  mt->qdense = fm_calloc(m->nterms ? m->nterms : 1, sizeof *mt->qdense);
  mt->qbits = fm_calloc(((size_t)m->nterms + 63) / 64 + 1, sizeof *mt->qbits);
  mt->emb = fm_calloc(m->k ? (size_t)m->k : 1, sizeof *mt->emb);
  mt->ckey = fm_malloc((size_t)C * sizeof *mt->ckey);
  mt->cidx = fm_malloc((size_t)C * sizeof *mt->cidx);
  mt->cand = fm_malloc((size_t)C * sizeof *mt->cand);
  mt->lsa = fm_malloc((size_t)C * sizeof *mt->lsa);
  if (!mt->acc || !mt->touched || !mt->mark || !mt->qdense || !mt->qbits || !mt->emb ||
      !mt->ckey || !mt->cidx || !mt->cand || !mt->lsa) {
    fm_matcher_free(mt);
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  *out = mt;
  return FM_OK;
}

/* Field -> sparse query vector (known terms only), per-block normalized.
 * Unknown terms still count towards the block norm, as they would have had
 * the field been in training (their idf is the maximum). */
static fm_rc encode(fm_matcher *mt, const fm_field *f, fm_error *err) {
  const fm_model *m = mt->m;
  fm_rc rc = fm_feat_field(&mt->feat, f, 0, mt->toks, err);
  if (rc) return rc;
  mt->nids = 0;
  mt->q.n = 0;
  double unknown[FM_NBLK] = {0, 0, 0};
  float maxidf = (float)(log((1.0 + m->nrefs + m->nqrys) / 1.0) + 1.0);
  for (int b = 0; b < FM_NBLK; b++)
    for (size_t i = 0; i < mt->toks[b].n; i++) {
      if (fm_feat_key(&mt->key, b, fm_tokens_get(&mt->toks[b], i))) goto nomem;
      uint32_t t;
      if (!fm_strmap_get(&m->term_map, mt->key.buf, mt->key.len, &t)) {
        unknown[b] += (double)maxidf * maxidf;
        continue;
      }
      if (fm_grow((void **)&mt->ids, &mt->capids, mt->nids + 1, sizeof *mt->ids)) goto nomem;
      mt->ids[mt->nids++] = t;
    }
  fm_sort_u32(mt->ids, mt->nids);
  /* at most nids distinct terms: size both arrays once */
  if (mt->nids > mt->q.cap) {
    size_t cap = mt->q.cap;
    if (fm_grow((void **)&mt->q.term, &cap, mt->nids, sizeof *mt->q.term)) goto nomem;
    float *val = fm_realloc(mt->q.val, cap * sizeof *mt->q.val);
    if (!val) goto nomem; /* q.term stays valid: freed with the matcher */
    mt->q.val = val;
    mt->q.cap = cap;
  }
  double norm[FM_NBLK] = {unknown[0], unknown[1], unknown[2]};
  for (size_t i = 0; i < mt->nids;) {
    size_t j = i;
    while (j < mt->nids && mt->ids[j] == mt->ids[i]) j++;
    float v = (float)((1.0 + log((double)(j - i))) * m->idf[mt->ids[i]]);
    mt->q.term[mt->q.n] = mt->ids[i];
    mt->q.val[mt->q.n++] = v;
    norm[fm_term_block(m, mt->ids[i])] += (double)v * v;
    i = j;
  }
  for (size_t i = 0; i < mt->q.n; i++) {
    double nb = norm[fm_term_block(m, mt->q.term[i])];
    mt->q.val[i] = nb > 0 ? (float)(mt->q.val[i] / sqrt(nb)) : 0.0f;
  }
  return FM_OK;
nomem:
  return fm_error_set(err, FM_ERR_NOMEM, "out of memory encoding a query");
}

/* The model's own row for a query field, if f is one of its query fields
 * (same id, and the same strings in every member that featurization may
 * read): copied into mt->q, so the lookup skips tokenization.  The row was
 * computed at training by the arithmetic of encode() above, so the vector,
 * and with it every score, is the same bit for bit.  Returns 0 (and leaves
 * mt->q alone) for any other field. */
static int same_str(const char *a, const char *b) { return a == b || !strcmp(a, b); }
static int stored_query(fm_matcher *mt, const fm_field *f) {
  const fm_model *m = mt->m;
  if (!m->qcsr_ptr || !f->id) return 0;
  long qi = fm_model_find_query(m, f->id);
  if (qi < 0) return 0;
  fm_field g;
  fm_rec_to_field(m, &m->qrys[qi], &g);
  if (!f->vendor || !f->name || !f->description || !f->type || !f->category || !f->source ||
      !same_str(f->id, g.id) || !same_str(f->name, g.name) ||
      !same_str(f->description, g.description) || !same_str(f->vendor, g.vendor) ||
      !same_str(f->type, g.type) || !same_str(f->category, g.category) ||
      !same_str(f->source, g.source))
    return 0;
  uint64_t p0 = m->qcsr_ptr[qi], n = m->qcsr_ptr[qi + 1] - p0;
  if (n > mt->q.cap) {
    size_t cap = mt->q.cap;
    if (fm_grow((void **)&mt->q.term, &cap, n, sizeof *mt->q.term)) return 0;
    float *val = fm_realloc(mt->q.val, cap * sizeof *mt->q.val);
    if (!val) return 0; /* q.term stays valid: freed with the matcher */
    mt->q.val = val;
    mt->q.cap = cap;
  }
  if (n > 0) { /* a query without terms may meet buffers never allocated */
    memcpy(mt->q.term, m->qcsr_col + p0, n * sizeof *mt->q.term);
    memcpy(mt->q.val, m->qcsr_val + p0, n * sizeof *mt->q.val);
  }
  mt->q.n = n;
  return 1;
}

/* Set (on) or clear the bits of qbits for the query's terms with a
 * non-zero value: exactly the terms with qdense != 0. */
static void set_qbits(fm_matcher *mt, int on) {
  for (size_t i = 0; i < mt->q.n; i++) {
    uint32_t t = mt->q.term[i];
    uint64_t bit = (uint64_t)(on && mt->q.val[i] != 0) << (t & 63);
    mt->qbits[t >> 6] = (mt->qbits[t >> 6] & ~((uint64_t)1 << (t & 63))) | bit;
  }
}

/* Per-block cosines of the query with one reference row.  The row's terms
 * are ascending and the blocks are contiguous ranges of term ids, so the
 * row is three runs.  Most of a row's terms are not in the query: the
 * positions of those that are (qdense != 0: the bit in qbits, 7 KB that
 * stay in L1 where qdense is 210 KB) are first collected without a
 * branch, then summed per block in row order -- exactly the additions, in
 * exactly the order, of a loop that skips the zeros, so the same bits. */
static void components(const fm_matcher *mt, uint32_t r, float out[FM_NBLK]) {
  const fm_model *m = mt->m;
  const float *qdense = mt->qdense;
  const uint64_t *qbits = mt->qbits;
  const uint32_t *col = m->csr_col;
  const float *val = m->csr_val;
  uint32_t b0 = m->nblk[0], b1 = m->nblk[0] + m->nblk[1];
  uint64_t p = m->csr_ptr[r], e = m->csr_ptr[r + 1];
  float o0 = 0, o1 = 0, o2 = 0;
  enum { NHIT = 64 };
  uint64_t hit[NHIT];
  while (p < e) {
    size_t n = 0;
    uint64_t stop = e - p > NHIT ? p + NHIT : e;
    for (; p < stop; p++) {
      hit[n] = p;
      uint32_t c = col[p];
      n += (qbits[c >> 6] >> (c & 63)) & 1;
    }
    for (size_t i = 0; i < n; i++) {
      uint64_t h = hit[i];
      uint32_t t = col[h];
      float x = qdense[t] * val[h];
      if (t < b0)
        o0 += x;
      else if (t < b1)
        o1 += x;
      else
        o2 += x;
    }
  }
  out[0] = o0;
  out[1] = o1;
  out[2] = o2;
}

/* Whether every product x * inv_val of candidate generation is > 0: the
 * model's weighted postings are all at least 2^-64 (m->inv_min_ok: false
 * when a block weight is 0) and so is every query value, so each product
 * is at least 2^-128, above the smallest float.  A sum of positive floats
 * is never 0. */
static int positive_products(const fm_matcher *mt) {
  if (!mt->m->inv_min_ok) return 0;
  for (size_t i = 0; i < mt->q.n; i++)
    if (!(mt->q.val[i] >= 0x1p-64f)) return 0;
  return 1;
}

/* Candidate selection keeps the C best (score, ref) pairs of a few thousand
 * -- better is a higher score, then a smaller ref, as fm_topk -- in a heap
 * of 64-bit keys: the float's bits made monotonic (-0 as +0) above the
 * complement of the ref, so a pair is better exactly when its key is
 * larger, keys are distinct, and a heap step is one integer compare and
 * no branch on ties (fm_topk's sift-down was ~10% of a lookup).  The set
 * kept is the same as fm_topk's; the order within it is not used. */
static inline uint64_t cand_key(float s, uint32_t r) {
  float z = s + 0.0f; /* -0 -> +0 */
  uint32_t b;
  memcpy(&b, &z, sizeof b);
  b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
  return (uint64_t)b << 32 | (UINT32_MAX - r);
}

/* The score of a key made by cand_key (+0 for a -0 score): its inverse on
 * the upper half. */
static inline float cand_key_score(uint64_t key) {
  uint32_t b = (uint32_t)(key >> 32);
  b = (b & 0x80000000u) ? (b & 0x7fffffffu) : ~b;
  float s;
  memcpy(&s, &b, sizeof s);
  return s;
}

/* Offer key v to the min-heap h of *n keys (capacity c; root = worst). */
static inline void cand_push(uint64_t *h, int *n, int c, uint64_t v) {
  if (*n == c) {
    if (v <= h[0]) return;
    int i = 0;
    for (;;) {
      int ch = 2 * i + 1;
      if (ch >= c) break;
      uint64_t a = h[ch], b = ch + 1 < c ? h[ch + 1] : UINT64_MAX;
      uint64_t m = b < a ? b : a;
      ch += b < a;
      if (v <= m) break;
      h[i] = m;
      i = ch;
    }
    h[i] = v;
    return;
  }
  int i = (*n)++;
  while (i > 0 && h[(i - 1) / 2] > v) {
    h[i] = h[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h[i] = v;
}

/* The LSA rows a query reads (lsa_v for its words, ref_emb for its
 * candidates: 1 KB each at k = 256, spread over 17-30 MB) are not in cache
 * and their order is unpredictable to the hardware, so each loop over them
 * prefetches the row AHEAD places on while it computes, and the first AHEAD
 * rows are requested well before the loop (while the postings are walked,
 * or the embedding computed).  Prefetches change no arithmetic. */
enum { AHEAD = 4 };

/* Request the lines the re-scoring reads for candidate r: its CSR row
 * (components(), ~50 entries spread over 6.5 MB) and its per-reference
 * priors.  Issued from the LSA loop, whose dot products take long enough
 * to cover the latency. */
static void prefetch_candidate(const fm_model *m, uint32_t r) {
#if defined(__GNUC__)
  uint64_t p = m->csr_ptr[r], e = m->csr_ptr[r + 1];
  for (uint64_t q = p; q < e; q += 16) {
    __builtin_prefetch(m->csr_col + q);
    __builtin_prefetch(m->csr_val + q);
  }
  if (e > p) {
    __builtin_prefetch(m->csr_col + e - 1);
    __builtin_prefetch(m->csr_val + e - 1);
  }
  __builtin_prefetch(&m->refs[r].kind);
  __builtin_prefetch(m->ref_order + r);
#else
  (void)m;
  (void)r;
#endif
}

/* The LSA cosines of all the candidates, in a loop of their own: the dot
 * products are independent, so the CPU overlaps one with the next, which
 * it could not across the rest of the re-scoring. */
static void lsa_cosines(fm_matcher *mt, const uint32_t *idx, int n) {
  const fm_model *m = mt->m;
  size_t K = (size_t)m->k;
  if (K == 0) {
    for (int i = 0; i < n; i++) mt->lsa[i] = 0;
    return;
  }
  for (int i = 0; i < n; i++) {
    prefetch_candidate(m, idx[i]);
    const float *pf = i + AHEAD < n ? m->ref_emb + (size_t)idx[i + AHEAD] * K : NULL;
    mt->lsa[i] = fm_dot_pf(mt->emb, m->ref_emb + (size_t)idx[i] * K, K, pf);
  }
}

/* Steps 1 and 2 of fm_match_vec for the query encoded in mt: walk the
 * inverted index (selective postings first) accumulating sparse scores,
 * then keep the best m->opts.candidates in mt->cidx (clearing the
 * accumulators on the way).  Returns how many were kept.  Uses only mt's
 * own buffers. */
static inline int gather_candidates(fm_matcher *mt) {
  const fm_model *m = mt->m;
  /* 1. candidate generation over the inverted index.  Only selective
   *    postings (at most MAX_POSTING references) are walked: a term shared by
   *    thousands of references (a common character n-gram, "price") adds
   *    little to the cosine and would touch most of the universe.  When that
   *    leaves too few candidates the common terms are walked too.  The sparse
   *    score of each candidate is then recomputed exactly from its row. */
  int C = m->opts.candidates;
  /* The hot loop of a lookup (thousands of postings): everything it
   * touches is in locals, because the uint8_t mark store may alias any
   * pointer and would otherwise force a reload of each one per posting. */
  float *restrict acc = mt->acc;
  uint8_t *restrict mark = mt->mark;
  uint32_t *restrict touched = mt->touched;
  size_t ntouched = 0;
  const uint64_t *inv_ptr = m->inv_ptr;
  const uint32_t *inv_ref = m->inv_ref;
  const float *inv_val = m->inv_val;
  int pos = positive_products(mt);
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < mt->q.n; i++) {
      uint32_t t = mt->q.term[i];
      uint64_t p0 = inv_ptr[t], p1 = inv_ptr[t + 1];
      if (pass == 0 ? p1 - p0 > MAX_POSTING : p1 - p0 <= MAX_POSTING) continue;
      float x = mt->q.val[i];
      if (pos) {
        /* every product is > 0, so acc[r] is 0 exactly until r is first
         * touched: no mark array, and no branch */
        for (uint64_t p = p0; p < p1; p++) {
          uint32_t r = inv_ref[p];
          float a = acc[r];
          touched[ntouched] = r;
          ntouched += !(a > 0.0f); /* a >= 0 and never NaN here: a == 0 in
                                      one compare, without the parity test */
          acc[r] = a + x * inv_val[p];
        }
        continue;
      }
      for (uint64_t p = p0; p < p1; p++) {
        uint32_t r = inv_ref[p];
        if (!mark[r]) {
          mark[r] = 1;
          touched[ntouched++] = r;
        }
        acc[r] += x * inv_val[p];
      }
    }
    if (ntouched >= (size_t)C) break;
  }
  /* 2. the best candidates by (partial) sparse score; the accumulators are
   *    cleared in the same pass (the heap holds copies of the scores) */
  uint64_t *ckey = mt->ckey;
  int nc = 0;
  if (pos) {
    /* Most touched refs lose to the heap's worst entry.  A score below the
     * worst's score (its key's float, exact) cannot make it whatever the
     * ref, so it is dropped on one float compare before its key is built;
     * ties and better go to cand_push, which decides exactly as before.
     * The pass never set mark. */
    float worst = -INFINITY;
    for (size_t i = 0; i < ntouched; i++) {
      uint32_t r = touched[i];
      float a = acc[r];
      acc[r] = 0;
      if (a < worst || a != a) continue; /* NaN dropped, as fm_topk */
      cand_push(ckey, &nc, C, cand_key(a, r));
      if (nc == C) worst = cand_key_score(ckey[0]);
    }
  } else {
    for (size_t i = 0; i < ntouched; i++) {
      uint32_t r = touched[i];
      float a = acc[r];
      if (a == a) cand_push(ckey, &nc, C, cand_key(a, r)); /* NaN dropped, as fm_topk */
      acc[r] = 0;
      mark[r] = 0;
    }
  }
  for (int i = 0; i < nc; i++) mt->cidx[i] = UINT32_MAX - (uint32_t)ckey[i];
  return nc;
}

/* Step 3 of fm_match_vec: the query's L2-normalized LSA embedding in
 * mt->emb (word blocks, same weights as training), prefetching the first
 * rows of the nc candidates of mt->cidx.  nword: the word terms' count. */
static inline void embed_query(fm_matcher *mt, int nc, uint32_t nword) {
  const fm_model *m = mt->m;
  const uint32_t *cidx = mt->cidx;
  /* 3. LSA embedding of the query (word blocks, same weights as training) */
  int K = m->k;
  if (K > 0) {
    for (int i = 0; i < AHEAD && i < nc; i++)
      fm_prefetch_floats(m->ref_emb + (size_t)cidx[i] * K, (size_t)K);
    memset(mt->emb, 0, (size_t)K * sizeof *mt->emb);
    const float wb[2] = {m->opts.w.title, m->opts.w.full};
    for (size_t i = 0; i < mt->q.n; i++) {
      uint32_t t = mt->q.term[i];
      if (t >= nword) break; /* terms are sorted; chars come last */
      uint32_t row = m->lsa_row[t];
      if (row == FM_NO_ROW) continue; /* no reference has the word: a zero row */
      float x = mt->q.val[i] * wb[fm_term_block(m, t)];
      uint32_t tn = i + AHEAD < mt->q.n ? mt->q.term[i + AHEAD] : nword;
      uint32_t rn = tn < nword ? m->lsa_row[tn] : FM_NO_ROW;
      fm_axpy_pf(mt->emb, m->lsa_v + (size_t)row * K, x, (size_t)K,
                 rn != FM_NO_ROW ? m->lsa_v + (size_t)rn * K : NULL);
    }
    double s = 0;
    for (int j = 0; j < K; j++) s += (double)mt->emb[j] * mt->emb[j];
    if (s > 0) {
      float inv = (float)(1.0 / sqrt(s));
      for (int j = 0; j < K; j++) mt->emb[j] *= inv;
    }
  }
}

fm_rc fm_match_vec(fm_matcher *mt, const fm_field *f, uint32_t qkind, int k,
                   fm_candidate *out, int *nout, fm_error *err) {
  const fm_model *m = mt->m;
  *nout = 0;
  if (k <= 0) return FM_OK;
  fm_rc rc = stored_query(mt, f) ? FM_OK : encode(mt, f, err);
  if (rc) return rc;
  uint32_t nword = m->nblk[0] + m->nblk[1];
  if (m->k > 0)
    for (size_t i = 0; i < AHEAD && i < mt->q.n && mt->q.term[i] < nword; i++)
      if (m->lsa_row[mt->q.term[i]] != FM_NO_ROW)
        fm_prefetch_floats(m->lsa_v + (size_t)m->lsa_row[mt->q.term[i]] * m->k, (size_t)m->k);
  int nc = gather_candidates(mt);
  const uint32_t *cidx = mt->cidx;
  embed_query(mt, nc, nword);
  /* 4. re-score the candidates and keep the top k */
  /* one candidate beyond k: the margin of the k-th (its confidence) */
  int kin = k + 1;
  if (kin > mt->fcap) {
    float *fs = fm_realloc(mt->fscore, (size_t)kin * sizeof *fs);
    if (!fs) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); goto reset; }
    mt->fscore = fs;
    uint32_t *fi = fm_realloc(mt->fidx, (size_t)kin * sizeof *fi);
    if (!fi) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); goto reset; }
    mt->fidx = fi;
    mt->fcap = kin;
  }
  fm_topk fin;
  fm_topk_init(&fin, kin, mt->fscore, mt->fidx);
  const float *prow = (qkind != FM_NO_KIND && qkind < m->nqk) ? m->prior + (size_t)qkind * m->nrk : NULL;
  for (size_t i = 0; i < mt->q.n; i++) mt->qdense[mt->q.term[i]] = mt->q.val[i];
  set_qbits(mt, 1);
  const float wb3[FM_NBLK] = {m->opts.w.title, m->opts.w.full, m->opts.w.chars};
  /* a query that is itself numbered ("EPS_2") asks for a numbered copy */
  int qnum = fm_id_number(f->id, NULL) != 0;
  /* the query's FM_QUAL_* bits: its type, and whether its title names a
   * residual item (terms are sorted and the title block comes first) */
  unsigned qqual = fm_type_qual(f->type);
  size_t nqt = 0; /* the title block's terms */
  for (; nqt < mt->q.n && mt->q.term[nqt] < m->nblk[0]; nqt++)
    qqual |= fm_qual_term(m, mt->q.term[nqt]);
  lsa_cosines(mt, cidx, nc);
  /* the model's own learning layer (its training pairs, learn.c) moves
   * every candidate's score before the top k are chosen */
  const fm_learn *pl = m->pairs_layer;
  uint32_t pfx = pl ? fm_learn_prefix(f->id) : 0;
  for (int i = 0; i < nc; i++) {
    fm_candidate *c = &mt->cand[i];
    uint32_t r = cidx[i];
    float comp[FM_NBLK];
    components(mt, r, comp);
    c->ref = r;
    c->s_title = comp[0];
    c->s_full = comp[1];
    c->s_chars = comp[2];
    c->s_lsa = mt->lsa[i];
    c->s_prior = prow ? prow[m->refs[r].kind] : 0;
    c->s_variant = qnum ? 0.0f : (float)m->ref_variant[r];
    c->s_order = m->ref_order[r];
    unsigned rq = m->ref_qual[r], differ = qqual ^ rq;
    c->s_other = (differ & FM_QUAL_OTHER) ? 1.0f : 0.0f;
    /* only when both have a type: an untyped field may be either */
    c->s_date = (qqual & rq & FM_QUAL_TYPED) && (differ & FM_QUAL_TIME) ? 1.0f : 0.0f;
    c->score = wb3[0] * comp[0] + wb3[1] * comp[1] + wb3[2] * comp[2] +
               m->opts.w.lsa * c->s_lsa + m->opts.w.prior * c->s_prior -
               m->opts.w.variant * c->s_variant + m->opts.w.order * c->s_order -
               m->opts.w.other * c->s_other - m->opts.w.date * c->s_date;
    if (pl) c->score = (float)(c->score + fm_learn_delta(pl, mt->q.term, nqt, pfx, c));
    fm_topk_push(&fin, c->score, r);
  }
  fm_topk_sorted(&fin);
  /* 5. the winners, with the components computed above (refs are distinct
   *    among the candidates, so the lookup is unambiguous) */
  int nfin = fin.n < k ? fin.n : k;
  for (int i = 0; i < nfin; i++)
    for (int j = 0; j < nc; j++)
      if (mt->cand[j].ref == fin.idx[i]) {
        out[i] = mt->cand[j];
        break;
      }
  /* 6. confidence (calib.c), the (k+1)-th score giving the k-th margin */
  fm_calib_fill(&m->calib, out, nfin, fin.n > k ? fin.score[k] : NAN,
                !(f->name && f->name[0]) && !(f->description && f->description[0]));
  *nout = nfin;
reset:
  for (size_t i = 0; i < mt->q.n; i++) mt->qdense[mt->q.term[i]] = 0;
  set_qbits(mt, 0);
  return rc;
}

/* The term ids of the last query this matcher encoded (borrowed from mt,
 * valid until its next lookup; ascending, title block first) and its model
 * (m optional): the learning layer (learn.c) reads the query's title words
 * from them. */
size_t fm_matcher_last_terms(const fm_matcher *mt, const uint32_t **terms,
                             const fm_model **m) {
  if (m) *m = mt->m;
  *terms = mt->q.term;
  return mt->q.n;
}

fm_rc fm_match(fm_matcher *mt, const char *id, const fm_field *q, int k,
               fm_candidate *out, int *nout, fm_error *err) {
  const fm_model *m = mt->m;
  fm_field f;
  uint32_t kind = FM_NO_KIND;
  if (q) {
    f = *q;
    fm_buf b;
    fm_buf_init(&b);
    if (fm_kind_query(&b, &f) == FM_OK) {
      uint32_t v;
      if (fm_strmap_get(&m->qkind_map, b.buf, b.len, &v)) kind = v;
    }
    fm_buf_free(&b);
  } else {
    if (!id) return fm_error_set(err, FM_ERR_ARG, "no query field given");
    long qi = fm_model_find_query(m, id);
    if (qi >= 0) {
      fm_rec_to_field(m, &m->qrys[qi], &f);
      kind = m->qrys[qi].kind;
    } else {
      memset(&f, 0, sizeof f);
      f.vendor = f.name = f.description = f.type = f.category = f.source = "";
      f.id = id;
    }
  }
  return fm_match_vec(mt, &f, kind, k, out, nout, err);
}
