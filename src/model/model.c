#define _GNU_SOURCE
/* model.c: the model object, its runtime indexes, and the .fmm file
 * (serialization to named sections of the mfile container, and loading
 * with full structural validation on top of the container's checksums). */
#include "model_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

fm_model *fm_model_alloc(void) {
  fm_model *m = fm_calloc(1, sizeof *m);
  if (!m) return NULL;
  fm_strmap_init(&m->term_map);
  fm_strmap_init(&m->qid_map);
  fm_strmap_init(&m->rid_map);
  fm_strmap_init(&m->qkind_map);
  fm_calib_fallback(&m->calib);
  return m;
}

fm_rc fm_model_own(fm_model *m, void *p) {
  if (!p) return FM_ERR_NOMEM;
  if (fm_grow((void **)&m->owned, &m->capowned, m->nowned + 1, sizeof *m->owned)) {
    fm_free(p);
    return FM_ERR_NOMEM;
  }
  m->owned[m->nowned++] = p;
  return FM_OK;
}

fm_rc fm_model_own_n(fm_model *m, size_t n, void *const *ps) {
  fm_rc rc = FM_OK;
  for (size_t i = 0; i < n; i++)
    if (fm_model_own(m, ps[i])) rc = FM_ERR_NOMEM;
  return rc;
}

void fm_model_close(fm_model *m) {
  if (!m) return;
  for (size_t i = 0; i < m->nowned; i++) fm_free(m->owned[i]);
  fm_free(m->owned);
  fm_free(m->meta_json);
  fm_free(m->name);
  fm_strmap_free(&m->term_map);
  fm_strmap_free(&m->qid_map);
  fm_strmap_free(&m->rid_map);
  fm_strmap_free(&m->qkind_map);
  fm_abbrev_free(m->abbrev);
  fm_learn_free(m->pairs_layer); /* before the sections it reads */
  if (m->mf) fm_mfile_close(m->mf);
  fm_free(m);
}

void fm_rec_to_field(const fm_model *m, const fm_field_rec *r, fm_field *f) {
  f->vendor = fm_str(m, r->vendor);
  f->id = fm_str(m, r->id);
  f->name = fm_str(m, r->name);
  f->description = fm_str(m, r->description);
  f->type = fm_str(m, r->type);
  f->category = fm_str(m, r->category);
  f->source = fm_str(m, r->source);
  f->line = r->line;
  /* r is a row of m->refs or of m->qrys (two arrays: compared as
   * addresses); codes holds the refs first */
  uintptr_t a = (uintptr_t)r, r0 = (uintptr_t)m->refs;
  size_t at = a >= r0 && a < r0 + (uintptr_t)m->nrefs * sizeof *r
                  ? (size_t)((a - r0) / sizeof *r)
                  : m->nrefs + (size_t)((a - (uintptr_t)m->qrys) / sizeof *r);
  f->code = fm_str(m, m->codes[at]);
}

void fm_model_set_candidates(fm_model *m, int n) {
  if (n > 0) m->opts.candidates = n;
}

size_t fm_model_nrefs(const fm_model *m) { return m->nrefs; }
size_t fm_model_nqueries(const fm_model *m) { return m->nqrys; }
void fm_model_ref(const fm_model *m, size_t i, fm_field *out) {
  fm_rec_to_field(m, &m->refs[i], out);
}
void fm_model_query(const fm_model *m, size_t i, fm_field *out) {
  fm_rec_to_field(m, &m->qrys[i], out);
}

long fm_model_find_query(const fm_model *m, const char *id) {
  uint32_t v;
  return fm_strmap_get(&m->qid_map, id, strlen(id), &v) ? (long)v : -1;
}
long fm_model_find_ref(const fm_model *m, const char *id) {
  uint32_t v;
  return fm_strmap_get(&m->rid_map, id, strlen(id), &v) ? (long)v : -1;
}

/* Build the lookup maps and the abbreviation table from the arrays.  Ids
 * that occur twice map to their first field. */
unsigned fm_id_number(const char *id, size_t *base_len) {
  size_t n = strlen(id), d = n;
  while (d > 0 && id[d - 1] >= '0' && id[d - 1] <= '9') d--;
  if (d == n || d == 0 || n - d > 4) return 0;
  unsigned v = 0;
  for (size_t i = d; i < n; i++) v = v * 10 + (unsigned)(id[i] - '0');
  if (id[d - 1] == '_') d--;
  if (d == 0) return 0;
  if (base_len) *base_len = d;
  return v;
}

