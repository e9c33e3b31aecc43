/* gql_schema.c: fieldmatch's GraphQL schema (api/schema.graphql,
 * docs/graphql.md) and its resolvers, over the same public functions the
 * REST handlers call: snapshot jobs and their catalog partitions
 * (fm_snapshot_jobs_json, fm_snapshot_catalog_json), provisioning requests
 * (fm_prov_list / get / create: a reader sees their own, an admin all),
 * fields of the served model (fm_http_search, as GET /v1/fields) and the
 * curated mappings (fm_store_export, as GET /v1/mappings).
 *
 * Values: a resolver returns a JSON object whose members are named like
 * the GraphQL fields (camelCase), so nested fields need no resolver.
 * The schema is built once per process and shared (immutable). */
#include "http_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fm_graphql.h"
#include "fm_provision.h"
#include "fm_snapshot.h"

#define FIELDS_MAX_FIRST 200
#define FIELDS_MAX_OFFSET 100000
#define MAPPINGS_MAX_LIMIT 1000
#define PROV_MAX_LIMIT 1000

/* ---- helpers ---------------------------------------------------------------- */

static fm_rc nomem(fm_error *err) { return fm_error_set(err, FM_ERR_NOMEM, "out of memory"); }

/* A copy of o with snake_case member names in camelCase (new reference;
 * NULL when out of memory). */
static json_t *camel(const json_t *o) {
  json_t *r = json_object();
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)o, k, v) {
    char name[64];
    size_t n = 0;
    for (const char *p = k; *p && n + 1 < sizeof name; p++) {
      if (*p == '_' && p[1]) name[n++] = (char)toupper((unsigned char)*++p);
      else name[n++] = *p;
    }
    name[n] = '\0';
    if (!r || json_object_set(r, name, v)) {
      json_decref(r);
      return NULL;
    }
  }
  return r;
}

static fm_rc store_of(const fm_gql_resolve_info *info, fm_store **st, fm_error *err) {
  fm_http_req *r = info->ctx;
  if (!fm_http_server_has_db(r->srv))
    return fm_error_set(err, FM_ERR_ARG, "the server runs without a database");
  fm_http_worker *w = fm_http_worker_get(r->srv, err);
  if (!w) return FM_ERR_NOMEM;
  return fm_http_worker_store(w, st, err);
}

static const char *arg_str(const fm_gql_resolve_info *info, const char *name) {
  return json_string_value(json_object_get(info->args, name));
}

static long arg_int(const fm_gql_resolve_info *info, const char *name, long def) {
  json_t *v = json_object_get(info->args, name);
  return json_is_integer(v) ? (long)json_integer_value(v) : def;
}

/* Take a library JSON text (owned, freed here) apart. */
static fm_rc load_owned(char *text, json_t **out, fm_error *err) {
  json_error_t je;
  *out = text ? json_loads(text, 0, &je) : NULL;
  fm_free(text);
  return *out ? FM_OK : fm_error_set(err, FM_ERR_INTERNAL, "library JSON did not parse");
}

/* ---- datasets ------------------------------------------------------------------- */

static json_t *partitions_of(json_t *catalog, const char *job) {
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(catalog, "tables"), i, t) {
    if (!json_string_value(json_object_get(t, "job")) ||
        strcmp(json_string_value(json_object_get(t, "job")), job)) continue;
    json_t *out = json_array();
    size_t j;
    json_t *p;
    json_array_foreach(json_object_get(t, "partitions"), j, p) {
      json_t *c = camel(p);
      if (!c || json_array_append_new(out, c)) {
        json_decref(out);
        return NULL;
      }
    }
    return out;
  }
  return json_array();
}

