/*
 * svd.h: truncated SVD of a sparse matrix by the randomized range finder
 * with power (subspace) iterations of Halko, Martinsson and Tropp (2011),
 * on OpenBLAS and LAPACKE.  Internal to the model module; see docs/svd.md.
 */
#ifndef FM_SVD_H
#define FM_SVD_H

#include "fm_util.h"
#include "sparse.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fm_svd_opts {
  int k;           /* rank wanted, 1 <= k <= min(m, n) */
  int oversample;  /* extra columns of the sketch; < 0 selects 10 */
  int power_iters; /* subspace iterations; < 0 selects 4 */
  uint64_t seed;   /* the Gaussian sketch's seed */
} fm_svd_opts;

#define FM_SVD_DEFAULT_OVERSAMPLE 10
#define FM_SVD_DEFAULT_POWER_ITERS 4

/* Fill *o with the defaults for rank k (oversample 10, 4 power iterations,
 * seed 0). */
void fm_svd_opts_init(fm_svd_opts *o, int k);

/* A (m x n) ~= U diag(S) V^T, the k leading singular triplets.
 *
 * Outputs are caller-allocated; U and V may be NULL when not wanted:
 *   U: m x k row-major, orthonormal columns;
 *   S: k values, descending, >= 0;
 *   V: n x k row-major (V, not V^T: row j of V is the k-dim image of
 *      column j of A, so a sparse row projects as a sum of rows of V).
 * Sign convention: in each column of V the entry of largest magnitude
 * (first one on ties) is positive; U's column is flipped with it.
 *
 * Deterministic: the same A, options and thread counts give the same bytes
 * (the sketch comes from a private xoshiro256** generator seeded by
 * o->seed; the sparse kernels are order-deterministic).
 *
 * Errors: FM_ERR_ARG (k < 1, k > min(m, n), S NULL, bad options),
 * FM_ERR_NOMEM, FM_ERR_LAPACK (a LAPACK routine reported failure).  The
 * outputs are written only after every step that can fail has succeeded, so
 * on error U, S and V are untouched. */
fm_rc fm_svd_randomized(const fm_csr *A, const fm_svd_opts *o, float *U,
                        float *S, float *V, fm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* FM_SVD_H */
