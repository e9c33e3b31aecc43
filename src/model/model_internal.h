/* model_internal.h: the in-memory model shared by training, the model file
 * and the matcher.  Not a public header. */
#ifndef FM_MODEL_INTERNAL_H
#define FM_MODEL_INTERNAL_H

#include "fm_model.h"
#include "calib.h"
#include "fm_text.h"
#include "mfile.h"
#include "sparse.h"

/* Feature blocks.  Terms are numbered block by block: title words first,
 * then full-text words, then character n-grams, so the word blocks (the
 * LSA input) are the prefix [0, nterms_word). */
enum { FM_BLK_TITLE = 0, FM_BLK_FULL = 1, FM_BLK_CHARS = 2, FM_NBLK = 3 };

/* A field as stored: offsets into the strings blob. */
typedef struct fm_field_rec {
  uint32_t vendor, id, name, description, type, category, source, line, kind;
} fm_field_rec;
#define FM_NO_KIND UINT32_MAX
/* Most sparse candidates a config may ask for (and a model file may hold
 * in its metadata). */
#define FM_MAX_CANDIDATES 100000
#define FM_NO_ROW UINT32_MAX

/* What a field is, beyond its words (fm_model.ref_qual, fm_type_qual):
 * its title names a residual line item ("Other Financing Cash Flow"); it
 * has a vendor type; that type is a date or a time.  A query and a
 * reference that disagree are scored down (fm_candidate.s_other, s_date). */
enum {
  FM_QUAL_OTHER = 1u << 0, /* the title names a residual item */
  FM_QUAL_TYPED = 1u << 1, /* the field has a vendor type */
  FM_QUAL_TIME = 1u << 2   /* ... and it is a date or a time */
};
enum { FM_NQUAL_WORDS = 3 }; /* entries of qual_words in model.c */

/* The scoring weights by name: the keys of a config's "weights" and of the
 * model metadata's, each with the fm_weights member it sets (config.c).
 * The one list that parsing, writing and loading a model all walk. */
typedef struct fm_weight_field {
  const char *name;
  size_t off; /* offsetof(fm_weights, member), a float */
} fm_weight_field;
enum { FM_NWEIGHTS = 9 };
extern const fm_weight_field fm_weight_fields[FM_NWEIGHTS];
static inline float *fm_weight_ptr(fm_weights *w, size_t i) {
  return (float *)((char *)w + fm_weight_fields[i].off);
}
static inline float fm_weight_get(const fm_weights *w, size_t i) {
  return *(const float *)((const char *)w + fm_weight_fields[i].off);
}

struct fm_model {
  fm_mfile *mf;             /* non-NULL when loaded from a file */
  void **owned;             /* allocations freed at close */
  size_t nowned, capowned;

  char *meta_json;          /* owned copy (NUL-terminated) */
  char *name;               /* owned */
  fm_model_opts opts;       /* dims = actual k */
  uint32_t checksum;

  const char *strings; uint64_t strings_len;
  const fm_field_rec *refs; uint32_t nrefs;
  const fm_field_rec *qrys; uint32_t nqrys;

  uint32_t nterms, nblk[FM_NBLK];
  const uint32_t *term_off;  /* nterms offsets into strings */
  const float *idf;          /* nterms */

  /* reference matrix, per-block L2-normalized tf-idf: */
  const uint64_t *inv_ptr; const uint32_t *inv_ref; const float *inv_val; /* CSC, weighted by block */
  int inv_min_ok;            /* every inv_val is finite and >= 2^-64 (set by fm_model_index) */
  const uint64_t *csr_ptr; const uint32_t *csr_col; const float *csr_val; /* CSR, unweighted */
  /* query matrix (CSR, unweighted): row i is exactly what encode() in
   * match.c computes for query field i, so lookups of the model's own
   * queries skip tokenization */
  const uint64_t *qcsr_ptr; const uint32_t *qcsr_col; const float *qcsr_val;

  int k;                     /* LSA dims */
  uint32_t nlsa;             /* rows of lsa_v: the word terms some reference carries */
  const uint32_t *lsa_row;   /* nword: each word term's row of lsa_v, or FM_NO_ROW for a
                                word no reference carries (its row of V is zero) */
  const float *lsa_v;        /* nlsa x k */
  const float *ref_emb;      /* nrefs x k, unit rows */