static fm_rc r_datasets(const fm_gql_resolve_info *info, json_t **out, fm_error *err) {
  fm_store *st;
  fm_rc rc = store_of(info, &st, err);
  char *jt = NULL, *ct = NULL;
  json_t *jobs = NULL, *cat = NULL, *arr = NULL;
  if (!rc) rc = fm_snapshot_jobs_json(st, &jt, err);
  if (!rc) rc = load_owned(jt, &jobs, err);
  if (!rc) rc = fm_snapshot_catalog_json(st, &ct, err);
  if (!rc) rc = load_owned(ct, &cat, err);
  const char *only = arg_str(info, "name");
  if (!rc && !(arr = json_array())) rc = nomem(err);
  size_t i;
  json_t *j;
  json_array_foreach(rc ? NULL : jobs, i, j) {
    const char *name = json_string_value(json_object_get(j, "name"));
    if (!name || (only && strcmp(only, name))) continue;
    json_t *en = json_object_get(j, "enabled");
    int enabled = json_is_true(en) || json_integer_value(en) != 0;
    json_t *d = camel(j), *parts = partitions_of(cat, name);
    int bad = !d || !parts;
    if (!bad) { /* set_new takes the value, also when it fails */
      bad = json_object_set_new(d, "partitions", parts);
      parts = NULL;
    }
    if (!bad)
      bad = json_object_set_new(d, "table", json_incref(json_object_get(j, "source_table"))) ||
            json_object_set_new(d, "enabled", json_boolean(enabled));
    if (!bad) {
      bad = json_array_append_new(arr, d);
      d = NULL;
    }
    json_decref(parts);
    json_decref(d);
    if (bad) {
      rc = nomem(err);
      break;
    }
  }
  json_decref(jobs);
  json_decref(cat);
  if (rc) {
    json_decref(arr);
    return rc;
  }
  if (info->field_data) { /* dataset(name): one or null */
    *out = json_incref(json_array_get(arr, 0));
    json_decref(arr);
  } else {
    *out = arr;
  }
  return FM_OK;
}

/* Newest first: dt descending, then hr, then version. */
static int newest_first(const void *a, const void *b) {
  const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
  const char *dx = json_string_value(json_object_get(x, "dt")),
             *dy = json_string_value(json_object_get(y, "dt"));
  int c = strcmp(dy ? dy : "", dx ? dx : "");
  if (c) return c;
  const char *keys[] = {"hr", "version"};
  for (int i = 0; i < 2; i++) {
    json_int_t hx = json_integer_value(json_object_get(x, keys[i])),
               hy = json_integer_value(json_object_get(y, keys[i]));
    if (hx != hy) return hy > hx ? 1 : -1;
  }
  return 0;
}

/* Dataset.partitions(first): newest first, at most first. */
static fm_rc r_partitions(const fm_gql_resolve_info *info, json_t **out, fm_error *err) {
  json_t *all = json_object_get(info->parent, "partitions");
  long first = arg_int(info, "first", 100);
  if (first < 0) return fm_error_set(err, FM_ERR_ARG, "first must be >= 0");
  size_t n = json_array_size(all);
  json_t **v = fm_calloc(n + 1, sizeof *v);
  json_t *arr = v ? json_array() : NULL;
  if (!arr) {
    fm_free(v);
    return nomem(err);
  }
  for (size_t i = 0; i < n; i++) v[i] = json_array_get(all, i);
  qsort(v, n, sizeof *v, newest_first);
  for (size_t i = 0; i < n && (long)i < first; i++)
    if (json_array_append(arr, v[i])) {
      json_decref(arr);
      arr = NULL;
      break;
    }
  fm_free(v);
  if (!arr) return nomem(err);
  *out = arr;
  return FM_OK;
}

/* ---- provisioning -------------------------------------------------------------- */

static int is_admin(const fm_http_req *r) { return r->role >= FM_TOKEN_ADMIN; }

static fm_rc prov_store(const fm_gql_resolve_info *info, fm_store **st, fm_error *err) {
  fm_http_req *r = info->ctx;
  if (!fm_http_server_opts(r->srv)->provision_root)
    return fm_error_set(err, FM_ERR_ARG,
                        "provisioning is off: start the server with --snapshot-root");
  return store_of(info, st, err);
}

