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
#include "fm_provision.h"
#include "fm_store_sql.h"

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
static void iso_at(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  char base[24];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, 32, "%s.000Z", base);
}

/* ---- datasets and the filter whitelist -------------------------------------- */

/* A filterable column: a requester's key maps to `column = ?`.  values,
 * when not NULL, is the NULL-terminated set of allowed values. */
typedef struct col_filter {
  const char *key;
  const char *column;
  const char *const *values;
} col_filter;

static const char *const map_status_values[] = {"proposed", "accepted", "rejected",
                                                "superseded", NULL};
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

typedef struct dataset {
  const char *name;
  const char *select;   /* "SELECT ... FROM t" (constant) */
  const char *order;    /* " ORDER BY ..." (constant) */
  const char *changed;  /* column changed_since compares with, or NULL */
  const col_filter *cols;
} dataset;

static const dataset datasets[] = {
    {"mappings", "SELECT * FROM mappings", " ORDER BY mapping_id", "decided_at", mapping_cols},
    {"candidates", "SELECT * FROM candidates",
     " ORDER BY batch_run_id, query_field_id, rank", NULL, candidate_cols},
    {"fields", "SELECT * FROM fields", " ORDER BY field_id", "updated_at", field_cols},
    {"snapshot", NULL, NULL, NULL, NULL},
};

static const dataset *find_dataset(const char *name) {
  for (size_t i = 0; name && i < sizeof datasets / sizeof datasets[0]; i++)
    if (!strcmp(datasets[i].name, name)) return &datasets[i];
  return NULL;
}

static const col_filter *find_col(const dataset *d, const char *key) {
  for (const col_filter *c = d->cols; c && c->key; c++)
    if (!strcmp(c->key, key)) return c;
  return NULL;
}

/* A filter value as text: strings (1..FM_PROV_MAX_VALUE bytes) and
 * integers only.  buf receives integers. */
static const char *value_text(json_t *v, char buf[32]) {
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
    const char *s = value_text(v, num);
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
      const col_filter *c = find_col(d, key);
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
  fm_rc rc = fm_store_prepare(st, "SELECT format FROM snapshot_jobs WHERE name = ?1", &s, err);
  if (rc) return rc;
  sqlite3_bind_text(s, 1, job, -1, SQLITE_STATIC);
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
  const dataset *d = find_dataset(dataset_name);
  if (!d)
    return fm_error_set(err, FM_ERR_ARG,
                        "unknown dataset '%s' (mappings, candidates, fields, snapshot)",
                        dataset_name ? dataset_name : "");
  if (format && fm_snapshot_format_parse(format) < 0)
    return fm_error_set(err, FM_ERR_ARG, "unknown format '%s' (csv.gz, jsonl.gz)", format);
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

static void copy_text(char *dst, size_t n, sqlite3_stmt *s, int col) {
  const char *t = (const char *)sqlite3_column_text(s, col);
  snprintf(dst, n, "%s", t ? t : "");
}

static char *dup_text(sqlite3_stmt *s, int col, int *oom) {
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
  copy_text(r->id, sizeof r->id, s, 0);
  copy_text(r->requester, sizeof r->requester, s, 1);
  copy_text(r->dataset, sizeof r->dataset, s, 2);
  r->filters = dup_text(s, 3, &oom);
  copy_text(r->format, sizeof r->format, s, 4);
  r->status = (fm_prov_status)fm_prov_status_parse((const char *)sqlite3_column_text(s, 5));
  r->rows = sqlite3_column_type(s, 6) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 6);
  r->bytes = sqlite3_column_type(s, 7) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 7);
  copy_text(r->sha256, sizeof r->sha256, s, 8);
  r->path = dup_text(s, 9, &oom);
  r->error = dup_text(s, 10, &oom);
  copy_text(r->created_at, sizeof r->created_at, s, 11);
  copy_text(r->started_at, sizeof r->started_at, s, 12);
  copy_text(r->finished_at, sizeof r->finished_at, s, 13);
  copy_text(r->expires_at, sizeof r->expires_at, s, 14);
  r->ttl_seconds = sqlite3_column_int64(s, 15);
  r->attempts = sqlite3_column_int(s, 16);
  if (oom || !r->filters) {
    fm_prov_request_free(r);
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory loading a provisioning request");
  }
  return FM_OK;
}

