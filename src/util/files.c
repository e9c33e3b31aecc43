/* files.c: whole-file reads, atomic temp+fsync+rename writes, mkdir -p,
 * file hashes, paths. */
#define _GNU_SOURCE
#include "fm_util.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

fm_rc fm_read_file(const char *path, char **out, size_t *len, fm_error *err) {
  *out = NULL;
  if (len) *len = 0;
  FILE *fp = fopen(path, "rb");
  if (!fp)
    return fm_error_set(err, FM_ERR_IO, "%s: cannot open: %s", path,
                        strerror(errno));
  fm_buf b;
  fm_buf_init(&b);
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
    if (fm_buf_append(&b, chunk, n)) {
      fclose(fp);
      fm_buf_free(&b);
      return fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory reading", path);
    }
  }
  int bad = ferror(fp);
  int e = errno;
  fclose(fp);
  if (bad) {
    fm_buf_free(&b);
    return fm_error_set(err, FM_ERR_IO, "%s: read error: %s", path, strerror(e));
  }
  if (!b.buf && fm_buf_append(&b, "", 0)) {
    return fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", path);
  }
  *out = b.buf;
  if (len) *len = b.len;
  return FM_OK;
}

fm_rc fm_atomic_open(fm_atomic *a, const char *path, fm_error *err) {
  a->fp = NULL;
  a->path = fm_strdup(path);
  a->tmp = NULL;
  fm_buf t;
  fm_buf_init(&t);
  if (!a->path || fm_buf_printf(&t, "%s.tmp.%ld", path, (long)getpid())) {
    fm_free(a->path);
    fm_buf_free(&t);
    a->path = NULL;
    return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  }
  a->tmp = t.buf;
  a->fp = fopen(a->tmp, "wb");
  if (!a->fp) {
    fm_rc rc = fm_error_set(err, FM_ERR_IO, "%s: cannot create: %s", a->tmp,
                            strerror(errno));
    fm_free(a->tmp);
    fm_free(a->path);
    a->tmp = a->path = NULL;
    return rc;
  }
  return FM_OK;
}

fm_rc fm_atomic_commit(fm_atomic *a, fm_error *err) {
  fm_rc rc = FM_OK;
  if (fflush(a->fp) != 0 || ferror(a->fp))
    rc = fm_error_set(err, FM_ERR_IO, "%s: write failed: %s", a->tmp,
                      strerror(errno));
  else if (fsync(fileno(a->fp)) != 0)
    rc = fm_error_set(err, FM_ERR_IO, "%s: fsync failed: %s", a->tmp,
                      strerror(errno));
  if (fclose(a->fp) != 0 && rc == FM_OK)
    rc = fm_error_set(err, FM_ERR_IO, "%s: close failed: %s", a->tmp,
                      strerror(errno));
  a->fp = NULL;
  if (rc == FM_OK && rename(a->tmp, a->path) != 0)
    rc = fm_error_set(err, FM_ERR_IO, "%s: cannot rename to %s: %s", a->tmp,
                      a->path, strerror(errno));
  if (rc != FM_OK) unlink(a->tmp);
  fm_free(a->tmp);
  fm_free(a->path);
  a->tmp = a->path = NULL;
  return rc;
}

void fm_atomic_abort(fm_atomic *a) {
  if (a->fp) fclose(a->fp);
  if (a->tmp) unlink(a->tmp);
  fm_free(a->tmp);
  fm_free(a->path);
  a->fp = NULL;
  a->tmp = a->path = NULL;
}

fm_rc fm_mkdirs(const char *path, fm_error *err) {
  char *p = fm_strdup(path);
  if (!p) return fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  fm_rc rc = FM_OK;
  for (char *s = p + 1;; s++) {
    if (*s == '/' || *s == '\0') {
      char c = *s;
      *s = '\0';
      if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        rc = fm_error_set(err, FM_ERR_IO, "%s: cannot create directory: %s", p,
                          strerror(errno));
        break;
      }
      *s = c;
      if (!c) break;
    }
  }
  fm_free(p);
  return rc;
}

void fm_sha256_hex(const void *p, size_t n, char hex[65]) {
  struct sha256_ctx c;
  uint8_t d[SHA256_DIGEST_SIZE];
  sha256_init(&c);
  sha256_update(&c, n, p);
  sha256_digest(&c, sizeof d, d);
  fm_hex(d, sizeof d, hex);
}

fm_rc fm_file_sha256(const char *path, char hex[65], fm_error *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fm_error_set(err, FM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct sha256_ctx c;
  sha256_init(&c);
  unsigned char buf[65536];
  ssize_t r;
  while ((r = read(fd, buf, sizeof buf)) != 0) {
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      close(fd);
      return fm_error_set(err, FM_ERR_IO, "%s: read failed: %s", path, strerror(e));
    }
    sha256_update(&c, (size_t)r, buf);
  }
  close(fd);
  uint8_t d[SHA256_DIGEST_SIZE];
  sha256_digest(&c, sizeof d, d);
  fm_hex(d, sizeof d, hex);
  return FM_OK;
}

char *fm_path_dirname(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return fm_strdup(".");
  if (slash == path) return fm_strdup("/");
  return fm_strndup(path, (size_t)(slash - path));
}

char *fm_path_join(const char *dir, const char *rel) {
  if (rel[0] == '/' || !dir || !dir[0]) return fm_strdup(rel);
  fm_buf b;
  fm_buf_init(&b);
  if (fm_buf_printf(&b, "%s/%s", dir, rel)) {
    fm_buf_free(&b);
    return NULL;
  }
  return b.buf;
}
