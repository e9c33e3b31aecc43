/* train_feat.c: featurization of a training run on threads (the
 * vocabulary, document frequencies and per-document term lists of
 * train_internal.h's trainer); train.c runs the rest of the training. */
#include "train_internal.h"
#include "linalg_internal.h"

#include <stdlib.h>
#include <string.h>

/* One thread's share of the featurization: documents [lo, hi) of the
 * references followed by the queries.  Terms get local ids in the order of
 * their first occurrence in the share; merging the shares in document order
 * (merge_part) then gives every term the id a single pass over all
 * documents would have given it, so the vocabulary, the numbering and the
 * model bytes do not depend on the number of threads. */
typedef struct feat_part {
  const trainer *t;
  const fm_abbrev *ab;
  size_t lo, hi;
  fm_strmap vocab[FM_NBLK];   /* key -> local id */
  uint32_t *df[FM_NBLK];      /* documents of the share holding the term */
  uint32_t *lastdoc[FM_NBLK]; /* 1 + the last document counted */
  size_t dfcap[FM_NBLK];
  uint32_t *term;             /* packed block << 30 | local id */
  size_t nterm, capterm;
  fm_strmap grams;            /* title token -> offset in gram_ids */
  uint32_t *gram_ids;         /* per token: count, then its n-grams' local ids */
  size_t ngram_ids, capgram_ids;
  uint64_t *ptr;              /* hi - lo + 1, relative to term */
  fm_progress *pg;            /* thread 0 only */
  fm_rc rc;
  fm_error err;
} feat_part;

static const fm_field *doc_field(const trainer *t, size_t d) {
  return d < t->refs->n ? &t->refs->v[d] : &t->qrys->v[d - t->refs->n];
}

/* The share's local id of a term (block b, token tok), inserted when new. */
static fm_rc term_id(feat_part *fp, fm_buf *key, int b, const char *tok, uint32_t *id) {
  if (fm_feat_key(key, b, tok)) return FM_ERR_NOMEM;
  int ins;
  uint32_t next = (uint32_t)fm_strmap_count(&fp->vocab[b]);
  if (fm_strmap_put(&fp->vocab[b], key->buf, key->len, next, id, &ins)) return FM_ERR_NOMEM;
  if (ins) {
    size_t cap = fp->dfcap[b];
    if (fm_grow((void **)&fp->lastdoc[b], &cap, next + 1, sizeof(uint32_t)) ||
        fm_grow((void **)&fp->df[b], &fp->dfcap[b], next + 1, sizeof(uint32_t)))
      return FM_ERR_NOMEM;
    fp->df[b][next] = 0;
    fp->lastdoc[b][next] = 0;
  }
  return FM_OK;
}

/* Record one occurrence of term id of block b in document doc. */
static void count_term(feat_part *fp, int b, uint32_t id, uint32_t doc) {
  if (fp->lastdoc[b][id] != doc) { /* first occurrence in this document */
    fp->lastdoc[b][id] = doc;
    fp->df[b][id]++;
  }
  fp->term[fp->nterm++] = (uint32_t)b << 30 | id;
}

/* The character n-grams of a title token, as local ids: looked up once per
 * distinct token and share (their vocabulary lookups were most of
 * featurization: ~40 of a field's ~56 terms), then replayed.  The first
 * time a token is seen its grams are looked up in fm_feat_grams' order,
 * exactly when the field-by-field loop would have, so ids, counts and term
 * lists are the same.  *ids points into fp->gram_ids (count first). */
static fm_rc gram_ids(feat_part *fp, fm_tokens *scratch, fm_buf *gram, fm_buf *key,
                      const char *tok, const uint32_t **ids) {
  size_t len = strlen(tok);
  uint32_t off;
  if (fm_strmap_get(&fp->grams, tok, len, &off)) {
    *ids = fp->gram_ids + off;
    return FM_OK;
  }
  fm_tokens_reset(scratch);
  if (fm_feat_grams(gram, tok, scratch)) return FM_ERR_NOMEM;
  size_t at = fp->ngram_ids;
  if (at + 1 + scratch->n > UINT32_MAX ||
      fm_grow((void **)&fp->gram_ids, &fp->capgram_ids, at + 1 + scratch->n, sizeof(uint32_t)))
    return FM_ERR_NOMEM;
  fp->gram_ids[at] = (uint32_t)scratch->n;
  for (size_t i = 0; i < scratch->n; i++)
    if (term_id(fp, key, FM_BLK_CHARS, fm_tokens_get(scratch, i), &fp->gram_ids[at + 1 + i]))
      return FM_ERR_NOMEM;
  fp->ngram_ids = at + 1 + scratch->n;
  if (fm_strmap_put(&fp->grams, tok, len, (uint32_t)at, NULL, NULL)) return FM_ERR_NOMEM;
  *ids = fp->gram_ids + at;
  return FM_OK;
}

