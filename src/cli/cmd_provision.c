/* cmd_provision.c: fieldmatch provision request|status|list|fetch|expire
 * --db D --root DIR ...  Provisioning requests from the command line
 * (docs/provision.md).  `request` creates the row and, unless --no-wait,
 * materializes it right here with the same writer a server's worker uses;
 * with --no-wait it stays pending for `fieldmatch serve --snapshot-root`.
 * `fetch` copies a ready file atomically and verifies its SHA-256. */
#include "cli.h"
#include "fm_provision.h"

#include <jansson.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct prov_args {
  const char *db, *root, *dataset, *filters, *format, *owner, *out, *reason;
  long ttl;
  int json, all, no_wait;
  json_t *kv; /* the --filter KEY=VALUE pairs */
} prov_args;

static int add_filter(const char *cmd, const char *name, const char *v, void *args) {
  prov_args *a = args;
  const char *eq = strchr(v, '=');
  if (!eq || eq == v) return fm_cli_usage(cmd, "%s needs KEY=VALUE, not '%s'", name, v);
  char key[64];
  snprintf(key, sizeof key, "%.*s", (int)(eq - v), v);
  json_object_set_new(a->kv, key, json_string(eq + 1));
  return FM_EXIT_OK;
}

static const fm_cli_opt opts[] = {
    FM_OPT_DB(prov_args, db),
    FM_OPT_STR(prov_args, root, "--root", 0, "DIR", "the snapshot root; files go to DIR.provision/"),
    FM_OPT_STR(prov_args, dataset, "--dataset", 0, "NAME",
               "request: mappings, candidates, fields or snapshot"),
    FM_OPT_FN(add_filter, "--filter", "KEY=VALUE", "request: a filter (repeatable)"),
    FM_OPT_STR(prov_args, filters, "--filters", 0, "JSON", "request: all filters as one object"),
    FM_OPT_STR(prov_args, format, "--format", 0, "F", "request: csv.gz, jsonl.gz or parquet"),
    FM_OPT_STR(prov_args, owner, "--owner", 0, "NAME", "request, list: whose (default $USER)"),
    FM_OPT_NUM(prov_args, ttl, FM_CLI_LONG, "--ttl", 1, 0, "SECONDS", "request: how long the file is kept"),
    FM_OPT_FLAG(prov_args, no_wait, "--no-wait", 0,
                "request: leave it pending for a server's worker"),
    FM_OPT_FLAG(prov_args, all, "--all", 0, "list: every owner's requests"),
    FM_OPT_FLAG(prov_args, json, "--json", 0, "status, list: JSON"),
    FM_OPT_STR(prov_args, out, "--output", 'o', "FILE", "fetch: copy the file to FILE"),
    FM_OPT_STR(prov_args, reason, "--reason", 0, "TEXT", "fail: why (kept in the request's error)"),
    FM_OPT_END};

static const fm_cli_spec spec = {
    .cmd = "provision",
    .usage = "usage: fieldmatch provision request --db DB --root DIR --dataset NAME\n"
             "                  [--filter KEY=VALUE]... [--filters JSON] [--format csv.gz|jsonl.gz|parquet]\n"
             "                  [--owner NAME] [--ttl SECONDS] [--no-wait]\n"
             "       fieldmatch provision status --db DB ID [--json]\n"
             "       fieldmatch provision list   --db DB [--owner NAME | --all] [--json]\n"
             "       fieldmatch provision fetch  --db DB --root DIR ID -o FILE\n"
             "       fieldmatch provision expire --db DB --root DIR\n"
             "       fieldmatch provision resume --db DB --root DIR ID [--no-wait]\n"
             "       fieldmatch provision fail   --db DB ID [--reason TEXT]\n",
    .about = "Datasets: mappings, candidates, fields, snapshot (filters job, from, to).\n"
             "request prints the id first; without --no-wait it then writes\n"
             "DIR.provision/ID.FORMAT before returning.  resume puts a pending, running (its\n"
             "worker killed) or failed request back to pending and, without --no-wait,\n"
             "materializes it; fail marks a pending or running one failed.  --owner\n"
             "defaults to $USER.  DB must exist.\n"
             "See docs/provision.md.\n",
    .opts = opts,
    .max_pos = 1};

static void print_row(const fm_prov_request *r) {
  printf("%s  %-8s %-10s %-8s %s  rows=%lld bytes=%lld%s%s\n", r->id,
         fm_prov_status_name(r->status), r->dataset, r->format, r->created_at,
         (long long)r->rows, (long long)r->bytes, r->error ? "  error: " : "",
         r->error ? r->error : "");
}

