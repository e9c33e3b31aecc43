/* snapshot_verify.c: fm_snapshot_verify, re-reading a lake's partitions
 * against their manifests (and, given the store, checking the lake's
 * owner).  Reads only; every problem is reported, none stops the walk. */
#include "snapshot_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <nettle/sha2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct verify {
  const char *root;
  fm_snapshot_problem_fn fn;
  void *ctx;
  fm_snapshot_verify_result *res;
  fm_buf path; /* scratch */
} verify;

static void problem(verify *v, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(verify *v, const char *where, const char *fmt, ...) {
  char msg[FM_ERRMSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  v->res->problems++;
  if (v->fn) v->fn(v->ctx, where, msg);
}

/* SHA-256 (hex) and size of the file at path; -1 with errno when it
 * cannot be read. */
static int hash_file(const char *path, char hex[65], uint64_t *size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct sha256_ctx sha;
  sha256_init(&sha);
  unsigned char buf[65536];
  ssize_t n;
  *size = 0;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    sha256_update(&sha, (size_t)n, buf);
    *size += (uint64_t)n;
  }
  int e = errno;
  close(fd);
  if (n < 0) {
    errno = e;
    return -1;
  }
  uint8_t dg[SHA256_DIGEST_SIZE];
  sha256_digest(&sha, sizeof dg, dg);
  fm_hex(dg, sizeof dg, hex);
  return 0;
}

/* "<root>/<rel>/<name>" into v->path; 0 ok. */
static int path_of(verify *v, const char *rel, const char *name) {
  fm_buf_reset(&v->path);
  return fm_buf_printf(&v->path, "%s/%s%s%s", v->root, rel, name ? "/" : "", name ? name : "")
             ? -1 : 0;
}

/* One file entry of a manifest. */
static void check_file(verify *v, const char *rel, json_t *f) {
  const char *name = json_string_value(json_object_get(f, "path"));
  const char *want = json_string_value(json_object_get(f, "sha256"));
  json_t *bytes = json_object_get(f, "bytes");
  if (!name || !want || !json_is_integer(bytes) || strchr(name, '/')) {
    problem(v, rel, "_manifest.json: a files entry lacks path, bytes or sha256");
    return;
  }
  v->res->files++;
  char got[65];
  uint64_t size;
  if (path_of(v, rel, name) || hash_file(v->path.buf, got, &size) != 0) {
    problem(v, rel, "%s: missing or unreadable (%s)", name, strerror(errno));
    return;
  }
  if (size != (uint64_t)json_integer_value(bytes))
    problem(v, rel, "%s: %llu bytes, the manifest says %lld", name, (unsigned long long)size,
            (long long)json_integer_value(bytes));
  if (strcmp(got, want) != 0)
    problem(v, rel, "%s: SHA-256 %s, the manifest says %s", name, got, want);
}

/* One partition directory <root>/<rel>. */
static void check_partition(verify *v, const char *rel) {
  v->res->partitions++;
  struct stat sb;
  if (path_of(v, rel, "_SUCCESS") || stat(v->path.buf, &sb) != 0)
    problem(v, rel, "_SUCCESS is missing");
  json_error_t je;
  json_t *m = path_of(v, rel, "_manifest.json") ? NULL : json_load_file(v->path.buf, 0, &je);
  json_t *files = m ? json_object_get(m, "files") : NULL;
  if (!m) {
    problem(v, rel, "_manifest.json: missing or unreadable (line %d: %s)", je.line, je.text);
    return;
  }
  if (!json_is_array(files) || json_array_size(files) == 0) {
    problem(v, rel, "_manifest.json: no files listed");
  } else {
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f) check_file(v, rel, f);
  }
  json_decref(m);
}