/* Count document frequencies of a field's terms and record its list. */
static fm_rc add_doc(feat_part *fp, fm_featurizer *fz, fm_tokens toks[FM_NBLK], fm_buf *key,
                     const fm_field *f, uint32_t doc) {
  fm_rc rc = fm_feat_field(fz, f, fm_train_feat_flags(fp->t, f) | FM_FEAT_NO_CHARS, toks, &fp->err);
  if (rc) {
    fm_error_prefix(&fp->err, "%s:%u: field %s", f->source, f->line, f->id);
    return rc;
  }
  for (int b = 0; b < FM_BLK_CHARS; b++) {
    if (fm_grow((void **)&fp->term, &fp->capterm, fp->nterm + toks[b].n, sizeof *fp->term))
      return FM_ERR_NOMEM;
    for (size_t i = 0; i < toks[b].n; i++) {
      uint32_t id;
      if (term_id(fp, key, b, fm_tokens_get(&toks[b], i), &id)) return FM_ERR_NOMEM;
      count_term(fp, b, id, doc);
    }
  }
  /* chars: toks[FM_BLK_CHARS] is only scratch here */
  for (size_t i = 0; i < toks[FM_BLK_TITLE].n; i++) {
    const uint32_t *ids;
    if (gram_ids(fp, &toks[FM_BLK_CHARS], &fz->gram, key, fm_tokens_get(&toks[FM_BLK_TITLE], i),
                 &ids))
      return FM_ERR_NOMEM;
    if (fm_grow((void **)&fp->term, &fp->capterm, fp->nterm + ids[0], sizeof *fp->term))
      return FM_ERR_NOMEM;
    for (uint32_t j = 0; j < ids[0]; j++) count_term(fp, FM_BLK_CHARS, ids[1 + j], doc);
  }
  return FM_OK;
}

static void feat_part_run(void *ctx, int tid, int nt) {
  feat_part *fp = (feat_part *)ctx + tid;
  (void)nt;
  fm_featurizer fz;
  fm_tokens toks[FM_NBLK];
  for (int b = 0; b < FM_NBLK; b++) fm_tokens_init(&toks[b]);
  fm_buf key;
  fm_buf_init(&key);
  fm_rc rc = fm_feat_init(&fz, fp->ab, &fp->err);
  if (rc == FM_OK) {
    fp->ptr = fm_calloc(fp->hi - fp->lo + 1, sizeof *fp->ptr);
    if (!fp->ptr) rc = FM_ERR_NOMEM;
  }
  for (size_t d = fp->lo; d < fp->hi && rc == FM_OK; d++) {
    rc = add_doc(fp, &fz, toks, &key, doc_field(fp->t, d), (uint32_t)(d - fp->lo + 1));
    fp->ptr[d - fp->lo + 1] = fp->nterm;
    /* thread 0's share of the cost stands for all of it */
    if (fp->pg && ((d - fp->lo) & 1023) == 0)
      fm_progress_update(fp->pg, (uint64_t)((double)(d - fp->lo) * (double)fp->pg->total /
                                            (double)(fp->hi - fp->lo)));
  }
  if (rc == FM_ERR_NOMEM) fm_error_set(&fp->err, rc, "out of memory building features");
  fp->rc = rc;
  fm_buf_free(&key);
  for (int b = 0; b < FM_NBLK; b++) fm_tokens_free(&toks[b]);
  fm_feat_free(&fz);
}

static void feat_part_free(feat_part *fp) {
  fm_strmap_free(&fp->grams);
  fm_free(fp->gram_ids);
  for (int b = 0; b < FM_NBLK; b++) {
    fm_strmap_free(&fp->vocab[b]);
    fm_free(fp->df[b]);
    fm_free(fp->lastdoc[b]);
  }
  fm_free(fp->term);
  fm_free(fp->ptr);
}

/* Fold a share into the trainer's vocabulary and document frequencies and
 * turn its term lists into provisional global ids. */
static fm_rc merge_part(trainer *t, feat_part *fp) {
  uint32_t *map[FM_NBLK] = {NULL, NULL, NULL};
  fm_rc rc = FM_OK;
  for (int b = 0; b < FM_NBLK && rc == FM_OK; b++) {
    size_t n = fm_strmap_count(&fp->vocab[b]);
    map[b] = fm_malloc((n ? n : 1) * sizeof *map[b]);
    if (!map[b]) { rc = FM_ERR_NOMEM; break; }
    for (size_t i = 0; i < n; i++) {
      size_t len;
      const char *k = fm_strmap_key(&fp->vocab[b], i, &len);
      uint32_t id, next = (uint32_t)fm_strmap_count(&t->vocab[b]);
      int ins;
      if (fm_strmap_put(&t->vocab[b], k, len, next, &id, &ins)) { rc = FM_ERR_NOMEM; break; }
      if (ins) {
        if (fm_grow((void **)&t->df[b], &t->dfcap[b], next + 1, sizeof(uint32_t))) {
          rc = FM_ERR_NOMEM;
          break;
        }
        t->df[b][next] = 0;
      }
      t->df[b][id] += fp->df[b][i];
      map[b][i] = id;
    }
  }
  if (rc == FM_OK)
    for (size_t i = 0; i < fp->nterm; i++) {
      uint32_t x = fp->term[i];
      fp->term[i] = (x & ~0x3fffffffu) | map[x >> 30][x & 0x3fffffffu];
    }
  for (int b = 0; b < FM_NBLK; b++) fm_free(map[b]);
  return rc;
}

