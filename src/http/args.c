/* args.c: query-string and form-body parameters, checked once here so
 * handlers see only valid values. */
#include "http_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *fm_http_arg(fm_http_req *r, const char *name) {
  return MHD_lookup_connection_value(r->con, MHD_GET_ARGUMENT_KIND, name);
}

int fm_http_arg_int(fm_http_req *r, const char *name, long lo, long hi, long def,
                    long *out, enum MHD_Result *ret) {
  const char *s = fm_http_arg(r, name);
  *out = def;
  if (!s) return 0;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (!*s || *end || errno || v < lo || v > hi) {
    *ret = fm_http_reply_error(r, FM_EC_BAD_PARAM, "%s must be an integer in %ld..%ld", name,
                               lo, hi);
    return -1;
  }
  *out = v;
  return 0;
}

int fm_http_arg_double(fm_http_req *r, const char *name, double def, double *out,
                       enum MHD_Result *ret) {
  const char *s = fm_http_arg(r, name);
  *out = def;
  if (!s || !*s) return 0;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (*end || errno || !isfinite(v)) {
    *ret = fm_http_reply_error(r, FM_EC_BAD_PARAM, "%s must be a number", name);
    return -1;
  }
  *out = v;
  return 0;
}

char *fm_http_form_value(const char *body, size_t len, const char *name) {
  size_t nl = strlen(name);
  const char *p = body, *end = body + len;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *stop = amp ? amp : end;
    if ((size_t)(stop - p) > nl && !memcmp(p, name, nl) && p[nl] == '=') {
      char *v = fm_strndup(p + nl + 1, (size_t)(stop - p - (ptrdiff_t)nl - 1));
      if (!v) return NULL;
      for (char *c = v; *c; c++)
        if (*c == '+') *c = ' ';
      v[MHD_http_unescape(v)] = '\0';
      return v;
    }
    p = amp ? amp + 1 : end;
  }
  return NULL;
}
