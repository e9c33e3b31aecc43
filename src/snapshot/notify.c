/* notify.c: telling someone a partition failed.  Two channels, either or
 * both: a shell command (run with FM_SNAPSHOT_* environment variables) and
 * an HTTP/1.1 POST of a JSON body to a plain http:// webhook over a socket
 * (no TLS: put a relay such as `curl` behind --on-failure for https).  A
 * notification that cannot be delivered is a warning, never a crash. */
#include "snapshot_internal.h"

#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* The environment for the hook: ours plus the FM_SNAPSHOT_* variables.
 * Built before fork so the child only calls execve. */
static char **hook_env(const char *db_path, const char *run_id,
                       const fm_snapshot_partition *p, fm_arena *a) {
  size_t n = 0;
  while (environ && environ[n]) n++;
  char **env = fm_arena_alloc(a, (n + 16) * sizeof *env);
  if (!env) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "FM_SNAPSHOT_", 12) != 0) env[k++] = environ[i];
  char buf[FM_ERRMSG_MAX + 64];
#define ADD(...)                                          \
  do {                                                    \
    snprintf(buf, sizeof buf, __VA_ARGS__);               \
    if (!(env[k++] = fm_arena_strdup(a, buf))) return NULL; \
  } while (0)
  ADD("FM_SNAPSHOT_JOB=%s", p->job);
  ADD("FM_SNAPSHOT_TABLE=%s", p->table ? p->table : "");
  ADD("FM_SNAPSHOT_DT=%s", p->dt);
  ADD("FM_SNAPSHOT_HR=%02d", p->hr);
  ADD("FM_SNAPSHOT_VERSION=%d", p->version);
  ADD("FM_SNAPSHOT_ATTEMPT=%d", p->attempt);
  ADD("FM_SNAPSHOT_RUN_ID=%s", run_id);
  ADD("FM_SNAPSHOT_ROWS_READ=%lld", (long long)p->rows_read);
  ADD("FM_SNAPSHOT_ROWS_WRITTEN=%lld", (long long)p->rows_written);
  ADD("FM_SNAPSHOT_ERROR=%s", p->detail ? p->detail : "");
  ADD("FM_SNAPSHOT_DB=%s", db_path ? db_path : "");
#undef ADD
  env[k] = NULL;
  return env;
}

static void run_command(const char *cmd, const char *db_path, const char *run_id,
                        const fm_snapshot_partition *p) {
  fm_arena a;
  fm_arena_init(&a);
  char **env = hook_env(db_path, run_id, p, &a);
  if (!env) {
    fm_warn("snapshot %s: out of memory preparing the --on-failure command", p->job);
    fm_arena_free(&a);
    return;
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    execve("/bin/sh", argv, env);
    _exit(127);
  }
  if (pid < 0) {
    fm_warn("snapshot %s: cannot run --on-failure command: %s", p->job, strerror(errno));
  } else {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      fm_warn("snapshot %s: --on-failure command '%s' failed (status %d)", p->job, cmd,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
  fm_arena_free(&a);
}

/* http://host[:port][/path] -> parts (arena-owned); 0 on success. */
static int parse_url(const char *url, fm_arena *a, char **host, char **port, char **path) {
  if (strncmp(url, "http://", 7) != 0) return -1;
  const char *h = url + 7, *slash = strchr(h, '/');
  size_t hl = slash ? (size_t)(slash - h) : strlen(h);
  const char *colon = memchr(h, ':', hl);
  if (hl == 0 || colon == h) return -1;
  *host = fm_arena_strndup(a, h, colon ? (size_t)(colon - h) : hl);
  *port = colon ? fm_arena_strndup(a, colon + 1, hl - (size_t)(colon + 1 - h))
                : fm_arena_strdup(a, "80");
  *path = fm_arena_strdup(a, slash ? slash : "/");
  return *host && *port && *path && **port ? 0 : -1;
}

static int send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, 0);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* POST body to url; returns the HTTP status, or -1 with why set. */
static int http_post(const char *url, const char *body, const char **why) {
  fm_arena a;
  fm_arena_init(&a);
  char *host, *port, *path;
  int status = -1;
  int fd = -1;
  struct addrinfo hints = {0}, *res = NULL;
  fm_buf req;
  fm_buf_init(&req);
  *why = "bad URL (only http://host[:port]/path is supported)";
  if (parse_url(url, &a, &host, &port, &path)) goto done;
  hints.ai_socktype = SOCK_STREAM;
  *why = "cannot resolve host";
  if (getaddrinfo(host, port, &hints, &res) != 0) goto done;
  *why = "cannot connect";
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) continue;
    struct timeval tv = {5, 0}; /* a slow hook must not stall the snapshots */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    close(fd);
    fd = -1;
  }
  if (fd < 0) goto done;
  *why = "out of memory";
  if (fm_buf_printf(&req,
                    "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fieldmatch-snapshot\r\n"
                    "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                    "Connection: close\r\n\r\n%s",
                    path, host, strlen(body), body))
    goto done;
  *why = "send failed";
  if (send_all(fd, req.buf, req.len)) goto done;
  char resp[256];
  size_t got = 0;
  while (got < sizeof resp - 1) {
    ssize_t r = recv(fd, resp + got, sizeof resp - 1 - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
    if (memchr(resp, '\n', got)) break;
  }
  resp[got] = '\0';
  *why = "no HTTP status line in the reply";
  int code;
  if (sscanf(resp, "HTTP/%*d.%*d %d", &code) == 1) status = code;
done:
  if (fd >= 0) close(fd);
  if (res) freeaddrinfo(res);
  fm_buf_free(&req);
  fm_arena_free(&a);
  return status;
}

static void post_webhook(const char *url, const char *db_path, const char *run_id,
                         const fm_snapshot_partition *p) {
  json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:s, s:I, s:I, s:s, s:s}",
                        "event", "snapshot.failed", "job", p->job, "table",
                        p->table ? p->table : "", "dt", p->dt, "hr", p->hr, "version",
                        p->version, "attempt", p->attempt, "run_id", run_id, "rows_read",
                        (json_int_t)p->rows_read, "rows_written",
                        (json_int_t)p->rows_written, "error", p->detail ? p->detail : "",
                        "database", db_path ? db_path : "");
  char *body = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(j);
  if (!body) {
    fm_warn("snapshot %s: cannot build the webhook body", p->job);
    return;
  }
  const char *why = "";
  int status = http_post(url, body, &why);
  free(body);
  if (status < 0) fm_warn("snapshot %s: webhook %s: %s", p->job, url, why);
  else if (status < 200 || status > 299)
    fm_warn("snapshot %s: webhook %s answered HTTP %d", p->job, url, status);
}

void fm_snapshot_notify(const char *cmd, const char *webhook, const char *db_path,
                        const char *run_id, const fm_snapshot_partition *p) {
  if (cmd && *cmd) run_command(cmd, db_path, run_id, p);
  if (webhook && *webhook) post_webhook(webhook, db_path, run_id, p);
}