/* ref_variant: a reference "BASE_N" or "BASEN" with N >= 2 is a numbered
 * copy when BASE, BASE1 or BASE_1 is a reference too: RDM's history and
 * ripple copies (TRDPRC_2.. of TRDPRC_1, NETCHNG_2 of NETCHNG_1, EPS_2 of
 * EPS_1), which a query without a number of its own rarely means. */
static fm_rc index_variants(fm_model *m, fm_error *err) {
  uint8_t *v = fm_calloc(m->nrefs ? m->nrefs : 1, 1);
  char buf[256];
  if (fm_model_own(m, v)) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  for (uint32_t r = 0; r < m->nrefs; r++) {
    const char *id = fm_str(m, m->refs[r].id);
    size_t bl;
    if (fm_id_number(id, &bl) < 2 || bl + 3 > sizeof buf) continue;
    static const char *const sfx[] = {"", "1", "_1"};
    for (size_t i = 0; i < 3 && !v[r]; i++) {
      size_t sl = strlen(sfx[i]);
      memcpy(buf, id, bl);
      memcpy(buf + bl, sfx[i], sl);
      v[r] = fm_strmap_get(&m->rid_map, buf, bl + sl, NULL) != 0;
    }
  }
  m->ref_variant = v;
  return FM_OK;
}

/* Words that name a residual line item ("Other Financing Cash Flow",
 * "Misc. Income", "Miscellaneous Expense"), as the text pipeline leaves
 * them: what is left after the items a statement names, so never the same
 * quantity as the item without the word ("Cash From Financing
 * Activities").  docs/scoring.md. */
static const char *const qual_words[] = {"other", "misc", "miscellaneous"};
_Static_assert(sizeof qual_words / sizeof *qual_words == FM_NQUAL_WORDS, "FM_NQUAL_WORDS");

unsigned fm_type_qual(const char *type) {
  if (!type || !*type) return 0;
  for (const char *p = type; *p; p++)
    if (!strncasecmp(p, "date", 4) || !strncasecmp(p, "time", 4))
      return FM_QUAL_TYPED | FM_QUAL_TIME;
  return FM_QUAL_TYPED;
}

/* qual_term and ref_qual: the title-block ids of qual_words, and the
 * FM_QUAL_* bits of each reference.  A reference's row is sorted by term
 * id and the title block is ids 0..nblk[0]-1, so only the row's leading
 * run is read. */
static fm_rc index_qualifiers(fm_model *m, fm_error *err) {
  uint8_t *v = fm_calloc(m->nrefs ? m->nrefs : 1, 1);
  if (fm_model_own(m, v)) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  fm_buf key;
  fm_buf_init(&key);
  for (int i = 0; i < FM_NQUAL_WORDS; i++) {
    uint32_t t;
    if (fm_feat_key(&key, FM_BLK_TITLE, qual_words[i])) {
      fm_buf_free(&key);
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    }
    m->qual_term[i] = fm_strmap_get(&m->term_map, key.buf, key.len, &t) ? t : UINT32_MAX;
  }
  fm_buf_free(&key);
  for (uint32_t r = 0; r < m->nrefs; r++) {
    v[r] = (uint8_t)fm_type_qual(fm_str(m, m->refs[r].type));
    for (uint64_t p = m->csr_ptr[r]; p < m->csr_ptr[r + 1] && m->csr_col[p] < m->nblk[0]; p++)
      v[r] |= (uint8_t)fm_qual_term(m, m->csr_col[p]);
  }
  m->ref_qual = v;
  return FM_OK;
}

