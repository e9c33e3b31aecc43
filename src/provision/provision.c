/* provision.c: provisioning requests (fm_provision.h, docs/provision.md).
 *
 * A request row moves pending -> running -> ready | failed -> expired.
 * Every write is one fm_store_tx (bounded BUSY retries; bodies re-run, so
 * they keep no state across attempts).  The dataset is written by the
 * snapshot writer from a SELECT assembled here out of constant strings; a
 * requester's filter values only ever reach SQLite as bound parameters.
 *
 * Dataset "snapshot" reads no table: it concatenates the catalog's
 * partitions of one job in an hour range (see concat_partitions). */
#include "prov_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static const char *const status_names[] = {NULL, "pending", "running", "ready", "failed",
                                           "expired"};

const char *fm_prov_status_name(fm_prov_status s) {
  return s >= FM_PROV_PENDING && s <= FM_PROV_EXPIRED ? status_names[s] : "unknown";
}

int fm_prov_status_parse(const char *s) {
  for (int i = FM_PROV_PENDING; s && i <= FM_PROV_EXPIRED; i++)
    if (!strcmp(s, status_names[i])) return i;
  return -1;
}

/* The store's timestamp form for Unix time t ("...T..:..:...000Z"). */
void fm_prov_iso_at(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  char base[24];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, 32, "%s.000Z", base);
}

/* ---- datasets and the filter whitelist -------------------------------------- */

static const char *const map_status_values[] = {"proposed", "accepted", "rejected",
                                                "superseded", "no_equivalent", NULL};
static const char *const origin_values[] = {"model", "analyst", "import", NULL};
static const char *const flag_values[] = {"field_changed", "field_removed", NULL};
static const char *const role_values[] = {"query", "reference", NULL};
static const char *const field_status_values[] = {"active", "removed", NULL};

static const col_filter mapping_cols[] = {
    {"status", "status", map_status_values},
    {"origin", "origin", origin_values},
    {"flag", "flag", flag_values},
    {"mapping_key", "mapping_key", NULL},
    {"query_field_id", "query_field_id", NULL},
    {"ref_field_id", "ref_field_id", NULL},
    {"batch_run_id", "batch_run_id", NULL},
    {"decided_by", "decided_by", NULL},
    {NULL, NULL, NULL}};
static const col_filter candidate_cols[] = {
    {"batch_run_id", "batch_run_id", NULL}, {"query_field_id", "query_field_id", NULL},
    {"ref_field_id", "ref_field_id", NULL}, {"model_run_id", "model_run_id", NULL},
    {"rank", "rank", NULL},                 {NULL, NULL, NULL}};
static const col_filter field_cols[] = {
    {"status", "status", field_status_values},
    {"role", "role", role_values},
    {"vendor", "vendor", NULL},
    {"id", "id", NULL},
    {"category", "category", NULL},
    {"type", "type", NULL},
    {"dict_id", "dict_id", NULL},
    {NULL, NULL, NULL}};

static const dataset datasets[] = {
    {"mappings", "SELECT * FROM mappings", " ORDER BY mapping_id", "decided_at", mapping_cols},
    {"candidates", "SELECT * FROM candidates",
     " ORDER BY batch_run_id, query_field_id, rank", NULL, candidate_cols},
    {"fields", "SELECT * FROM fields", " ORDER BY field_id", "updated_at", field_cols},
    {"snapshot", NULL, NULL, NULL, NULL},
};

const dataset *fm_prov_find_dataset(const char *name) {
  for (size_t i = 0; name && i < sizeof datasets / sizeof datasets[0]; i++)
    if (!strcmp(datasets[i].name, name)) return &datasets[i];
  return NULL;
}

const col_filter *fm_prov_find_col(const dataset *d, const char *key) {
  for (const col_filter *c = d->cols; c && c->key; c++)
    if (!strcmp(c->key, key)) return c;
  return NULL;
}

/* A filter value as text: strings (1..FM_PROV_MAX_VALUE bytes) and
 * integers only.  buf receives integers. */
