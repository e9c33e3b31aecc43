/* footer.c: the FileMetaData of a Parquet file (parquet.thrift), encoded
 * with the Thrift compact protocol.  Field ids are the ones of
 * parquet.thrift; each struct's fields are written in increasing id order. */
#include "pq_writer.h"

#include <string.h>

/* parquet.thrift enums. */
enum { T_BOOLEAN = 0, T_INT64 = 2, T_DOUBLE = 5, T_BYTE_ARRAY = 6 };
enum { CT_UTF8 = 0, CT_TIMESTAMP_MILLIS = 9, CT_TIMESTAMP_MICROS = 10 };
enum { REP_REQUIRED = 0, REP_OPTIONAL = 1 };
enum { ENC_PLAIN = 0, ENC_RLE = 3, ENC_RLE_DICTIONARY = 8 };

static int physical_type(fm_pq_type t) {
  switch (t) {
  case FM_PQ_DOUBLE: return T_DOUBLE;
  case FM_PQ_STRING: return T_BYTE_ARRAY;
  case FM_PQ_BOOLEAN: return T_BOOLEAN;
  default: return T_INT64;
  }
}

static int codec_id(fm_pq_codec c) {
  switch (c) {
  case FM_PQ_SNAPPY: return 1;
  case FM_PQ_ZSTD: return 6;
  default: return 0; /* UNCOMPRESSED */
  }
}

/* SchemaElement of a leaf column: type, repetition, name, then the legacy
 * ConvertedType and the LogicalType (both, as LogicalTypes.md asks of
 * writers for backward compatibility). */
static void schema_leaf(fm_tc *t, const pq_col *c) {
  fm_tc_elem_struct_begin(t);
  fm_tc_i32(t, 1, physical_type(c->type));
  fm_tc_i32(t, 3, c->nullable ? REP_OPTIONAL : REP_REQUIRED);
  fm_tc_string(t, 4, c->name);
  switch (c->type) {
  case FM_PQ_STRING:
    fm_tc_i32(t, 6, CT_UTF8);
    fm_tc_struct_begin(t, 10); /* logicalType */
    fm_tc_struct_begin(t, 1);  /* STRING: StringType {} */
    fm_tc_struct_end(t);
    fm_tc_struct_end(t);
    break;
  case FM_PQ_TIMESTAMP_MICROS:
  case FM_PQ_TIMESTAMP_MILLIS: {
    int micros = c->type == FM_PQ_TIMESTAMP_MICROS;
    fm_tc_i32(t, 6, micros ? CT_TIMESTAMP_MICROS : CT_TIMESTAMP_MILLIS);
    fm_tc_struct_begin(t, 10); /* logicalType */
    fm_tc_struct_begin(t, 8);  /* TIMESTAMP: TimestampType */
    fm_tc_bool(t, 1, 1);       /* isAdjustedToUTC */
    fm_tc_struct_begin(t, 2);  /* unit: TimeUnit */
    fm_tc_struct_begin(t, micros ? 2 : 1); /* MICROS | MILLIS {} */
    fm_tc_struct_end(t);
    fm_tc_struct_end(t);
    fm_tc_struct_end(t);
    fm_tc_struct_end(t);
    break;
  }
  default: break;
  }
  fm_tc_struct_end(t);
}

/* Statistics: null_count, max_value, min_value (the fields with the
 * column order's semantics; the deprecated min/max are not written), and
 * nan_count for DOUBLE (required when NaN-free min/max come with TYPE_ORDER). */
static void statistics(fm_tc *t, const pq_col *c, const pq_chunk_meta *m) {
  fm_tc_struct_begin(t, 12);
  fm_tc_i64(t, 3, m->null_count);
  if (m->has_minmax) {
    fm_tc_binary(t, 5, m->max, m->max_len);
    fm_tc_binary(t, 6, m->min, m->min_len);
  }
  if (c->type == FM_PQ_DOUBLE) fm_tc_i64(t, 9, m->nan_count);
  fm_tc_struct_end(t);
}

