/* train.c: a training run.  Import -> abbreviations (curated + mined) ->
 * features -> vocabulary and idf -> reference matrices -> truncated SVD ->
 * category/type prior (self-trained from confident matches, plus training
 * pairs) -> an in-memory model ready to match or write. */
#include "train_internal.h"
#include "linalg_internal.h"
#include "svd.h"

#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FM_DATADIR
#define FM_DATADIR "data"
#endif

fm_rc fm_config_import(const fm_config *c, fm_fieldset *refs, fm_fieldset *queries,
                       int quiet, fm_error *err) {
  fm_fieldset_init(refs);
  fm_fieldset_init(queries);
  fm_progress pg;
  fm_progress_start(&pg, "import", c->nreference + c->nquery);
  if (quiet) pg.enabled = 0;
  fm_rc rc = FM_OK;
  for (size_t i = 0; i < c->nreference && rc == FM_OK; i++) {
    rc = fm_import_source(&c->reference[i], refs, err);
    fm_progress_update(&pg, i + 1);
  }
  for (size_t i = 0; i < c->nquery && rc == FM_OK; i++) {
    fm_fieldset one;
    fm_fieldset_init(&one);
    rc = fm_import_source(&c->query[i], &one, err);
    if (rc == FM_OK) rc = fm_fieldset_merge(queries, &one, err);
    fm_fieldset_free(&one);
    fm_progress_update(&pg, c->nreference + i + 1);
  }
  fm_progress_finish(&pg);
  if (rc == FM_OK && (refs->n == 0 || queries->n == 0))
    rc = fm_error_set(err, FM_ERR_ARG, "%s: the %s dictionaries hold no fields",
                      c->path, refs->n == 0 ? "reference" : "query");
  if (rc) {
    fm_fieldset_free(refs);
    fm_fieldset_free(queries);
  }
  return rc;
}

/* ---- strings blob with de-duplication ---------------------------------- */

fm_rc fm_train_strtab_add(strtab *st, const char *s, uint32_t *off) {
  size_t n = strlen(s);
  uint32_t v;
  if (fm_strmap_get(&st->seen, s, n, &v)) { *off = v; return FM_OK; }
  if (st->blob.len + n + 1 > UINT32_MAX) return FM_ERR_NOMEM;
  v = (uint32_t)st->blob.len;
  if (fm_buf_append(&st->blob, s, n + 1)) return FM_ERR_NOMEM;
  st->blob.len = v + n + 1; /* keep the NUL inside the blob */
  if (fm_strmap_put(&st->seen, s, n, v, NULL, NULL)) return FM_ERR_NOMEM;
  *off = v;
  return FM_OK;
}

/* The records of fs into recs, and each field's code into codes (offsets
 * into the strings table st). */
static fm_rc add_recs(strtab *st, const fm_fieldset *fs, fm_field_rec *recs, uint32_t *codes) {
  for (size_t i = 0; i < fs->n; i++) {
    const fm_field *f = &fs->v[i];
    fm_field_rec *r = &recs[i];
    const char *s[] = {f->vendor, f->id,       f->name,   f->description,
                       f->type,   f->category, f->source, f->code};
    uint32_t *o[] = {&r->vendor, &r->id,       &r->name,   &r->description,
                     &r->type,   &r->category, &r->source, &codes[i]};
    for (size_t k = 0; k < sizeof s / sizeof s[0]; k++)
      if (fm_train_strtab_add(st, s[k], o[k])) return FM_ERR_NOMEM;
    r->line = f->line;
    r->kind = FM_NO_KIND;
  }
  return FM_OK;
}

/* ---- training state ----------------------------------------------------- */
/* struct trainer: train_internal.h */

/* The featurizer flags of a field: FM_FEAT_ID_CODE when it comes from a
 * source the config marks "id_is_code" (fields keep their source's path). */
unsigned fm_train_feat_flags(const trainer *t, const fm_field *f) {
  const fm_config *c = t->c;
  for (size_t i = 0; c && i < c->nreference + c->nquery; i++) {
    const fm_source_spec *sp =
        i < c->nreference ? &c->reference[i] : &c->query[i - c->nreference];
    if (sp->id_is_code && strcmp(sp->path, f->source) == 0) return FM_FEAT_ID_CODE;
  }
  return 0;
}

