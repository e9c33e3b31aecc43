/* train_internal.h: a training run's state, shared by train.c (the run:
 * imports, abbreviations, vocabulary and matrices, SVD, priors, the model)
 * and train_feat.c (featurization on threads).  Private to src/model. */
#ifndef FM_TRAIN_INTERNAL_H
#define FM_TRAIN_INTERNAL_H

#include "model_internal.h"

/* ---- strings blob with de-duplication (train.c) ------------------------- */
typedef struct strtab {
  fm_buf blob;
  fm_strmap seen;
} strtab;

/* Append s to st's blob once (a repeat returns the first offset) and set
 * *off to its offset; st owns the copies (train.c). */
fm_rc fm_train_strtab_add(strtab *st, const char *s, uint32_t *off);

/* ---- training state ----------------------------------------------------- */
typedef struct trainer {
  const fm_config *c;
  fm_model_opts o;
  const fm_fieldset *refs, *qrys;
  fm_pairs pairs;
  fm_model *m;
  strtab st;
  fm_strmap vocab[FM_NBLK];  /* key -> provisional id within block */
  uint32_t *df[FM_NBLK];
  size_t dfcap[FM_NBLK];
  /* per document (the references, then the queries): provisional
   * (block, id) lists, packed block << 30 | id */
  uint32_t *dterm;
  uint64_t *dptr;            /* ndocs + 1 */
  int nthreads;
  int quiet;
} trainer;

/* The featurizer flags of field f: FM_FEAT_ID_CODE when it comes from a
 * source the config marks "id_is_code" (train.c). */
unsigned fm_train_feat_flags(const trainer *t, const fm_field *f);

/* Featurize every document on t->nthreads threads: the vocabulary and its
 * document frequencies, and t->dterm/t->dptr, owned by t (train_feat.c). */
fm_rc fm_train_featurize(trainer *t, fm_error *err);

/* Assign each query and reference record its kind (query
 * "vendor:category", reference "file:type"), filling the model's kind
 * tables; rk maps reference kind names to ids (the caller's, freed by it)
 * (train_prior.c). */
fm_rc fm_train_assign_kinds(trainer *t, fm_field_rec *qrecs, fm_field_rec *rrecs,
                            fm_strmap *rk, fm_error *err);

/* The category/type prior of t->m (owned by the model), self-trained from
 * confident matches and the training pairs (train_prior.c). */
fm_rc fm_train_build_prior(trainer *t, fm_error *err);

#endif
