/* h_provision.c: provisioning requests over REST (docs/provision.md).
 *   POST /v1/provisioning/requests              {"dataset","filters","format"} -> 202
 *   GET  /v1/provisioning/requests              the caller's own (admins: all)
 *   GET  /v1/provisioning/requests/{id}         status
 *   GET  /v1/provisioning/requests/{id}/download the file (409 not ready, 410 expired)
 * Every route needs a reader token.  A request belongs to its requester (the
 * token's owner): anyone else but an admin gets the same 404 as for an id
 * that does not exist, so the answer does not confirm that someone else
 * asked for something (the ids are unguessable, 128 random bits, but a
 * leaked one in a log should not become an existence oracle either).
 * The worker thread (fm_prov_runner, started by `fieldmatch serve`) does
 * the writing; these handlers only read and insert rows. */
#include "http_internal.h"

#include "fm_provision.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/base64.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The worker's store, or an error reply queued into *ret. */
static int store_of(fm_http_req *r, fm_store **st, enum MHD_Result *ret) {
  fm_error err;
  fm_error_init(&err);
  if (!fm_http_server_opts(r->srv)->provision_root) {
    *ret = fm_http_reply_error(r, FM_EC_PROVISION_OFF,
                               "start the server with --snapshot-root to provision files");
    return -1;
  }
  fm_http_worker *w = fm_http_worker_get(r->srv, &err);
  if (!w || fm_http_worker_store(w, st, &err)) {
    *ret = fm_http_reply_rc(r, &err);
    return -1;
  }
  return 0;
}

static int is_admin(const fm_http_req *r) { return r->role >= FM_TOKEN_ADMIN; }

/* Load {id} for the caller: 0 ok (caller frees *out), else a reply queued. */
static int load_own(fm_http_req *r, fm_store *st, fm_prov_request *out,
                    enum MHD_Result *ret) {
  fm_error err;
  fm_error_init(&err);
  fm_rc rc = fm_prov_get(st, r->params[0], out, &err);
  if (rc == FM_OK && !is_admin(r) && strcmp(out->requester, r->owner) != 0) {
    fm_prov_request_free(out);
    rc = FM_ERR_NOTFOUND;
  }
  if (rc == FM_ERR_NOTFOUND) {
    *ret = fm_http_reply_error(r, FM_EC_PROVISION_NOT_FOUND, "no provisioning request %s",
                               r->params[0]);
    return -1;
  }
  if (rc) {
    *ret = fm_http_reply_rc(r, &err);
    return -1;
  }
  return 0;
}

enum MHD_Result fm_h_provision_create(fm_http_req *r) {
  enum MHD_Result ret;
  fm_store *st;
  if (store_of(r, &st, &ret)) return ret;
  json_error_t je;
  json_t *body = json_loadb(r->body.buf ? r->body.buf : "", r->body.len, JSON_REJECT_DUPLICATES,
                            &je);
  if (!body || !json_is_object(body)) {
    int parsed = body != NULL;
    json_decref(body);
    return fm_http_reply_error(r, FM_EC_BAD_JSON,
                               "expected {\"dataset\",\"filters\",\"format\"}: %s",
                               parsed ? "not an object" : je.text);
  }
  const char *key;
  json_t *v;
  json_object_foreach(body, key, v) {
    if (strcmp(key, "dataset") && strcmp(key, "filters") && strcmp(key, "format")) {
      /* key is borrowed from body: reply before letting body go. */
      enum MHD_Result ret2 = fm_http_reply_error(
          r, FM_EC_BAD_JSON, "unknown member '%s' (dataset, filters, format)", key);
      json_decref(body);
      return ret2;
    }
  }
  json_t *ds = json_object_get(body, "dataset"), *fl = json_object_get(body, "filters"),
         *fmt = json_object_get(body, "format");
  if (!json_is_string(ds) || (fmt && !json_is_string(fmt)) || (fl && !json_is_object(fl))) {
    json_decref(body);
    return fm_http_reply_error(r, FM_EC_BAD_JSON,
                               "dataset must be a string, filters an object, format a string");
  }
  char *filters = fl ? json_dumps(fl, JSON_COMPACT) : NULL;
  if (fl && !filters) {
    json_decref(body);
    return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  }
  const fm_http_opts *o = fm_http_server_opts(r->srv);
  fm_error err;
  fm_error_init(&err);
  char id[FM_PROV_ID_LEN + 1];
  fm_rc rc = fm_prov_create(st, r->owner, json_string_value(ds), filters,
                            fmt ? json_string_value(fmt) : NULL, o->provision_ttl, id, &err);
  free(filters);
  json_decref(body);
  if (rc == FM_ERR_ARG) return fm_http_reply_error(r, FM_EC_BAD_PARAM, "%s", err.msg);
  if (rc) return fm_http_reply_rc(r, &err);
  if (o->provision_wake) o->provision_wake(o->provision_ctx);
  char href[128];
  snprintf(href, sizeof href, "/v1/provisioning/requests/%s", id);
  return fm_http_reply_json(r, MHD_HTTP_ACCEPTED,
                            json_pack("{s:s,s:s,s:s}", "id", id, "status", "pending", "href", href));
}