/* The position prior of the references (m->ref_order, fm_candidate.s_order).
 * A source marked "order_prior" lists its core fields first: an RDM
 * dictionary is in FID order, and the low FIDs (TRDPRC_1 6, NETCHNG_1 11,
 * ACVOL_1 32) are the original, most used fields, while later ones are
 * often narrower near-duplicates (PCTCH_1D 7723).  The i-th record (1-based)
 * of such a source of n records gets 1 - log(1 + i) / log(1 + n): a large
 * step between the first few hundred, a small one among the rest.  Values
 * are centered on the source's mean, so the prior reorders fields within
 * the source without moving the source as a whole against the others;
 * references of other sources get 0.  Records are in import order, which is
 * file order.  The array is owned by the model. */
static fm_rc build_order(trainer *t, fm_error *err) {
  fm_model *m = t->m;
  const fm_config *c = t->c;
  float *ord = fm_calloc(m->nrefs ? m->nrefs : 1, sizeof *ord);
  if (fm_model_own(m, ord)) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  m->ref_order = ord;
  for (size_t s = 0; c && s < c->nreference; s++) {
    const fm_source_spec *sp = &c->reference[s];
    if (!sp->order_prior) continue;
    size_t n = 0;
    for (uint32_t r = 0; r < m->nrefs; r++) n += strcmp(t->refs->v[r].source, sp->path) == 0;
    if (n == 0) continue;
    /* the mean depends on n alone */
    double denom = log1p((double)n), sum = 0;
    for (size_t i = 1; i <= n; i++) sum += 1.0 - log1p((double)i) / denom;
    double mean = sum / (double)n;
    size_t i = 0;
    for (uint32_t r = 0; r < m->nrefs; r++)
      if (strcmp(t->refs->v[r].source, sp->path) == 0)
        ord[r] = (float)(1.0 - log1p((double)++i) / denom - mean);
  }
  return FM_OK;
}

/* English words the compound splitter would cut ("short" -> "sh" "ort"),
 * kept whole in ab: the names and descriptions of every field say which
 * words are prose (fm_abbrev_keep_words). */
static fm_rc keep_prose_words(trainer *t, fm_abbrev *ab, fm_error *err) {
  size_t n = 2 * (t->refs->n + t->qrys->n), k = 0;
  const char **texts = fm_calloc(n ? n : 1, sizeof *texts);
  if (!texts) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  const fm_fieldset *sets[2] = {t->refs, t->qrys};
  for (int s = 0; s < 2; s++)
    for (size_t i = 0; i < sets[s]->n; i++) {
      texts[k++] = sets[s]->v[i].name;
      texts[k++] = sets[s]->v[i].description;
    }
  fm_rc rc = FM_OK;
  if (fm_abbrev_keep_words(ab, texts, k, t->o.prose_min_count, NULL))
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory keeping prose words whole");
  fm_free(texts);
  return rc;
}

