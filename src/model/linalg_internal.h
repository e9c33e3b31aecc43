/*
 * linalg_internal.h: helpers shared by sparse.c, svd.c and topk.c only.
 */
#ifndef FM_LINALG_INTERNAL_H
#define FM_LINALG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Run fn(ctx, tid, nthreads) for tid = 0..nthreads-1 on worker threads
 * (tid 0 on the caller).  If a thread cannot be started its part runs on
 * the caller, so this never fails.  Returns when all parts are done. */
typedef void (*fm_par_fn)(void *ctx, int tid, int nthreads);
void fm_par_run(int nthreads, fm_par_fn fn, void *ctx);

/* Rows [0, n) split by work for part i of nt: ptr holds n + 1 prefix sums
 * (a CSR row pointer: row r's work is ptr[r + 1] - ptr[r]), and the result
 * is the first row r with ptr[r] - ptr[0] >= i/nt of the total; 0 for
 * i == 0, n for i == nt.  Part i takes rows [split(i), split(i + 1)). */
static inline size_t fm_split_rows(const uint64_t *ptr, size_t n, int i, int nt) {
  if (i <= 0) return 0;
  if (i >= nt) return n;
  uint64_t goal = ptr[0] + (ptr[n] - ptr[0]) * (uint64_t)i / (uint64_t)nt;
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ptr[mid] < goal)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

#if defined(__GNUC__)
/* Four float lanes (GCC/Clang vector extensions) for the loops below. */
typedef float fm_v4f __attribute__((vector_size(16)));

/* The 16 floats at p (any alignment) into v[0..3], four each, in order;
 * inlined, the array lives in registers. */
static inline void fm_load16(fm_v4f v[4], const float *p) {
  memcpy(&v[0], p, 16);
  memcpy(&v[1], p + 4, 16);
  memcpy(&v[2], p + 8, 16);
  memcpy(&v[3], p + 12, 16);
}
#endif

/* y[0..n) += a * x[0..n).  Each element gets exactly one multiply and one
 * add (no fused multiply-add), so scalar and vector paths agree bit for
 * bit.  Written with GCC/Clang vector extensions because the project builds
 * at -O2, where GCC 12 does not vectorize loops of unknown trip count. */
static inline void fm_axpy_pf(float *restrict y, const float *restrict x, float a, size_t n,
                              const float *pf);
static inline void fm_axpy(float *restrict y, const float *restrict x, float a,
                           size_t n) {
  fm_axpy_pf(y, x, a, n, NULL);
}

/* fm_axpy(y, x, a, n), the same arithmetic, that also prefetches the n
 * floats at pf when not NULL (see fm_dot_pf).  The one implementation of
 * both: with pf a constant NULL the inlined prefetch test folds away. */
static inline void fm_axpy_pf(float *restrict y, const float *restrict x, float a, size_t n,
                              const float *pf) {
  size_t i = 0;
#if defined(__GNUC__)
  typedef fm_v4f v4f;
  v4f av = {a, a, a, a};
  for (; i + 16 <= n; i += 16) {
    if (pf) __builtin_prefetch(pf + i);
    v4f xv[4], yv[4];
    fm_load16(xv, x + i);
    fm_load16(yv, y + i);
    yv[0] += av * xv[0];
    yv[1] += av * xv[1];
    yv[2] += av * xv[2];
    yv[3] += av * xv[3];
    memcpy(y + i, &yv[0], 16);
    memcpy(y + i + 4, &yv[1], 16);
    memcpy(y + i + 8, &yv[2], 16);
    memcpy(y + i + 12, &yv[3], 16);
  }
  for (; i + 4 <= n; i += 4) {
    v4f x0, y0;
    memcpy(&x0, x + i, 16);
    memcpy(&y0, y + i, 16);
    y0 += av * x0;
    memcpy(y + i, &y0, 16);
  }
#else
  (void)pf;
#endif
  for (; i < n; i++) y[i] += a * x[i];
}


/* Prefetch the n floats at p (one request per 64-byte line). */
static inline void fm_prefetch_floats(const float *p, size_t n) {
#if defined(__GNUC__)
  for (size_t i = 0; i < n; i += 16) __builtin_prefetch(p + i);
#else
  (void)p;
  (void)n;
#endif
}

/* Dot product of x and y (n floats) with 16 independent partial sums
 * (vector extensions, as fm_axpy), so it is not bound by the latency of one
 * float add chain; the summation order is fixed, so results are
 * deterministic.  It also prefetches the n floats at pf (when not NULL),
 * one cache line per 16 elements: a caller walking rows it cannot predict
 * (the LSA rows of a query's candidates) names the row it will read next,
 * so that row's memory latency overlaps this row's arithmetic. */
static inline float fm_dot_pf(const float *restrict x, const float *restrict y, size_t n,
                              const float *pf) {
  size_t i = 0;
  float s = 0;
#if defined(__GNUC__)
  typedef fm_v4f v4f;
  v4f a0 = {0, 0, 0, 0}, a1 = a0, a2 = a0, a3 = a0;
  for (; i + 16 <= n; i += 16) {
    if (pf) __builtin_prefetch(pf + i);
    v4f xv[4], yv[4];
    fm_load16(xv, x + i);
    fm_load16(yv, y + i);
    a0 += xv[0] * yv[0];
    a1 += xv[1] * yv[1];
    a2 += xv[2] * yv[2];
    a3 += xv[3] * yv[3];
  }
  v4f t = (a0 + a1) + (a2 + a3);
  s = (t[0] + t[1]) + (t[2] + t[3]);
#else
  (void)pf;
#endif
  for (; i < n; i++) s += x[i] * y[i];
  return s;
}


/* y[0..n) += a0 * x0[0..n), then += a1 * x1, += a2 * x2, += a3 * x3, with
 * the rounding of four fm_axpy calls in that order (each element still
 * gets its products added one at a time), but one pass over y. */
static inline void fm_axpy4(float *restrict y, const float *restrict x0,
                            const float *restrict x1, const float *restrict x2,
                            const float *restrict x3, float a0, float a1, float a2,
                            float a3, size_t n) {
  size_t i = 0;
#if defined(__GNUC__)
  typedef fm_v4f v4f;
  v4f b0 = {a0, a0, a0, a0}, b1 = {a1, a1, a1, a1}, b2 = {a2, a2, a2, a2},
      b3 = {a3, a3, a3, a3};
  for (; i + 8 <= n; i += 8) {
    v4f y0, y1, u, v;
    memcpy(&y0, y + i, 16);
    memcpy(&y1, y + i + 4, 16);
    memcpy(&u, x0 + i, 16);
    memcpy(&v, x0 + i + 4, 16);
    y0 += b0 * u;
    y1 += b0 * v;
    memcpy(&u, x1 + i, 16);
    memcpy(&v, x1 + i + 4, 16);
    y0 += b1 * u;
    y1 += b1 * v;
    memcpy(&u, x2 + i, 16);
    memcpy(&v, x2 + i + 4, 16);
    y0 += b2 * u;
    y1 += b2 * v;
    memcpy(&u, x3 + i, 16);
    memcpy(&v, x3 + i + 4, 16);
    y0 += b3 * u;
    y1 += b3 * v;
    memcpy(y + i, &y0, 16);
    memcpy(y + i + 4, &y1, 16);
  }
#endif
  for (; i < n; i++) {
    float t = y[i];
    t += a0 * x0[i];
    t += a1 * x1[i];
    t += a2 * x2[i];
    t += a3 * x3[i];
    y[i] = t;
  }
}

#endif /* FM_LINALG_INTERNAL_H */