fm_rc fm_model_index(fm_model *m, fm_error *err) {
  /* lets the matcher drop its mark array (positive_products in match.c) */
  m->inv_min_ok = 1;
  for (uint64_t p = 0, nnz = m->inv_ptr ? m->inv_ptr[m->nterms] : 0; p < nnz; p++)
    if (!(m->inv_val[p] >= 0x1p-64f && m->inv_val[p] <= 0x1p64f)) {
      m->inv_min_ok = 0;
      break;
    }
  for (uint32_t t = 0; t < m->nterms; t++) {
    const char *s = fm_str(m, m->term_off[t]);
    if (fm_strmap_put(&m->term_map, s, strlen(s), t, NULL, NULL))
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory indexing terms");
  }
  for (uint32_t i = 0; i < m->nqrys; i++) {
    const char *s = fm_str(m, m->qrys[i].id);
    if (fm_strmap_put(&m->qid_map, s, strlen(s), i, NULL, NULL))
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory indexing queries");
  }
  for (uint32_t i = 0; i < m->nrefs; i++) {
    const char *s = fm_str(m, m->refs[i].id);
    if (fm_strmap_put(&m->rid_map, s, strlen(s), i, NULL, NULL))
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory indexing references");
  }
  fm_rc rc = index_variants(m, err);
  if (rc || (rc = index_qualifiers(m, err))) return rc;
  for (uint32_t i = 0; i < m->nqk; i++) {
    const char *s = fm_str(m, m->qkind_off[i]);
    if (fm_strmap_put(&m->qkind_map, s, strlen(s), i, NULL, NULL))
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory indexing kinds");
  }
  if (!m->abbrev) {
    if (fm_abbrev_new(&m->abbrev)) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    /* abbrev_tsv: abbr \t expansion \t support \n */
    const char *p = m->abbrev_tsv, *end = p ? p + m->abbrev_len : p;
    char abbr[256], exp[1024], num[16];
    while (p && p < end) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      if (!nl) nl = end;
      const char *t1 = memchr(p, '\t', (size_t)(nl - p));
      const char *t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(nl - t1 - 1)) : NULL;
      if (!t1 || !t2 || (size_t)(t1 - p) >= sizeof abbr ||
          (size_t)(t2 - t1 - 1) >= sizeof exp || (size_t)(nl - t2 - 1) >= sizeof num)
        return fm_error_set(err, FM_ERR_CORRUPT,
                            "%s: section 'abbrev': model abbreviation table is malformed",
                            m->mf ? fm_mfile_path(m->mf) : "model");
      memcpy(abbr, p, (size_t)(t1 - p));
      abbr[t1 - p] = '\0';
      memcpy(exp, t1 + 1, (size_t)(t2 - t1 - 1));
      exp[t2 - t1 - 1] = '\0';
      /* the support, copied out first: strtoul on the mapping would read
       * on past a last line without its newline, beyond the section */
      memcpy(num, t2 + 1, (size_t)(nl - t2 - 1));
      num[nl - t2 - 1] = '\0';
      /* FM_ERR_ARG: an empty abbreviation or expansion (or one that starts
       * with a NUL byte), which no writer puts there */
      fm_rc arc = fm_abbrev_add(m->abbrev, abbr, exp, (uint32_t)strtoul(num, NULL, 10));
      if (arc == FM_ERR_ARG)
        return fm_error_set(err, FM_ERR_CORRUPT,
                            "%s: section 'abbrev': empty abbreviation or expansion",
                            m->mf ? fm_mfile_path(m->mf) : "model");
      if (arc) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      p = nl + 1;
    }
    if (fm_abbrev_index_words(m->abbrev))
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory indexing abbreviations");
  }
  return FM_OK;
}

void fm_model_info_get(const fm_model *m, fm_model_info *info) {
  memset(info, 0, sizeof *info);
  info->name = m->name;
  info->format_version = m->mf ? fm_mfile_version(m->mf) : FM_MODEL_FORMAT_VERSION;
  info->checksum = m->checksum;
  info->nrefs = m->nrefs;
  info->nqueries = m->nqrys;
  info->nterms = m->nterms;
  info->nabbrev = m->abbrev ? fm_abbrev_count(m->abbrev) : 0;
  info->dims = m->k;
  info->config_json = m->meta_json;
  size_t np = 0;
  for (uint64_t i = 0; i < m->pairs_len; i++) np += m->pairs_tsv[i] == '\n';
  info->ntrain_pairs = np;
  fm_learn_info li;
  fm_learn_info_get(m->pairs_layer, &li);
  info->pairs_layer_queries = li.queries;
}

size_t fm_model_train_overlap(const fm_model *m, const fm_pairs *gold) {
  size_t n = 0;
  fm_buf key;
  fm_buf_init(&key);
  for (size_t i = 0; i < gold->n; i++) {
    fm_buf_reset(&key);
    if (fm_buf_printf(&key, "%s\t%s\n", gold->v[i].query, gold->v[i].ref)) break;
    /* pairs_tsv lines are "q\tr\n"; look for a whole-line match */
    const char *p = m->pairs_tsv, *end = p ? p + m->pairs_len : p;
    while (p && p < end) {
      const char *hit = memmem(p, (size_t)(end - p), key.buf, key.len);
      if (!hit) break;
      if (hit == m->pairs_tsv || hit[-1] == '\n') { n++; break; }
      p = hit + 1;
    }
  }
  fm_buf_free(&key);
  return n;
}

/* ---- file --------------------------------------------------------------- */