static fm_rc load_abbrev(trainer *t, fm_featurizer *fz, fm_abbrev *ab, fm_error *err) {
  const fm_config *c = t->c;
  fm_rc rc;
  char *path = NULL;
  if (c->abbreviations) {
    path = fm_strdup(c->abbreviations);
  } else {
    char *dir = fm_path_dirname(c->path);
    path = dir ? fm_path_join(dir, "../data/abbreviations.tsv") : NULL;
    fm_free(dir);
    if (path && access(path, R_OK) != 0) {
      fm_free(path);
      path = fm_strdup(FM_DATADIR "/abbreviations.tsv");
    }
  }
  if (!path) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  if (access(path, R_OK) == 0 || c->abbreviations) {
    rc = fm_abbrev_load_tsv(ab, fz->tk, path, err);
  } else {
    fm_warn("no curated abbreviation table found (looked for %s); using mined entries only", path);
    rc = FM_OK;
  }
  fm_free(path);
  if (rc) return rc;
  /* Mine from each dictionary's own mnemonic / long-name pairs only.  Not
   * from the training pairs: a Bloomberg mnemonic and a Refinitiv long name
   * paraphrase one another, so the aligner's letter matches between them
   * are coincidences, and a mined entry cascades into the table (gold
   * pairs mined `net` -> "netchg", which turned `neticm` into "netchg
   * income"); 5-fold CV and the leave-one-category-out split gain without
   * them (docs/scoring.md). */
  size_t n = t->refs->n + t->qrys->n;
  const char **mn = fm_calloc(n ? n : 1, sizeof *mn);
  const char **nm = fm_calloc(n ? n : 1, sizeof *nm);
  if (!mn || !nm) {
    fm_free(mn);
    fm_free(nm);
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  size_t k = 0;
  /* (an id that is a code abbreviates nothing) */
  for (size_t i = 0; i < t->refs->n; i++) {
    if (!t->refs->v[i].name[0] || fm_train_feat_flags(t, &t->refs->v[i])) continue;
    mn[k] = t->refs->v[i].id;
    nm[k++] = t->refs->v[i].name;
  }
  for (size_t i = 0; i < t->qrys->n; i++) {
    if (!t->qrys->v[i].name[0] || fm_train_feat_flags(t, &t->qrys->v[i])) continue;
    mn[k] = t->qrys->v[i].id;
    nm[k++] = t->qrys->v[i].name;
  }
  rc = fm_abbrev_mine(ab, fz->tk, mn, nm, k, t->o.mine_min_support, err);
  fm_free(mn);
  fm_free(nm);
  if (rc == FM_OK && fm_abbrev_index_words(ab))
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory indexing abbreviations");
  return rc == FM_OK ? keep_prose_words(t, ab, err) : rc;
}

/* Per-block L2-normalized sublinear tf-idf rows of documents [d0, d1), as
 * a CSR matrix (ptr has d1 - d0 + 1 entries).  The arithmetic is exactly
 * that of encode() in match.c, so a query's row here is the vector a
 * lookup of the same field computes. */
typedef struct csr_ctx {
  trainer *t;
  const uint32_t *base;
  const float *idf;
  size_t d0, d1;
  uint64_t *ptr;
  uint32_t *col;
  float *val;
  int pass;
} csr_ctx;

/* Thread i's rows are of about equal work (fm_split_rows over the term
 * occurrences): sorting and weighting grow with the occurrences, and a
 * reference with a long description has ten times the terms of a
 * Bloomberg field. */
static void csr_part(void *p, int tid, int nt) {
  csr_ctx *c = p;
  trainer *t = c->t;
  const fm_model *m = t->m;
  size_t n = c->d1 - c->d0, r0 = fm_split_rows(t->dptr + c->d0, n, tid, nt),
         r1 = fm_split_rows(t->dptr + c->d0, n, tid + 1, nt);
  for (size_t r = r0; r < r1; r++) {
    uint32_t *ids = t->dterm + t->dptr[c->d0 + r];
    size_t len = (size_t)(t->dptr[c->d0 + r + 1] - t->dptr[c->d0 + r]);
    if (c->pass == 0) {
      /* final ids, sorted; the row length is the number of distinct ids */
      for (size_t i = 0; i < len; i++) ids[i] = c->base[ids[i] >> 30] + (ids[i] & 0x3fffffffu);
      fm_sort_u32(ids, len);
      uint64_t d = 0;
      for (size_t i = 0; i < len; i++) d += i == 0 || ids[i] != ids[i - 1];
      c->ptr[r + 1] = d;
      continue;
    }
    uint64_t start = c->ptr[r], nnz = start;
    double norm[FM_NBLK] = {0, 0, 0};
    for (size_t i = 0; i < len;) {
      size_t j = i;
      while (j < len && ids[j] == ids[i]) j++;
      /* log(1) is exactly 0: a term seen once (most) skips the call */
      float v = j - i == 1 ? (float)(1.0 * c->idf[ids[i]])
                           : (float)((1.0 + log((double)(j - i))) * c->idf[ids[i]]);
      c->col[nnz] = ids[i];
      c->val[nnz++] = v;
      norm[fm_term_block(m, ids[i])] += (double)v * v;
      i = j;
    }
    for (uint64_t q = start; q < nnz; q++) {
      double nb = norm[fm_term_block(m, c->col[q])];
      c->val[q] = nb > 0 ? (float)(c->val[q] / sqrt(nb)) : 0.0f;
    }
  }
}

static fm_rc doc_csr(trainer *t, const uint32_t base[FM_NBLK], const float *idf, size_t d0,
                     size_t d1, const uint64_t **ptr_out, const uint32_t **col_out,
                     const float **val_out, fm_error *err) {
  fm_model *m = t->m;
  size_t n = d1 - d0;
  uint64_t *ptr = fm_calloc(n + 1, sizeof *ptr);
  if (fm_model_own(m, ptr)) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  csr_ctx c = {t, base, idf, d0, d1, ptr, NULL, NULL, 0};
  int nt = n < 4096 ? 1 : t->nthreads;
  fm_par_run(nt, csr_part, &c);
  for (size_t r = 0; r < n; r++) ptr[r + 1] += ptr[r];
  uint64_t nnz = ptr[n];
  c.col = fm_malloc((nnz ? nnz : 1) * sizeof *c.col);
  c.val = fm_malloc((nnz ? nnz : 1) * sizeof *c.val);
  if (fm_model_own_n(m, 2, (void *[]){c.col, c.val}))
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  c.pass = 1;
  fm_par_run(nt, csr_part, &c);
  *ptr_out = ptr;
  *col_out = c.col;
  *val_out = c.val;
  return FM_OK;
}

static fm_rc build_vocab_and_matrices(trainer *t, fm_error *err) {
  fm_model *m = t->m;
  fm_rc rc = FM_OK;
  size_t nref = t->refs->n, nq = t->qrys->n;
  if ((rc = fm_train_featurize(t, err))) return rc;
  /* final numbering: block by block */
  uint32_t base[FM_NBLK], nterms = 0;
  for (int b = 0; b < FM_NBLK; b++) {
    base[b] = nterms;
    m->nblk[b] = (uint32_t)fm_strmap_count(&t->vocab[b]);
    nterms += m->nblk[b];
  }
  m->nterms = nterms;
  uint32_t *term_off = fm_calloc(nterms ? nterms : 1, sizeof *term_off);
  float *idf = fm_calloc(nterms ? nterms : 1, sizeof *idf);
  if (fm_model_own_n(m, 2, (void *[]){term_off, idf}))
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  double N = (double)(nref + nq);
  for (int b = 0; b < FM_NBLK; b++)
    for (uint32_t i = 0; i < m->nblk[b]; i++) {
      size_t len;
      const char *k = fm_strmap_key(&t->vocab[b], i, &len);
      if (fm_train_strtab_add(&t->st, k, &term_off[base[b] + i]))
        return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      idf[base[b] + i] = (float)(log((1.0 + N) / (1.0 + t->df[b][i])) + 1.0);
    }
  m->term_off = term_off;
  m->idf = idf;
  /* reference CSR and query CSR: per-block L2-normalized sublinear tf-idf */
  if ((rc = doc_csr(t, base, idf, 0, nref, &m->csr_ptr, &m->csr_col, &m->csr_val, err)) ||
      (rc = doc_csr(t, base, idf, nref, nref + nq, &m->qcsr_ptr, &m->qcsr_col, &m->qcsr_val,
                    err)))
    return rc;
  const uint64_t *csr_ptr = m->csr_ptr;
  const uint32_t *csr_col = m->csr_col;
  const float *csr_val = m->csr_val;
  uint64_t nnz = csr_ptr[nref];
  /* inverted index (CSC), values weighted by block */
  uint64_t *inv_ptr = fm_calloc((size_t)nterms + 1, sizeof *inv_ptr);
  uint32_t *inv_ref = fm_malloc((nnz ? nnz : 1) * sizeof *inv_ref);
  float *inv_val = fm_malloc((nnz ? nnz : 1) * sizeof *inv_val);
  if (fm_model_own_n(m, 3, (void *[]){inv_ptr, inv_ref, inv_val}))
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  const float wb[FM_NBLK] = {t->o.w.title, t->o.w.full, t->o.w.chars};
  for (uint64_t p = 0; p < nnz; p++) inv_ptr[csr_col[p] + 1]++;
  for (uint32_t i = 0; i < nterms; i++) inv_ptr[i + 1] += inv_ptr[i];
  uint64_t *fill = fm_malloc(((size_t)nterms + 1) * sizeof *fill);
  if (!fill) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  memcpy(fill, inv_ptr, ((size_t)nterms + 1) * sizeof *fill);
  for (uint32_t r = 0; r < nref; r++)
    for (uint64_t p = csr_ptr[r]; p < csr_ptr[r + 1]; p++) {
      uint64_t q = fill[csr_col[p]]++;
      inv_ref[q] = r;
      inv_val[q] = csr_val[p] * wb[fm_term_block(m, csr_col[p])];
    }
  fm_free(fill);
  m->inv_ptr = inv_ptr;
  m->inv_ref = inv_ref;
  m->inv_val = inv_val;
  return FM_OK;
}

/* The per-document term lists and the vocabulary maps, once the matrices
 * are built (the term strings live on in the strings table).  Freed early so
 * the SVD's work matrices reuse their pages: a page touched for the first
 * time is a fault, slow in a VM, and those matrices are the next big
 * allocations.  fm_train's final cleanup then finds them empty. */
static void release_doc_terms(trainer *t) {
  for (int b = 0; b < FM_NBLK; b++) {
    fm_strmap_free(&t->vocab[b]);
    fm_free(t->df[b]);
    t->df[b] = NULL;
    t->dfcap[b] = 0;
  }
  fm_free(t->dterm);
  fm_free(t->dptr);
  t->dterm = NULL;
  t->dptr = NULL;
}

/* LSA: truncated SVD of the weighted word blocks of the reference matrix;
 * reference embeddings are the unit rows of R V. */
static fm_rc build_lsa(trainer *t, fm_error *err) {
  fm_model *m = t->m;
  uint32_t nword = m->nblk[0] + m->nblk[1];
  int k = t->o.dims;
  uint32_t lim = m->nrefs < nword ? m->nrefs : nword;
  if (lim <= 1) k = 0;
  else if ((uint32_t)k >= lim) k = (int)lim - 1;
  m->k = k;
  float *V = fm_calloc((size_t)nword * (k ? k : 1), sizeof *V);
  float *E = fm_calloc((size_t)m->nrefs * (k ? k : 1), sizeof *E);
  uint32_t *row = fm_malloc((nword ? nword : 1) * sizeof *row);
  if (fm_model_own_n(m, 3, (void *[]){V, E, row}))
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  for (uint32_t c = 0; c < nword; c++) row[c] = FM_NO_ROW;
  m->lsa_v = V;
  m->ref_emb = E;
  m->lsa_row = row;
  m->nlsa = 0;
  if (k == 0) return FM_OK;
  fm_csr R = {0};
  R.nrows = m->nrefs;
  R.ncols = nword;
  R.rowptr = fm_calloc((size_t)m->nrefs + 1, sizeof *R.rowptr);
  uint64_t nnz = m->csr_ptr[m->nrefs];
  R.col = fm_malloc((nnz ? nnz : 1) * sizeof *R.col);
  R.val = fm_malloc((nnz ? nnz : 1) * sizeof *R.val);
  float *S = fm_calloc((size_t)k, sizeof *S);
  fm_rc rc = FM_OK;
  if (!R.rowptr || !R.col || !R.val || !S) {
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    goto done;
  }
  const float wb[2] = {t->o.w.title, t->o.w.full};
  uint64_t q = 0;
  for (uint32_t r = 0; r < m->nrefs; r++) {
    for (uint64_t p = m->csr_ptr[r]; p < m->csr_ptr[r + 1]; p++) {
      uint32_t c = m->csr_col[p];
      if (c >= nword) continue;
      R.col[q] = c;
      R.val[q++] = m->csr_val[p] * wb[fm_term_block(m, c)];
    }
    R.rowptr[r + 1] = q;
  }
  fm_svd_opts so = {.k = k, .oversample = t->o.oversample,
                    .power_iters = t->o.power_iters, .seed = t->o.seed};
  if ((rc = fm_svd_randomized(&R, &so, NULL, S, V, err))) goto done;
  fm_csr_mul_dense(&R, V, k, E);
  /* Keep the rows of V that some reference's word reaches, in term order.
   * A word no reference carries (40% of the words of the real
   * dictionaries: Bloomberg's own) is an all-zero column of R, so its row
   * of V is zero and adds nothing to a query's embedding; the matcher
   * skips it instead of reading 4k bytes of zeros. */
  for (uint64_t p = 0; p < q; p++) row[R.col[p]] = 0;
  uint32_t n = 0;
  for (uint32_t c = 0; c < nword; c++) {
    if (row[c] == FM_NO_ROW) continue;
    if (n != c) memmove(V + (size_t)n * k, V + (size_t)c * k, (size_t)k * sizeof *V);
    row[c] = n++;
  }
  m->nlsa = n;
  for (uint32_t r = 0; r < m->nrefs; r++) {
    float *e = E + (size_t)r * k;
    double s = 0;
    for (int j = 0; j < k; j++) s += (double)e[j] * e[j];
    if (s > 0) {
      float inv = (float)(1.0 / sqrt(s));
      for (int j = 0; j < k; j++) e[j] *= inv;
    }
  }
done:
  fm_free(R.rowptr);
  fm_free(R.col);
  fm_free(R.val);
  fm_free(S);
  return rc;
}

/* The double with the fewest significant digits that reads back as f: the
 * float weight 0.1f is 0.100000001490116..., which the metadata (shown by
 * `fieldmatch info` and the HTTP model info) would print in full; 0.1 reads
 * back as the same float when the model is opened. */
static double short_double(float f) {
  char b[32];
  for (int p = 1; p < 9; p++) {
    snprintf(b, sizeof b, "%.*g", p, (double)f);
    double d = strtod(b, NULL);
    if ((float)d == f) return d;
  }
  return (double)f;
}

static fm_rc build_meta(trainer *t, fm_error *err) {
  fm_model *m = t->m;
  const fm_model_opts *o = &t->o;
  json_t *root = json_object();
  json_t *w = json_object();
  for (size_t i = 0; i < FM_NWEIGHTS; i++)
    json_object_set_new(w, fm_weight_fields[i].name,
                        json_real(short_double(fm_weight_get(&o->w, i))));
  json_t *files = json_array();
  /* each path less the folder all of them share (a lone file: its name),
   * so the same inputs give the same bytes from any cwd and two files of
   * one name in different folders stay apart ("round2/x.tsv") */
  size_t nf = t->c ? t->c->ntrain_pairs : 0;
  const char *p0 = nf ? t->c->train_pairs[0] : "", *slash = strrchr(p0, '/');
  size_t cut = slash ? (size_t)(slash - p0) + 1 : 0;
  for (size_t i = 1, j; i < nf; cut = j, i++) {
    for (j = 0; j < cut && t->c->train_pairs[i][j] == p0[j]; j++) {}
    while (j > 0 && p0[j - 1] != '/') j--; /* back to a whole folder */
  }
  for (size_t i = 0; i < nf; i++)
    json_array_append_new(files, json_string(t->c->train_pairs[i] + cut));
  json_object_set_new(root, "name", json_string(m->name));
  json_object_set_new(root, "format_version", json_integer(FM_MODEL_FORMAT_VERSION));
  json_object_set_new(root, "dims", json_integer(m->k));
  json_object_set_new(root, "seed", json_integer((json_int_t)o->seed));
  json_object_set_new(root, "power_iters", json_integer(o->power_iters));
  json_object_set_new(root, "oversample", json_integer(o->oversample));
  json_object_set_new(root, "candidates", json_integer(o->candidates));
  json_object_set_new(root, "mine_min_support", json_integer(o->mine_min_support));
  json_object_set_new(root, "prose_min_count", json_integer(o->prose_min_count));
  json_object_set_new(root, "weights", w);
  json_object_set_new(root, "train_pairs_files", files);
  json_object_set_new(root, "train_pairs", json_integer((json_int_t)t->pairs.n));
  /* 9 significant digits: every weight (a short_double) prints in its
   * shortest form, and still reads back as the same float */
  char *s = json_dumps(root, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(9));
  json_decref(root);
  if (!s) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  m->meta_json = fm_strdup(s);
  free(s);
  return m->meta_json ? FM_OK : fm_error_set(err, FM_ERR_NOMEM, "out of memory");
}

static fm_rc build_blobs(trainer *t, fm_error *err) {
  fm_model *m = t->m;
  fm_buf b;
  fm_buf_init(&b);
  size_t n = fm_abbrev_count(m->abbrev);
  for (size_t i = 0; i < n; i++) {
    const char *a, *e;
    uint32_t s;
    fm_abbrev_entry(m->abbrev, i, &a, &e, &s);
    if (fm_buf_printf(&b, "%s\t%s\t%u\n", a, e, s)) goto nomem;
  }
  if (b.buf && fm_model_own(m, b.buf)) { fm_buf_init(&b); goto nomem; }
  m->abbrev_tsv = b.buf;
  m->abbrev_len = b.len;
  fm_buf_init(&b);
  for (size_t i = 0; i < t->pairs.n; i++)
    if (fm_buf_printf(&b, "%s\t%s\n", t->pairs.v[i].query, t->pairs.v[i].ref)) goto nomem;
  if (b.buf && fm_model_own(m, b.buf)) { fm_buf_init(&b); goto nomem; }
  m->pairs_tsv = b.buf;
  m->pairs_len = b.len;
  return FM_OK;
nomem:
  fm_buf_free(&b);
  return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
}

/* The run's training pairs into t->pairs (t's): the caller's override,
 * copied into t's arena, or the config's train_pairs files. */
static fm_rc load_pairs(trainer *t, const fm_train_input *in, fm_error *err) {
  fm_rc rc = FM_OK;
  if (in->use_pairs_override) {
    for (size_t i = 0; in->pairs_override && i < in->pairs_override->n; i++) {
      fm_pair p = in->pairs_override->v[i];
      if (fm_grow((void **)&t->pairs.v, &t->pairs.cap, t->pairs.n + 1, sizeof p)) {
        rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
        return rc;
      }
      p.query = fm_arena_strdup(&t->pairs.arena, p.query);
      p.ref = fm_arena_strdup(&t->pairs.arena, p.ref);
      if (!p.query || !p.ref) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); return rc; }
      t->pairs.v[t->pairs.n++] = p;
    }
  } else {
    for (size_t i = 0; i < t->c->ntrain_pairs; i++)
      if ((rc = fm_pairs_load(t->c->train_pairs[i], &t->pairs, err))) return rc;
  }
  return rc;
}

