/*
 * fm_util.h: the bottom of libfieldmatch.  Return codes, the error record
 * threaded through every call, growable buffers, a string arena, a
 * string -> uint32 hash map, hashing and the terminal progress bar.
 *
 * Ownership conventions used across the whole library (as in jq):
 *   - A function that returns a pointer documents whether the caller owns it.
 *   - "borrowed" means valid as long as the object it came from lives.
 *   - Every fallible function returns an fm_rc and, on failure, fills the
 *     caller's fm_error (which may be NULL when the caller does not care).
 */
#ifndef FM_UTIL_H
#define FM_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One return code, threaded through the whole library (as in SQLite). */
typedef enum fm_rc {
  FM_OK = 0,
  FM_ERR_NOMEM,    /* allocation failed */
  FM_ERR_IO,       /* open/read/write/rename failed (errno text in message) */
  FM_ERR_PARSE,    /* malformed input: message names file:line and field */
  FM_ERR_FORMAT,   /* not a file of the expected kind (bad magic) */
  FM_ERR_CORRUPT,  /* checksum mismatch, truncated file, bad offsets */
  FM_ERR_VERSION,  /* a file format version this build does not read */
  FM_ERR_ARG,      /* bad argument or configuration value */
  FM_ERR_NOTFOUND, /* a named thing (field, column, section) is missing */
  FM_ERR_ICU,      /* ICU reported an error */
  FM_ERR_LAPACK,   /* LAPACK reported an error or did not converge */
  FM_ERR_INTERNAL, /* a broken invariant; a bug */
  FM_ERR_DB,       /* SQLite reported an error (message has its text) */
  FM_ERR_BUSY,     /* the database stayed locked after bounded retries */
  FM_ERR_CONFLICT, /* a concurrent change won, or a uniqueness rule */
  FM_ERR_DENIED    /* not allowed (role, owner) */
} fm_rc;

/* Short stable name of a return code ("nomem", "parse", ...). Static storage. */
const char *fm_rc_name(fm_rc rc);

#define FM_ERRMSG_MAX 1024

/* The error record: the first error wins the message, rc is always the last
 * failing code.  Stack-allocate it and zero it with fm_error_init. */
typedef struct fm_error {
  fm_rc rc;
  char msg[FM_ERRMSG_MAX];
} fm_error;

void fm_error_init(fm_error *err);
/* Set rc and a printf-style message; returns rc so callers can write
 * `return fm_error_set(err, FM_ERR_PARSE, "%s:%zu: ...", ...)`.
 * err may be NULL. */