/* A request as the GraphQL ProvisioningRequest value. */
static json_t *prov_value(const fm_prov_request *q) {
  json_t *rest = fm_prov_request_json(q), *o = rest ? camel(rest) : NULL;
  json_decref(rest);
  if (!o) return NULL;
  char status[16];
  snprintf(status, sizeof status, "%s", fm_prov_status_name(q->status));
  for (char *p = status; *p; p++) *p = (char)toupper((unsigned char)*p);
  json_t *filters = json_array();
  json_t *fo = json_object_get(o, "filters");
  const char *k;
  json_t *v;
  json_object_foreach(fo, k, v) {
    json_t *val = json_is_string(v) ? json_incref(v) : NULL;
    if (!val && json_is_integer(v)) {
      char b[32];
      snprintf(b, sizeof b, "%lld", (long long)json_integer_value(v));
      val = json_string(b);
    }
    json_t *kv = val ? json_pack("{s:s,s:o}", "key", k, "value", val) : NULL; /* takes val */
    if (!filters || !kv || json_array_append_new(filters, kv)) {
      if (!filters) json_decref(kv);
      json_decref(filters);
      filters = NULL;
      break;
    }
  }
  char href[128];
  snprintf(href, sizeof href, "/v1/provisioning/requests/%s/download", q->id);
  if (!filters || json_object_set_new(o, "filters", filters) ||
      json_object_set_new(o, "status", json_string(status)) ||
      json_object_set_new(o, "downloadUrl",
                          q->status == FM_PROV_READY ? json_string(href) : json_null())) {
    json_decref(o);
    return NULL;
  }
  return o;
}

static fm_rc r_prov_list(const fm_gql_resolve_info *info, json_t **out, fm_error *err) {
  fm_http_req *r = info->ctx;
  fm_store *st;
  fm_rc rc = prov_store(info, &st, err);
  if (rc) return rc;
  long limit = arg_int(info, "limit", 100);
  if (limit < 1 || limit > PROV_MAX_LIMIT)
    return fm_error_set(err, FM_ERR_ARG, "limit must be 1..%d", PROV_MAX_LIMIT);
  const char *status = arg_str(info, "status");
  fm_prov_request *v = NULL;
  size_t n = 0;
  rc = fm_prov_list(st, is_admin(r) ? NULL : r->owner, (int)limit, &v, &n, err);
  json_t *arr = rc ? NULL : json_array();
  if (!rc && !arr) rc = nomem(err);
  for (size_t i = 0; !rc && i < n; i++) {
    if (status && strcasecmp(status, fm_prov_status_name(v[i].status))) continue;
    if (json_array_append_new(arr, prov_value(&v[i]))) rc = nomem(err);
  }
  fm_prov_list_free(v, n);
  if (rc) {
    json_decref(arr);
    return rc;
  }
  *out = arr;
  return FM_OK;
}

/* The caller's request id (or null: unknown, or someone else's). */
static fm_rc prov_load(const fm_gql_resolve_info *info, fm_store *st, const char *id,
                       json_t **out, fm_error *err) {
  fm_http_req *r = info->ctx;
  fm_prov_request q;
  fm_rc rc = fm_prov_get(st, id, &q, err);
  if (rc == FM_ERR_NOTFOUND) return FM_OK;
  if (rc) return rc;
  if (is_admin(r) || !strcmp(q.requester, r->owner)) {
    *out = prov_value(&q);
    if (!*out) rc = nomem(err);
  }
  fm_prov_request_free(&q);
  return rc;
}

static fm_rc r_prov_get(const fm_gql_resolve_info *info, json_t **out, fm_error *err) {
  fm_store *st;
  fm_rc rc = prov_store(info, &st, err);
  return rc ? rc : prov_load(info, st, arg_str(info, "id"), out, err);
}