/* Freeze the strings blob: everything that references it is built; the
 * model takes it over (t->st.blob is left empty). */
static fm_rc freeze_strings(trainer *t, fm_error *err) {
  fm_rc rc = FM_OK;
  char *blob = t->st.blob.buf;
  if (!blob && fm_buf_append(&t->st.blob, "", 1)) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); return rc; }
  blob = t->st.blob.buf;
  if (fm_model_own(t->m, blob)) { fm_buf_init(&t->st.blob); rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); return rc; }
  t->m->strings = blob;
  t->m->strings_len = t->st.blob.len;
  fm_buf_init(&t->st.blob);
  return rc;
}

fm_rc fm_train(const fm_train_input *in, fm_model **out, fm_error *err) {
  *out = NULL;
  trainer t;
  memset(&t, 0, sizeof t);
  t.c = in->config;
  t.o = in->config->opts;
  t.quiet = in->quiet;
  t.nthreads = t.o.threads > 0 ? (t.o.threads < 64 ? t.o.threads : 64) : fm_linalg_threads();
  fm_pairs_init(&t.pairs);

  fm_buf_init(&t.st.blob);
  fm_strmap_init(&t.st.seen);
  for (int b = 0; b < FM_NBLK; b++) fm_strmap_init(&t.vocab[b]);
  fm_fieldset own_refs, own_qrys;
  fm_fieldset_init(&own_refs);
  fm_fieldset_init(&own_qrys);
  fm_strmap rk;
  fm_strmap_init(&rk);
  fm_featurizer fz = {0};
  fm_model_wjob *wj = NULL;
  fm_rc rc = FM_OK;
  fm_model *m = t.m = fm_model_alloc();
  if (!m) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); goto done; }
  m->opts = t.o;
  m->name = fm_strdup(t.c->name ? t.c->name : "model");
  if (!m->name) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); goto done; }
  double ti = fm_now();
  if (in->refs && in->queries) {
    t.refs = in->refs;
    t.qrys = in->queries;
  } else {
    fm_fieldset_free(&own_refs);
    fm_fieldset_free(&own_qrys);
    if ((rc = fm_config_import(t.c, &own_refs, &own_qrys, in->quiet, err))) goto done;
    t.refs = &own_refs;
    t.qrys = &own_qrys;
  }
  if (t.refs->n >= UINT32_MAX / 2 || t.qrys->n >= UINT32_MAX / 2) {
    rc = fm_error_set(err, FM_ERR_ARG, "too many fields");
    goto done;
  }
  if ((rc = load_pairs(&t, in, err))) goto done;
  double t0 = fm_now();
  /* abbreviations */
  if (fm_abbrev_new(&m->abbrev)) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); goto done; }
  if ((rc = fm_feat_init(&fz, m->abbrev, err))) goto done;
  if ((rc = load_abbrev(&t, &fz, m->abbrev, err))) goto done;
  fm_feat_free(&fz);
  double ta = fm_now();
  /* fields */
  m->nrefs = (uint32_t)t.refs->n;
  m->nqrys = (uint32_t)t.qrys->n;
  fm_field_rec *rrecs = fm_calloc(m->nrefs, sizeof *rrecs);
  fm_field_rec *qrecs = fm_calloc(m->nqrys, sizeof *qrecs);
  /* + 1: never a zero-size request (calloc may return NULL for it) */
  uint32_t *codes = fm_calloc((size_t)m->nrefs + m->nqrys + 1, sizeof *codes);
  if (fm_model_own_n(m, 3, (void *[]){rrecs, qrecs, codes})) {
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    goto done;
  }
  if (add_recs(&t.st, t.refs, rrecs, codes) || add_recs(&t.st, t.qrys, qrecs, codes + m->nrefs)) {
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    goto done;
  }
  m->refs = rrecs;
  m->qrys = qrecs;
  m->codes = codes;
  if ((rc = build_order(&t, err))) goto done;
  if ((rc = build_vocab_and_matrices(&t, err))) goto done;
  release_doc_terms(&t);
  double t1 = fm_now();
  if ((rc = build_lsa(&t, err))) goto done;
  double t2 = fm_now();
  if ((rc = fm_train_assign_kinds(&t, qrecs, rrecs, &rk, err))) goto done;
  if ((rc = build_blobs(&t, err))) goto done;
  if ((rc = freeze_strings(&t, err))) goto done;
  /* qkind_map was filled by assign_kinds; index the rest */
  fm_strmap_free(&m->qkind_map);
  fm_strmap_init(&m->qkind_map);
  if ((rc = fm_model_index(m, err))) goto done;
  /* the metadata does not depend on the prior: with it, every section but
   * the prior is final, so the file can be written while the prior is
   * computed */
  if ((rc = build_meta(&t, err))) goto done;
  if (in->output && (rc = fm_model_write_begin(m, in->output, &wj, err))) goto done;
  double t3 = fm_now();
  if ((rc = fm_train_build_prior(&t, err))) goto done;
  /* the training pairs' learning layer, on the finished ranking, before the
   * calibrator that reads its scores (docs/scoring.md) */
  if ((rc = fm_model_pairs_layer(m, err))) goto done;
  /* confidence: fitted on the finished model (and, for the training pairs,
   * on models trained without them: calib_fit.c) */
  if (!in->no_calibrate && (rc = fm_calib_train(m, in, &t.pairs, t.refs, t.qrys, err)))
    goto done;
  double t4 = fm_now();
  if (wj) {
    rc = fm_model_write_end(wj, err);
    wj = NULL;
    if (rc) goto done;
  }
  if (!in->quiet && getenv("FM_TIMING"))
    fprintf(stderr,
            "train: import %.3fs, abbreviations %.3fs, features %.3fs, svd %.3fs, "
            "kinds+index %.3fs, prior+calibration %.3fs, write %.3fs\n",
            t0 - ti, ta - t0, t1 - ta, t2 - t1, t3 - t2, t4 - t3, fm_now() - t4);
done:
  fm_model_write_cancel(wj); /* a write begun, when a later step failed */
  fm_feat_free(&fz);
  fm_strmap_free(&rk);
  fm_buf_free(&t.st.blob);
  fm_strmap_free(&t.st.seen);
  release_doc_terms(&t);
  fm_pairs_free(&t.pairs);
  fm_fieldset_free(&own_refs);
  fm_fieldset_free(&own_qrys);
  if (rc) fm_model_close(m);
  else *out = m;
  return rc;
}
