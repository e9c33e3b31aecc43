/*
 * linalg_internal.h: helpers shared by sparse.c, svd.c and topk.c only.
 */
#ifndef FM_LINALG_INTERNAL_H
#define FM_LINALG_INTERNAL_H

#include <stddef.h>
#include <string.h>

/* Run fn(ctx, tid, nthreads) for tid = 0..nthreads-1 on worker threads
 * (tid 0 on the caller).  If a thread cannot be started its part runs on
 * the caller, so this never fails.  Returns when all parts are done. */
typedef void (*fm_par_fn)(void *ctx, int tid, int nthreads);
void fm_par_run(int nthreads, fm_par_fn fn, void *ctx);

/* y[0..n) += a * x[0..n).  Each element gets exactly one multiply and one
 * add (no fused multiply-add), so scalar and vector paths agree bit for
 * bit.  Written with GCC/Clang vector extensions because the project builds
 * at -O2, where GCC 12 does not vectorize loops of unknown trip count. */
static inline void fm_axpy(float *restrict y, const float *restrict x, float a,
                           size_t n) {
  size_t i = 0;
#if defined(__GNUC__)
  typedef float v4f __attribute__((vector_size(16)));
  v4f av = {a, a, a, a};
  for (; i + 16 <= n; i += 16) {
    v4f x0, x1, x2, x3, y0, y1, y2, y3;
    memcpy(&x0, x + i, 16);
    memcpy(&x1, x + i + 4, 16);
    memcpy(&x2, x + i + 8, 16);
    memcpy(&x3, x + i + 12, 16);
    memcpy(&y0, y + i, 16);
    memcpy(&y1, y + i + 4, 16);
    memcpy(&y2, y + i + 8, 16);
    memcpy(&y3, y + i + 12, 16);
    y0 += av * x0;
    y1 += av * x1;
    y2 += av * x2;
    y3 += av * x3;
    memcpy(y + i, &y0, 16);
    memcpy(y + i + 4, &y1, 16);
    memcpy(y + i + 8, &y2, 16);
    memcpy(y + i + 12, &y3, 16);
  }
  for (; i + 4 <= n; i += 4) {
    v4f x0, y0;
    memcpy(&x0, x + i, 16);
    memcpy(&y0, y + i, 16);
    y0 += av * x0;
    memcpy(y + i, &y0, 16);
  }
#endif
  for (; i < n; i++) y[i] += a * x[i];
}

#endif /* FM_LINALG_INTERNAL_H */
