/* cmd_serve.c: fieldmatch serve --model M --db D [--listen HOST:PORT] ...
 * Starts the HTTP service (src/http) and runs until SIGTERM or SIGINT, then
 * stops gracefully (in-flight requests finish) and exits 0. */
#include "cli.h"

#ifdef FM_HAVE_HTTP
#include "fm_http.h"
#include "fm_jobs.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

typedef struct serve_args {
  const char *model, *db, *access, *snap_root;
  int no_sched;
  long poll_ms;
  fm_http_opts o;
} serve_args;

static int public_url(const char *cmd, const char *name, const char *v, void *args) {
  if ((strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) || strpbrk(v, " \"<>'\\?#") ||
      strlen(v) > 400)
    return fm_cli_usage(cmd, "%s must be an http:// or https:// URL without spaces, quotes, "
                             "'?' or '#', got '%s'", name, v);
  ((serve_args *)args)->o.public_url = v;
  return FM_EXIT_OK;
}

static int match_cache(const char *cmd, const char *name, const char *v, void *args) {
  long long n = 0;
  if (strcmp(v, "off") && fm_cli_long(v, 0, LLONG_MAX, &n))
    return fm_cli_usage(cmd, "option %s needs an integer >= 0 or 'off', got '%s'", name, v);
  ((serve_args *)args)->o.match_cache = (size_t)n;
  return FM_EXIT_OK;
}

#define U(F, NAME, ARG, HELP) FM_OPT_NUM(serve_args, o.F, FM_CLI_UINT, NAME, 1, 0, ARG, HELP)
static const fm_cli_opt opts[] = {
    FM_OPT_REQ(serve_args, model, "--model", 0, "MODEL.fmm", "the model"),
    FM_OPT_STR(serve_args, db, "--db", 0, "FILE",
               "the database (required unless --no-auth;\nit must exist: see docs/store.md)"),
    FM_OPT_STR(serve_args, o.listen, "--listen", 0, "HOST:PORT",
               "address to bind (default 127.0.0.1:8080;\nport 0 = any)"),
    U(threads, "--threads", "N", "worker threads (default 2)"),
    U(conn_limit, "--conn-limit", "N", "connections at once; more get 429 (default 1024)"),
    U(per_ip_limit, "--per-ip-limit", "N", "connections per client IP (default: no limit)"),
    U(timeout_s, "--timeout", "S", "idle connection timeout in seconds (default 30)"),
    FM_OPT_NUM(serve_args, o.max_body, FM_CLI_SIZE, "--max-body", 1, 0, "BYTES",
               "request body limit (default 1048576)"),
    U(max_batch, "--max-batch", "N", "fields per POST /v1/match (default 100)"),
    FM_OPT_NUM(serve_args, o.rate, FM_CLI_REAL_POS, "--rate", 0, 0, "R",
               "requests/s per client (token or IP); default off"),
    FM_OPT_NUM(serve_args, o.burst, FM_CLI_REAL_POS, "--burst", 0, 0, "B", "with --rate: the bucket size"),
    FM_OPT_STR(serve_args, access, "--access-log", 0, "FILE",
               "access log: a file, - for stderr (default), off"),
    FM_OPT_FLAG(serve_args, o.access_log_json, "--access-log-json", 0,
                "access log lines as JSON objects (with request_id)"),
    FM_OPT_FN(public_url, "--public-url", "URL",
              "base of every absolute URL the server writes\n(the reconciliation manifest); default: the\n"
              "listen address.  The Host header is never used"),
    U(drain_ms, "--drain-ms", "MS", "how long shutdown waits for in-flight requests"),
    FM_OPT_NUM(serve_args, o.learn_wait_ms, FM_CLI_UINT, "--learn-wait", 0, 0, "MS",
               "a decision's answer waits this long for the\nlearning layer that includes it (default "
               "2000;\n0: never); the rebuild goes on past it"),
    FM_OPT_FN(match_cache, "--match-cache", "N",
              "rankings kept across requests, shared (default\n16384; 0 or off: none; at most "
              "~3.5 KiB each,\n~0.4 KiB at k=10)"),
    FM_OPT_FLAG(serve_args, o.no_auth, "--no-auth", 0,
                "serve without tokens: everyone is admin (local\nuse only)"),
    FM_OPT_STR(serve_args, snap_root, "--snapshot-root", 0, "DIR",
               "run due snapshots now (catching up missed hours)\nand at the top of every hour, "
               "and provision\nfiles under DIR.provision/ (docs/provision.md,\ndocs/snapshot.md)"),
    FM_OPT_FLAG(serve_args, no_sched, "--no-scheduler", 0,
                "with --snapshot-root: provisioning only, no\nsnapshots"),
    FM_OPT_NUM(serve_args, o.provision_ttl, FM_CLI_LONG, "--provision-ttl", 1, 0, "S",
               "seconds a provisioned file is kept (default 7 days)"),
    FM_OPT_NUM(serve_args, poll_ms, FM_CLI_LONG, "--provision-poll-ms", 1, 0, "MS",
               "how often the worker looks for requests made by\nother processes (default 2000)"),
    FM_OPT_END};