static fm_rc r_prov_create(const fm_gql_resolve_info *info, json_t **out, fm_error *err) {
  fm_http_req *r = info->ctx;
  fm_store *st;
  fm_rc rc = prov_store(info, &st, err);
  if (rc) return rc;
  json_t *in = json_object_get(info->args, "input");
  json_t *fl = json_object_get(in, "filters"), *fo = json_object();
  if (!fo) return nomem(err);
  size_t i;
  json_t *f;
  json_array_foreach(fl, i, f) {
    const char *k = json_string_value(json_object_get(f, "key"));
    if (json_object_get(fo, k)) {
      json_decref(fo);
      return fm_error_set(err, FM_ERR_ARG, "filter '%s' given twice", k);
    }
    if (json_object_set(fo, k, json_object_get(f, "value"))) {
      json_decref(fo);
      return nomem(err);
    }
  }
  char *filters = json_dumps(fo, JSON_COMPACT);
  json_decref(fo);
  if (!filters) return nomem(err);
  const fm_http_opts *o = fm_http_server_opts(r->srv);
  char id[FM_PROV_ID_LEN + 1];
  const char *fmt = json_string_value(json_object_get(in, "format"));
  rc = fm_prov_create(st, r->owner, json_string_value(json_object_get(in, "dataset")), filters,
                      fmt, o->provision_ttl, id, err);
  free(filters);
  if (rc) return rc;
  if (o->provision_wake) o->provision_wake(o->provision_ctx);
  return prov_load(info, st, id, out, err);
}

/* ---- fields and mappings --------------------------------------------------------- */

static fm_rc r_fields(const fm_gql_resolve_info *info, json_t **out, fm_error *err) {
  fm_http_req *r = info->ctx;
  const char *q = arg_str(info, "q"), *vendor = arg_str(info, "vendor"),
             *after = arg_str(info, "after");
  long first = arg_int(info, "first", 20), offset = 0;
  if (!q || !*q || strlen(q) > 256) return fm_error_set(err, FM_ERR_ARG, "q must be 1..256 bytes");
  if (first < 0 || first > FIELDS_MAX_FIRST)
    return fm_error_set(err, FM_ERR_ARG, "first must be 0..%d", FIELDS_MAX_FIRST);
  if (after) {
    char *end;
    offset = strtol(after, &end, 10);
    if (end == after || *end || offset < 0 || offset >= FIELDS_MAX_OFFSET)
      return fm_error_set(err, FM_ERR_ARG, "after is not a cursor this server gave out");
    offset++;
  }
  size_t want = (size_t)offset + (size_t)first + 1;
  fm_http_hit *hits = fm_calloc(want, sizeof *hits);
  if (!hits) return nomem(err);
  const fm_model *m = fm_http_model(r->srv);
  json_t *jp = json_object_get(info->args, "prefix");
  size_t n = fm_http_search(m, q, vendor && *vendor ? vendor : NULL, json_is_true(jp), 0, want, hits);
  json_t *nodes = json_array();
  for (size_t i = (size_t)offset; nodes && i < n && i < (size_t)(offset + first); i++) {
    fm_field f;
    if (hits[i].query)
      fm_model_query(m, hits[i].index, &f);
    else
      fm_model_ref(m, hits[i].index, &f);
    json_t *fj = fm_http_field_json(&f, hits[i].query ? "query" : "reference");
    if (!fj || json_array_append_new(nodes, fj)) {
      json_decref(nodes);
      nodes = NULL;
    }
  }
  fm_free(hits);
  if (!nodes) return nomem(err);
  size_t got = json_array_size(nodes);
  char cur[32];
  snprintf(cur, sizeof cur, "%zu", (size_t)offset + got - 1);
  *out = json_pack("{s:o,s:{s:b,s:s?}}", "nodes", nodes, "pageInfo", "hasNextPage",
                   n > (size_t)(offset + first), "endCursor", got ? cur : NULL);
  return *out ? FM_OK : nomem(err);
}

