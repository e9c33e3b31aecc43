/* config.c: the JSON training configuration (see docs/configs.md). */
#include "fm_model.h"
#include "model_internal.h"

#include <jansson.h>
#include <stddef.h>
#include <string.h>

const fm_weight_field fm_weight_fields[FM_NWEIGHTS] = {
    {"title", offsetof(fm_weights, title)},     {"full", offsetof(fm_weights, full)},
    {"chars", offsetof(fm_weights, chars)},     {"lsa", offsetof(fm_weights, lsa)},
    {"prior", offsetof(fm_weights, prior)},     {"variant", offsetof(fm_weights, variant)},
    {"order", offsetof(fm_weights, order)},     {"other", offsetof(fm_weights, other)},
    {"date", offsetof(fm_weights, date)}};
_Static_assert(sizeof(fm_weights) == FM_NWEIGHTS * sizeof(float),
               "fm_weight_fields lists every member of fm_weights");

void fm_model_opts_default(fm_model_opts *o) {
  memset(o, 0, sizeof *o);
  o->dims = 256;
  o->power_iters = 2;
  o->oversample = 10;
  o->seed = 42;
  o->candidates = 64;
  o->mine_min_support = 2;
  o->prose_min_count = 2;
  o->threads = 0;
  o->w.title = 1.0f;
  o->w.full = 1.0f;
  o->w.chars = 1.0f;
  o->w.lsa = 1.0f;
  o->w.prior = 0.1f;
  o->w.variant = 0.2f;
  o->w.order = 1.0f;
  o->w.other = 0.5f;
  o->w.date = 0.5f;
}

void fm_config_free(fm_config *c) {
  if (!c) return;
  fm_free(c->reference);
  fm_free(c->query);
  fm_free(c->train_pairs);
  fm_free(c->calibration_pairs);
  fm_free(c->no_equivalent);
  fm_arena_free(&c->arena);
  fm_free(c);
}

/* Copy a JSON string member into the arena; *out stays NULL if absent.
 * A present non-string is an error naming the key. */
static fm_rc get_str(fm_config *c, json_t *obj, const char *key, const char *ctx,
                     int required, const char **out, fm_error *err) {
  json_t *v = json_object_get(obj, key);
  *out = NULL;
  if (!v) {
    if (required)
      return fm_error_set(err, FM_ERR_ARG, "%s: %s: missing required key \"%s\"",
                          c->path, ctx, key);
    return FM_OK;
  }
  if (!json_is_string(v))
    return fm_error_set(err, FM_ERR_ARG, "%s: %s: \"%s\" must be a string",
                        c->path, ctx, key);
  *out = fm_arena_strdup(&c->arena, json_string_value(v));
  return *out ? FM_OK : fm_error_set(err, FM_ERR_NOMEM, "out of memory");
}

/* Reject keys outside `known` (NULL-terminated), so a misspelt key is an
 * error naming it instead of a silently ignored setting. */
static fm_rc check_keys(const fm_config *c, json_t *obj, const char *ctx,
                        const char *const *known, fm_error *err) {
  const char *k;
  json_t *val;
  json_object_foreach(obj, k, val) {
    int ok = 0;
    for (int i = 0; known[i]; i++) ok |= !strcmp(known[i], k);
    if (!ok) return fm_error_set(err, FM_ERR_ARG, "%s: %s: unknown key \"%s\"", c->path, ctx, k);
  }
  return FM_OK;
}