#define SEC(tag, ptr, count) {tag, (const void *)(ptr), (uint64_t)(count) * sizeof *(ptr)}

struct fm_model_wjob {
  const fm_model *m;
  fm_mfile_writer *w;
  uint32_t dims[12]; /* the "dims" section, borrowed by w */
};

void fm_model_write_cancel(fm_model_wjob *j) {
  if (!j) return;
  fm_mfile_writer_free(j->w); /* cancels a write in progress */
  fm_free(j);
}

/* The sections of m, in file order, into a new job; the prior as a later
 * section when later_prior. */
static fm_rc model_sections(const fm_model *m, int later_prior, fm_model_wjob **out,
                            fm_error *err) {
  fm_model_wjob *j = *out = fm_calloc(1, sizeof *j);
  if (!j || fm_mfile_writer_new(&j->w)) {
    fm_free(j);
    *out = NULL;
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  j->m = m;
  uint32_t dims[12] = {m->nrefs, m->nqrys, m->nterms, m->nblk[0], m->nblk[1],
                       m->nblk[2], (uint32_t)m->k, m->nqk, m->nrk, m->nlsa, 0, 0};
  memcpy(j->dims, dims, sizeof dims);
  uint64_t nnz = m->inv_ptr[m->nterms], qnnz = m->qcsr_ptr[m->nqrys];
  uint32_t nword = m->nblk[0] + m->nblk[1];
  struct { const char *tag; const void *p; uint64_t len; } secs[] = {
      {"meta", m->meta_json, strlen(m->meta_json)},
      SEC("dims", j->dims, 12),
      {"strings", m->strings, m->strings_len},
      SEC("refs", m->refs, m->nrefs),
      SEC("queries", m->qrys, m->nqrys),
      SEC("terms", m->term_off, m->nterms),
      SEC("idf", m->idf, m->nterms),
      SEC("inv_ptr", m->inv_ptr, m->nterms + 1),
      SEC("inv_ref", m->inv_ref, nnz),
      SEC("inv_val", m->inv_val, nnz),
      SEC("csr_ptr", m->csr_ptr, m->nrefs + 1),
      SEC("csr_col", m->csr_col, nnz),
      SEC("csr_val", m->csr_val, nnz),
      SEC("qcsr_ptr", m->qcsr_ptr, m->nqrys + 1),
      SEC("qcsr_col", m->qcsr_col, qnnz),
      SEC("qcsr_val", m->qcsr_val, qnnz),
      SEC("lsa_row", m->lsa_row, nword),
      SEC("lsa_v", m->lsa_v, (uint64_t)m->nlsa * m->k),
      SEC("ref_emb", m->ref_emb, (uint64_t)m->nrefs * m->k),
      SEC("qkinds", m->qkind_off, m->nqk),
      SEC("rkinds", m->rkind_off, m->nrk),
      SEC("prior", m->prior, (uint64_t)m->nqk * m->nrk),
      SEC("ref_order", m->ref_order, m->nrefs),
      SEC("codes", m->codes, (uint64_t)m->nrefs + m->nqrys),
      {"abbrev", m->abbrev_tsv, m->abbrev_len},
      {"pairs", m->pairs_tsv, m->pairs_len},
      SEC("calib", m->calib.v, FM_CALIB_NFLOATS),
  };
  fm_rc rc = FM_OK;
  for (size_t i = 0; i < sizeof secs / sizeof secs[0] && rc == FM_OK; i++) {
    if (later_prior && (!strcmp(secs[i].tag, "prior") || !strcmp(secs[i].tag, "calib")))
      rc = fm_mfile_add_later(j->w, secs[i].tag, secs[i].len, err);
    else
      rc = fm_mfile_add_ref(j->w, secs[i].tag, secs[i].len ? secs[i].p : "", secs[i].len, err);
  }
  if (rc) {
    fm_model_write_cancel(j);
    *out = NULL;
  }
  return rc;
}

fm_rc fm_model_write_begin(const fm_model *m, const char *path, fm_model_wjob **out,
                           fm_error *err) {
  fm_rc rc = model_sections(m, 1, out, err);
  if (rc == FM_OK && (rc = fm_mfile_write_begin((*out)->w, path, err))) {
    fm_model_write_cancel(*out);
    *out = NULL;
  }
  return rc;
}

fm_rc fm_model_write_end(fm_model_wjob *j, fm_error *err) {
  const fm_model *m = j->m;
  uint64_t n = (uint64_t)m->nqk * m->nrk;
  fm_rc rc = fm_mfile_fill(j->w, "prior", n ? (const void *)m->prior : "", err);
  if (rc == FM_OK) rc = fm_mfile_fill(j->w, "calib", m->calib.v, err);
  if (rc == FM_OK) rc = fm_mfile_write_end(j->w, err);
  fm_model_write_cancel(j); /* after an error in fill: removes the temp file */
  return rc;
}

fm_rc fm_model_write(const fm_model *m, const char *path, fm_error *err) {
  fm_model_wjob *j;
  fm_rc rc = model_sections(m, 0, &j, err);
  if (rc) return rc;
  rc = fm_mfile_write(j->w, path, err);
  fm_model_write_cancel(j);
  return rc;
}

/* Fetch section tag, which every model of this format version holds: its
 * absence is damage (FM_ERR_CORRUPT), like any other inconsistency. */
static fm_rc need_sec(fm_model *m, const char *tag, const void **out, uint64_t *len,
                      fm_error *err) {
  if (fm_mfile_section(m->mf, tag, out, len, NULL) == FM_OK) return FM_OK;
  return fm_error_set(err, FM_ERR_CORRUPT, "%s: model file has no section '%s'",
                      fm_mfile_path(m->mf), tag);
}

/* Fetch a section that must hold exactly `count` items of `size` bytes.
 * count may come from the file itself (a pointer array's last entry, the
 * non-zeros), so count * size is checked not to wrap around: 2^62 4-byte
 * entries would otherwise match an empty section, and validate() would
 * walk 2^62 of them. */
static fm_rc get_sec(fm_model *m, const char *tag, size_t size, uint64_t count,
                     const void **out, fm_error *err) {
  uint64_t len;
  fm_rc rc = need_sec(m, tag, out, &len, err);
  if (rc) return rc;
  if (count > UINT64_MAX / size || len != count * size)
    return fm_error_set(err, FM_ERR_CORRUPT,
                        "%s: section '%s' has %llu bytes, expected %llu entries of %zu bytes",
                        fm_mfile_path(m->mf), tag, (unsigned long long)len,
                        (unsigned long long)count, size);
  return FM_OK;
}

/* An inconsistency found in section tag. */
static fm_rc bad(fm_model *m, const char *tag, const char *what, fm_error *err) {
  return fm_error_set(err, FM_ERR_CORRUPT, "%s: inconsistent model: section '%s': %s",
                      fm_mfile_path(m->mf), tag, what);
}

/* Whether v[0..n) are all finite.  A float is not finite when its
 * exponent bits are all ones, and then (and only then) adding one to the
 * masked exponent carries into the sign bit; done on two floats per 64-bit
 * word, four words per step, with no branch and no compare, so the loop
 * runs near memory speed (the float sections of the 71 MB real model are
 * 48 MB). */
static int all_finite(const float *v, uint64_t n) {
  const uint64_t EXP = 0x7f8000007f800000ull, ONE = 0x0080000000800000ull;
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w[4];
    memcpy(w, v + i, sizeof w);
    a0 |= (w[0] & EXP) + ONE;
    a1 |= (w[1] & EXP) + ONE;
    a2 |= (w[2] & EXP) + ONE;
    a3 |= (w[3] & EXP) + ONE;
  }
  for (; i < n; i++) {
    uint32_t b;
    memcpy(&b, v + i, sizeof b);
    a0 |= (uint64_t)((b & 0x7f800000u) + 0x00800000u);
  }
  return !((a0 | a1 | a2 | a3) & 0x8000000080000000ull);
}