static int valid_id(const char *id) {
  if (!id || strlen(id) != FM_PROV_ID_LEN) return 0;
  for (const char *p = id; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
  return 1;
}

fm_rc fm_prov_get(fm_store *st, const char *id, fm_prov_request *out, fm_error *err) {
  memset(out, 0, sizeof *out);
  if (!valid_id(id))
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

char *fm_prov_file_path(const char *root, const fm_prov_request *r) {
  if (!root || !r->path) return NULL;
  return fm_path_join(root, r->path);
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
  sqlite3_stmt *s = NULL;
  fm_rc rc = fm_store_prepare(st,
                              "INSERT INTO provision_requests (id, requester, dataset, "
                              "filters, format, ttl_seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                              &s, err);
  if (rc) return rc;
  sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, c->requester, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, c->dataset, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 4, c->filters, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 5, c->format, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 6, c->ttl);
  int step = fm_store_step(st, s);
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "inserting a request");
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

/* ---- claim and finish -------------------------------------------------------- */

typedef struct claim_ctx {
  const char *id;
  int lease;
  int gave_up; /* out: too many attempts, marked failed */
} claim_ctx;

static fm_rc claim_tx(fm_store *st, void *arg, fm_error *err) {
  claim_ctx *c = arg;
  c->gave_up = 0;
  char now[32], lease[32];
  fm_store_now(now, sizeof now);
  iso_at((int64_t)time(NULL) + c->lease, lease);
  sqlite3_stmt *s = NULL;
  fm_rc rc = fm_store_prepare(
      st, "SELECT status, attempts, lease_expires FROM provision_requests WHERE id = ?1", &s,
      err);
  if (rc) return rc;
  sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
  int step = sqlite3_step(s);
  if (step != SQLITE_ROW) {
    rc = step == SQLITE_DONE
             ? fm_error_set(err, FM_ERR_NOTFOUND, "no provisioning request '%s'", c->id)
             : fm_store_steperr(st, step, err, "reading a request");
    sqlite3_finalize(s);
    return rc;
  }
  int status = fm_prov_status_parse((const char *)sqlite3_column_text(s, 0));
  int attempts = sqlite3_column_int(s, 1);
  const char *le = (const char *)sqlite3_column_text(s, 2);
  int claimable = status == FM_PROV_PENDING ||
                  (status == FM_PROV_RUNNING && (!le || strcmp(le, now) < 0));
  sqlite3_finalize(s);
  if (!claimable)
    return fm_error_set(err, FM_ERR_CONFLICT, "request %s is %s, not claimable", c->id,
                        fm_prov_status_name((fm_prov_status)status));
  const char *sql =
      attempts >= FM_PROV_MAX_ATTEMPTS
          ? "UPDATE provision_requests SET status = 'failed', finished_at = ?2,"
            " lease_expires = NULL, error = 'gave up after ' || attempts || ' attempts',"
            " expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ttl_seconds ||"
            " ' seconds') WHERE id = ?1"
          : "UPDATE provision_requests SET status = 'running', started_at = ?2,"
            " lease_expires = ?3, attempts = attempts + 1, error = NULL WHERE id = ?1";
  if ((rc = fm_store_prepare(st, sql, &s, err))) return rc;
  sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, now, -1, SQLITE_STATIC);
  if (attempts < FM_PROV_MAX_ATTEMPTS) sqlite3_bind_text(s, 3, lease, -1, SQLITE_STATIC);
  step = fm_store_step(st, s);
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "claiming a request");
  c->gave_up = attempts >= FM_PROV_MAX_ATTEMPTS;
  return FM_OK;
}

typedef struct finish_ctx {
  const char *id;
  int ok;
  const fm_snapshot_file *f;
  const char *path, *error;
} finish_ctx;

