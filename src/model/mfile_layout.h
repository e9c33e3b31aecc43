/* mfile_layout.h: the model file's byte layout (docs/model-format.md) and
 * the little-endian helpers shared by its writer (mfile.c) and reader
 * (mfile_read.c).  Private to src/model. */
#ifndef FM_MFILE_LAYOUT_H
#define FM_MFILE_LAYOUT_H

#include "mfile.h"

#include <string.h>

/* ---- layout constants (docs/model-format.md) ------------------------- */

static const unsigned char MAGIC[8] = {'F', 'M', 'M', 'O', 'D', 'E', 'L', 0};
#define ENDIAN_MARK 0x01020304u
#define ENDIAN_SWAPPED 0x04030201u
#define HDR_SIZE 64u
#define ENTRY_SIZE 40u
#define TAG_SIZE 16u
/* header field offsets */
#define H_MAGIC 0
#define H_VERSION 8
#define H_ENDIAN 12
#define H_NSEC 16
#define H_RSV0 20
#define H_FSIZE 24
#define H_TABLE 32
#define H_HCRC 40
#define H_FCRC 44
#define H_RSV1 48 /* 16 zero bytes up to HDR_SIZE */
/* section table entry field offsets */
#define E_TAG 0
#define E_OFF 16
#define E_LEN 24
#define E_CRC 32
#define E_RSV 36

static const unsigned char ZEROS[FM_MFILE_ALIGN];

static inline uint64_t align_up(uint64_t x) {
  return (x + (FM_MFILE_ALIGN - 1)) & ~(uint64_t)(FM_MFILE_ALIGN - 1);
}

static inline int host_is_le(void) {
  const uint32_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

/* Little-endian field access, independent of host byte order and
 * alignment. */
static inline uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static inline uint64_t get64(const unsigned char *p) {
  return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}
static inline void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* CRC of header+table (hdr_tab, tab_end bytes) with the checksum fields
 * [H_HCRC, H_HCRC + zero_len) read as zero. */
static inline uint32_t crc_header(const unsigned char *hdr_tab, uint64_t tab_end,
                           unsigned zero_len) {
  uint32_t c = fm_crc32c(0, hdr_tab, H_HCRC);
  c = fm_crc32c(c, ZEROS, zero_len);
  return fm_crc32c(c, hdr_tab + H_HCRC + zero_len,
                   (size_t)(tab_end - H_HCRC - zero_len));
}

/* Tag check shared by writer and reader: 1..15 bytes of 0x21..0x7e. */
static inline int tag_ok(const char *tag, size_t n) {
  if (n == 0 || n > FM_MFILE_TAG_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)tag[i] < 0x21 || (unsigned char)tag[i] > 0x7e) return 0;
  return 1;
}

#endif