static int print_json(json_t *j) {
  char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(j);
  if (!s) {
    fm_error e;
    fm_error_init(&e);
    fm_error_set(&e, FM_ERR_NOMEM, "out of memory");
    return fm_cli_fail(&e);
  }
  printf("%s\n", s);
  free(s);
  return FM_EXIT_OK;
}

/* Copy src to dst atomically, checking the SHA-256 on the way. */
static fm_rc fetch_copy(const char *src, const char *dst, const char *want, fm_error *err) {
  FILE *in = fopen(src, "rb");
  if (!in) return fm_error_set(err, FM_ERR_IO, "cannot open %s", src);
  fm_atomic a;
  fm_rc rc = fm_atomic_open(&a, dst, err);
  if (rc) {
    fclose(in);
    return rc;
  }
  struct sha256_ctx c;
  sha256_init(&c);
  unsigned char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
    sha256_update(&c, n, buf);
    if (fwrite(buf, 1, n, a.fp) != n) {
      rc = fm_error_set(err, FM_ERR_IO, "writing %s failed", dst);
      break;
    }
  }
  if (rc == FM_OK && ferror(in)) rc = fm_error_set(err, FM_ERR_IO, "reading %s failed", src);
  fclose(in);
  if (rc == FM_OK) {
    uint8_t d[SHA256_DIGEST_SIZE];
    char hex[65];
    sha256_digest(&c, sizeof d, d);
    fm_hex(d, sizeof d, hex);
    if (strcmp(hex, want) != 0)
      rc = fm_error_set(err, FM_ERR_CORRUPT, "%s: SHA-256 %s, the request records %s", src,
                        hex, want);
  }
  if (rc) {
    fm_atomic_abort(&a);
    return rc;
  }
  return fm_atomic_commit(&a, err);
}

/* provision list: the requests of owner (NULL: everyone's), newest first,
 * as rows or JSON.  Returns the exit status. */
static int run_list(fm_store *st, const char *owner, int json) {
  fm_error err;
  fm_error_init(&err);
  fm_prov_request *v = NULL;
  size_t n = 0;
  int ret = FM_EXIT_OK;
  if (fm_prov_list(st, owner, 1000, &v, &n, &err)) {
    ret = fm_cli_fail(&err);
  } else if (json) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) json_array_append_new(arr, fm_prov_request_json(&v[i]));
    ret = print_json(arr);
  } else {
    for (size_t i = 0; i < n; i++) print_row(&v[i]);
  }
  fm_prov_list_free(v, n);
  return ret;
}

/* provision fetch: copy ready request id's file under root to out,
 * checking its SHA-256.  Returns the exit status. */
static int run_fetch(fm_store *st, const char *root, const char *id, const char *out) {
  fm_error err;
  fm_error_init(&err);
  fm_prov_request r;
  memset(&r, 0, sizeof r);
  int ret = FM_EXIT_OK;
  if (fm_prov_get(st, id, &r, &err)) {
    ret = fm_cli_fail(&err);
  } else if (r.status != FM_PROV_READY) {
    fm_error_set(&err, FM_ERR_ARG, "request %s is %s%s%s", r.id, fm_prov_status_name(r.status),
                 r.error ? ": " : "", r.error ? r.error : "");
    ret = fm_cli_fail(&err);
  } else {
    char *src = fm_prov_file_path(root, &r);
    if (!src || fetch_copy(src, out, r.sha256, &err))
      ret = fm_cli_fail(&err);
    else
      fprintf(stderr, "%s: %lld rows, %lld bytes, sha256 %s\n", out, (long long)r.rows,
              (long long)r.bytes, r.sha256);
    fm_free(src);
  }
  fm_prov_request_free(&r);
  return ret;
}