#undef U

static const fm_cli_spec spec = {
    .cmd = "serve",
    .usage = "usage: fieldmatch serve --model MODEL.fmm --db DB.sqlite [options]\n",
    .about = "Routes: docs/http.md and api/openapi.yaml.  SIGTERM/SIGINT stop gracefully;\n"
             "SIGHUP reloads the model file (as POST /v1/admin/model/reload).\n",
    .opts = opts};

static void runner_log(void *ctx, const char *msg) {
  (void)ctx;
  fprintf(stderr, "fieldmatch serve: %s\n", msg);
}

static void wake_runner(void *ctx) { fm_prov_runner_wake(ctx); }

int fm_cmd_serve(int argc, char **argv) {
  serve_args a = {.access = "-"};
  fm_http_opts_default(&a.o);
  int npos, prc = fm_cli_parse(&spec, argc, argv, &a, &npos);
  if (prc >= 0) return prc;
  fm_http_opts o = a.o;
  o.access_log = stderr;
  const char *model = a.model, *db = a.db, *access = a.access, *snap_root = a.snap_root;
  int no_sched = a.no_sched;
  long poll_ms = a.poll_ms;
  if (!db && !o.no_auth) return fm_cli_usage("serve", "--db is required (or --no-auth)");
  if (snap_root && !db) return fm_cli_usage("serve", "--snapshot-root needs --db");
  if (db) { /* it must exist; open (and migrate) it once, before any thread */
    fm_store *st;
    if (fm_cli_open_store(db, FM_CLI_OPEN, 0, &st)) return FM_EXIT_FAIL;
    fm_store_close(st);
  }
  FILE *logfp = NULL;
  if (!strcmp(access, "off")) {
    o.access_log = NULL;
  } else if (strcmp(access, "-") != 0) {
    logfp = fopen(access, "a");
    if (!logfp) {
      fm_error e;
      fm_error_init(&e);
      fm_error_set(&e, FM_ERR_IO, "cannot open access log %s", access);
      return fm_cli_fail(&e);
    }
    setvbuf(logfp, NULL, _IOLBF, 0);
    o.access_log = logfp;
  }
  o.model_path = model;
  fm_model *m = fm_cli_open_model(model);
  if (!m) {
    if (logfp) fclose(logfp);
    return FM_EXIT_FAIL;
  }
  /* Block the stop signals before the worker threads exist (they inherit
   * the mask), then wait for one here. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  if (o.no_auth)
    fprintf(stderr, "fieldmatch serve: WARNING: --no-auth: every client is admin; "
                    "use only on a trusted machine\n");
  fm_error err;
  fm_error_init(&err);
  /* The provisioning worker and the snapshot scheduler (fm_prov_runner):
   * started before the server so a request never waits for a worker. */
  fm_prov_runner *runner = NULL;
  if (snap_root) {
    fm_prov_runner_opts ro;
    fm_prov_runner_opts_default(&ro);
    ro.db_path = db;
    ro.root = snap_root;
    ro.snapshot_root = no_sched ? NULL : snap_root;
    if (poll_ms > 0) ro.poll_ms = (int)poll_ms;
    ro.log = runner_log;
    if (fm_prov_runner_start(&ro, &runner, &err)) {
      fm_model_close(m);
      if (logfp) fclose(logfp);
      return fm_cli_fail(&err);
    }
    o.provision_root = snap_root;
    o.provision_wake = wake_runner;
    o.provision_ctx = runner;
  }
  fm_http_server *srv;
  if (fm_http_server_start(&o, m, db, &srv, &err)) {
    fm_prov_runner_stop(runner);
    fm_model_close(m);
    if (logfp) fclose(logfp);
    return fm_cli_fail(&err);
  }
  fprintf(stderr, "fieldmatch serve: listening on port %u (%u threads)\n",
          (unsigned)fm_http_server_port(srv), o.threads);
  /* SIGHUP: hot reload of the model file; SIGTERM/SIGINT: stop. */
  int sig = 0;
  while (sigwait(&set, &sig) == 0 && sig == SIGHUP) {
    fm_model_info mi;
    fm_error_init(&err);
    if (fm_http_server_reload(srv, NULL, &mi, &err))
      fprintf(stderr, "fieldmatch serve: SIGHUP: reload failed, the old model keeps serving: %s\n",
              err.msg);
    else
      fprintf(stderr, "fieldmatch serve: SIGHUP: model reloaded: %s (checksum %08x)\n",
              mi.name ? mi.name : "", (unsigned)mi.checksum);
  }
  fprintf(stderr, "fieldmatch serve: %s: finishing in-flight requests\n",
          sig == SIGINT ? "SIGINT" : "SIGTERM");
  fm_http_server_stop(srv);
  fm_prov_runner_stop(runner); /* after the server: no more wakes */
  fm_model_close(m);
  if (logfp) fclose(logfp);
  fprintf(stderr, "fieldmatch serve: stopped\n");
  return FM_EXIT_OK;
}
#endif