static fm_rc finish_tx(fm_store *st, void *arg, fm_error *err) {
  finish_ctx *c = arg;
  sqlite3_stmt *s = NULL;
  /* expires_at counts from now, the time the file became visible. */
  fm_rc rc = fm_store_prepare(
      st,
      "UPDATE provision_requests SET status = ?2, rows = ?3, bytes = ?4, sha256 = ?5,"
      " path = ?6, error = ?7, lease_expires = NULL,"
      " finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),"
      " expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ttl_seconds || ' seconds')"
      " WHERE id = ?1 AND status = 'running'",
      &s, err);
  if (rc) return rc;
  sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, c->ok ? "ready" : "failed", -1, SQLITE_STATIC);
  if (c->ok) {
    sqlite3_bind_int64(s, 3, (int64_t)c->f->rows);
    sqlite3_bind_int64(s, 4, (int64_t)c->f->bytes);
    sqlite3_bind_text(s, 5, c->f->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, c->path, -1, SQLITE_STATIC);
  } else {
    sqlite3_bind_text(s, 7, c->error, -1, SQLITE_STATIC);
  }
  int step = fm_store_step(st, s);
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "finishing a request");
  if (sqlite3_changes(fm_store_db(st)) != 1)
    return fm_error_set(err, FM_ERR_CONFLICT,
                        "request %s is no longer running (expired or recovered)", c->id);
  return FM_OK;
}

/* ---- writing a table dataset ------------------------------------------------- */

#define MAX_PARAMS (FM_PROV_MAX_FILTERS)

/* Build the SELECT and its parameters for dataset d and canonical filters
 * f.  vals holds the integer renderings (params point into it or into f). */