static fm_rc parse_sources(fm_config *c, json_t *root, const char *key,
                           const char *dir, fm_source_spec **out, size_t *n,
                           fm_error *err) {
  json_t *arr = json_object_get(root, key);
  if (!arr || !json_is_array(arr) || json_array_size(arr) == 0)
    return fm_error_set(err, FM_ERR_ARG,
                        "%s: \"%s\" must be a non-empty array of sources",
                        c->path, key);
  size_t cnt = json_array_size(arr);
  *out = fm_calloc(cnt, sizeof **out);
  if (!*out) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  *n = cnt;
  for (size_t i = 0; i < cnt; i++) {
    json_t *s = json_array_get(arr, i);
    char ctx[64];
    snprintf(ctx, sizeof ctx, "%s[%zu]", key, i);
    if (!json_is_object(s))
      return fm_error_set(err, FM_ERR_ARG, "%s: %s must be an object", c->path, ctx);
    fm_source_spec *sp = &(*out)[i];
    const char *path;
    fm_rc rc;
    static const char *const known[] = {"vendor", "format", "path", "columns", "id_is_code",
                                        "order_prior", NULL};
    if ((rc = check_keys(c, s, ctx, known, err))) return rc;
    if ((rc = get_str(c, s, "vendor", ctx, 1, &sp->vendor, err))) return rc;
    if ((rc = get_str(c, s, "format", ctx, 1, &sp->format, err))) return rc;
    if ((rc = get_str(c, s, "path", ctx, 1, &path, err))) return rc;
    if (strcmp(sp->format, "rdm") && strcmp(sp->format, "bbdl") &&
        strcmp(sp->format, "csv") && strcmp(sp->format, "jsonl"))
      return fm_error_set(err, FM_ERR_ARG,
                          "%s: %s: unknown format \"%s\" (want rdm, bbdl, csv or jsonl)",
                          c->path, ctx, sp->format);
    char *full = fm_path_join(dir, path);
    if (!full) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    sp->path = fm_arena_strdup(&c->arena, full);
    fm_free(full);
    if (!sp->path) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    json_t *code = json_object_get(s, "id_is_code");
    if (code && !json_is_boolean(code))
      return fm_error_set(err, FM_ERR_ARG, "%s: %s: \"id_is_code\" must be true or false",
                          c->path, ctx);
    sp->id_is_code = code && json_is_true(code);
    json_t *ord = json_object_get(s, "order_prior");
    if (ord && !json_is_boolean(ord))
      return fm_error_set(err, FM_ERR_ARG, "%s: %s: \"order_prior\" must be true or false",
                          c->path, ctx);
    sp->order_prior = ord && json_is_true(ord);
    json_t *cols = json_object_get(s, "columns");
    if (cols) {
      if (!json_is_object(cols))
        return fm_error_set(err, FM_ERR_ARG, "%s: %s: \"columns\" must be an object",
                            c->path, ctx);
      const char *k;
      json_t *val;
      json_object_foreach(cols, k, val) {
        const char **slot = NULL;
        if (!strcmp(k, "id")) slot = &sp->col_id;
        else if (!strcmp(k, "name")) slot = &sp->col_name;
        else if (!strcmp(k, "description")) slot = &sp->col_description;
        else if (!strcmp(k, "type")) slot = &sp->col_type;
        else if (!strcmp(k, "category")) slot = &sp->col_category;
        else
          return fm_error_set(err, FM_ERR_ARG,
                              "%s: %s.columns: unknown key \"%s\" (want id, name, "
                              "description, type, category)", c->path, ctx, k);
        if ((rc = get_str(c, cols, k, ctx, 1, slot, err))) return rc;
      }
    }
  }
  return FM_OK;
}

/* A number in [lo, hi]; with whole set it must also be a whole number
 * ("dims": 64.5 is a typo, not something to round down silently). */
static fm_rc get_num(fm_config *c, json_t *obj, const char *key, double lo,
                     double hi, int whole, double *out, fm_error *err) {
  json_t *v = json_object_get(obj, key);
  if (!v) return FM_OK;
  if (!json_is_number(v))
    return fm_error_set(err, FM_ERR_ARG, "%s: model.%s must be a number", c->path, key);
  double d = json_number_value(v);
  if (d < lo || d > hi)
    return fm_error_set(err, FM_ERR_ARG, "%s: model.%s = %g is out of range [%g, %g]",
                        c->path, key, d, lo, hi);
  if (whole && d != (double)(int64_t)d) /* in range, so int64_t holds it */
    return fm_error_set(err, FM_ERR_ARG, "%s: model.%s = %g must be a whole number",
                        c->path, key, d);
  *out = d;
  return FM_OK;
}

/* An optional array of paths (resolved against dir) at root[key] into
 * *out / *n (owned by c: fm_config_free).  Present, it replaces what a base
 * config ("extends") set; absent, that stays. */
static fm_rc parse_paths(fm_config *c, json_t *root, const char *key, const char *dir,
                         char ***out, size_t *n, fm_error *err) {
  json_t *tp = json_object_get(root, key);
  if (!tp) return FM_OK;
  if (!json_is_array(tp))
    return fm_error_set(err, FM_ERR_ARG, "%s: \"%s\" must be an array of paths", c->path, key);
  fm_free(*out);
  *out = NULL;
  *n = json_array_size(tp);
  *out = fm_calloc(*n ? *n : 1, sizeof **out);
  if (!*out) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < *n; i++) {
    json_t *p = json_array_get(tp, i);
    if (!json_is_string(p))
      return fm_error_set(err, FM_ERR_ARG, "%s: %s[%zu] must be a string", c->path, key, i);
    char *full = fm_path_join(dir, json_string_value(p));
    (*out)[i] = full ? fm_arena_strdup(&c->arena, full) : NULL;
    fm_free(full);
    if (!(*out)[i]) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  return FM_OK;
}

