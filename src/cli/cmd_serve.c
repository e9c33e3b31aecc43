/* cmd_serve.c: fieldmatch serve --model M --db D [--listen HOST:PORT] ...
 * Starts the HTTP service (src/http) and runs until SIGTERM or SIGINT, then
 * stops gracefully (in-flight requests finish) and exits 0. */
#include "cli.h"

#ifdef FM_HAVE_HTTP
#include "fm_http.h"
#include "fm_jobs.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static const char *help =
    "usage: fieldmatch serve --model MODEL.fmm --db DB.sqlite [options]\n"
    "  --listen HOST:PORT   address to bind (default 127.0.0.1:8080; port 0 = any)\n"
    "  --threads N          worker threads (default 2)\n"
    "  --conn-limit N       connections at once; more get 429 (default 1024)\n"
    "  --per-ip-limit N     connections per client IP (default: no limit)\n"
    "  --timeout S          idle connection timeout in seconds (default 30)\n"
    "  --max-body BYTES     request body limit (default 1048576)\n"
    "  --max-batch N        fields per POST /v1/match (default 100)\n"
    "  --rate R [--burst B] requests/s per client (token or IP); default off\n"
    "  --access-log FILE    access log: a file, - for stderr (default), off\n"
    "  --drain-ms MS        how long shutdown waits for in-flight requests\n"
    "  --match-cache N      rankings kept across requests, shared (default 16384;\n"
    "                       0 or off: none; at most ~3.5 KiB each, ~0.4 KiB at k=10)\n"
    "  --no-auth            serve without tokens: everyone is admin (local use only)\n"
    "  --snapshot-root DIR  run due snapshots now (catching up missed hours) and at\n"
    "                       the top of every hour, and provision files under\n"
    "                       DIR/provision/ (docs/provision.md, docs/snapshot.md)\n"
    "  --no-scheduler       with --snapshot-root: provisioning only, no snapshots\n"
    "  --provision-ttl S    seconds a provisioned file is kept (default 7 days)\n"
    "  --provision-poll-ms MS  how often the worker looks for requests made by\n"
    "                       other processes (default 2000)\n"
    "Routes: docs/http.md and api/openapi.yaml.  SIGTERM/SIGINT stop gracefully.\n";

static int num(const char *opt, const char *v, long *out) {
  long n = fm_cli_int(v);
  if (n < 0) return fm_cli_usage("serve", "%s needs a positive integer, not '%s'", opt, v);
  *out = n;
  return 0;
}

static int positive(const char *opt, const char *v, double *out) {
  char *end;
  double d = strtod(v, &end);
  if (!*v || *end || !(d > 0))
    return fm_cli_usage("serve", "%s needs a positive number, not '%s'", opt, v);
  *out = d;
  return 0;
}

static void runner_log(void *ctx, const char *msg) {
  (void)ctx;
  fprintf(stderr, "fieldmatch serve: %s\n", msg);
}

static void wake_runner(void *ctx) { fm_prov_runner_wake(ctx); }

int fm_cmd_serve(int argc, char **argv) {
  fm_http_opts o;
  fm_http_opts_default(&o);
  o.access_log = stderr;
  const char *model = NULL, *db = NULL, *access = "-", *snap_root = NULL;
  int no_sched = 0;
  long poll_ms = 0;
  for (int i = 1; i < argc; i++) {
    int missing = 0;
    long n = 0;
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(help, stdout);
      return FM_EXIT_OK;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--model", &missing))) {
      model = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--db", &missing))) {
      db = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--listen", &missing))) {
      o.listen = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--threads", &missing))) {
      if (num("--threads", v, &n)) return FM_EXIT_USAGE;
      o.threads = (unsigned)n;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--conn-limit", &missing))) {
      if (num("--conn-limit", v, &n)) return FM_EXIT_USAGE;
      o.conn_limit = (unsigned)n;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--per-ip-limit", &missing))) {
      if (num("--per-ip-limit", v, &n)) return FM_EXIT_USAGE;
      o.per_ip_limit = (unsigned)n;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--timeout", &missing))) {
      if (num("--timeout", v, &n)) return FM_EXIT_USAGE;
      o.timeout_s = (unsigned)n;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--max-body", &missing))) {
      if (num("--max-body", v, &n)) return FM_EXIT_USAGE;
      o.max_body = (size_t)n;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--max-batch", &missing))) {
      if (num("--max-batch", v, &n)) return FM_EXIT_USAGE;
      o.max_batch = (unsigned)n;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--drain-ms", &missing))) {
      if (num("--drain-ms", v, &n)) return FM_EXIT_USAGE;
      o.drain_ms = (unsigned)n;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--match-cache", &missing))) {
      if (!strcmp(v, "0") || !strcmp(v, "off"))
        n = 0;
      else if (num("--match-cache", v, &n))
        return FM_EXIT_USAGE;
      o.match_cache = (size_t)n;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--rate", &missing))) {
      if (positive("--rate", v, &o.rate)) return FM_EXIT_USAGE;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--burst", &missing))) {
      if (positive("--burst", v, &o.burst)) return FM_EXIT_USAGE;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--access-log", &missing))) {
      access = v;
    } else if (!strcmp(argv[i], "--no-auth")) {
      o.no_auth = 1;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--snapshot-root", &missing))) {
      snap_root = v;
    } else if (!strcmp(argv[i], "--no-scheduler")) {
      no_sched = 1;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--provision-ttl", &missing))) {
      if (num("--provision-ttl", v, &n)) return FM_EXIT_USAGE;
      o.provision_ttl = n;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--provision-poll-ms", &missing))) {
      if (num("--provision-poll-ms", v, &poll_ms)) return FM_EXIT_USAGE;
    } else {
      return fm_cli_usage("serve", missing ? "option %s needs a value" : "unknown argument '%s'",
                          argv[i]);
    }
  }
  if (!model) return fm_cli_usage("serve", "--model is required");
  if (!db && !o.no_auth) return fm_cli_usage("serve", "--db is required (or --no-auth)");
  if (snap_root && !db) return fm_cli_usage("serve", "--snapshot-root needs --db");
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
  int sig = 0;
  sigwait(&set, &sig);
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