static fm_rc build_query(const dataset *d, json_t *f, fm_buf *sql, const char **params,
                         int *np, char vals[][32], fm_error *err) {
  *np = 0;
  if (fm_buf_puts(sql, d->select)) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  const char *key;
  json_t *v;
  json_object_foreach(f, key, v) {
    const char *column = NULL;
    const char *op = " = ";
    if (!strcmp(key, "changed_since")) {
      column = d->changed;
      op = " >= ";
    } else {
      const col_filter *c = find_col(d, key);
      column = c ? c->column : NULL;
    }
    const char *text = value_text(v, vals[*np]);
    if (!column || !text || *np >= MAX_PARAMS) /* validated at create: a bug */
      return fm_error_set(err, FM_ERR_INTERNAL, "stored filter '%s' is not valid", key);
    params[*np] = text;
    (*np)++;
    if (fm_buf_printf(sql, "%s%s%s?%d", *np == 1 ? " WHERE " : " AND ", column, op, *np))
      return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  if (fm_buf_puts(sql, d->order)) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  return FM_OK;
}

static fm_rc write_table(fm_store *st, const dataset *d, json_t *f, fm_snapshot_format fmt,
                         const char *path, fm_snapshot_file *out, fm_error *err) {
  fm_buf sql;
  fm_buf_init(&sql);
  const char *params[MAX_PARAMS];
  char vals[MAX_PARAMS][32];
  int np = 0;
  sqlite3 *rdb = NULL;
  fm_rc rc = build_query(d, f, &sql, params, &np, vals, err);
  if (rc) goto done;
  /* Read-only connection: even a bug in build_query cannot write. */
  if (sqlite3_open_v2(fm_store_path(st), &rdb, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    rc = fm_error_set(err, FM_ERR_DB, "%s: cannot open read-only: %s", fm_store_path(st),
                      rdb ? sqlite3_errmsg(rdb) : "out of memory");
    goto done;
  }
  sqlite3_busy_timeout(rdb, 5000);
  rc = fm_snapshot_write_sql_params(rdb, sql.buf, params, np, fmt, path, out, err);
done:
  sqlite3_close(rdb);
  fm_buf_free(&sql);
  return rc;
}

/* ---- writing a snapshot range ------------------------------------------------ *
 * The catalog's partitions of the job whose hour lies in [from, to], oldest
 * first, each checked against the SHA-256 the catalog recorded.  JSON Lines
 * parts are concatenated byte for byte (a concatenation of gzip members is
 * one valid gzip stream, RFC 1952 2.2).  CSV parts each start with a header
 * row: the first part is copied whole, every later one is decompressed,
 * its header compared with the first one's and dropped, and the rest
 * re-compressed as a new gzip member.  Rows come from the catalog. */

typedef struct cat_out {
  int fd;
  struct sha256_ctx sha;
  uint64_t bytes;
  const char *tmp;
} cat_out;

static fm_rc out_write(cat_out *o, const void *p, size_t n, fm_error *err) {
  const char *c = p;
  sha256_update(&o->sha, n, (const uint8_t *)p);
  o->bytes += n;
  while (n > 0) {
    ssize_t w = write(o->fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return fm_error_set(err, FM_ERR_IO, "%s: write failed: %s", o->tmp, strerror(errno));
    c += w;
    n -= (size_t)w;
  }
  return FM_OK;
}

static fm_rc copy_raw(cat_out *o, const char *path, fm_error *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fm_error_set(err, FM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  unsigned char buf[65536];
  ssize_t r;
  fm_rc rc = FM_OK;
  while (rc == FM_OK && (r = read(fd, buf, sizeof buf)) != 0) {
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      rc = fm_error_set(err, FM_ERR_IO, "%s: read failed: %s", path, strerror(errno));
      break;
    }
    rc = out_write(o, buf, (size_t)r, err);
  }
  close(fd);
  return rc;
}

/* Read a gzip'd CSV's header line (without the newline) into hdr. */
static fm_rc read_csv_header(gzFile g, const char *path, fm_buf *hdr, fm_error *err) {
  fm_buf_reset(hdr);
  int c;
  while ((c = gzgetc(g)) != -1 && c != '\n')
    if (fm_buf_putc(hdr, (char)c)) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  if (c == -1) return fm_error_set(err, FM_ERR_CORRUPT, "%s: no CSV header row", path);
  return FM_OK;
}

/* Append part `path` minus its header row as a new gzip member; its header
 * must equal first_hdr. */
static fm_rc copy_csv_body(cat_out *o, const char *path, const fm_buf *first_hdr,
                           fm_error *err) {
  gzFile g = gzopen(path, "rb");
  if (!g) return fm_error_set(err, FM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  fm_buf hdr;
  fm_buf_init(&hdr);
  z_stream z;
  memset(&z, 0, sizeof z);
  int z_live = 0;
  fm_rc rc = read_csv_header(g, path, &hdr, err);
  if (rc) goto done;
  if (hdr.len != first_hdr->len || memcmp(hdr.buf, first_hdr->buf, hdr.len) != 0) {
    rc = fm_error_set(err, FM_ERR_CONFLICT,
                      "%s: its columns differ from the first partition's; request the "
                      "partitions separately",
                      path);
    goto done;
  }
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    rc = fm_error_set(err, FM_ERR_NOMEM, "zlib init failed");
    goto done;
  }
  z_live = 1;
  unsigned char in[65536], outb[65536];
  int n, flush = Z_NO_FLUSH;
  do {
    n = gzread(g, in, sizeof in);
    if (n < 0) {
      int e;
      rc = fm_error_set(err, FM_ERR_CORRUPT, "%s: %s", path, gzerror(g, &e));
      goto done;
    }
    flush = n == 0 ? Z_FINISH : Z_NO_FLUSH;
    z.next_in = in;
    z.avail_in = (uInt)n;
    do {
      z.next_out = outb;
      z.avail_out = sizeof outb;
      deflate(&z, flush);
      if ((rc = out_write(o, outb, sizeof outb - z.avail_out, err))) goto done;
    } while (z.avail_out == 0);
  } while (flush != Z_FINISH);
done:
  if (z_live) deflateEnd(&z);
  gzclose(g);
  fm_buf_free(&hdr);
  return rc;
}

static fm_rc write_snapshot_range(fm_store *st, const char *root, json_t *f,
                                  fm_snapshot_format fmt, const char *path,
                                  fm_snapshot_file *out, fm_error *err) {
  const char *job = json_string_value(json_object_get(f, "job"));
  const char *from = json_string_value(json_object_get(f, "from"));
  const char *to = json_string_value(json_object_get(f, "to"));
  if (!job || !from || !to)
    return fm_error_set(err, FM_ERR_INTERNAL, "stored snapshot filters are not valid");
  sqlite3_stmt *s = NULL;
  /* Hours compare as "YYYY-MM-DDTHH"; from/to are "YYYY-MM-DDTHH:00:00Z". */
  fm_rc rc = fm_store_prepare(
      st,
      "SELECT location, format, rows, sha256, columns FROM catalog WHERE job = ?1"
      " AND dt || 'T' || printf('%02d', hr) BETWEEN substr(?2, 1, 13) AND substr(?3, 1, 13)"
      " ORDER BY dt, hr",
      &s, err);
  if (rc) return rc;
  sqlite3_bind_text(s, 1, job, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, from, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, to, -1, SQLITE_STATIC);
  fm_buf tmp, part, hdr;
  fm_buf_init(&tmp);
  fm_buf_init(&part);
  fm_buf_init(&hdr);
  cat_out o = {.fd = -1};
  char *dir = NULL;
  size_t nparts = 0;
  if (fm_buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid()) || !(dir = fm_path_dirname(path))) {
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    goto done;
  }
  o.tmp = tmp.buf;
  sha256_init(&o.sha);
  o.fd = open(tmp.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (o.fd < 0) {
    rc = fm_error_set(err, FM_ERR_IO, "%s: cannot create: %s", tmp.buf, strerror(errno));
    goto done;
  }
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    const char *loc = (const char *)sqlite3_column_text(s, 0);
    const char *pf = (const char *)sqlite3_column_text(s, 1);
    const char *want = (const char *)sqlite3_column_text(s, 3);
    if ((int)fmt != fm_snapshot_format_parse(pf)) {
      rc = fm_error_set(err, FM_ERR_CONFLICT, "partition %s is %s, the request is %s", loc,
                        pf, fm_snapshot_format_name(fmt));
      goto done;
    }
    fm_buf_reset(&part);
    if (fm_buf_printf(&part, "%s/%s/part-00000.%s", root, loc, pf)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      goto done;
    }
    char got[65];
    if ((rc = fm_file_sha256(part.buf, got, err))) goto done;
    if (strcmp(got, want ? want : "") != 0) {
      rc = fm_error_set(err, FM_ERR_CORRUPT, "%s: SHA-256 %s, the catalog says %s", part.buf,
                        got, want ? want : "(none)");
      goto done;
    }
    if (fmt == FM_SNAPSHOT_CSV_GZ && nparts > 0) {
      rc = copy_csv_body(&o, part.buf, &hdr, err);
    } else {
      if (fmt == FM_SNAPSHOT_CSV_GZ) { /* remember the first part's header */
        gzFile g = gzopen(part.buf, "rb");
        if (!g) {
          rc = fm_error_set(err, FM_ERR_IO, "%s: cannot open", part.buf);
          goto done;
        }
        rc = read_csv_header(g, part.buf, &hdr, err);
        gzclose(g);
        if (rc) goto done;
      }
      rc = copy_raw(&o, part.buf, err);
    }
    if (rc) goto done;
    if (nparts == 0 && !(out->schema_json = dup_text(s, 4, &(int){0}))) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      goto done;
    }
    out->rows += (uint64_t)sqlite3_column_int64(s, 2);
    nparts++;
  }
  if (step != SQLITE_DONE) {
    rc = fm_store_steperr(st, step, err, "reading the catalog");
    goto done;
  }
  if (nparts == 0) {
    rc = fm_error_set(err, FM_ERR_NOTFOUND,
                      "no succeeded partition of snapshot job '%s' from %s to %s", job, from,
                      to);
    goto done;
  }
  if (fsync(o.fd) != 0 || close(o.fd) != 0) {
    o.fd = -1;
    rc = fm_error_set(err, FM_ERR_IO, "%s: fsync/close failed: %s", tmp.buf, strerror(errno));
    goto done;
  }
  o.fd = -1;
  if (rename(tmp.buf, path) != 0) {
    rc = fm_error_set(err, FM_ERR_IO, "%s: cannot rename to %s: %s", tmp.buf, path,
                      strerror(errno));
    goto done;
  }
  {
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
  }
  out->bytes = o.bytes;
  uint8_t dg[SHA256_DIGEST_SIZE];
  sha256_digest(&o.sha, sizeof dg, dg);
  fm_hex(dg, sizeof dg, out->sha256);
done:
  if (o.fd >= 0) close(o.fd);
  if (rc != FM_OK) {
    if (tmp.buf) unlink(tmp.buf);
    fm_snapshot_file_free(out);
    out->rows = out->bytes = 0;
  }
  sqlite3_finalize(s);
  fm_buf_free(&tmp);
  fm_buf_free(&part);
  fm_buf_free(&hdr);
  fm_free(dir);
  return rc;
}

/* ---- materialize ------------------------------------------------------------- */

fm_rc fm_prov_materialize(fm_store *st, const char *root, const char *id, int lease_seconds,
                          fm_error *err) {
  if (!root || !*root) return fm_error_set(err, FM_ERR_ARG, "no provisioning root");
  if (!valid_id(id))
    return fm_error_set(err, FM_ERR_NOTFOUND, "no provisioning request '%s'", id ? id : "");
  claim_ctx cc = {id, lease_seconds > 0 ? lease_seconds : 600, 0};
  fm_rc rc = fm_store_tx(st, claim_tx, &cc, err);
  if (rc) return rc;
  if (cc.gave_up)
    return fm_error_set(err, FM_ERR_INTERNAL, "request %s: gave up after %d attempts", id,
                        FM_PROV_MAX_ATTEMPTS);
  fm_prov_request r;
  if ((rc = fm_prov_get(st, id, &r, err))) return rc;
  fm_error e;
  fm_error_init(&e);
  fm_snapshot_file f;
  memset(&f, 0, sizeof f);
  fm_buf rel, dir, path;
  fm_buf_init(&rel);
  fm_buf_init(&dir);
  fm_buf_init(&path);
  json_t *filters = json_loads(r.filters, 0, NULL);
  const dataset *d = find_dataset(r.dataset);
  int fmt = fm_snapshot_format_parse(r.format);
  fm_rc wrc;
  if (!filters || !d || fmt < 0) {
    wrc = fm_error_set(&e, filters ? FM_ERR_INTERNAL : FM_ERR_NOMEM,
                       "request %s: stored dataset, format or filters are not valid", id);
  } else if (fm_buf_printf(&rel, "provision/%s.%s", r.id, r.format) ||
             fm_buf_printf(&dir, "%s/provision", root) ||
             fm_buf_printf(&path, "%s/%s", root, rel.buf)) {
    wrc = fm_error_set(&e, FM_ERR_NOMEM, "out of memory");
  } else if ((wrc = fm_mkdirs(dir.buf, &e)) == FM_OK) {
    wrc = d->cols ? write_table(st, d, filters, (fm_snapshot_format)fmt, path.buf, &f, &e)
                  : write_snapshot_range(st, root, filters, (fm_snapshot_format)fmt,
                                         path.buf, &f, &e);
  }
  finish_ctx fc = {id, wrc == FM_OK, &f, rel.buf, e.msg};
  fm_error ferr;
  fm_error_init(&ferr);
  rc = fm_store_tx(st, finish_tx, &fc, &ferr);
  if (rc != FM_OK && wrc == FM_OK) unlink(path.buf); /* never a file without a ready row */
  if (wrc != FM_OK) {
    fm_error_set(err, wrc, "request %s: %s", id, e.msg);
    rc = wrc;
  } else if (rc != FM_OK) {
    fm_error_set(err, rc, "%s", ferr.msg);
  }
  json_decref(filters);
  fm_snapshot_file_free(&f);
  fm_prov_request_free(&r);
  fm_buf_free(&rel);
  fm_buf_free(&dir);
  fm_buf_free(&path);
  return rc;
}

fm_rc fm_prov_run_next(fm_store *st, const char *root, int lease_seconds, int *did,
                       fm_error *err) {
  if (did) *did = 0;
  /* A few tries: another worker may claim the one we picked first. */
  for (int tries = 0; tries < 8; tries++) {
    char now[32], id[FM_PROV_ID_LEN + 1] = "";
    fm_store_now(now, sizeof now);
    sqlite3_stmt *s = NULL;
    fm_rc rc = fm_store_prepare(st,
                                "SELECT id FROM provision_requests WHERE status = 'pending'"
                                " OR (status = 'running' AND lease_expires < ?1)"
                                " ORDER BY created_at, id LIMIT 1",
                                &s, err);
    if (rc) return rc;
    sqlite3_bind_text(s, 1, now, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) copy_text(id, sizeof id, s, 0);
    sqlite3_finalize(s);
    if (step == SQLITE_DONE) return FM_OK;
    if (step != SQLITE_ROW) return fm_store_steperr(st, step, err, "finding pending requests");
    fm_error e;
    fm_error_init(&e);
    rc = fm_prov_materialize(st, root, id, lease_seconds, &e);
    if (rc == FM_ERR_CONFLICT && strstr(e.msg, "not claimable")) continue;
    if (did) *did = 1;
    if (rc) fm_error_set(err, rc, "%s", e.msg);
    return rc;
  }
  return FM_OK;
}

/* ---- recovery and expiry ----------------------------------------------------- */

typedef struct count_ctx {
  const char *sql;
  const char *arg;
  size_t n;
} count_ctx;

static fm_rc exec_count_tx(fm_store *st, void *arg, fm_error *err) {
  count_ctx *c = arg;
  c->n = 0;
  sqlite3_stmt *s = NULL;
  fm_rc rc = fm_store_prepare(st, c->sql, &s, err);
  if (rc) return rc;
  if (c->arg) sqlite3_bind_text(s, 1, c->arg, -1, SQLITE_STATIC);
  int step = fm_store_step(st, s);
  sqlite3_finalize(s);
  if (step != SQLITE_DONE) return fm_store_steperr(st, step, err, "updating requests");
  c->n = (size_t)sqlite3_changes(fm_store_db(st));
  return FM_OK;
}

fm_rc fm_prov_recover(fm_store *st, size_t *n, fm_error *err) {
  count_ctx c = {"UPDATE provision_requests SET status = 'pending', lease_expires = NULL"
                 " WHERE status = 'running'",
                 NULL, 0};
  fm_rc rc = fm_store_tx(st, exec_count_tx, &c, err);
  if (n) *n = rc ? 0 : c.n;
  return rc;
}

typedef struct expire_ctx {
  const char *id;
  int changed;
} expire_ctx;

static fm_rc expire_one_tx(fm_store *st, void *arg, fm_error *err) {
  expire_ctx *c = arg;
  count_ctx cc = {"UPDATE provision_requests SET status = 'expired', path = NULL"
                  " WHERE id = ?1 AND status IN ('ready','failed')",
                  c->id, 0};
  fm_rc rc = exec_count_tx(st, &cc, err);
  c->changed = (int)cc.n;
  if (rc == FM_OK && cc.n)
    rc = fm_store_audit(st, "provisioning", "provision_expire", "provision_request", c->id,
                        NULL, NULL, err);
  return rc;
}

fm_rc fm_prov_expire(fm_store *st, const char *root, int64_t now, size_t *n, fm_error *err) {
  if (n) *n = 0;
  if (!root || !*root) return fm_error_set(err, FM_ERR_ARG, "no provisioning root");
  char at[32];
  iso_at(now, at);
  sqlite3_stmt *s = NULL;
  fm_rc rc = fm_store_prepare(st,
                              "SELECT id, path FROM provision_requests WHERE status IN"
                              " ('ready','failed') AND expires_at <= ?1 ORDER BY expires_at",
                              &s, err);
  if (rc) return rc;
  sqlite3_bind_text(s, 1, at, -1, SQLITE_STATIC);
  /* Collect first: the updates need the write lock, not an open read. */
  typedef struct item {
    char id[FM_PROV_ID_LEN + 1];
    char *path;
  } item;
  item *v = NULL;
  size_t nv = 0, cap = 0;
  int step;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    if (fm_grow((void **)&v, &cap, nv + 1, sizeof *v)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      break;
    }
    copy_text(v[nv].id, sizeof v[nv].id, s, 0);
    const char *p = (const char *)sqlite3_column_text(s, 1);
    v[nv].path = p ? fm_path_join(root, p) : NULL;
    if (p && !v[nv].path) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      break;
    }
    nv++;
  }
  if (rc == FM_OK && step != SQLITE_DONE)
    rc = fm_store_steperr(st, step, err, "finding expired requests");
  sqlite3_finalize(s);
  for (size_t i = 0; rc == FM_OK && i < nv; i++) {
    if (v[i].path && unlink(v[i].path) != 0 && errno != ENOENT) {
      rc = fm_error_set(err, FM_ERR_IO, "cannot remove %s: %s", v[i].path, strerror(errno));
      break;
    }
    expire_ctx c = {v[i].id, 0};
    if ((rc = fm_store_tx(st, expire_one_tx, &c, err))) break;
    if (n) *n += (size_t)c.changed;
  }
  for (size_t i = 0; i < nv; i++) fm_free(v[i].path);
  fm_free(v);
  return rc;
}
