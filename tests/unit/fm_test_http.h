/* fm_test_http.h: the fixture shared by the HTTP service's in-process tests
 * (test_http.c, test_http_store.c): the sample model trained once per
 * executable in a scratch directory, a server started on 127.0.0.1 port 0,
 * and a minimal blocking socket client (one request per connection; GET and
 * POST with an optional bearer secret, the response in `resp`, its JSON
 * body).  Header-only, like fm_test_util.h; include after fm_test.h and
 * fm_test_util.h (it owns `model` and `resp`). */
#ifndef FM_TEST_HTTP_H
#define FM_TEST_HTTP_H

#include "fm_http.h"
#include "fm_model.h"
#include "fm_test.h"
#include "fm_test_util.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The sample model every server serves; fm_http_fixture_begin trains it. */
static fm_model *model;

/* A TCP connection to 127.0.0.1:port; the caller closes the returned fd,
 * -1 when it cannot be made. */
static inline int connect_local(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* One request on a fresh connection; returns the status and copies up to
 * n-1 bytes of the whole response (headers + body) into out. */
static inline int http(uint16_t port, const char *req, char *out, size_t n) {
  int fd = connect_local(port);
  if (fd < 0) return -1;
  size_t len = strlen(req), off = 0;
  while (off < len) {
    ssize_t w = write(fd, req + off, len - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
  size_t got = 0;
  ssize_t r;
  while (got + 1 < n && (r = read(fd, out + got, n - 1 - got)) > 0) got += (size_t)r;
  out[got] = '\0';
  close(fd);
  int status = -1;
  if (sscanf(out, "HTTP/1.1 %d", &status) != 1) status = -1;
  return status;
}

/* The last response of get, post and post_auth. */
static char resp[1 << 16];

/* GET path with an optional bearer secret. */
static inline int get(uint16_t port, const char *path, const char *secret) {
  char req[8192];
  snprintf(req, sizeof req,
           "GET %s HTTP/1.1\r\nHost: localhost\r\n%s%s%sConnection: close\r\n\r\n", path,
           secret ? "Authorization: Bearer " : "", secret ? secret : "", secret ? "\r\n" : "");
  return http(port, req, resp, sizeof resp);
}

static inline int post(uint16_t port, const char *path, const char *ctype, const char *body) {
  char req[8192];
  snprintf(req, sizeof req,
           "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: %s\r\n"
           "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
           path, ctype, strlen(body), body);
  return http(port, req, resp, sizeof resp);
}

/* POST with an optional bearer secret into out. */
static inline int post_to(uint16_t port, const char *path, const char *secret, const char *body,
                          char *out, size_t n) {
  char req[8192];
  snprintf(req, sizeof req,
           "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
           "%s%s%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
           path, secret ? "Authorization: Bearer " : "", secret ? secret : "",
           secret ? "\r\n" : "", strlen(body), body);
  return http(port, req, out, n);
}

static inline int post_auth(uint16_t port, const char *path, const char *secret,
                            const char *body) {
  return post_to(port, path, secret, body, resp, sizeof resp);
}

/* The JSON body of the last response (new reference) or NULL. */
static inline json_t *body_json(const char *r) {
  const char *b = strstr(r, "\r\n\r\n");
  return b ? json_loads(b + 4, 0, NULL) : NULL;
}

/* Start a server for `model` on 127.0.0.1 port 0 with no access log, over
 * the database db (or none); NULL, counted as a failed check, on error. */
static inline fm_http_server *start(fm_http_opts *o, const char *db) {
  fm_error err;
  fm_error_init(&err);
  fm_http_server *srv = NULL;
  o->listen = "127.0.0.1:0";
  o->access_log = NULL;
  fm_rc rc = fm_http_server_start(o, model, db, &srv, &err);
  if (rc) fprintf(stderr, "start: %s\n", err.msg);
  CHECK(rc == FM_OK && srv && fm_http_server_port(srv) > 0);
  return srv;
}

/* main()'s setup: the scratch directory /tmp/<prefix>XXXXXX and `model`
 * trained quietly from train/sample.json, whose config goes to *cfg (kept
 * until fm_http_fixture_end).  0, or 1 (said on stderr). */
static inline int fm_http_fixture_begin(const char *prefix, fm_config **cfg) {
  snprintf(dir, sizeof dir, "/tmp/%sXXXXXX", prefix);
  if (!mkdtemp(dir)) return 1;
  fm_error err;
  fm_error_init(&err);
  *cfg = NULL;
  if (fm_config_load("train/sample.json", cfg, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  fm_train_input in = {.config = *cfg, .quiet = 1};
  if (fm_train(&in, &model, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    fm_config_free(*cfg);
    return 1;
  }
  return 0;
}

/* main()'s teardown: close the model, free cfg, remove the scratch
 * directory; 0, or 1 when it could not be removed. */
static inline int fm_http_fixture_end(fm_config *cfg) {
  fm_model_close(model);
  fm_config_free(cfg);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) ? 1 : 0;
}

#endif
