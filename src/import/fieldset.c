/* fieldset.c: the field container, its copy-append and the query-source
 * merge.  All strings live in the set's arena. */
#include "fm_import.h"

#include <string.h>

void fm_fieldset_init(fm_fieldset *s) {
  s->v = NULL;
  s->n = s->cap = 0;
  fm_arena_init(&s->arena);
}

void fm_fieldset_free(fm_fieldset *s) {
  if (!s) return;
  fm_free(s->v);
  fm_arena_free(&s->arena);
  fm_fieldset_init(s);
}

/* Arena copy of s (NULL -> ""); NULL on allocation failure. */
static const char *dup_or_empty(fm_arena *a, const char *s) {
  return fm_arena_strdup(a, s ? s : "");
}

/* Copy every string of *f into a's arena.  On failure *dst is unusable
 * (the arena keeps what was copied; nothing refers to it). */
static fm_rc copy_field(fm_arena *a, const fm_field *f, fm_field *dst) {
  dst->line = f->line;
  if (!(dst->vendor = dup_or_empty(a, f->vendor)) ||
      !(dst->id = dup_or_empty(a, f->id)) ||
      !(dst->name = dup_or_empty(a, f->name)) ||
      !(dst->description = dup_or_empty(a, f->description)) ||
      !(dst->type = dup_or_empty(a, f->type)) ||
      !(dst->category = dup_or_empty(a, f->category)) ||
      !(dst->code = dup_or_empty(a, f->code)) ||
      !(dst->source = dup_or_empty(a, f->source)))
    return FM_ERR_NOMEM;
  return FM_OK;
}

fm_rc fm_fieldset_add(fm_fieldset *s, const fm_field *f) {
  if (!s || !f) return FM_ERR_ARG;
  if (fm_grow((void **)&s->v, &s->cap, s->n + 1, sizeof *s->v))
    return FM_ERR_NOMEM;
  fm_field nf;
  if (copy_field(&s->arena, f, &nf)) return FM_ERR_NOMEM;
  s->v[s->n++] = nf;
  return FM_OK;
}

/* Merge `src` into the existing field *dst: the longer description wins
 * (ties keep dst), empty name/type/category/code are filled.  Cannot fail: the
 * strings of src are already in dst's set. */
static void merge_into(fm_field *dst, const fm_field *src) {
  if (strlen(src->description) > strlen(dst->description))
    dst->description = src->description;
  if (!*dst->name) dst->name = src->name;
  if (!*dst->type) dst->type = src->type;
  if (!*dst->category) dst->category = src->category;
  if (!*dst->code) dst->code = src->code;
}

/* Two phases so that *out never changes on failure: (1) everything that
 * can fail: reserve room, map ids, copy in's strings into out's arena
 * (staged); (2) apply in order: append or merge, which cannot fail. */
fm_rc fm_fieldset_merge(fm_fieldset *out, const fm_fieldset *in,
                        fm_error *err) {
  if (!out || !in)
    return fm_error_set(err, FM_ERR_ARG, "fm_fieldset_merge: NULL set");
  if (in->n == 0) return FM_OK;
  if (in->n > UINT32_MAX - out->n)
    return fm_error_set(err, FM_ERR_ARG, "fm_fieldset_merge: too many fields");
  fm_rc rc = FM_OK;
  fm_strmap ids;
  fm_strmap_init(&ids);
  fm_field *staged = fm_calloc(in->n, sizeof *staged);
  uint32_t *target = fm_calloc(in->n, sizeof *target);
  if (!staged || !target) {
    rc = FM_ERR_NOMEM;
    goto done;
  }
  if (fm_grow((void **)&out->v, &out->cap, out->n + in->n, sizeof *out->v)) {
    rc = FM_ERR_NOMEM;
    goto done;
  }
  /* First occurrence of each id already in out. */
  for (size_t i = 0; i < out->n; i++) {
    const char *id = out->v[i].id;
    if ((rc = fm_strmap_put(&ids, id, strlen(id), (uint32_t)i, NULL, NULL)))
      goto done;
  }
  uint32_t next = (uint32_t)out->n; /* index the next appended field gets */
  for (size_t i = 0; i < in->n; i++) {
    const char *id = in->v[i].id ? in->v[i].id : "";
    int inserted;
    if ((rc = fm_strmap_put(&ids, id, strlen(id), next, &target[i],
                            &inserted)))
      goto done;
    if (inserted) next++;
    if ((rc = copy_field(&out->arena, &in->v[i], &staged[i]))) goto done;
  }
  /* Phase 2: nothing below can fail. */
  for (size_t i = 0; i < in->n; i++) {
    if (target[i] < out->n)
      merge_into(&out->v[target[i]], &staged[i]);
    else
      out->v[out->n++] = staged[i];
  }
done:
  fm_free(staged);
  fm_free(target);
  fm_strmap_free(&ids);
  if (rc == FM_ERR_NOMEM)
    return fm_error_set(err, rc, "out of memory merging %zu fields", in->n);
  if (rc) return fm_error_set(err, rc, "merging fields failed: %s",
                              fm_rc_name(rc));
  return FM_OK;
}