static fm_rc parse_model(fm_config *c, json_t *m, fm_error *err) {
  fm_model_opts *o = &c->opts;
  if (!m) return FM_OK;
  if (!json_is_object(m))
    return fm_error_set(err, FM_ERR_ARG, "%s: \"model\" must be an object", c->path);
  static const char *known[] = {"dims", "seed", "power_iters", "oversample",
                                "candidates", "mine_min_support", "prose_min_count", "threads",
                                "weights", "calibration_folds", NULL};
  const char *k;
  json_t *val;
  json_object_foreach(m, k, val) {
    int ok = 0;
    for (int i = 0; known[i]; i++) ok |= !strcmp(known[i], k);
    if (!ok)
      return fm_error_set(err, FM_ERR_ARG, "%s: model: unknown key \"%s\"", c->path, k);
  }
  double d;
  fm_rc rc;
#define NUM(key, lo, hi, field, type)                                   \
  d = (double)o->field;                                                 \
  if ((rc = get_num(c, m, key, lo, hi, 1, &d, err))) return rc;         \
  o->field = (type)d;
  NUM("dims", 1, 4096, dims, int)
  NUM("seed", 0, 9007199254740992.0, seed, uint64_t)
  NUM("power_iters", 0, 50, power_iters, int)
  NUM("oversample", 0, 1000, oversample, int)
  NUM("candidates", 10, FM_MAX_CANDIDATES, candidates, int)
  NUM("mine_min_support", 1, 1000000, mine_min_support, uint32_t)
  NUM("prose_min_count", 0, 1000000, prose_min_count, uint32_t)
  NUM("threads", 0, 1024, threads, int)
#undef NUM
  d = c->calibration_folds;
  if ((rc = get_num(c, m, "calibration_folds", 0, 20, 1, &d, err))) return rc;
  if (d == 1)
    return fm_error_set(err, FM_ERR_ARG, "%s: model.calibration_folds must be 0 or 2..20",
                        c->path);
  c->calibration_folds = (int)d;
  json_t *w = json_object_get(m, "weights");
  if (w) {
    if (!json_is_object(w))
      return fm_error_set(err, FM_ERR_ARG, "%s: model.weights must be an object", c->path);
    json_object_foreach(w, k, val) {
      size_t i;
      for (i = 0; i < FM_NWEIGHTS; i++)
        if (!strcmp(fm_weight_fields[i].name, k)) break;
      if (i == FM_NWEIGHTS)
        return fm_error_set(err, FM_ERR_ARG, "%s: model.weights: unknown key \"%s\"",
                            c->path, k);
      d = *fm_weight_ptr(&o->w, i);
      if ((rc = get_num(c, w, k, 0, 100, 0, &d, err))) return rc;
      *fm_weight_ptr(&o->w, i) = (float)d;
    }
  }
  return FM_OK;
}

/* How many configs an "extends" chain may hold; more is taken for a cycle. */
#define FM_CONFIG_MAX_DEPTH 8

/* Parse the config at path into c, over what the configs it extends set:
 * first the base (its paths resolved against its own folder), then every
 * key of this file, which replaces the base's; "model" and "model.weights"
 * are merged key by key.  c->path names this file while its keys are
 * parsed, so every error names the file that holds the key. */
