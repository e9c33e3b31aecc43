/*
 * bench_svd.c: times fm_svd_randomized and the sparse products on a
 * synthetic TF-IDF-like matrix (Zipf-distributed columns, L2-normalized
 * rows).  Not built by default; from the repo root, after a normal build in
 * BUILD (e.g. build):
 *
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Isrc/util -Isrc/model \
 *      $(pkg-config --cflags openblas lapacke) tests/bench/bench_svd.c \
 *      -LBUILD -lfieldmatch -Wl,-rpath,BUILD -lm -o bench_svd
 *   ./bench_svd [rows cols nnz_per_row k reps q]  (default 16000 30000 50 256 3 4)
 *
 * FM_THREADS and OPENBLAS_NUM_THREADS set the thread counts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "fm_util.h"
#include "sparse.h"
#include "svd.h"

static uint64_t st = 88172645463325252ull;
static uint64_t xr(void) {
  st ^= st << 13;
  st ^= st >> 7;
  st ^= st << 17;
  return st;
}
static double ur(void) { return (double)((xr() >> 11) + 1) * 0x1p-53; }

int main(int argc, char **argv) {
  uint32_t m = argc > 1 ? (uint32_t)atol(argv[1]) : 16000;
  uint32_t n = argc > 2 ? (uint32_t)atol(argv[2]) : 30000;
  int per = argc > 3 ? atoi(argv[3]) : 50;
  int k = argc > 4 ? atoi(argv[4]) : 256;
  int reps = argc > 5 ? atoi(argv[5]) : 3;
  int q = argc > 6 ? atoi(argv[6]) : -1;

  /* Zipf(s = 1.0) over columns by inverse CDF on a table. */
  double *cdf = malloc(sizeof(double) * n);
  double acc = 0;
  for (uint32_t j = 0; j < n; j++) cdf[j] = (acc += 1.0 / (j + 1.0));
  fm_csr_builder b;
  if (fm_csr_builder_init(&b, n)) return 1;
  for (uint32_t i = 0; i < m; i++) {
    int len = per / 2 + (int)(xr() % (uint64_t)per); /* mean ~ per */
    for (int t = 0; t < len; t++) {
      double u = ur() * acc;
      uint32_t lo = 0, hi = n - 1;
      while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (cdf[mid] < u) lo = mid + 1; else hi = mid;
      }
      /* scatter ranks over column ids so frequent terms are not adjacent */
      uint32_t col = (uint32_t)(((uint64_t)lo * 2654435761u) % n);
      if (fm_csr_builder_add(&b, col, (float)(1.0 + log((double)n / (lo + 1.0))))) return 1;
    }
    if (fm_csr_builder_end_row(&b)) return 1;
  }
  fm_csr A;
  if (fm_csr_builder_finish(&b, &A)) return 1;
  fm_csr_builder_free(&b);
  fm_csr_normalize_rows(&A);
  printf("matrix %u x %u, nnz %llu, k %d\n", m, n, (unsigned long long)fm_csr_nnz(&A), k);

  int l = k + 10;
  float *X = malloc(sizeof(float) * (size_t)n * l), *Y = malloc(sizeof(float) * (size_t)m * l);
  for (size_t i = 0; i < (size_t)n * l; i++) X[i] = (float)ur();
  double t = fm_now();
  fm_csr_mul_dense(&A, X, l, Y);
  printf("A*X   (l=%d): %.4f s\n", l, fm_now() - t);
  t = fm_now();
  fm_csr_tmul_dense(&A, Y, l, X);
  printf("A^T*X (l=%d): %.4f s\n", l, fm_now() - t);

  float *U = malloc(sizeof(float) * (size_t)m * k), *S = malloc(sizeof(float) * k),
        *V = malloc(sizeof(float) * (size_t)n * k);
  fm_svd_opts o;
  fm_svd_opts_init(&o, k);
  if (q >= 0) o.power_iters = q;
  for (int r = 0; r < reps; r++) {
    fm_error err;
    fm_error_init(&err);
    t = fm_now();
    fm_rc rc = fm_svd_randomized(&A, &o, U, S, V, &err);
    double dt = fm_now() - t;
    if (rc) {
      fprintf(stderr, "svd: %s\n", err.msg);
      return 1;
    }
    printf("svd k=%d p=%d q=%d: %.4f s  (S[0]=%.4f S[k-1]=%.4f)\n", k, o.oversample,
           o.power_iters, dt, S[0], S[k - 1]);
  }
  fm_csr_free(&A);
  free(U); free(S); free(V); free(X); free(Y); free(cdf);
  return 0;
}