enum MHD_Result fm_h_provision_list(fm_http_req *r) {
  enum MHD_Result ret;
  fm_store *st;
  if (store_of(r, &st, &ret)) return ret;
  long limit;
  if (fm_http_arg_int(r, "limit", 1, 1000, 100, &limit, &ret)) return ret;
  fm_error err;
  fm_error_init(&err);
  fm_prov_request *v = NULL;
  size_t n = 0;
  fm_rc rc = fm_prov_list(st, is_admin(r) ? NULL : r->owner, (int)limit, &v, &n, &err);
  if (rc) {
    fm_prov_list_free(v, n);
    return fm_http_reply_rc(r, &err);
  }
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < n; i++)
    if (json_array_append_new(arr, fm_prov_request_json(&v[i]))) {
      json_decref(arr);
      arr = NULL;
    }
  fm_prov_list_free(v, n);
  if (!arr) return fm_http_reply_error(r, FM_EC_INTERNAL, "out of memory");
  return fm_http_reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "requests", arr));
}

enum MHD_Result fm_h_provision_get(fm_http_req *r) {
  enum MHD_Result ret;
  fm_store *st;
  fm_prov_request q;
  if (store_of(r, &st, &ret) || load_own(r, st, &q, &ret)) return ret;
  json_t *j = fm_prov_request_json(&q);
  fm_prov_request_free(&q);
  return fm_http_reply_json(r, MHD_HTTP_OK, j);
}

enum MHD_Result fm_h_provision_download(fm_http_req *r) {
  enum MHD_Result ret;
  fm_store *st;
  fm_prov_request q;
  if (store_of(r, &st, &ret) || load_own(r, st, &q, &ret)) return ret;
  if (q.status == FM_PROV_EXPIRED) {
    ret = fm_http_reply_error(r, FM_EC_PROVISION_GONE, "request %s expired at %s", q.id,
                              q.expires_at);
    fm_prov_request_free(&q);
    return ret;
  }
  if (q.status != FM_PROV_READY) {
    ret = fm_http_reply_error(r, FM_EC_PROVISION_NOT_READY, "request %s is %s%s%s", q.id,
                              fm_prov_status_name(q.status), q.error ? ": " : "",
                              q.error ? q.error : "");
    fm_prov_request_free(&q);
    return ret;
  }
  char *path = fm_prov_file_path(fm_http_server_opts(r->srv)->provision_root, &q);
  int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0 || (int64_t)sb.st_size != q.bytes) {
    /* Ready but the file is gone or not the one recorded: expiry raced us,
     * or someone touched the directory.  Never serve other bytes. */
    int missing = fd < 0 && errno == ENOENT;
    if (fd >= 0) close(fd);
    ret = missing ? fm_http_reply_error(r, FM_EC_PROVISION_GONE, "the file of %s is gone", q.id)
                  : fm_http_reply_error(r, FM_EC_INTERNAL, "the file of %s does not match its "
                                                           "record",
                                        q.id);
    fm_free(path);
    fm_prov_request_free(&q);
    return ret;
  }
  fm_free(path);
  /* MHD owns fd from here (closed when the response is destroyed). */
  struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
  if (!resp) {
    close(fd);
    fm_prov_request_free(&q);
    return MHD_NO;
  }
  uint8_t dg[32];
  for (int i = 0; i < 32; i++) {
    unsigned x = 0;
    sscanf(q.sha256 + 2 * i, "%2x", &x);
    dg[i] = (uint8_t)x;
  }
  char b64[BASE64_ENCODE_RAW_LENGTH(32) + 1 + 8], digest[96], disp[96];
  base64_encode_raw((char *)b64, sizeof dg, dg);
  b64[BASE64_ENCODE_RAW_LENGTH(32)] = '\0';
  snprintf(digest, sizeof digest, "sha-256=%s", b64);
  snprintf(disp, sizeof disp, "attachment; filename=\"%s.%s\"", q.id, q.format);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/gzip");
  MHD_add_response_header(resp, "Content-Disposition", disp);
  MHD_add_response_header(resp, "Digest", digest);
  MHD_add_response_header(resp, "X-Checksum-SHA256", q.sha256);
  fm_prov_request_free(&q);
  return fm_http_reply_response(r, MHD_HTTP_OK, resp);
}