/* ColumnChunk { file_offset = 0, meta_data: ColumnMetaData }. */
static void column_chunk(fm_tc *t, const pq_col *c, const pq_chunk_meta *m,
                         fm_pq_codec codec) {
  fm_tc_elem_struct_begin(t);
  fm_tc_i64(t, 2, 0); /* deprecated file_offset: 0, as the spec asks */
  fm_tc_struct_begin(t, 3);
  fm_tc_i32(t, 1, physical_type(c->type));
  /* encodings: PLAIN (values, or the dictionary page), RLE (definition
   * levels), RLE_DICTIONARY (indices) */
  int dict = m->dict_page_offset >= 0;
  fm_tc_list_begin(t, 2, FM_TC_I32, 1 + (size_t)c->nullable + (size_t)dict);
  fm_tc_elem_i32(t, ENC_PLAIN);
  if (c->nullable) fm_tc_elem_i32(t, ENC_RLE);
  if (dict) fm_tc_elem_i32(t, ENC_RLE_DICTIONARY);
  fm_tc_list_begin(t, 3, FM_TC_BINARY, 1); /* path_in_schema */
  fm_tc_elem_binary(t, c->name, strlen(c->name));
  fm_tc_i32(t, 4, codec_id(codec));
  fm_tc_i64(t, 5, m->num_values);
  fm_tc_i64(t, 6, m->total_uncompressed);
  fm_tc_i64(t, 7, m->total_compressed);
  fm_tc_i64(t, 9, m->data_page_offset);
  if (dict) fm_tc_i64(t, 11, m->dict_page_offset);
  statistics(t, c, m);
  fm_tc_struct_end(t);
  fm_tc_struct_end(t);
}

fm_rc fm_pq_footer(const fm_pq_writer *w, fm_buf *out) {
  fm_tc t;
  fm_tc_init(&t, out);
  fm_tc_i32(&t, 1, 1); /* version */
  fm_tc_list_begin(&t, 2, FM_TC_STRUCT, w->ncols + 1);
  fm_tc_elem_struct_begin(&t); /* the root: a group of the columns */
  fm_tc_string(&t, 4, "schema");
  fm_tc_i32(&t, 5, (int32_t)w->ncols);
  fm_tc_struct_end(&t);
  for (size_t c = 0; c < w->ncols; c++) schema_leaf(&t, &w->cols[c]);
  fm_tc_i64(&t, 3, (int64_t)w->rows);
  fm_tc_list_begin(&t, 4, FM_TC_STRUCT, w->nrgs);
  for (size_t g = 0; g < w->nrgs; g++) {
    const pq_rowgroup *rg = &w->rgs[g];
    fm_tc_elem_struct_begin(&t);
    fm_tc_list_begin(&t, 1, FM_TC_STRUCT, w->ncols);
    for (size_t c = 0; c < w->ncols; c++)
      column_chunk(&t, &w->cols[c], &rg->cols[c], w->codec);
    fm_tc_i64(&t, 2, rg->total_byte_size);
    fm_tc_i64(&t, 3, rg->num_rows);
    fm_tc_i64(&t, 5, rg->file_offset);
    fm_tc_i64(&t, 6, rg->total_compressed);
    if (g <= INT16_MAX) fm_tc_i16(&t, 7, (int16_t)g); /* ordinal */
    fm_tc_struct_end(&t);
  }
  fm_tc_string(&t, 6, w->created_by);
  /* column_orders: TYPE_ORDER for every column, so readers trust
   * min_value/max_value (unsigned byte order for strings). */
  fm_tc_list_begin(&t, 7, FM_TC_STRUCT, w->ncols);
  for (size_t c = 0; c < w->ncols; c++) {
    fm_tc_elem_struct_begin(&t); /* ColumnOrder union */
    fm_tc_struct_begin(&t, 1);   /* TYPE_ORDER: TypeDefinedOrder {} */
    fm_tc_struct_end(&t);
    fm_tc_struct_end(&t);
  }
  return fm_tc_finish(&t);
}