static fm_rc load_level(fm_config *c, const char *path, int depth, fm_error *err) {
  fm_rc rc = FM_OK;
  char *dir = NULL;
  json_error_t jerr;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
  c->path = fm_arena_strdup(&c->arena, path);
  if (!c->path) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); goto done; }
  if (!root) {
    fm_utf8_scrub(jerr.text); /* jansson may quote half a character */
    if (jerr.line < 1) /* not a JSON error: the file could not be read */
      rc = fm_error_set(err, FM_ERR_IO, "%s: %s", path, jerr.text);
    else
      rc = fm_error_set(err, FM_ERR_PARSE, "%s:%d: %s", path, jerr.line, jerr.text);
    goto done;
  }
  if (!json_is_object(root)) {
    rc = fm_error_set(err, FM_ERR_PARSE, "%s: the config must be a JSON object", path);
    goto done;
  }
  dir = fm_path_dirname(path);
  if (!dir) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); goto done; }
  static const char *const known[] = {"name", "extends", "reference", "query", "train_pairs",
                                      "abbreviations", "model", "calibration_pairs",
                                      "no_equivalent", "no_equivalent_weight", NULL};
  if ((rc = check_keys(c, root, "config", known, err))) goto done;
  const char *base;
  if ((rc = get_str(c, root, "extends", "config", 0, &base, err))) goto done;
  if (base) {
    if (depth + 1 >= FM_CONFIG_MAX_DEPTH) {
      rc = fm_error_set(err, FM_ERR_ARG,
                        "%s: \"extends\" chains more than %d configs (is there a cycle?)",
                        path, FM_CONFIG_MAX_DEPTH);
      goto done;
    }
    char *full = fm_path_join(dir, base);
    if (!full) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); goto done; }
    rc = load_level(c, full, depth + 1, err);
    fm_free(full);
    if (rc) {
      /* the base's error names the base; say which file extends it */
      fm_error_prefix(err, "%s: extends", path);
      goto done;
    }
    c->path = fm_arena_strdup(&c->arena, path);
    if (!c->path) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); goto done; }
  }
  const char *name;
  if ((rc = get_str(c, root, "name", "config", 0, &name, err))) goto done;
  if (name) c->name = (char *)name;
  if (json_object_get(root, "reference")) {
    fm_free(c->reference);
    c->reference = NULL;
    if ((rc = parse_sources(c, root, "reference", dir, &c->reference, &c->nreference, err)))
      goto done;
  }
  if (json_object_get(root, "query")) {
    fm_free(c->query);
    c->query = NULL;
    if ((rc = parse_sources(c, root, "query", dir, &c->query, &c->nquery, err))) goto done;
  }
  if ((rc = parse_paths(c, root, "train_pairs", dir, &c->train_pairs, &c->ntrain_pairs,
                        err)) ||
      (rc = parse_paths(c, root, "calibration_pairs", dir, &c->calibration_pairs,
                        &c->ncalibration_pairs, err)) ||
      (rc = parse_paths(c, root, "no_equivalent", dir, &c->no_equivalent, &c->nno_equivalent,
                        err)))
    goto done;
  json_t *nw = json_object_get(root, "no_equivalent_weight");
  if (nw && (!json_is_number(nw) || json_number_value(nw) < 0 || json_number_value(nw) > 100)) {
    rc = fm_error_set(err, FM_ERR_ARG, "%s: \"no_equivalent_weight\" must be a number from 0 to 100",
                      path);
    goto done;
  }
  if (nw) c->no_equivalent_weight = json_number_value(nw);
  const char *ab;
  if ((rc = get_str(c, root, "abbreviations", "config", 0, &ab, err))) goto done;
  if (ab) {
    char *full = fm_path_join(dir, ab);
    c->abbreviations = full ? fm_arena_strdup(&c->arena, full) : NULL;
    fm_free(full);
    if (!c->abbreviations) { rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory"); goto done; }
  }
  rc = parse_model(c, json_object_get(root, "model"), err);
done:
  json_decref(root);
  fm_free(dir);
  return rc;
}

fm_rc fm_config_load(const char *path, fm_config **out, fm_error *err) {
  *out = NULL;
  fm_config *c = fm_calloc(1, sizeof *c);
  if (!c) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  fm_arena_init(&c->arena);
  fm_model_opts_default(&c->opts);
  c->calibration_folds = 5;
  c->no_equivalent_weight = 1.0;
  fm_rc rc = load_level(c, path, 0, err);
  /* reference and query are required of the chain as a whole */
  if (rc == FM_OK && !c->nreference)
    rc = fm_error_set(err, FM_ERR_ARG, "%s: \"reference\" must be a non-empty array of sources",
                      path);
  if (rc == FM_OK && !c->nquery)
    rc = fm_error_set(err, FM_ERR_ARG, "%s: \"query\" must be a non-empty array of sources",
                      path);
  if (rc == FM_OK && !c->name) {
    c->name = fm_arena_strdup(&c->arena, "model");
    if (!c->name) rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  if (rc) fm_config_free(c);
  else *out = c;
  return rc;
}