fm_rc fm_error_set(fm_error *err, fm_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix the existing message with "prefix: " (for adding context). */
void fm_error_prefix(fm_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Warnings (duplicate ids, skipped lines): a sink the caller installs.
 * Default: print "fieldmatch: warning: <msg>" to stderr.  Not thread-safe to
 * change while other threads warn. */
typedef void (*fm_warn_fn)(void *ctx, const char *msg);
void fm_set_warn_handler(fm_warn_fn fn, void *ctx);
void fm_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- memory ---------------------------------------------------------- */

/* Test hook for fault injection (as SQLite's): when set > 0, the Nth
 * following fm_malloc/fm_realloc/fm_calloc call fails (and only that one).
 * 0 disables.  Only for tests. */
void fm_fault_malloc_after(long n);

void *fm_malloc(size_t n);              /* NULL on failure or injected fault */
void *fm_calloc(size_t n, size_t size); /* overflow-checked */
void *fm_realloc(void *p, size_t n);
char *fm_strdup(const char *s);         /* caller owns */
char *fm_strndup(const char *s, size_t n);
void fm_free(void *p);

/* Grow *pv (array of elsz-byte items, capacity *cap) to hold at least need
 * items.  Returns FM_OK or FM_ERR_NOMEM (leaving *pv untouched). */
fm_rc fm_grow(void **pv, size_t *cap, size_t need, size_t elsz);

/* ---- string buffer ---------------------------------------------------- */

/* A growable NUL-terminated byte buffer.  Owns buf. */
typedef struct fm_buf {
  char *buf;
  size_t len, cap;
} fm_buf;

void fm_buf_init(fm_buf *b);
void fm_buf_free(fm_buf *b);
void fm_buf_reset(fm_buf *b); /* len = 0, keeps memory */
fm_rc fm_buf_append(fm_buf *b, const void *p, size_t n);
fm_rc fm_buf_puts(fm_buf *b, const char *s);
fm_rc fm_buf_putc(fm_buf *b, char c);
fm_rc fm_buf_printf(fm_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append v in decimal, as printf's "%llu" (no printf on the way). */
fm_rc fm_buf_u64(fm_buf *b, uint64_t v);
/* Append v exactly as printf("%.4f", (double)v) writes it (correct
 * rounding with ties to even, "-0.0000" for a negative v that rounds to
 * zero), for a fraction of printf's cost: the score column of exports. */
fm_rc fm_buf_fixed4(fm_buf *b, float v);

/* Append s (n bytes) as a JSON string literal, exactly as jansson's compact
 * dump writes it.  FM_ERR_ARG (err says "not valid UTF-8") when jansson
 * would reject the string; FM_ERR_NOMEM.  On failure b->len is unchanged. */
fm_rc fm_buf_json_str(fm_buf *b, const char *s, size_t n, fm_error *err);
/* Replace, in place, every byte of the NUL-terminated s that does not
 * start a valid UTF-8 sequence (as fm_buf_json_str judges it) by '?': for
 * text from elsewhere, such as a jansson error, that goes into a message. */
void fm_utf8_scrub(char *s);
/* Length in bytes (1-4) of the valid UTF-8 character at s[0..n), or 0 when
 * n is 0 or s does not start one. */
size_t fm_utf8_char_len(const char *s, size_t n);
/* Offset of the first byte of s[0..n) that does not start a valid UTF-8
 * character (or is NUL), or (size_t)-1 when all of s is valid UTF-8
 * (fm_utf8_char_len's rules: no overlongs, surrogates, > U+10FFFF). */
size_t fm_utf8_invalid_at(const char *s, size_t n);

/* Append s (n bytes) as one RFC 4180 CSV cell: quoted (quotes doubled) when
 * it holds a comma, quote, CR or LF, starts or ends with a blank or tab
 * (which spreadsheet programs tend to eat), or is empty and quote_empty is
 * set (so a reader can tell "" from a missing value).  FM_ERR_NOMEM. */
fm_rc fm_buf_csv_cell(fm_buf *b, const char *s, size_t n, int quote_empty);

/* ---- string arena ----------------------------------------------------- */

/* Append-only arena of strings; pointers stay valid until fm_arena_free. */
typedef struct fm_arena_block fm_arena_block;
typedef struct fm_arena {
  fm_arena_block *head;
} fm_arena;

void fm_arena_init(fm_arena *a);
void fm_arena_free(fm_arena *a);
/* Copy n bytes plus a NUL into the arena; NULL on allocation failure.
 * The arena owns the result. */
char *fm_arena_strndup(fm_arena *a, const char *s, size_t n);
char *fm_arena_strdup(fm_arena *a, const char *s);
void *fm_arena_alloc(fm_arena *a, size_t n); /* 8-byte aligned */

/* ---- hashing ---------------------------------------------------------- */

uint64_t fm_hash64(const void *p, size_t n); /* FNV-1a 64, stable across runs */
/* The same hash, continued: fm_hash64(p, n) == fm_hash64_more(FM_HASH64_INIT,
 * p, n), and hashing parts one after another equals hashing them joined. */
#define FM_HASH64_INIT 1469598103934665603ULL
uint64_t fm_hash64_more(uint64_t h, const void *p, size_t n);
/* fm_hash64_more over n strings, each followed by the byte sep (so "a","bc"
 * and "ab","c" differ). */
uint64_t fm_hash64_parts(uint64_t h, const char *const *parts, int n, char sep);

/* Lower-case hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void fm_hex(const void *p, size_t n, char *out);
/* n bytes from the kernel's CSPRNG (getrandom); FM_ERR_IO when it fails. */
fm_rc fm_random_bytes(void *p, size_t n, fm_error *err);
/* CRC-32C (Castagnoli).  Continue a running CRC by passing it as crc (start
 * with 0).  Uses the SSE4.2 crc32 instruction when the CPU has it (checked
 * at run time), else fm_crc32c_soft; both give identical results. */
uint32_t fm_crc32c(uint32_t crc, const void *p, size_t n);
/* The CRC-32C of A||B from crc1 = CRC of A, crc2 = CRC of B and B's
 * length (as zlib's crc32_combine): lets a file's CRC be assembled from
 * its parts' CRCs without reading them twice. */
uint32_t fm_crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);
/* The portable table-driven CRC-32C (the reference; for tests). */
uint32_t fm_crc32c_soft(uint32_t crc, const void *p, size_t n);

/* ---- sorting ---------------------------------------------------------- */

/* Sort a[0..n) ascending in place (term ids: tens usually, hundreds for a
 * long field's character grams); no allocation. */
void fm_sort_u32(uint32_t *a, size_t n);

/* ---- string -> uint32 map -------------------------------------------- */

/* Open-addressing map from byte strings to uint32 values.  The map copies
 * keys into its own arena; returned key pointers are borrowed from it.  It
 * holds no pointer to itself: a struct copy moves it (the old copy must
 * then be re-initialized or forgotten, never freed). */
typedef struct fm_strmap {
  uint64_t *slots;  /* hash tag << 32 | index+1 into keys[], 0 = empty */
  size_t nslots;    /* power of two */
  const char **keys;
  uint32_t *keylens;
  uint32_t *vals;
  size_t n, cap;
  fm_arena arena;
} fm_strmap;

void fm_strmap_init(fm_strmap *m);
void fm_strmap_free(fm_strmap *m);
/* Look up key; returns 1 and sets *val when present, else 0. */
int fm_strmap_get(const fm_strmap *m, const char *key, size_t len,
                  uint32_t *val);
/* Insert or find.  On insert stores val; either way sets *out_val to the
 * stored value and *out_idx (optional) to the entry index (insertion order).
 * Returns FM_OK or FM_ERR_NOMEM. */
fm_rc fm_strmap_put(fm_strmap *m, const char *key, size_t len, uint32_t val,
                    uint32_t *out_val, int *inserted);
/* Overwrite the value of an existing or new key. */
fm_rc fm_strmap_set(fm_strmap *m, const char *key, size_t len, uint32_t val);
size_t fm_strmap_count(const fm_strmap *m);
/* Entry i in insertion order (0 <= i < count): key (borrowed), len, value. */
const char *fm_strmap_key(const fm_strmap *m, size_t i, size_t *len);
uint32_t fm_strmap_val(const fm_strmap *m, size_t i);

/* ---- files ------------------------------------------------------------ */

/* Read a whole file into a NUL-terminated malloc'd buffer (caller owns *out,
 * free with fm_free).  Errors name the path. */
fm_rc fm_read_file(const char *path, char **out, size_t *len, fm_error *err);

/* Atomic output: write to "<path>.tmp.<pid>", fsync, rename over path.
 * fm_atomic_open returns a FILE* to write; fm_atomic_commit flushes, fsyncs,
 * closes and renames; fm_atomic_abort closes and unlinks the temp file.
 * The fm_atomic struct owns the temp path. */
typedef struct fm_atomic {
  FILE *fp;
  char *path;
  char *tmp;
} fm_atomic;
fm_rc fm_atomic_open(fm_atomic *a, const char *path, fm_error *err);
fm_rc fm_atomic_commit(fm_atomic *a, fm_error *err);
void fm_atomic_abort(fm_atomic *a);

/* mkdir -p: create path and its missing parents (mode 0755); existing
 * directories are fine.  FM_ERR_IO names the directory that could not be
 * created and why; FM_ERR_NOMEM. */
fm_rc fm_mkdirs(const char *path, fm_error *err);

/* SHA-256 of the whole file at path as 64 lower-case hex digits into hex.
 * FM_ERR_IO names the path and the errno text. */
fm_rc fm_file_sha256(const char *path, char hex[65], fm_error *err);

/* SHA-256 of n bytes at p as 64 lower-case hex digits into hex. */
void fm_sha256_hex(const void *p, size_t n, char hex[65]);

/* Directory part of a path ("." when none); caller owns the result. */
char *fm_path_dirname(const char *path);
/* Join dir and rel unless rel is absolute; caller owns the result. */
char *fm_path_join(const char *dir, const char *rel);

/* ---- progress bar ----------------------------------------------------- */

/* A progress bar on stderr, drawn only when stderr is a terminal (or when
 * FM_PROGRESS=1 forces it), at most ~10 redraws a second. */
typedef struct fm_progress {
  const char *label;
  uint64_t total, done;
  double started, last_draw;
  int enabled;
} fm_progress;

void fm_progress_start(fm_progress *p, const char *label, uint64_t total);
void fm_progress_update(fm_progress *p, uint64_t done);
void fm_progress_finish(fm_progress *p);

double fm_now(void); /* monotonic seconds */

/* ---- wall-clock time (UTC) -------------------------------------------- */

/* Unix time t (seconds) in UTC, formatted by strftime's fmt into out (size
 * n); out is "" when the result does not fit. */
void fm_time_utc(int64_t t, const char *fmt, char *out, size_t n);
/* Unix time t as the store's timestamp form "YYYY-MM-DDTHH:MM:SS.000Z". */
void fm_time_iso(int64_t t, char *out, size_t n);
/* The current time as "YYYY-MM-DDTHH:MM:SS.mmmZ" (n >= 25); UTC ISO-8601
 * with milliseconds, so text order is time order. */
void fm_time_now_iso(char *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* FM_UTIL_H */