  uint32_t nqk, nrk;
  const uint32_t *qkind_off, *rkind_off; /* offsets into strings */
  const float *prior;        /* nqk x nrk */
  const float *ref_order;    /* nrefs: position prior (fm_candidate.s_order) */
  const uint32_t *codes;     /* nrefs + nqrys, references first: each field's
                                fm_field.code, an offset into strings (format 6;
                                an older file gets an owned array of "") */

  const char *abbrev_tsv; uint64_t abbrev_len; /* "abbr\texp\tsupport\n"* */
  const char *pairs_tsv; uint64_t pairs_len;   /* training pairs used */
  fm_calib calib;            /* confidence calibrator (section "calib",
                                format 5; the fallback for format 4) */
  fm_learn *pairs_layer;     /* owned, NULL when none: the learning layer of the
                                training pairs (format 7, fm_model_pairs_layer),
                                applied by every lookup (fm_match_vec) */

  /* runtime indexes, always owned */
  fm_strmap term_map, qid_map, rid_map, qkind_map;
  fm_abbrev *abbrev;
  uint8_t *ref_variant;      /* nrefs: 1 for a numbered copy (fm_id_number) */
  uint8_t *ref_qual;         /* nrefs: FM_QUAL_* bits */
  uint32_t qual_term[FM_NQUAL_WORDS]; /* title-block id of each residual
                                         word, UINT32_MAX when not a term */
};

static inline const char *fm_str(const fm_model *m, uint32_t off) {
  return m->strings + off;
}
/* FM_QUAL_OTHER if term t is the title term of a residual word, else 0. */
static inline unsigned fm_qual_term(const fm_model *m, uint32_t t) {
  int hit = 0;
  for (int i = 0; i < FM_NQUAL_WORDS; i++) hit |= t == m->qual_term[i];
  return hit ? FM_QUAL_OTHER : 0u;
}
/* FM_QUAL_TYPED | FM_QUAL_TIME for a vendor type naming a date or a time
 * ("DATE", "Date or Time", "TIMESTAMP", "datetime"), FM_QUAL_TYPED for any
 * other non-empty type, 0 for none. */
unsigned fm_type_qual(const char *type);

static inline int fm_term_block(const fm_model *m, uint32_t t) {
  return t < m->nblk[0] ? 0 : t < m->nblk[0] + m->nblk[1] ? 1 : 2;
}

/* Track an allocation to free at close; frees p and fails on NOMEM. */
fm_rc fm_model_own(fm_model *m, void *p);
/* Track n allocations at once, some possibly NULL (failed): every non-NULL
 * one is tracked or freed, so a failure in the middle of a group cannot
 * leak the rest (as a short-circuit `own(a) || own(b)` would).  Fails with
 * FM_ERR_NOMEM if any was NULL or could not be tracked. */
fm_rc fm_model_own_n(fm_model *m, size_t n, void *const *ps);
fm_model *fm_model_alloc(void);
/* The trailing number of an id written "BASE_N" or "BASEN" (N all digits,
 * "NETCHNG_2" -> 2, "PERATIO2" -> 2), or 0 when it has none ("CLOSE_1D",
 * "DIV1_RATE", an id that is all digits).  *base_len (optional) gets the
 * length of BASE without the '_'. */
unsigned fm_id_number(const char *id, size_t *base_len);
/* Build the runtime indexes (maps, abbreviation table, numbered copies)
 * from the arrays. */
fm_rc fm_model_index(fm_model *m, fm_error *err);
void fm_rec_to_field(const fm_model *m, const fm_field_rec *r, fm_field *f);

/* Writing a model file while the prior is still being computed (fm_train
 * with an output path).  fm_model_write_begin writes every section but
 * "prior" (whose length, nqk x nrk floats, is fixed already) from a
 * background thread; from then until fm_model_write_end/cancel nothing of
 * m but m->prior may change.  fm_model_write_end writes the prior as it is
 * then, the header, fsyncs and renames (the bytes of fm_model_write); it
 * and fm_model_write_cancel free the job.  On error nothing is left at the
 * path. */