/* The fields' codes: section "codes" of a format-6 file; for an older
 * file, an owned array pointing every field at "" (the blob's final NUL, so
 * that validate and fm_rec_to_field treat every version alike). */
static fm_rc load_codes(fm_model *m, fm_error *err) {
  uint64_t n = (uint64_t)m->nrefs + m->nqrys;
  if (fm_mfile_version(m->mf) >= 6)
    return get_sec(m, "codes", 4, n, (const void **)&m->codes, err);
  uint32_t *c = fm_malloc((n ? n : 1) * sizeof *c);
  if (fm_model_own(m, c)) /* frees c on failure; NULL fails */
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  for (uint64_t i = 0; i < n; i++) c[i] = (uint32_t)(m->strings_len - 1);
  m->codes = c;
  return FM_OK;
}

/* Validate everything that later code indexes with, so a crafted file with
 * valid checksums still cannot make lookups read out of bounds. */
static fm_rc validate(fm_model *m, fm_error *err) {
  if (m->strings_len == 0 || m->strings[m->strings_len - 1] != '\0')
    return bad(m, "strings", "strings blob is not NUL-terminated", err);
  const fm_field_rec *sets[2] = {m->refs, m->qrys};
  uint32_t ns[2] = {m->nrefs, m->nqrys};
  const char *tags[2] = {"refs", "queries"};
  for (int s = 0; s < 2; s++)
    for (uint32_t i = 0; i < ns[s]; i++) {
      const fm_field_rec *r = &sets[s][i];
      uint32_t offs[7] = {r->vendor, r->id, r->name, r->description, r->type,
                          r->category, r->source};
      for (int j = 0; j < 7; j++)
        if (offs[j] >= m->strings_len)
          return bad(m, tags[s], "field string offset out of range", err);
      /* a query may have no kind (the matcher then reads no prior row);
       * every reference has one, which indexes the prior row unchecked */
      uint32_t nk = s == 0 ? m->nrk : m->nqk;
      if ((s == 0 || r->kind != FM_NO_KIND) && r->kind >= nk)
        return bad(m, tags[s], "field kind out of range", err);
    }
  for (uint64_t i = 0; i < (uint64_t)m->nrefs + m->nqrys; i++)
    if (m->codes[i] >= m->strings_len) return bad(m, "codes", "code offset out of range", err);
  for (uint32_t t = 0; t < m->nterms; t++)
    if (m->term_off[t] >= m->strings_len) return bad(m, "terms", "term offset out of range", err);
  for (uint32_t t = 0; t < m->nqk; t++)
    if (m->qkind_off[t] >= m->strings_len) return bad(m, "qkinds", "kind offset out of range", err);
  for (uint32_t t = 0; t < m->nrk; t++)
    if (m->rkind_off[t] >= m->strings_len) return bad(m, "rkinds", "kind offset out of range", err);
  /* the rows of lsa_v, each used by exactly one word, in term order */
  uint32_t nword = m->nblk[0] + m->nblk[1], next = 0;
  for (uint32_t t = 0; t < nword; t++)
    if (m->lsa_row[t] != FM_NO_ROW && m->lsa_row[t] != next++)
      return bad(m, "lsa_row", "LSA row numbers", err);
  if (next != m->nlsa) return bad(m, "lsa_row", "LSA row count", err);
  uint64_t nnz = m->inv_ptr[m->nterms];
  if (m->inv_ptr[0] != 0) return bad(m, "inv_ptr", "sparse matrix bounds", err);
  if (m->csr_ptr[0] != 0 || m->csr_ptr[m->nrefs] != nnz)
    return bad(m, "csr_ptr", "sparse matrix bounds", err);
  for (uint32_t t = 0; t < m->nterms; t++)
    if (m->inv_ptr[t] > m->inv_ptr[t + 1])
      return bad(m, "inv_ptr", "inverted index pointers", err);
  for (uint32_t r = 0; r < m->nrefs; r++)
    if (m->csr_ptr[r] > m->csr_ptr[r + 1]) return bad(m, "csr_ptr", "row pointers", err);
  for (uint64_t i = 0; i < nnz; i++) {
    if (m->inv_ref[i] >= m->nrefs) return bad(m, "inv_ref", "sparse index out of range", err);
    if (m->csr_col[i] >= m->nterms) return bad(m, "csr_col", "sparse index out of range", err);
  }
  /* query rows: strictly ascending term ids (the matcher relies on the
   * order to stop at the first character n-gram) */
  if (m->qcsr_ptr[0] != 0) return bad(m, "qcsr_ptr", "query matrix bounds", err);
  for (uint32_t q = 0; q < m->nqrys; q++) {
    if (m->qcsr_ptr[q] > m->qcsr_ptr[q + 1])
      return bad(m, "qcsr_ptr", "query row pointers", err);
    for (uint64_t p = m->qcsr_ptr[q]; p < m->qcsr_ptr[q + 1]; p++)
      if (m->qcsr_col[p] >= m->nterms || (p > m->qcsr_ptr[q] && m->qcsr_col[p] <= m->qcsr_col[p - 1]))
        return bad(m, "qcsr_col", "query term ids out of range or order", err);
  }
  /* every float is finite: training computes them from finite data (idf
   * logarithms, unit vectors, a PMI clipped to +-3), so a NaN or an
   * infinity is damage, refused here instead of turning scores into NaN
   * that silently drop candidates */
  uint64_t qnnz = m->qcsr_ptr[m->nqrys];
  struct { const char *tag; const float *v; uint64_t n; } fl[] = {
      {"idf", m->idf, m->nterms},
      {"inv_val", m->inv_val, nnz},
      {"csr_val", m->csr_val, nnz},
      {"qcsr_val", m->qcsr_val, qnnz},
      {"lsa_v", m->lsa_v, (uint64_t)m->nlsa * m->k},
      {"ref_emb", m->ref_emb, (uint64_t)m->nrefs * m->k},
      {"prior", m->prior, (uint64_t)m->nqk * m->nrk},
      {"ref_order", m->ref_order, m->nrefs},
  };
  for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++)
    if (!all_finite(fl[i].v, fl[i].n)) return bad(m, fl[i].tag, "a value is not finite", err);
  return FM_OK;
}

