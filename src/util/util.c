/* util.c: errors, memory with fault injection, buffers, arena, hashing. */
#define _GNU_SOURCE
#include "fm_util.h"

#include <stdatomic.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/random.h>

const char *fm_rc_name(fm_rc rc) {
  switch (rc) {
  case FM_OK: return "ok";
  case FM_ERR_NOMEM: return "nomem";
  case FM_ERR_IO: return "io";
  case FM_ERR_PARSE: return "parse";
  case FM_ERR_FORMAT: return "format";
  case FM_ERR_CORRUPT: return "corrupt";
  case FM_ERR_VERSION: return "version";
  case FM_ERR_ARG: return "arg";
  case FM_ERR_NOTFOUND: return "notfound";
  case FM_ERR_ICU: return "icu";
  case FM_ERR_LAPACK: return "lapack";
  case FM_ERR_INTERNAL: return "internal";
  case FM_ERR_DB: return "db";
  case FM_ERR_BUSY: return "busy";
  case FM_ERR_CONFLICT: return "conflict";
  case FM_ERR_DENIED: return "denied";
  }
  return "unknown";
}

void fm_error_init(fm_error *err) {
  if (!err) return;
  err->rc = FM_OK;
  err->msg[0] = '\0';
}

fm_rc fm_error_set(fm_error *err, fm_rc rc, const char *fmt, ...) {
  if (!err) return rc;
  err->rc = rc;
  if (err->msg[0] == '\0') {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return rc;
}

void fm_error_prefix(fm_error *err, const char *fmt, ...) {
  if (!err) return;
  char pre[FM_ERRMSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pre, sizeof pre, fmt, ap);
  va_end(ap);
  size_t pl = strlen(pre);
  if (pl + 2 >= sizeof err->msg) return;
  size_t ml = strlen(err->msg);
  if (pl + 2 + ml >= sizeof err->msg) ml = sizeof err->msg - pl - 3;
  memmove(err->msg + pl + 2, err->msg, ml);
  err->msg[pl + 2 + ml] = '\0';
  memcpy(err->msg, pre, pl);
  err->msg[pl] = ':';
  err->msg[pl + 1] = ' ';
}

static void default_warn(void *ctx, const char *msg) {
  (void)ctx;
  fprintf(stderr, "fieldmatch: warning: %s\n", msg);
}
static fm_warn_fn warn_fn = default_warn;
static void *warn_ctx;

void fm_set_warn_handler(fm_warn_fn fn, void *ctx) {
  warn_fn = fn ? fn : default_warn;
  warn_ctx = fn ? ctx : NULL;
}

void fm_warn(const char *fmt, ...) {
  char msg[FM_ERRMSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  warn_fn(warn_ctx, msg);
}

/* ---- memory ---------------------------------------------------------- */

/* 0 = off.  Atomic: the allocating threads of a batch run or training
 * count it down together (ThreadSanitizer saw the plain long race); the
 * one allocation that takes it from 1 to 0 fails, whichever thread. */
static atomic_long fault_countdown;

void fm_fault_malloc_after(long n) { atomic_store(&fault_countdown, n); }

static int fault_now(void) {
  long c = atomic_load_explicit(&fault_countdown, memory_order_relaxed);
  while (c > 0)
    if (atomic_compare_exchange_weak_explicit(&fault_countdown, &c, c - 1,
                                              memory_order_relaxed, memory_order_relaxed))
      return c == 1;
  return 0;
}

/* Big blocks (the SVD's work matrices, the model's arrays) are touched once
 * page by page right after they are allocated, and a page fault in the VMs
 * this runs on costs microseconds: training took ~80,000 of them, a third
 * of its wall time in the kernel.  Asking for transparent huge pages on the
 * 2 MB-aligned interior of a big block makes that a few hundred faults.
 * Advice only: nothing changes if the kernel says no. */
#define HUGE_MIN ((size_t)8 << 20)
static void *advise_huge(void *p, size_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (p && n >= HUGE_MIN) {
    uintptr_t a = ((uintptr_t)p + ((uintptr_t)2 << 20) - 1) & ~(((uintptr_t)2 << 20) - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~(((uintptr_t)2 << 20) - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
  }
#else
  (void)n;
#endif
  return p;
}

void *fm_malloc(size_t n) {
  if (fault_now()) return NULL;
  return advise_huge(malloc(n ? n : 1), n);
}

void *fm_calloc(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  if (fault_now()) return NULL;
  return advise_huge(calloc(n ? n : 1, size ? size : 1), n * size);
}

void *fm_realloc(void *p, size_t n) {
  if (fault_now()) return NULL;
  return advise_huge(realloc(p, n ? n : 1), n);
}

void fm_free(void *p) { free(p); }

char *fm_strndup(const char *s, size_t n) {
  char *d = fm_malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *fm_strdup(const char *s) { return fm_strndup(s, strlen(s)); }

fm_rc fm_grow(void **pv, size_t *cap, size_t need, size_t elsz) {
  if (need <= *cap) return FM_OK;
  size_t nc = *cap ? *cap : 8;
  while (nc < need) {
    if (nc > SIZE_MAX / 2) return FM_ERR_NOMEM;
    nc *= 2;
  }
  if (elsz && nc > SIZE_MAX / elsz) return FM_ERR_NOMEM;
  void *np = fm_realloc(*pv, nc * elsz);
  if (!np) return FM_ERR_NOMEM;
  *pv = np;
  *cap = nc;
  return FM_OK;
}

/* ---- buffer ----------------------------------------------------------- */

void fm_buf_init(fm_buf *b) { b->buf = NULL; b->len = b->cap = 0; }
void fm_buf_free(fm_buf *b) { fm_free(b->buf); fm_buf_init(b); }
void fm_buf_reset(fm_buf *b) { b->len = 0; if (b->buf) b->buf[0] = '\0'; }

fm_rc fm_buf_append(fm_buf *b, const void *p, size_t n) {
  if (fm_grow((void **)&b->buf, &b->cap, b->len + n + 1, 1)) return FM_ERR_NOMEM;
  if (n) memcpy(b->buf + b->len, p, n);
  b->len += n;
  b->buf[b->len] = '\0';
  return FM_OK;
}

fm_rc fm_buf_puts(fm_buf *b, const char *s) { return fm_buf_append(b, s, strlen(s)); }
fm_rc fm_buf_putc(fm_buf *b, char c) { return fm_buf_append(b, &c, 1); }

fm_rc fm_buf_printf(fm_buf *b, const char *fmt, ...) {
  /* One vsnprintf into the spare capacity when the text fits (the common
   * case for a reused buffer); a second one only after growing. */
  size_t room = b->cap > b->len ? b->cap - b->len : 0;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(room ? b->buf + b->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n < 0) {
    if (room) b->buf[b->len] = '\0';
    return FM_ERR_INTERNAL;
  }
  if ((size_t)n < room) {
    b->len += (size_t)n;
    return FM_OK;
  }
  if (fm_grow((void **)&b->buf, &b->cap, b->len + (size_t)n + 1, 1)) {
    if (room) b->buf[b->len] = '\0';
    return FM_ERR_NOMEM;
  }
  va_start(ap, fmt);
  vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return FM_OK;
}

fm_rc fm_buf_u64(fm_buf *b, uint64_t v) {
  char d[20];
  size_t n = 0;
  do {
    d[sizeof d - ++n] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return fm_buf_append(b, d + sizeof d - n, n);
}

fm_rc fm_buf_fixed4(fm_buf *b, float v) {
  /* (double)v * 10000 is exact: a float significand (24 bits) times 625
   * (10 bits) fits in a double's 53, and the power of two only moves the
   * exponent.  rint then rounds that exact value to the nearest integer,
   * ties to even, which is what glibc's printf does with the exact decimal
   * expansion.  Outside the range where the integer fits comfortably (and
   * for NaN and infinities) printf itself does the work. */
  double x = (double)v * 10000.0;
  if (!(fabs(x) < 1e17)) return fm_buf_printf(b, "%.4f", (double)v);
  double r = rint(fabs(x));
  uint64_t u = (uint64_t)r;
  char d[32];
  size_t n = 0;
  for (int i = 0; i < 4; i++) {
    d[sizeof d - ++n] = (char)('0' + u % 10);
    u /= 10;
  }
  d[sizeof d - ++n] = '.';
  do {
    d[sizeof d - ++n] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (signbit(v)) d[sizeof d - ++n] = '-';
  return fm_buf_append(b, d + sizeof d - n, n);
}

/* ---- arena ------------------------------------------------------------ */

struct fm_arena_block {
  fm_arena_block *next;
  size_t used, size;
  _Alignas(8) char data[];
};

void fm_arena_init(fm_arena *a) { a->head = NULL; }

void fm_arena_free(fm_arena *a) {
  fm_arena_block *b = a->head;
  while (b) {
    fm_arena_block *n = b->next;
    fm_free(b);
    b = n;
  }
  a->head = NULL;
}

void *fm_arena_alloc(fm_arena *a, size_t n) {
  n = (n + 7) & ~(size_t)7;
  fm_arena_block *b = a->head;
  if (!b || b->size - b->used < n) {
    size_t sz = n > 65536 ? n : 65536;
    fm_arena_block *nb = fm_malloc(sizeof *nb + sz);
    if (!nb) return NULL;
    nb->used = 0;
    nb->size = sz;
    if (b && n > 65536) {
      /* big one-off: keep the current head for small allocations */
      nb->next = b->next;
      b->next = nb;
      nb->used = n;
      return nb->data;
    }
    nb->next = b;
    a->head = b = nb;
  }
  void *p = b->data + b->used;
  b->used += n;
  return p;
}

char *fm_arena_strndup(fm_arena *a, const char *s, size_t n) {
  char *d = fm_arena_alloc(a, n + 1);
  if (!d) return NULL;
  if (n) memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *fm_arena_strdup(fm_arena *a, const char *s) {
  return fm_arena_strndup(a, s, strlen(s));
}

/* ---- hashing ---------------------------------------------------------- */

uint64_t fm_hash64_more(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) {
    h ^= s[i];
    h *= 1099511628211ULL;
  }
  return h;
}

uint64_t fm_hash64_parts(uint64_t h, const char *const *parts, int n, char sep) {
  for (int i = 0; i < n; i++) {
    h = fm_hash64_more(h, parts[i], strlen(parts[i]));
    h = fm_hash64_more(h, &sep, 1);
  }
  return h;
}

uint64_t fm_hash64(const void *p, size_t n) { return fm_hash64_more(FM_HASH64_INIT, p, n); }

void fm_hex(const void *p, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[b[i] >> 4];
    out[2 * i + 1] = digits[b[i] & 15];
  }
  out[2 * n] = '\0';
}

fm_rc fm_random_bytes(void *p, size_t n, fm_error *err) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom((unsigned char *)p + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return fm_error_set(err, FM_ERR_IO, "getrandom: %s", strerror(errno));
    }
    got += (size_t)r;
  }
  return FM_OK;
}

static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc32c_table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++)
      crc32c_table[t][i] = (crc32c_table[t - 1][i] >> 8) ^
                           crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
}

/* The table-driven reference (slicing by 8, ~2 GB/s). */
uint32_t fm_crc32c_soft(uint32_t crc, const void *p, size_t n) {
  pthread_once(&crc32c_once, crc32c_init);
  const unsigned char *s = p;
  crc = ~crc;
  while (n >= 8) {
    uint32_t lo = crc ^ ((uint32_t)s[0] | (uint32_t)s[1] << 8 |
                         (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24);
    crc = crc32c_table[7][lo & 0xff] ^ crc32c_table[6][(lo >> 8) & 0xff] ^
          crc32c_table[5][(lo >> 16) & 0xff] ^ crc32c_table[4][lo >> 24] ^
          crc32c_table[3][s[4]] ^ crc32c_table[2][s[5]] ^
          crc32c_table[1][s[6]] ^ crc32c_table[0][s[7]];
    s += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *s++) & 0xff];
  return ~crc;
}

/* Combining CRCs, portable: the model file uses it on every platform, and
 * so does the SSE4.2 path below.  a * b modulo the reflected polynomial
 * (bit 31 is x^0). */
static uint32_t crc32c_multmodp(uint32_t a, uint32_t b) {
  uint32_t m = 1u << 31, p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = (b & 1) ? (b >> 1) ^ 0x82F63B78u : b >> 1;
  }
  return p;
}

/* x^(8 len) modulo the polynomial: what advancing a register over len zero
 * bytes multiplies it by (a byte of zeros multiplies it by x^8). */
static uint32_t crc32c_x8n(uint64_t len) {
  uint32_t xn = 1u << 31, x2n = 1u << 30; /* x^0, x^1 */
  for (uint64_t e = len << 3; e; e >>= 1) { /* a 2^61-byte input is no concern */
    if (e & 1) xn = crc32c_multmodp(x2n, xn);
    x2n = crc32c_multmodp(x2n, x2n);
  }
  return xn;
}

uint32_t fm_crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2) {
  return crc32c_multmodp(crc32c_x8n(len2), crc1) ^ crc2;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* SSE4.2 has a CRC-32C instruction (same polynomial, same bit order), so
 * this gives the table version's results at ~10x its speed.  Used only when
 * the CPU says it has SSE4.2 (checked once at run time), so the library
 * still runs on any x86-64. */
#include <nmmintrin.h>
#define FM_CRC32C_HW 1

/* Three streams at once: the CRC instruction takes 3 cycles but a new one
 * can start every cycle, so a single chain of them runs at a third of what
 * the unit can do.  A block of 3 x L bytes is checksummed as three
 * independent CRCs (the 2nd and 3rd starting from a zero register), which
 * are then joined: the register of A||B is the register of A advanced over
 * len(B) zero bytes, xor B's.  Advancing over L zero bytes is a linear map
 * of the 32-bit register, applied with four 256-entry tables per L (as
 * Mark Adler's crc32c.c).  Same results as the table version, byte for
 * byte. */
#define CRC32C_LONG 8192
#define CRC32C_SHORT 256
static uint32_t crc32c_long[4][256], crc32c_short[4][256];

/* The tables that advance a register over len zero bytes. */
static void crc32c_zeros(uint32_t zeros[4][256], size_t len) {
  uint32_t xn = crc32c_x8n(len);
  for (int k = 0; k < 4; k++)
    for (uint32_t b = 0; b < 256; b++) zeros[k][b] = crc32c_multmodp(xn, b << (8 * k));
}

static inline uint32_t crc32c_shift(uint32_t zeros[4][256], uint32_t crc) {
  return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^
         zeros[3][crc >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t c = ~crc;
  while (n && ((uintptr_t)s & 7)) {
    c = _mm_crc32_u8((uint32_t)c, *s++);
    n--;
  }
  /* three streams of CRC32C_LONG bytes, then of CRC32C_SHORT */
  for (int pass = 0; pass < 2; pass++) {
    size_t l = pass == 0 ? CRC32C_LONG : CRC32C_SHORT;
    uint32_t(*zeros)[256] = pass == 0 ? crc32c_long : crc32c_short;
    while (n >= 3 * l) {
      uint64_t c1 = 0, c2 = 0, v0, v1, v2;
      for (const unsigned char *end = s + l; s < end; s += 8) {
        memcpy(&v0, s, 8);
        memcpy(&v1, s + l, 8);
        memcpy(&v2, s + 2 * l, 8);
        c = _mm_crc32_u64(c, v0);
        c1 = _mm_crc32_u64(c1, v1);
        c2 = _mm_crc32_u64(c2, v2);
      }
      c = crc32c_shift(zeros, (uint32_t)c) ^ (uint32_t)c1;
      c = crc32c_shift(zeros, (uint32_t)c) ^ (uint32_t)c2;
      s += 2 * l;
      n -= 3 * l;
    }
  }
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, s, 8);
    c = _mm_crc32_u64(c, v);
    s += 8;
    n -= 8;
  }
  while (n--) c = _mm_crc32_u8((uint32_t)c, *s++);
  return ~(uint32_t)c;
}

