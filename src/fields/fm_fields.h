/* fm_fields.h: vendor dictionaries and their fields in the store
 * (src/fields, docs/store.md): the one owner of the tables dictionaries and
 * fields.  A dictionary import flags the mappings of changed fields through
 * fm_review_flag_field, in the same transaction.
 *
 * Threads: one fm_store per thread (see fm_store.h). */
#ifndef FM_FIELDS_H
#define FM_FIELDS_H

#include <stdint.h>

#include "fm_import.h"
#include "fm_review.h"
#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fm_store fm_store; /* fm_store.h */

/* ---- dictionaries and fields ------------------------------------------- */

/* What a dictionary import did. */
typedef struct fm_dict_result {
  int64_t dict_id;   /* the dictionaries row (new version, or the same one) */
  int version;       /* 1 for the first import of (vendor, source) */
  int unchanged;     /* same checksum as the latest version: nothing written */
  size_t added, changed, removed, kept; /* fields */
  size_t flagged;    /* mappings flagged because a field changed or went */
} fm_dict_result;

/* Import one dictionary (all fields of `fs` must share one vendor) under the
 * label `source` with role `role`, as one transaction.  A (vendor, source)
 * seen before gets a new version when its checksum differs: new fields are
 * added, changed ones updated (their mappings flagged "field_changed"),
 * fields of this dictionary that are gone are marked removed (their mappings
 * flagged "field_removed"); no mapping is ever deleted.  Repeated ids in fs:
 * the first wins.  actor names who did it in the audit log. */
fm_rc fm_store_import_fields(fm_store *st, const char *source, fm_role role,
                             const fm_fieldset *fs, const char *actor,
                             fm_dict_result *res, fm_error *err);

/* Import a field set that may mix vendors (a training config's reference
 * or query side): one dictionary per vendor, each labelled `name` (the
 * config/model name + ":query" or ":reference" by convention, see
 * fm_store_dict_label), each in its own transaction.  *total (optional) sums
 * the per-vendor results (version = the highest). */
fm_rc fm_store_import_set(fm_store *st, const char *name, fm_role role,
                          const fm_fieldset *fs, const char *actor,
                          fm_dict_result *total, fm_error *err);

/* The conventional dictionary label "<name>:query" / "<name>:reference"
 * used by `fieldmatch import` and by batch runs for a config or model of
 * that name; written into out (size n). */
void fm_store_dict_label(const char *name, fm_role role, char *out, size_t n);

/* The field_id of (vendor, id), or -1 when unknown.  vendor may be NULL:
 * then the id must be unique among fields of that role (role 0: any). */
int64_t fm_store_field_id(fm_store *st, const char *vendor, const char *id,
                          fm_role role);


#ifdef __cplusplus
}
#endif

#endif /* FM_FIELDS_H */