int fm_cmd_provision(int argc, char **argv) {
  if (argc < 2)
    return fm_cli_usage("provision",
                        "give a subcommand: request, status, list, fetch, expire, resume or fail");
  const char *sub = argv[1];
  if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
    fm_cli_help(&spec, stdout);
    return FM_EXIT_OK;
  }
  if (strcmp(sub, "request") && strcmp(sub, "status") && strcmp(sub, "list") &&
      strcmp(sub, "fetch") && strcmp(sub, "expire") && strcmp(sub, "resume") &&
      strcmp(sub, "fail"))
    return fm_cli_usage("provision", "unknown subcommand '%s'", sub);
  prov_args a = {.db = FM_CLI_DB_DEFAULT, .kv = json_object()};
  if (!a.kv) return FM_EXIT_FAIL;
  int npos, ret = fm_cli_parse(&spec, argc - 1, argv + 1, &a, &npos);
  json_t *kv = a.kv;
  if (ret >= 0) {
    json_decref(kv);
    return ret;
  }
  ret = FM_EXIT_OK;
  const char *db = a.db, *root = a.root, *dataset = a.dataset, *filters = a.filters,
             *format = a.format, *owner = a.owner, *out = a.out;
  const char *id = npos ? argv[1] : NULL;
  long ttl = a.ttl;
  int json = a.json, all = a.all, no_wait = a.no_wait;
  int need_root = !strcmp(sub, "fetch") || !strcmp(sub, "expire") ||
                  ((!strcmp(sub, "request") || !strcmp(sub, "resume")) && !no_wait);
  const char *usage = NULL;
  if (need_root && !root)
    usage = "--root DIR is required (the snapshot root; files go to DIR.provision/)";
  else if (!strcmp(sub, "request") && !dataset)
    usage = "request needs --dataset";
  else if (!strcmp(sub, "request") && filters && json_object_size(kv))
    usage = "give --filters JSON or --filter KEY=VALUE, not both";
  else if ((!strcmp(sub, "status") || !strcmp(sub, "fetch") || !strcmp(sub, "resume") ||
            !strcmp(sub, "fail")) &&
           !id)
    usage = "give the request id";
  else if (!strcmp(sub, "fetch") && !out)
    usage = "fetch needs -o FILE";
  if (usage) {
    json_decref(kv);
    return fm_cli_usage("provision", "%s", usage);
  }
  fm_error err;
  fm_error_init(&err);
  fm_store *st = NULL;
  if (fm_cli_open_store(db, FM_CLI_OPEN, 0, &st)) {
    json_decref(kv);
    return FM_EXIT_FAIL;
  }
  fm_prov_request r;
  memset(&r, 0, sizeof r);
  if (!strcmp(sub, "request")) {
    char *kvs = filters ? NULL : json_dumps(kv, JSON_COMPACT);
    char nid[FM_PROV_ID_LEN + 1];
    fm_rc rc = fm_prov_create(st, owner ? owner : fm_cli_user(), dataset,
                              filters ? filters : kvs, format, ttl, nid, &err);
    free(kvs);
    if (rc == FM_ERR_ARG) {
      ret = fm_cli_usage("provision", "%s", err.msg);
    } else if (rc) {
      ret = fm_cli_fail(&err);
    } else {
      /* The id first: whoever waits on a long write can follow it
       * (status) or take it over (resume, fail) at once. */
      printf("%s\n", nid);
      fflush(stdout);
      if (!no_wait && fm_prov_materialize(st, root, nid, 0, &err)) ret = fm_cli_fail(&err);
    }
  } else if (!strcmp(sub, "resume") || !strcmp(sub, "fail")) {
    const char *by = owner ? owner : fm_cli_user();
    fm_rc rc = !strcmp(sub, "fail") ? fm_prov_fail(st, id, by, a.reason, &err)
                                    : fm_prov_resume(st, id, by, &err);
    if (rc) {
      ret = fm_cli_fail(&err);
    } else {
      printf("%s\n", id);
      fflush(stdout);
      if (!strcmp(sub, "resume") && !no_wait && fm_prov_materialize(st, root, id, 0, &err))
        ret = fm_cli_fail(&err);
    }
  } else if (!strcmp(sub, "status")) {
    if (fm_prov_get(st, id, &r, &err))
      ret = fm_cli_fail(&err);
    else if (json)
      ret = print_json(fm_prov_request_json(&r));
    else
      print_row(&r);
  } else if (!strcmp(sub, "list")) {
    ret = run_list(st, all ? NULL : owner ? owner : fm_cli_user(), json);
  } else if (!strcmp(sub, "fetch")) {
    ret = run_fetch(st, root, id, out);
  } else { /* expire */
    size_t n = 0;
    if (fm_prov_expire(st, root, (int64_t)time(NULL), &n, &err))
      ret = fm_cli_fail(&err);
    else
      fprintf(stderr, "expired %zu request(s)\n", n);
  }
  fm_prov_request_free(&r);
  fm_store_close(st);
  json_decref(kv);
  return ret;
}