static int crc32c_use_hw = -1; /* -1 unknown, 0 no, 1 yes */
static pthread_once_t crc32c_hw_once = PTHREAD_ONCE_INIT;
static void crc32c_hw_detect(void) {
  __builtin_cpu_init();
  crc32c_use_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
  if (crc32c_use_hw) {
    crc32c_zeros(crc32c_long, CRC32C_LONG);
    crc32c_zeros(crc32c_short, CRC32C_SHORT);
  }
}
#endif

uint32_t fm_crc32c(uint32_t crc, const void *p, size_t n) {
#ifdef FM_CRC32C_HW
  pthread_once(&crc32c_hw_once, crc32c_hw_detect);
  if (crc32c_use_hw) return crc32c_hw(crc, p, n);
#endif
  return fm_crc32c_soft(crc, p, n);
}

double fm_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- sorting ---------------------------------------------------------- */

/* fm_sort_u32: insertion sort for the usual few dozen; beyond, a quicksort
 * on the values themselves (median of three, the smaller side first so the
 * stack stays shallow) down to runs for the insertion sort.  A field's
 * character n-grams often number more than 64, and qsort's indirect
 * compares made those sorts a visible part of training (and of encoding a
 * query).  The result is the one ascending order, however it is found. */
static void insertion_u32(uint32_t *a, size_t n) {
  for (size_t i = 1; i < n; i++) {
    uint32_t v = a[i];
    size_t j = i;
    for (; j > 0 && a[j - 1] > v; j--) a[j] = a[j - 1];
    a[j] = v;
  }
}
void fm_sort_u32(uint32_t *a, size_t n) {
  while (n > 32) {
    uint32_t x = a[0], y = a[n / 2], z = a[n - 1];
    uint32_t piv = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
    size_t i = 0, j = n - 1;
    for (;;) { /* Hoare partition: a[0..j] <= piv <= a[j+1..n) */
      while (a[i] < piv) i++;
      while (a[j] > piv) j--;
      if (i >= j) break;
      uint32_t t = a[i];
      a[i++] = a[j];
      a[j--] = t;
    }
    size_t left = j + 1;
    if (left < n - left) {
      fm_sort_u32(a, left);
      a += left;
      n -= left;
    } else {
      fm_sort_u32(a + left, n - left);
      n = left;
    }
  }
  insertion_u32(a, n);
}