static fm_rc r_field(const fm_gql_resolve_info *info, json_t **out, fm_error *err) {
  fm_http_req *r = info->ctx;
  const fm_model *m = fm_http_model(r->srv);
  const char *vendor = arg_str(info, "vendor"), *id = arg_str(info, "id");
  fm_field f;
  *out = NULL;
  long i = fm_model_find_ref(m, id);
  if (i >= 0) {
    fm_model_ref(m, (size_t)i, &f);
    if (!strcmp(f.vendor, vendor)) *out = fm_http_field_json(&f, "reference");
  }
  if (!*out && (i = fm_model_find_query(m, id)) >= 0) {
    fm_model_query(m, (size_t)i, &f);
    if (!strcmp(f.vendor, vendor)) *out = fm_http_field_json(&f, "query");
  }
  (void)err;
  return FM_OK;
}

typedef struct page {
  const char *vendor;
  size_t offset, limit;
  int64_t total;
  json_t *items;
} page;

static fm_rc page_write(void *ctx, const void *p, size_t n, fm_error *err) {
  page *pg = ctx;
  json_t *row = json_loadb(p, n, 0, NULL);
  if (!row) return fm_error_set(err, FM_ERR_INTERNAL, "export row is not JSON");
  const char *qv = json_string_value(json_object_get(row, "query_vendor"));
  const char *rv = json_string_value(json_object_get(row, "ref_vendor"));
  int keep = !pg->vendor || (qv && !strcmp(qv, pg->vendor)) || (rv && !strcmp(rv, pg->vendor));
  size_t i = keep ? (size_t)pg->total++ : 0;
  fm_rc rc = FM_OK;
  if (keep && i >= pg->offset && i - pg->offset < pg->limit) {
    json_t *c = camel(row);
    json_t *st = c ? json_object_get(c, "status") : NULL;
    char up[16];
    snprintf(up, sizeof up, "%s", json_string_value(st) ? json_string_value(st) : "");
    for (char *q = up; *q; q++) *q = (char)toupper((unsigned char)*q);
    if (c && json_object_set_new(c, "status", json_string(up))) {
      json_decref(c);
      c = NULL;
    }
    if (!c || json_array_append_new(pg->items, c))
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory listing mappings");
  }
  json_decref(row);
  return rc;
}

static fm_rc r_mappings(const fm_gql_resolve_info *info, json_t **out, fm_error *err) {
  fm_store *st;
  fm_rc rc = store_of(info, &st, err);
  if (rc) return rc;
  long limit = arg_int(info, "limit", 100), offset = arg_int(info, "offset", 0);
  if (limit < 1 || limit > MAPPINGS_MAX_LIMIT || offset < 0)
    return fm_error_set(err, FM_ERR_ARG, "limit must be 1..%d and offset >= 0", MAPPINGS_MAX_LIMIT);
  fm_export_opts o;
  memset(&o, 0, sizeof o);
  o.format = FM_EXPORT_JSONL;
  const char *status = arg_str(info, "status"), *since = arg_str(info, "changedSince");
  if (status) {
    char low[16];
    snprintf(low, sizeof low, "%s", status);
    for (char *p = low; *p; p++) *p = (char)tolower((unsigned char)*p);
    o.status = fm_map_status_parse(low);
  }
  char norm[32];
  if (since) {
    if (fm_store_time_normalize(since, norm, sizeof norm))
      return fm_error_set(err, FM_ERR_ARG,
                          "changedSince is a UTC time YYYY-MM-DD[THH:MM[:SS[.mmm]]][Z]");
    o.changed_since = norm;
  }
  const char *vendor = arg_str(info, "vendor");
  page pg = {vendor && *vendor ? vendor : NULL, (size_t)offset, (size_t)limit, 0, json_array()};
  if (!pg.items) return nomem(err);
  fm_sink sink = {page_write, &pg};
  if ((rc = fm_store_export(st, &o, &sink, NULL, err))) {
    json_decref(pg.items);
    return rc;
  }
  *out = json_pack("{s:I,s:i,s:I,s:o}", "total", (json_int_t)pg.total, "limit", (int)limit,
                   "offset", (json_int_t)offset, "items", pg.items);
  return *out ? FM_OK : nomem(err);
}

/* ---- the schema ----------------------------------------------------------------- */