const char *fm_prov_value_text(json_t *v, char buf[32]) {
  if (json_is_string(v)) {
    size_t n = json_string_length(v);
    return n >= 1 && n <= FM_PROV_MAX_VALUE ? json_string_value(v) : NULL;
  }
  if (json_is_integer(v)) {
    snprintf(buf, 32, "%lld", (long long)json_integer_value(v));
    return buf;
  }
  return NULL;
}

static int in_set(const char *const *set, const char *s) {
  for (; *set; set++)
    if (!strcmp(*set, s)) return 1;
  return 0;
}

/* Check a parsed filters object against dataset d; fills canon (a new
 * object with normalized values).  For "snapshot": job, from, to. */
static fm_rc check_filters(const dataset *d, json_t *f, json_t *canon, fm_error *err) {
  if (!json_is_object(f))
    return fm_error_set(err, FM_ERR_ARG, "filters must be a JSON object");
  if (json_object_size(f) > FM_PROV_MAX_FILTERS)
    return fm_error_set(err, FM_ERR_ARG, "at most %d filters", FM_PROV_MAX_FILTERS);
  const char *key;
  json_t *v;
  json_object_foreach(f, key, v) {
    char num[32];
    const char *s = fm_prov_value_text(v, num);
    if (!s)
      return fm_error_set(err, FM_ERR_ARG,
                          "filter '%s': the value must be a string (1..%d bytes) or an "
                          "integer",
                          key, FM_PROV_MAX_VALUE);
    json_t *nv = NULL;
    if (!d->cols) { /* snapshot */
      if (!strcmp(key, "job")) {
        nv = json_string(s);
      } else if (!strcmp(key, "from") || !strcmp(key, "to")) {
        int64_t h;
        fm_error e;
        fm_error_init(&e);
        if (fm_snapshot_parse_hour(s, &h, &e))
          return fm_error_set(err, FM_ERR_ARG, "filter '%s': %s", key, e.msg);
        char hs[32];
        fm_snapshot_hour_str(h, hs);
        nv = json_string(hs);
      } else {
        return fm_error_set(err, FM_ERR_ARG,
                            "unknown filter '%s' for dataset snapshot (job, from, to)", key);
      }
    } else if (!strcmp(key, "changed_since")) {
      char t[32];
      if (!d->changed)
        return fm_error_set(err, FM_ERR_ARG, "dataset %s has no changed_since filter",
                            d->name);
      if (fm_store_time_normalize(s, t, sizeof t))
        return fm_error_set(err, FM_ERR_ARG,
                            "filter 'changed_since': '%s' is not YYYY-MM-DD[THH:MM[:SS]][Z]",
                            s);
      nv = json_string(t);
    } else {
      const col_filter *c = fm_prov_find_col(d, key);
      if (!c) {
        char names[256] = "";
        size_t off = 0;
        for (const col_filter *x = d->cols; x->key; x++)
          off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", off ? ", " : "",
                                  x->key);
        return fm_error_set(err, FM_ERR_ARG, "unknown filter '%s' for dataset %s (%s%s)",
                            key, d->name, names, d->changed ? ", changed_since" : "");
      }
      if (c->values && !in_set(c->values, s))
        return fm_error_set(err, FM_ERR_ARG, "filter '%s': '%s' is not a valid value", key,
                            s);
      nv = json_is_integer(v) ? json_integer(json_integer_value(v)) : json_string(s);
    }
    if (!nv || json_object_set_new(canon, key, nv))
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  if (!d->cols) {
    if (!json_object_get(canon, "job") || !json_object_get(canon, "from") ||
        !json_object_get(canon, "to"))
      return fm_error_set(err, FM_ERR_ARG,
                          "dataset snapshot needs the filters job, from and to");
    if (strcmp(json_string_value(json_object_get(canon, "from")),
               json_string_value(json_object_get(canon, "to"))) > 0)
      return fm_error_set(err, FM_ERR_ARG, "filter 'from' is after 'to'");
  }
  return FM_OK;
}