/* The subdirectories of dir whose names start with prefix, sorted. */
static char **subdirs(const char *dir, const char *prefix, size_t *n) {
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return NULL;
  char **v = NULL;
  size_t cap = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.' || (prefix && strncmp(de->d_name, prefix, strlen(prefix))) ||
        (!prefix && de->d_name[0] == '_'))
      continue;
    char *p = fm_path_join(dir, de->d_name);
    struct stat sb;
    int isdir = p && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
    fm_free(p);
    if (!isdir || fm_grow((void **)&v, &cap, *n + 1, sizeof *v)) continue;
    if ((v[*n] = fm_strdup(de->d_name))) (*n)++;
  }
  closedir(d);
  for (size_t i = 1; i < *n; i++) /* insertion sort: a few dozen names */
    for (size_t k = i; k > 0 && strcmp(v[k - 1], v[k]) > 0; k--) {
      char *t = v[k];
      v[k] = v[k - 1];
      v[k - 1] = t;
    }
  return v;
}

static void names_free(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) fm_free(v[i]);
  fm_free(v);
}

/* Every <job>/dt=*\/hr=* directory on disk. */
static void walk(verify *v) {
  size_t nj, nd, nh;
  char **jobs = subdirs(v->root, NULL, &nj);
  fm_buf dir, rel;
  fm_buf_init(&dir);
  fm_buf_init(&rel);
  for (size_t a = 0; a < nj; a++) {
    fm_buf_reset(&dir);
    if (fm_buf_printf(&dir, "%s/%s", v->root, jobs[a])) break;
    char **dts = subdirs(dir.buf, "dt=", &nd);
    for (size_t b = 0; b < nd; b++) {
      fm_buf_reset(&dir);
      if (fm_buf_printf(&dir, "%s/%s/%s", v->root, jobs[a], dts[b])) break;
      char **hrs = subdirs(dir.buf, "hr=", &nh);
      for (size_t c = 0; c < nh; c++) {
        fm_buf_reset(&rel);
        if (fm_buf_printf(&rel, "%s/%s/%s", jobs[a], dts[b], hrs[c]) == FM_OK)
          check_partition(v, rel.buf);
      }
      names_free(hrs, nh);
    }
    names_free(dts, nd);
  }
  names_free(jobs, nj);
  fm_buf_free(&dir);
  fm_buf_free(&rel);
}

/* The store's view: the lake names it as its store.  (The catalog table
 * is the store's, shared by every root it has written, so it is not
 * compared with one lake.) */
static fm_rc check_catalog(verify *v, fm_store *st, fm_error *err) {
  char ours[33];
  fm_rc rc = fm_snapshot_store_id(st, 0, ours, err);
  if (rc) return rc;
  fm_error le;
  fm_error_init(&le);
  json_error_t je;
  char *idpath = fm_path_join(v->root, FM_SNAPSHOT_LAKE_FILE);
  json_t *idj = idpath ? json_load_file(idpath, 0, &je) : NULL;
  const char *owner = json_string_value(json_object_get(idj, "store_id"));
  if (!owner) problem(v, FM_SNAPSHOT_LAKE_FILE, "missing or unreadable: the lake names no store");
  else if (strcmp(owner, ours) != 0)
    problem(v, FM_SNAPSHOT_LAKE_FILE, "the lake belongs to store %s, this is store %s (%s)",
            owner, ours[0] ? ours : "(none yet)", fm_store_path(st));
  json_decref(idj);
  fm_free(idpath);
  return FM_OK;
}

fm_rc fm_snapshot_verify(const char *root, fm_store *st, fm_snapshot_problem_fn fn, void *ctx,
                         fm_snapshot_verify_result *res, fm_error *err) {
  fm_snapshot_verify_result local;
  if (!res) res = &local;
  memset(res, 0, sizeof *res);
  struct stat sb;
  if (!root || stat(root, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return fm_error_set(err, FM_ERR_NOTFOUND, "%s: no lake here (not a directory)",
                        root ? root : "(null)");
  verify v = {.root = root, .fn = fn, .ctx = ctx, .res = res};
  fm_buf_init(&v.path);
  walk(&v);
  fm_rc rc = st ? check_catalog(&v, st, err) : FM_OK;
  fm_buf_free(&v.path);
  return rc;
}
