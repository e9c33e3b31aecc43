/*
 * sparse.h: a compressed-sparse-row (CSR) matrix of floats, a row-by-row
 * builder for it, and sparse x dense products.  Internal to the model
 * module.
 *
 * Ownership: an fm_csr owns its three arrays (allocated with fm_malloc) and
 * releases them in fm_csr_free.  The builder owns its arrays until
 * fm_csr_builder_finish moves them into the output matrix.
 *
 * Determinism: every output element of the products is summed by exactly one
 * thread, in ascending order of the summation index, so results are
 * bit-identical whatever the number of threads.
 */
#ifndef FM_SPARSE_H
#define FM_SPARSE_H

#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Row i holds entries rowptr[i] .. rowptr[i+1]-1 of col/val, with strictly
 * increasing column indices (< ncols).  rowptr has nrows+1 entries,
 * rowptr[0] == 0.  A matrix with no entries may have col == val == NULL. */
typedef struct fm_csr {
  uint32_t nrows, ncols;
  uint64_t *rowptr;
  uint32_t *col;
  float *val;
} fm_csr;

/* Release the arrays and zero the struct.  m may be NULL; freeing a zeroed
 * struct is a no-op. */
void fm_csr_free(fm_csr *m);

/* Number of stored entries. */
static inline uint64_t fm_csr_nnz(const fm_csr *m) {
  return m->rowptr ? m->rowptr[m->nrows] : 0;
}

/* ---- builder ---------------------------------------------------------- */

typedef struct fm_csr_entry_ {
  uint32_t col;
  float val;
} fm_csr_entry_;

/* Builds a matrix one row at a time: add entries in any column order (with
 * repeats), then end the row.  All fields are private. */
typedef struct fm_csr_builder {
  uint32_t ncols, nrows;
  uint64_t *rowptr;       /* nrows+1 used */
  size_t rowcap;
  uint32_t *col;          /* finished rows */
  float *val;
  size_t nnz, cap;
  fm_csr_entry_ *pend;    /* entries of the row being built */
  size_t npend, pendcap;
  fm_csr_entry_ *scratch; /* merge-sort scratch, pendcap entries */
  size_t scratchcap;
} fm_csr_builder;

/* Start an empty builder for rows of ncols columns.  FM_ERR_NOMEM on
 * allocation failure (then nothing needs freeing). */
fm_rc fm_csr_builder_init(fm_csr_builder *b, uint32_t ncols);
/* Add val at column col of the current row.  FM_ERR_ARG when col >= ncols
 * or val is not finite; FM_ERR_NOMEM.  The builder is unchanged on error. */
fm_rc fm_csr_builder_add(fm_csr_builder *b, uint32_t col, float val);
/* Close the current row (possibly empty): entries are sorted by column,
 * duplicate columns are summed in the order they were added, and entries
 * whose sum is exactly zero are dropped.  FM_ERR_NOMEM or FM_ERR_ARG (more
 * than UINT32_MAX-1 rows); on error the pending row is kept. */
fm_rc fm_csr_builder_end_row(fm_csr_builder *b);
/* Move the finished rows into *out (which the caller then owns and frees
 * with fm_csr_free) and reset the builder to empty.  FM_ERR_ARG when entries
 * were added after the last end_row (an unterminated row); on error *out is
 * untouched and the builder unchanged. */
fm_rc fm_csr_builder_finish(fm_csr_builder *b, fm_csr *out);
/* Release the builder's memory.  b may be NULL. */
void fm_csr_builder_free(fm_csr_builder *b);

/* ---- operations ------------------------------------------------------- */

/* Scale each row to unit L2 norm (norm accumulated in double); rows of norm
 * zero stay zero. */
void fm_csr_normalize_rows(fm_csr *m);

/* *out = A^T as a new CSR matrix (caller owns, fm_csr_free).  Rows of the
 * result list their columns in increasing order.  FM_ERR_NOMEM. */
fm_rc fm_csr_transpose(const fm_csr *A, fm_csr *out);

/* Y (nrows x k, row-major) = A * X (ncols x k, row-major).  Y must not
 * alias X.  Threaded over rows for large products. */
void fm_csr_mul_dense(const fm_csr *A, const float *X, int k, float *Y);
/* Y (ncols x k, row-major) = A^T * X (nrows x k, row-major).  Y must not
 * alias X.  Threaded over column slabs of Y for large products; the result
 * equals fm_csr_mul_dense on fm_csr_transpose(A) bit for bit. */
void fm_csr_tmul_dense(const fm_csr *A, const float *X, int k, float *Y);

/* Number of worker threads the kernels of this module use: the FM_THREADS
 * environment variable when set to 1..64, else the online CPU count
 * (capped at 16). */
int fm_linalg_threads(void);

#ifdef __cplusplus
}
#endif
#endif /* FM_SPARSE_H */