/* The snapshot job's format, or FM_ERR_ARG when there is no such job. */
static fm_rc snapshot_job_format(fm_store *st, const char *job, char fmt[16], fm_error *err) {
  sqlite3_stmt *s = NULL;
  fm_rc rc = fm_store_query(st, &s, err,
                            "SELECT format FROM snapshot_jobs WHERE name = ?1",
                            "t", job);
  if (rc) return rc;
  int step = sqlite3_step(s);
  if (step == SQLITE_ROW)
    snprintf(fmt, 16, "%s", (const char *)sqlite3_column_text(s, 0));
  else if (step == SQLITE_DONE)
    rc = fm_error_set(err, FM_ERR_ARG, "filter 'job': no snapshot job '%s'", job);
  else
    rc = fm_store_steperr(st, step, err, "reading snapshot_jobs");
  sqlite3_finalize(s);
  return rc;
}

/* Validate; *canon_out (optional) gets the canonical filters; fmt_out
 * (optional) the effective format. */
static fm_rc validate(fm_store *st, const char *dataset_name, const char *filters_json,
                      const char *format, char **canon_out, char fmt_out[16], fm_error *err) {
  if (canon_out) *canon_out = NULL;
  const dataset *d = fm_prov_find_dataset(dataset_name);
  if (!d)
    return fm_error_set(err, FM_ERR_ARG,
                        "unknown dataset '%s' (mappings, candidates, fields, snapshot)",
                        dataset_name ? dataset_name : "");
  if (format && fm_snapshot_format_parse(format) < 0)
    return fm_error_set(err, FM_ERR_ARG, "unknown format '%s' (csv.gz, jsonl.gz, parquet)", format);
  json_t *f = NULL, *canon = json_object();
  if (!canon) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  fm_rc rc = FM_OK;
  if (filters_json && *filters_json) {
    json_error_t je;
    f = json_loads(filters_json, JSON_REJECT_DUPLICATES, &je);
    if (!f) {
      rc = fm_error_set(err, FM_ERR_ARG, "filters are not JSON: %s", je.text);
      goto done;
    }
  } else if (!(f = json_object())) {
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    goto done;
  }
  if ((rc = check_filters(d, f, canon, err))) goto done;
  char fmt[16];
  snprintf(fmt, sizeof fmt, "%s", format ? format : "csv.gz");
  if (!d->cols && st) {
    char jf[16];
    if ((rc = snapshot_job_format(st, json_string_value(json_object_get(canon, "job")), jf,
                                  err)))
      goto done;
    if (format && strcmp(format, jf) != 0) {
      rc = fm_error_set(err, FM_ERR_ARG, "snapshot job '%s' is written as %s, not %s",
                        json_string_value(json_object_get(canon, "job")), jf, format);
      goto done;
    }
    snprintf(fmt, sizeof fmt, "%s", jf);
  }
  if (fmt_out) snprintf(fmt_out, 16, "%s", fmt);
  if (canon_out) {
    char *text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
    *canon_out = text ? fm_strdup(text) : NULL;
    free(text);
    if (!*canon_out) rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
done:
  json_decref(f);
  json_decref(canon);
  return rc;
}

fm_rc fm_prov_validate(fm_store *st, const char *dataset_name, const char *filters_json,
                       const char *format, char **canon, fm_error *err) {
  return validate(st, dataset_name, filters_json, format, canon, NULL, err);
}

/* ---- rows -------------------------------------------------------------------- */

void fm_prov_request_free(fm_prov_request *r) {
  if (!r) return;
  fm_free(r->filters);
  fm_free(r->path);
  fm_free(r->error);
  r->filters = r->path = r->error = NULL;
}

#define ROW_COLUMNS                                                                   \
  "id, requester, dataset, filters, format, status, rows, bytes, sha256, path, error, " \
  "created_at, started_at, finished_at, expires_at, ttl_seconds, attempts"

void fm_prov_copy_text(char *dst, size_t n, sqlite3_stmt *s, int col) {
  const char *t = (const char *)sqlite3_column_text(s, col);
  snprintf(dst, n, "%s", t ? t : "");
}

char *fm_prov_dup_text(sqlite3_stmt *s, int col, int *oom) {
  const char *t = (const char *)sqlite3_column_text(s, col);
  if (!t) return NULL;
  char *d = fm_strdup(t);
  if (!d) *oom = 1;
  return d;
}

/* Fill r from a row of ROW_COLUMNS; FM_ERR_NOMEM leaves r freed. */
static fm_rc load_row(sqlite3_stmt *s, fm_prov_request *r, fm_error *err) {
  memset(r, 0, sizeof *r);
  int oom = 0;
  fm_prov_copy_text(r->id, sizeof r->id, s, 0);
  fm_prov_copy_text(r->requester, sizeof r->requester, s, 1);
  fm_prov_copy_text(r->dataset, sizeof r->dataset, s, 2);
  r->filters = fm_prov_dup_text(s, 3, &oom);
  fm_prov_copy_text(r->format, sizeof r->format, s, 4);
  r->status = (fm_prov_status)fm_prov_status_parse((const char *)sqlite3_column_text(s, 5));
  r->rows = sqlite3_column_type(s, 6) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 6);
  r->bytes = sqlite3_column_type(s, 7) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 7);
  fm_prov_copy_text(r->sha256, sizeof r->sha256, s, 8);
  r->path = fm_prov_dup_text(s, 9, &oom);
  r->error = fm_prov_dup_text(s, 10, &oom);
  fm_prov_copy_text(r->created_at, sizeof r->created_at, s, 11);
  fm_prov_copy_text(r->started_at, sizeof r->started_at, s, 12);
  fm_prov_copy_text(r->finished_at, sizeof r->finished_at, s, 13);
  fm_prov_copy_text(r->expires_at, sizeof r->expires_at, s, 14);
  r->ttl_seconds = sqlite3_column_int64(s, 15);
  r->attempts = sqlite3_column_int(s, 16);
  if (oom || !r->filters) {
    fm_prov_request_free(r);
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory loading a provisioning request");
  }
  return FM_OK;
}