static const char *const prov_status[] = {"PENDING", "RUNNING", "READY", "FAILED", "EXPIRED", NULL};
static const char *const map_status[] = {"ACCEPTED", "PROPOSED", "REJECTED", "SUPERSEDED",
                                         "NO_EQUIVALENT", NULL};

/* The output and input types the root fields return and take. */
typedef struct types {
  fm_gql_type *S, *I, *B, *ID, *ds, *pst, *pr, *field, *fc, *mst, *mp, *pin;
} types;

static void object_types(fm_gql_schema *s, types *o) {
  fm_gql_type *S = fm_gql_type_named(s, "String"), *I = fm_gql_type_named(s, "Int"),
              *F = fm_gql_type_named(s, "Float"), *B = fm_gql_type_named(s, "Boolean"),
              *ID = fm_gql_type_named(s, "ID");
  fm_gql_type *Sn = fm_gql_nonnull(s, S), *In = fm_gql_nonnull(s, I), *Bn = fm_gql_nonnull(s, B);
  o->S = S, o->I = I, o->B = B, o->ID = ID;
#define NN(t) fm_gql_nonnull(s, (t))
#define LIST(t) NN(fm_gql_list(s, NN(t)))
#define FIELD(o, n, t, d) fm_gql_field_add(s, (o), (n), (t), (d), NULL, NULL)

  fm_gql_type *part = fm_gql_object(s, "Partition", "One hourly partition of a dataset in the lake (docs/snapshot.md).");
  FIELD(part, "dt", Sn, "UTC date, YYYY-MM-DD.");
  FIELD(part, "hr", In, "UTC hour, 0..23.");
  FIELD(part, "version", In, "Version of the partition (a forced rewrite adds one).");
  FIELD(part, "location", Sn, "Directory relative to the lake root.");
  FIELD(part, "rows", F, "Rows written.");
  FIELD(part, "bytes", F, "Bytes on disk.");
  FIELD(part, "sha256", S, "SHA-256 of the data file.");
  FIELD(part, "runId", S, "The snapshot run that wrote it.");
  FIELD(part, "addedAt", S, "When it entered the catalog (UTC).");

  fm_gql_type *ds = fm_gql_object(s, "Dataset", "A snapshot job: a table of the store written every hour as partitions.");
  FIELD(ds, "name", Sn, "The job's name (the lake directory).");
  FIELD(ds, "table", Sn, "The store table it reads.");
  FIELD(ds, "columns", S, "Columns written (\"*\": all).");
  FIELD(ds, "filter", S, "Row filter, if any.");
  FIELD(ds, "format", Sn, "File format of its partitions.");
  FIELD(ds, "schedule", S, "When it runs.");
  FIELD(ds, "retentionHours", I, "Hours a partition is kept.");
  FIELD(ds, "enabled", Bn, "True when the scheduler runs it.");
  FIELD(ds, "valid", Bn, "False when its table, columns or filter no longer work.");
  FIELD(ds, "error", S, "Why it is not valid.");
  fm_gql_field *f = fm_gql_field_add(s, ds, "partitions", LIST(part), "Its partitions, newest first.", r_partitions, NULL);
  fm_gql_arg_add(s, f, "first", I, "At most this many.", "100");

  fm_gql_type *filter = fm_gql_object(s, "Filter", "One filter of a provisioning request: a whitelisted column and its value.");
  FIELD(filter, "key", Sn, NULL);
  FIELD(filter, "value", Sn, NULL);
  fm_gql_type *pst = fm_gql_enum(s, "ProvisioningStatus", "Where a provisioning request is in its life.", prov_status);
  fm_gql_type *pr = fm_gql_object(s, "ProvisioningRequest", "A request for a dataset file (docs/provision.md).");
  FIELD(pr, "id", NN(ID), NULL);
  FIELD(pr, "requester", Sn, "The token owner who asked.");
  FIELD(pr, "dataset", Sn, "mappings, candidates, fields or snapshot.");
  FIELD(pr, "filters", LIST(filter), NULL);
  FIELD(pr, "format", Sn, NULL);
  FIELD(pr, "status", NN(pst), NULL);
  FIELD(pr, "rows", F, "Rows in the file, once ready.");
  FIELD(pr, "bytes", F, "Size of the file, once ready.");
  FIELD(pr, "sha256", S, NULL);
  FIELD(pr, "error", S, "Why it failed.");
  FIELD(pr, "createdAt", S, NULL);
  FIELD(pr, "startedAt", S, NULL);
  FIELD(pr, "finishedAt", S, NULL);
  FIELD(pr, "expiresAt", S, NULL);
  FIELD(pr, "downloadUrl", S, "The REST path of the file, once ready.");

  fm_gql_type *field = fm_gql_object(s, "Field", "A field of either vendor, as the served model knows it.");
  FIELD(field, "vendor", S, NULL);
  FIELD(field, "id", S, NULL);
  FIELD(field, "name", S, NULL);
  FIELD(field, "description", S, NULL);
  FIELD(field, "type", S, NULL);
  FIELD(field, "category", S, NULL);
  FIELD(field, "role", Sn, "query (Bloomberg side) or reference.");
  fm_gql_type *pi = fm_gql_object(s, "PageInfo", "Where a page ends.");
  FIELD(pi, "hasNextPage", Bn, NULL);
  FIELD(pi, "endCursor", S, "Pass as after to get the next page.");
  fm_gql_type *fc = fm_gql_object(s, "FieldConnection", "A page of fields.");
  FIELD(fc, "nodes", LIST(field), NULL);
  FIELD(fc, "pageInfo", NN(pi), NULL);

  fm_gql_type *mst = fm_gql_enum(s, "MappingStatus", "The status of a curated mapping.", map_status);
  fm_gql_type *map = fm_gql_object(s, "Mapping", "A curated mapping, as the export writes it (docs/export.md).");
  FIELD(map, "mappingKey", Sn, NULL);
  FIELD(map, "queryVendor", S, NULL);
  FIELD(map, "queryId", S, NULL);
  FIELD(map, "queryName", S, NULL);
  FIELD(map, "refVendor", S, NULL);
  FIELD(map, "refId", S, NULL);
  FIELD(map, "refName", S, NULL);
  FIELD(map, "status", NN(mst), NULL);
  FIELD(map, "origin", S, NULL);
  FIELD(map, "score", F, NULL);
  FIELD(map, "decidedBy", S, NULL);
  FIELD(map, "decidedAt", S, NULL);
  FIELD(map, "comment", S, NULL);
  FIELD(map, "flag", S, NULL);
  fm_gql_type *mp = fm_gql_object(s, "MappingPage", "A page of mappings.");
  FIELD(mp, "total", In, "Mappings matching the filters.");
  FIELD(mp, "limit", In, NULL);
  FIELD(mp, "offset", In, NULL);
  FIELD(mp, "items", LIST(map), NULL);

  fm_gql_type *fin = fm_gql_input(s, "FilterInput", "One filter: a column of the dataset's whitelist and its value.");
  FIELD(fin, "key", Sn, NULL);
  FIELD(fin, "value", Sn, NULL);
  fm_gql_type *pin = fm_gql_input(s, "ProvisioningRequestInput", "What POST /v1/provisioning/requests takes.");
  FIELD(pin, "dataset", Sn, "mappings, candidates, fields or snapshot.");
  FIELD(pin, "filters", fm_gql_list(s, NN(fin)), NULL);
  fm_gql_field_default(s, FIELD(pin, "format", S, "csv.gz, jsonl.gz or parquet."), "\"csv.gz\"");
  o->ds = ds, o->pst = pst, o->pr = pr, o->field = field, o->fc = fc, o->mst = mst, o->mp = mp;
  o->pin = pin;
#undef NN
#undef LIST
#undef FIELD
}