/* A scoring weight from the metadata, 0 when absent.  A config allows 0 to
 * 100 (config.c), so anything else is damage, and 1e40 would not even
 * convert to a float: *bad gets the first such key. */
static float meta_weight(json_t *jw, const char *key, const char **bad) {
  double d = json_number_value(json_object_get(jw, key));
  if (d >= 0 && d <= 100) return (float)d;
  if (!*bad) *bad = key;
  return 0;
}

fm_rc fm_model_open(const char *path, fm_model **out, fm_error *err) {
  *out = NULL;
  fm_model *m = fm_model_alloc();
  if (!m) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  fm_rc rc = fm_mfile_open(path, &m->mf, err);
  if (rc) goto fail;
  m->checksum = fm_mfile_checksum(m->mf);
  const void *p;
  uint64_t len;
  if ((rc = need_sec(m, "meta", &p, &len, err))) goto fail;
  m->meta_json = fm_strndup(p, len);
  if (!m->meta_json) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); goto fail; }
  json_error_t je;
  json_t *meta = json_loads(m->meta_json, 0, &je);
  if (!meta || !json_is_object(meta)) {
    json_decref(meta);
    rc = fm_error_set(err, FM_ERR_CORRUPT,
                      "%s: section 'meta': model metadata is not a valid JSON object", path);
    goto fail;
  }
  json_t *jn = json_object_get(meta, "name");
  m->name = fm_strdup(json_is_string(jn) ? json_string_value(jn) : "model");
  json_t *jw = json_object_get(meta, "weights");
  fm_model_opts_default(&m->opts);
  if (json_is_object(jw)) {
    const char *wbad = NULL;
    /* a weight absent from a model of an earlier release ("variant",
     * "order", "other", "date") reads as 0, which keeps its scoring */
    for (size_t i = 0; i < FM_NWEIGHTS; i++)
      *fm_weight_ptr(&m->opts.w, i) = meta_weight(jw, fm_weight_fields[i].name, &wbad);
    if (wbad) {
      rc = fm_error_set(err, FM_ERR_CORRUPT,
                        "%s: section 'meta': weight '%s' is not a number from 0 to 100", path,
                        wbad);
      json_decref(meta);
      goto fail;
    }
  }
  /* candidates sizes the matcher's buffers (fm_matcher_new: ~50 bytes
   * each): a config allows at most FM_MAX_CANDIDATES, so a bigger number
   * is damage, not a request for gigabytes per matcher */
  json_t *jc = json_object_get(meta, "candidates");
  if (json_is_integer(jc) && json_integer_value(jc) > FM_MAX_CANDIDATES) {
    json_decref(meta);
    rc = fm_error_set(err, FM_ERR_CORRUPT,
                      "%s: section 'meta': candidates %lld is more than %d", path,
                      (long long)json_integer_value(jc), FM_MAX_CANDIDATES);
    goto fail;
  }
  if (json_is_integer(jc) && json_integer_value(jc) > 0)
    m->opts.candidates = (int)json_integer_value(jc);
  json_decref(meta);
  if (!m->name) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); goto fail; }

  const uint32_t *dims;
  if ((rc = get_sec(m, "dims", 4, 12, (const void **)&dims, err))) goto fail;
  m->nrefs = dims[0]; m->nqrys = dims[1]; m->nterms = dims[2];
  m->nblk[0] = dims[3]; m->nblk[1] = dims[4]; m->nblk[2] = dims[5];
  m->k = (int)dims[6]; m->nqk = dims[7]; m->nrk = dims[8]; m->nlsa = dims[9];
  if ((uint64_t)m->nblk[0] + m->nblk[1] + m->nblk[2] != m->nterms || m->k < 0 || m->k > 65536 ||
      m->nlsa > (uint64_t)m->nblk[0] + m->nblk[1] || dims[10] || dims[11]) {
    rc = bad(m, "dims", "dimensions", err);
    goto fail;
  }
  uint32_t nword = m->nblk[0] + m->nblk[1];
  if ((rc = need_sec(m, "strings", (const void **)&m->strings, &m->strings_len, err))) goto fail;
  if ((rc = get_sec(m, "refs", sizeof(fm_field_rec), m->nrefs, (const void **)&m->refs, err))) goto fail;
  if ((rc = get_sec(m, "queries", sizeof(fm_field_rec), m->nqrys, (const void **)&m->qrys, err))) goto fail;
  if ((rc = get_sec(m, "terms", 4, m->nterms, (const void **)&m->term_off, err))) goto fail;
  if ((rc = get_sec(m, "idf", 4, m->nterms, (const void **)&m->idf, err))) goto fail;
  if ((rc = get_sec(m, "inv_ptr", 8, (uint64_t)m->nterms + 1, (const void **)&m->inv_ptr, err))) goto fail;
  uint64_t nnz = m->inv_ptr[m->nterms];
  if ((rc = get_sec(m, "inv_ref", 4, nnz, (const void **)&m->inv_ref, err))) goto fail;
  if ((rc = get_sec(m, "inv_val", 4, nnz, (const void **)&m->inv_val, err))) goto fail;
  if ((rc = get_sec(m, "csr_ptr", 8, (uint64_t)m->nrefs + 1, (const void **)&m->csr_ptr, err))) goto fail;
  if ((rc = get_sec(m, "csr_col", 4, nnz, (const void **)&m->csr_col, err))) goto fail;
  if ((rc = get_sec(m, "csr_val", 4, nnz, (const void **)&m->csr_val, err))) goto fail;
  if ((rc = get_sec(m, "qcsr_ptr", 8, (uint64_t)m->nqrys + 1, (const void **)&m->qcsr_ptr, err))) goto fail;
  uint64_t qnnz = m->qcsr_ptr[m->nqrys];
  if ((rc = get_sec(m, "qcsr_col", 4, qnnz, (const void **)&m->qcsr_col, err))) goto fail;
  if ((rc = get_sec(m, "qcsr_val", 4, qnnz, (const void **)&m->qcsr_val, err))) goto fail;
  if ((rc = get_sec(m, "lsa_row", 4, nword, (const void **)&m->lsa_row, err))) goto fail;
  if ((rc = get_sec(m, "lsa_v", 4, (uint64_t)m->nlsa * m->k, (const void **)&m->lsa_v, err))) goto fail;
  if ((rc = get_sec(m, "ref_emb", 4, (uint64_t)m->nrefs * m->k, (const void **)&m->ref_emb, err))) goto fail;
  if ((rc = get_sec(m, "qkinds", 4, m->nqk, (const void **)&m->qkind_off, err))) goto fail;
  if ((rc = get_sec(m, "rkinds", 4, m->nrk, (const void **)&m->rkind_off, err))) goto fail;
  if ((rc = get_sec(m, "prior", 4, (uint64_t)m->nqk * m->nrk, (const void **)&m->prior, err))) goto fail;
  if ((rc = get_sec(m, "ref_order", 4, m->nrefs, (const void **)&m->ref_order, err))) goto fail;
  if ((rc = load_codes(m, err))) goto fail;
  if ((rc = need_sec(m, "abbrev", (const void **)&m->abbrev_tsv, &m->abbrev_len, err))) goto fail;
  if ((rc = need_sec(m, "pairs", (const void **)&m->pairs_tsv, &m->pairs_len, err))) goto fail;
  /* format 5 holds the fitted calibrator; a format-4 file keeps the
   * fallback set by fm_model_alloc (docs/model-format.md) */
  if (fm_mfile_version(m->mf) >= 5) {
    const float *cv;
    if ((rc = get_sec(m, "calib", 4, FM_CALIB_NFLOATS, (const void **)&cv, err))) goto fail;
    memcpy(m->calib.v, cv, sizeof m->calib.v);
    if (!fm_calib_valid(&m->calib)) {
      rc = bad(m, "calib", "calibrator values out of range", err);
      goto fail;
    }
  }
  if ((rc = validate(m, err))) goto fail;
  if ((rc = fm_model_index(m, err))) goto fail;
  /* format 7: the training pairs rank as a learning layer (format 6 and
   * older files keep the ranking they were calibrated with) */
  if (fm_mfile_version(m->mf) >= 7 && (rc = fm_model_pairs_layer(m, err))) goto fail;
  *out = m;
  return FM_OK;
fail:
  fm_model_close(m);
  return rc;
}