int fm_prov_valid_id(const char *id) {
  if (!id || strlen(id) != FM_PROV_ID_LEN) return 0;
  for (const char *p = id; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
  return 1;
}

fm_rc fm_prov_get(fm_store *st, const char *id, fm_prov_request *out, fm_error *err) {
  memset(out, 0, sizeof *out);
  if (!fm_prov_valid_id(id))
    return fm_error_set(err, FM_ERR_NOTFOUND, "no provisioning request '%s'", id ? id : "");
  sqlite3_stmt *s = NULL;
  fm_rc rc = fm_store_prepare(
      st, "SELECT " ROW_COLUMNS " FROM provision_requests WHERE id = ?1", &s, err);
  if (rc) return rc;
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  int step = sqlite3_step(s);
  if (step == SQLITE_ROW)
    rc = load_row(s, out, err);
  else if (step == SQLITE_DONE)
    rc = fm_error_set(err, FM_ERR_NOTFOUND, "no provisioning request '%s'", id);
  else
    rc = fm_store_steperr(st, step, err, "reading provision_requests");
  sqlite3_finalize(s);
  return rc;
}

void fm_prov_list_free(fm_prov_request *v, size_t n) {
  for (size_t i = 0; v && i < n; i++) fm_prov_request_free(&v[i]);
  fm_free(v);
}

fm_rc fm_prov_list(fm_store *st, const char *requester, int limit, fm_prov_request **out,
                   size_t *n, fm_error *err) {
  *out = NULL;
  *n = 0;
  sqlite3_stmt *s = NULL;
  fm_rc rc = fm_store_prepare(st,
                              "SELECT " ROW_COLUMNS " FROM provision_requests"
                              " WHERE ?1 IS NULL OR requester = ?1"
                              " ORDER BY created_at DESC, id LIMIT ?2",
                              &s, err);
  if (rc) return rc;
  if (requester) sqlite3_bind_text(s, 1, requester, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, limit > 0 ? limit : 100);
  size_t cap = 0;
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    if (fm_grow((void **)out, &cap, *n + 1, sizeof **out)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory listing requests");
      break;
    }
    if ((rc = load_row(s, &(*out)[*n], err))) break;
    (*n)++;
  }
  if (rc == FM_OK && step != SQLITE_DONE)
    rc = fm_store_steperr(st, step, err, "listing provision_requests");
  sqlite3_finalize(s);
  return rc;
}