typedef struct fm_model_wjob fm_model_wjob;
fm_rc fm_model_write_begin(const fm_model *m, const char *path, fm_model_wjob **out,
                           fm_error *err);
fm_rc fm_model_write_end(fm_model_wjob *j, fm_error *err);
void fm_model_write_cancel(fm_model_wjob *j);

/* The last query's term ids (match.c; for the learning layer, learn.c). */
size_t fm_matcher_last_terms(const fm_matcher *mt, const uint32_t **terms,
                             const fm_model **m);

/* ---- the model's own learning layer (learn.c) --------------------------
 * fm_model_pairs_layer builds m->pairs_layer from the model's training
 * pairs (section "pairs") as positives, once, when a model is trained (before
 * its calibrator is fitted) or a format-7 file is opened; a model without
 * pairs, or whose pairs name no field it holds, gets none.  The layer is
 * built on the model's plain ranking (m->pairs_layer is NULL meanwhile). */
fm_rc fm_model_pairs_layer(fm_model *m, fm_error *err);
/* What layer L adds to candidate c's score for a query with title-block
 * terms qt[0..nq) and id prefix key pfx (fm_learn_prefix): the learnt
 * weight deltas times c's components plus its associations.  The taken
 * penalty is not included (fm_match_learned applies it). */
double fm_learn_delta(const fm_learn *L, const uint32_t *qt, size_t nq, uint32_t pfx,
                      const fm_candidate *c);
/* The prefix family key of a query id ("ARDR" of "ARDR_TOT_ASSETS"), 0 when
 * none; id may be NULL. */
uint32_t fm_learn_prefix(const char *id);
/* Is L built and non-empty? */
int fm_learn_active(const fm_learn *L);

/* ---- featurizer: field -> block token lists ---------------------------- */
typedef struct fm_featurizer {
  fm_tokenizer *tk;
  const fm_abbrev *ab;
  fm_tokens raw, exp, desc;
  fm_buf gram;
} fm_featurizer;

fm_rc fm_feat_init(fm_featurizer *f, const fm_abbrev *ab, fm_error *err);
void fm_feat_free(fm_featurizer *f);
/* fm_feat_field flags */
enum {
  FM_FEAT_ID_CODE = 1u << 0, /* the id is an opaque code (a source's id_is_code) */
  FM_FEAT_NO_CHARS = 1u << 1 /* leave out[FM_BLK_CHARS] empty (the caller derives
                              * it from the title tokens with fm_feat_grams) */
};
/* Tokens of each block for a field, written into out[FM_NBLK] (reset
 * first).  Char n-gram "tokens" are 3- and 4-byte grams of the padded title
 * tokens.  FM_FEAT_ID_CODE leaves the id out altogether. */
fm_rc fm_feat_field(fm_featurizer *f, const fm_field *fld, unsigned flags,
                    fm_tokens out[FM_NBLK], fm_error *err);
/* Append to out the char n-gram tokens of one title token, in the order
 * fm_feat_field gives them (3-grams, then 4-grams, of " tok "); gram is
 * scratch. */
fm_rc fm_feat_grams(fm_buf *gram, const char *tok, fm_tokens *out);
/* Term key for the vocabulary: block tag byte + token. */
fm_rc fm_feat_key(fm_buf *b, int blk, const char *tok);

/* Sparse query vector: per-block L2-normalized tf-idf, terms sorted. */
typedef struct fm_qvec {
  uint32_t *term; float *val; size_t n, cap;
} fm_qvec;
void fm_qvec_free(fm_qvec *q);

/* Query kind string of a field ("vendor:category head"), into b. */
fm_rc fm_kind_query(fm_buf *b, const fm_field *f);
fm_rc fm_kind_ref(fm_buf *b, const fm_field *f);

/* Deterministic pseudo-random numbers (splitmix64). */
static inline uint64_t fm_splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* Matching internals used by training (self-training of the prior). */
fm_rc fm_match_vec(fm_matcher *mt, const fm_field *q, uint32_t qkind, int k,
                   fm_candidate *out, int *nout, fm_error *err);

#endif
