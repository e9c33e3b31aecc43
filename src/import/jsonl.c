/* jsonl.c: one JSON object per line (jansson), mapped like csv columns.
 *
 * Keys default to "id", "name", "description", "type", "category".  The id
 * key is required on every non-blank line.  An optional key that the spec
 * names explicitly may be absent from some objects (JSON objects are
 * sparse) but not from all of them: that is a typo, reported as
 * FM_ERR_PARSE naming the key.  Values: strings as is, null -> "", numbers
 * and booleans as their JSON text; arrays and objects are an error. */
#include "fm_import_int.h"

#include <jansson.h>
#include <string.h>

/* Text of a scalar JSON value into tmp (or borrowed from v); NULL when v is
 * an array or object. */
static const char *scalar_text(json_t *v, char *tmp, size_t tmpsz) {
  switch (json_typeof(v)) {
  case JSON_STRING: return json_string_value(v);
  case JSON_NULL: return "";
  case JSON_TRUE: return "true";
  case JSON_FALSE: return "false";
  case JSON_INTEGER:
    snprintf(tmp, tmpsz, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return tmp;
  case JSON_REAL:
    snprintf(tmp, tmpsz, "%.15g", json_real_value(v));
    return tmp;
  default: return NULL;
  }
}

fm_rc fm_import_jsonl(const fm_source_spec *spec, fm_fieldset *out,
                      fm_error *err) {
  const char *path = spec->path;
  char *buf, *body;
  size_t len;
  fm_rc rc = fm_imp_read_utf8(path, &buf, &body, &len, err);
  if (rc) return rc;
  const char *want[FM_IMP_NCOL], *key[FM_IMP_NCOL];
  int seen[FM_IMP_NCOL] = {0};
  fm_imp_col_names(spec, want, key);
  fm_imp im;
  rc = fm_imp_begin(&im, spec, out, err);
  uint32_t line = 0, nobj = 0;
  char *p = body, *end = body + len;
  char *s, *e;
  while (!rc && (s = fm_imp_next_line(&p, end, &e))) {
    line++;
    size_t n = (size_t)(e - s);
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i == n) continue;
    json_error_t jerr;
    json_t *obj = json_loadb(s, n, 0, &jerr);
    if (!obj) {
      /* jansson quotes the text near the error byte by byte: a backslash
       * before 'é' comes out as the backslash and half the character. */
      fm_utf8_scrub(jerr.text);
      rc = fm_error_set(err, FM_ERR_PARSE, "%s:%u:%d: bad JSON: %s", path,
                        line, jerr.column, jerr.text);
      break;
    }
    if (!json_is_object(obj)) {
      json_decref(obj);
      rc = fm_error_set(err, FM_ERR_PARSE, "%s:%u: not a JSON object", path,
                        line);
      break;
    }
    nobj++;
    const char *v[FM_IMP_NCOL];
    char tmp[FM_IMP_NCOL][64];
    for (int k = 0; k < FM_IMP_NCOL && !rc; k++) {
      json_t *jv = json_object_get(obj, key[k]);
      v[k] = "";
      if (!jv) {
        if (k == FM_IMP_ID)
          rc = fm_error_set(err, FM_ERR_PARSE, "%s:%u: no key '%s' (%s)",
                            path, line, key[k], fm_imp_col_what[k]);
        continue;
      }
      seen[k] = 1;
      if (!(v[k] = scalar_text(jv, tmp[k], sizeof tmp[k])))
        rc = fm_error_set(err, FM_ERR_PARSE,
                          "%s:%u: key '%s' holds an array or object, not text",
                          path, line, key[k]);
    }
    if (!rc)
      rc = fm_imp_add(&im, v[FM_IMP_ID], v[FM_IMP_NAME], v[FM_IMP_DESC], v[FM_IMP_TYPE],
                      v[FM_IMP_CAT], line, NULL, err);
    json_decref(obj);
  }
  for (int k = 1; !rc && nobj && k < FM_IMP_NCOL; k++)
    if (want[k] && !seen[k])
      rc = fm_error_set(err, FM_ERR_PARSE,
                        "%s:1: key '%s' (%s) is in none of the %u objects",
                        path, key[k], fm_imp_col_what[k], nobj);
  rc = fm_imp_end(&im, rc);
  fm_free(buf);
  return rc;
}