json_t *fm_prov_request_json(const fm_prov_request *r) {
  json_t *f = r->filters ? json_loads(r->filters, 0, NULL) : NULL;
#define OPT(s) ((s)[0] ? (s) : NULL)
  json_t *j = json_pack(
      "{s:s,s:s,s:s,s:o,s:s,s:s,s:o,s:o,s:s?,s:s?,s:s,s:s?,s:s?,s:s?}", "id", r->id,
      "requester", r->requester, "dataset", r->dataset, "filters", f ? f : json_object(),
      "format", r->format, "status", fm_prov_status_name(r->status), "rows",
      r->rows >= 0 ? json_integer(r->rows) : json_null(), "bytes",
      r->bytes >= 0 ? json_integer(r->bytes) : json_null(), "sha256", OPT(r->sha256),
      "error", r->error, "created_at", r->created_at, "started_at", OPT(r->started_at),
      "finished_at", OPT(r->finished_at), "expires_at", OPT(r->expires_at));
#undef OPT
  return j;
}

char *fm_prov_dir(const char *root) {
  if (!root) return NULL;
  size_t n = strlen(root);
  while (n > 1 && root[n - 1] == '/') n--;
  fm_buf b;
  fm_buf_init(&b);
  if (fm_buf_append(&b, root, n) || fm_buf_puts(&b, ".provision")) {
    fm_buf_free(&b);
    return NULL;
  }
  return b.buf;
}

char *fm_prov_resolve(const char *root, const char *stored) {
  if (!root || !stored) return NULL;
  if (strchr(stored, '/')) return fm_path_join(root, stored); /* the old layout */
  char *dir = fm_prov_dir(root);
  char *p = dir ? fm_path_join(dir, stored) : NULL;
  fm_free(dir);
  return p;
}

char *fm_prov_file_path(const char *root, const fm_prov_request *r) {
  return fm_prov_resolve(root, r->path);
}

/* ---- create ------------------------------------------------------------------ */

static fm_rc random_id(char id[FM_PROV_ID_LEN + 1], fm_error *err) {
  uint8_t b[FM_PROV_ID_LEN / 2];
  fm_rc rc = fm_random_bytes(b, sizeof b, err);
  if (!rc) fm_hex(b, sizeof b, id);
  return rc;
}

typedef struct create_ctx {
  const char *id, *requester, *dataset, *filters, *format;
  int64_t ttl;
} create_ctx;

static fm_rc create_tx(fm_store *st, void *arg, fm_error *err) {
  create_ctx *c = arg;
  fm_rc rc = fm_store_run(st, "inserting a request", NULL, err,
                          "INSERT INTO provision_requests (id, requester, dataset, "
                          "filters, format, ttl_seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                          "ttttti", c->id, c->requester, c->dataset, c->filters, c->format,
                          (int64_t)c->ttl);
  if (rc) return rc;
  fm_buf after;
  fm_buf_init(&after);
  if (fm_buf_printf(&after, "{\"dataset\":\"%s\",\"format\":\"%s\",\"filters\":%s}",
                    c->dataset, c->format, c->filters)) {
    fm_buf_free(&after);
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  rc = fm_store_audit(st, c->requester, "provision_request", "provision_request", c->id,
                      NULL, after.buf, err);
  fm_buf_free(&after);
  return rc;
}

fm_rc fm_prov_create(fm_store *st, const char *requester, const char *dataset_name,
                     const char *filters_json, const char *format, int64_t ttl_seconds,
                     char id[FM_PROV_ID_LEN + 1], fm_error *err) {
  id[0] = '\0';
  if (!requester || !*requester || strlen(requester) > FM_TOKEN_OWNER_MAX)
    return fm_error_set(err, FM_ERR_ARG, "the requester must be 1..%d bytes",
                        FM_TOKEN_OWNER_MAX);
  char *canon = NULL, fmt[16];
  fm_rc rc = validate(st, dataset_name, filters_json, format, &canon, fmt, err);
  if (rc) return rc;
  char nid[FM_PROV_ID_LEN + 1];
  if ((rc = random_id(nid, err))) {
    fm_free(canon);
    return rc;
  }
  create_ctx c = {nid, requester, dataset_name, canon, fmt,
                  ttl_seconds > 0 ? ttl_seconds : FM_PROV_DEFAULT_TTL};
  rc = fm_store_tx(st, create_tx, &c, err);
  fm_free(canon);
  if (rc == FM_OK) memcpy(id, nid, sizeof nid);
  return rc;
}