static fm_gql_schema *build(fm_error *err) {
  fm_gql_schema *s;
  if (fm_gql_schema_new(&s, err)) return NULL;
  types t;
  object_types(s, &t);
  fm_gql_type *S = t.S, *I = t.I, *B = t.B, *ds = t.ds, *pst = t.pst, *pr = t.pr,
              *field = t.field, *fc = t.fc, *mst = t.mst, *mp = t.mp, *pin = t.pin, *ID = t.ID;
  fm_gql_type *Sn = fm_gql_nonnull(s, S);
  fm_gql_field *f;
#define NN(t) fm_gql_nonnull(s, (t))
#define LIST(t) NN(fm_gql_list(s, NN(t)))

  fm_gql_type *q = fm_gql_object(s, "Query", NULL);
  f = fm_gql_field_add(s, q, "datasets", LIST(ds), "Every snapshot job.", r_datasets, NULL);
  f = fm_gql_field_add(s, q, "dataset", ds, "One snapshot job, or null.", r_datasets, (void *)1);
  fm_gql_arg_add(s, f, "name", Sn, NULL, NULL);
  f = fm_gql_field_add(s, q, "provisioningRequests", LIST(pr), "The caller's requests (an admin's: everyone's), newest first.", r_prov_list, NULL);
  fm_gql_arg_add(s, f, "limit", I, "At most this many (1..1000).", "100");
  fm_gql_arg_add(s, f, "status", pst, "Only those with this status.", NULL);
  f = fm_gql_field_add(s, q, "provisioningRequest", pr, "One request, or null (unknown or someone else's).", r_prov_get, NULL);
  fm_gql_arg_add(s, f, "id", NN(ID), NULL, NULL);
  f = fm_gql_field_add(s, q, "fields", NN(fc), "Search the served model's fields, as GET /v1/fields.", r_fields, NULL);
  fm_gql_arg_add(s, f, "q", Sn, "Words that must all occur in id, name or description (or an id prefix).", NULL);
  fm_gql_arg_add(s, f, "vendor", S, NULL, NULL);
  fm_gql_arg_add(s, f, "prefix", B, "Match q as an id prefix only.", "false");
  fm_gql_arg_add(s, f, "first", I, "Page size (0..200).", "20");
  fm_gql_arg_add(s, f, "after", S, "The endCursor of the previous page.", NULL);
  f = fm_gql_field_add(s, q, "field", field, "One field, or null.", r_field, NULL);
  fm_gql_arg_add(s, f, "vendor", Sn, NULL, NULL);
  fm_gql_arg_add(s, f, "id", Sn, NULL, NULL);
  f = fm_gql_field_add(s, q, "mappings", NN(mp), "The curated mappings, as GET /v1/mappings.", r_mappings, NULL);
  fm_gql_arg_add(s, f, "status", mst, "Only this status (default: all).", NULL);
  fm_gql_arg_add(s, f, "vendor", S, NULL, NULL);
  fm_gql_arg_add(s, f, "changedSince", S, "decidedAt >= this UTC time.", NULL);
  fm_gql_arg_add(s, f, "limit", I, "Page size (1..1000).", "100");
  fm_gql_arg_add(s, f, "offset", I, NULL, "0");

  fm_gql_type *mu = fm_gql_object(s, "Mutation", NULL);
  f = fm_gql_field_add(s, mu, "createProvisioningRequest", NN(pr), "Ask for a dataset file, as POST /v1/provisioning/requests.", r_prov_create, NULL);
  fm_gql_arg_add(s, f, "input", NN(pin), NULL, NULL);
#undef NN
#undef LIST
#undef FIELD
  if (fm_gql_schema_finish(s, q, mu, err)) {
    fm_gql_schema_free(s);
    return NULL;
  }
  return s;
}

/* Built by the first request that needs it; a failed build (out of
 * memory) is retried by the next request rather than remembered. */
static pthread_mutex_t schema_mu = PTHREAD_MUTEX_INITIALIZER;
static fm_gql_schema *the_schema;

const fm_gql_schema *fm_http_gql_schema(fm_error *err) {
  pthread_mutex_lock(&schema_mu);
  if (!the_schema) the_schema = build(err);
  fm_gql_schema *s = the_schema;
  pthread_mutex_unlock(&schema_mu);
  return s;
}