/* The estimated featurization cost of a document: its text bytes (the ICU
 * tokenizer, the abbreviation expansion and the lookups all grow with
 * them) plus a fixed cost per field worth about 16 bytes (bbg-refinitiv,
 * one thread: ~0.9 us per field + ~57 ns per byte, the same fit for the
 * short Bloomberg fields and the long-described references).  Splitting by
 * document count instead gave the first thread the references and it ran
 * ~3x longer than the second (0.19 s against 0.07 s). */
static size_t doc_cost(const fm_field *f) {
  return 16 + strlen(f->id) + strlen(f->name) + strlen(f->description);
}

/* Split documents [0, ndocs) into nt contiguous shares of about equal
 * doc_cost; share i is [lo[i], lo[i + 1]).  lo (nt + 1 entries) is the
 * caller's.  Any split gives the same output (see feat_part). */
static void split_docs(const trainer *t, size_t ndocs, int nt, size_t *lo) {
  size_t total = 0;
  for (size_t d = 0; d < ndocs; d++) total += doc_cost(doc_field(t, d));
  lo[0] = 0;
  size_t d = 0, acc = 0;
  for (int i = 1; i < nt; i++) {
    /* the first document at which the running cost reaches i/nt of it */
    size_t goal = (size_t)((double)total * i / nt);
    while (d < ndocs && acc < goal) acc += doc_cost(doc_field(t, d++));
    lo[i] = d;
  }
  lo[nt] = ndocs;
}

/* Featurize every document on t->nthreads threads: the vocabulary and its
 * document frequencies, and t->dterm/t->dptr. */
fm_rc fm_train_featurize(trainer *t, fm_error *err) {
  size_t ndocs = t->refs->n + t->qrys->n;
  int nt = t->nthreads;
  if ((size_t)nt > ndocs) nt = ndocs ? (int)ndocs : 1;
  feat_part *parts = fm_calloc((size_t)nt, sizeof *parts);
  size_t *lo = fm_malloc(((size_t)nt + 1) * sizeof *lo);
  if (!parts || !lo) {
    fm_free(parts);
    fm_free(lo);
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  split_docs(t, ndocs, nt, lo);
  fm_progress pg;
  fm_progress_start(&pg, "features", ndocs);
  if (t->quiet) pg.enabled = 0;
  for (int i = 0; i < nt; i++) {
    feat_part *fp = &parts[i];
    fp->t = t;
    fp->ab = t->m->abbrev;
    fp->lo = lo[i];
    fp->hi = lo[i + 1];
    fp->pg = i == 0 ? &pg : NULL;
    for (int b = 0; b < FM_NBLK; b++) fm_strmap_init(&fp->vocab[b]);
    fm_strmap_init(&fp->grams);
    fm_error_init(&fp->err);
  }
  fm_par_run(nt, feat_part_run, parts);
  fm_progress_finish(&pg);
  fm_rc rc = FM_OK;
  for (int i = 0; i < nt && rc == FM_OK; i++)
    if (parts[i].rc) {
      rc = parts[i].rc;
      if (err) *err = parts[i].err;
    }
  size_t total = 0;
  for (int i = 0; i < nt && rc == FM_OK; i++) {
    if (merge_part(t, &parts[i])) rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    total += parts[i].nterm;
  }
  if (rc == FM_OK) {
    t->dptr = fm_malloc((ndocs + 1) * sizeof *t->dptr);
    t->dterm = fm_malloc((total ? total : 1) * sizeof *t->dterm);
    if (!t->dptr || !t->dterm) rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  if (rc == FM_OK) {
    uint64_t off = 0;
    t->dptr[0] = 0;
    for (int i = 0; i < nt; i++) {
      feat_part *fp = &parts[i];
      if (fp->nterm) memcpy(t->dterm + off, fp->term, fp->nterm * sizeof *fp->term);
      for (size_t d = fp->lo; d < fp->hi; d++) t->dptr[d + 1] = off + fp->ptr[d - fp->lo + 1];
      off += fp->nterm;
    }
  }
  for (int i = 0; i < nt; i++) feat_part_free(&parts[i]);
  fm_free(parts);
  fm_free(lo);
  return rc;
}
