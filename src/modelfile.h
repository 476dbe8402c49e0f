/*
 * modelfile.h -- what the model-file writer (modelfile.c), reader
 * (modelfile_read.c) and metadata (metadata.c) share.  docs/format.md is the
 * specification; every limit below is one of its limits.
 */
#ifndef HLR_MODELFILE_H
#define HLR_MODELFILE_H

#include "internal.h"

#include <string.h>
#include <zlib.h>

#define HLR_FILE_HEADER_SIZE 40
#define HLR_FILE_CHUNK_HEADER 12 /* tag (4) + length (u64) */

#define HLR_FILE_MAX_LAYERS 4096
#define HLR_FILE_MAX_TYPE 63
#define HLR_FILE_MAX_KEY (HLR_CONFIG_KEY_MAX - 1)
#define HLR_FILE_MAX_TENSOR_NAME (HLR_PARAM_NAME_MAX - 1)
#define HLR_FILE_MAX_TENSORS HLR_MAX_PARAMS
#define HLR_FILE_MAX_VERSION 31
#define HLR_FILE_MAX_DATASET 255
#define HLR_FILE_MAX_NAME 255 /* class names and metadata keys */
#define HLR_FILE_MAX_CLASSES 65536
#define HLR_FILE_MAX_KEYS 4096
#define HLR_FILE_MAX_VALUE 65535
#define HLR_FILE_MAX_HISTORY (1 << 24)
#define HLR_FILE_HISTORY_RECORD 64
#define HLR_FILE_MAX_PAYLOAD ((uint64_t)1 << 36)
#define HLR_FILE_MAX_INPUT ((int64_t)1 << 26)      /* elements of one input sample */
#define HLR_FILE_MAX_ACTIVATION ((int64_t)1 << 26) /* elements of one layer's output sample */
#define HLR_FILE_MAX_ACTIVATIONS ((int64_t)1 << 28) /* of all layers' output samples together */
/* No zlib stream inflates more than about 1032:1; U above this is a lie. */
#define HLR_FILE_MAX_RATIO 1032
#define HLR_FILE_RATIO_SLACK 1024

#define HLR_FILE_FLAG_OPTIMIZER (1u << 0)
#define HLR_FILE_FLAG_TRAINING (1u << 1)
#define HLR_FILE_FLAGS_REQUIRED 0xFFFF0000u /* bits a reader must know; 1.0 defines none */

/* The file's first 8 bytes (docs/format.md). */
static const unsigned char hlr__file_magic[8] = {0x89, 'H', 'L', 'R', '\r', '\n', 0x1A, '\n'};

/* ---- writing: a growable byte buffer of little-endian fields ---- */

typedef struct hlr_bytes {
    unsigned char *p;
    size_t len, cap;
    int failed; /* an allocation failed: the content is incomplete */
} hlr_bytes;

void hlr__bytes_free(hlr_bytes *b);
void hlr__put_raw(hlr_bytes *b, const void *data, size_t n);
void hlr__put_u8(hlr_bytes *b, unsigned v);
void hlr__put_u32(hlr_bytes *b, uint32_t v);
void hlr__put_u64(hlr_bytes *b, uint64_t v);
void hlr__put_f32(hlr_bytes *b, float v);
void hlr__put_f64(hlr_bytes *b, double v);
/* A str: u32 length, then the bytes. */
void hlr__put_str(hlr_bytes *b, const char *s);
void hlr__put_f32s(hlr_bytes *b, const float *v, int64_t n);
/* Start a chunk (tag and a length to patch); returns where the length lies. */
size_t hlr__chunk_begin(hlr_bytes *b, const char *tag);
void hlr__chunk_end(hlr_bytes *b, size_t at);

/* ---- reading little-endian fields ---- */

uint32_t hlr__get_u32(const unsigned char *p);
uint64_t hlr__get_u64(const unsigned char *p);
/* n floats from little-endian bytes. */
void hlr__get_f32s(float *dst, const unsigned char *src, int64_t n);

/* ---- the envelope: header, zlib, CRC ---- */

typedef struct hlr_file_header {
    unsigned major, minor;
    uint32_t flags;
    uint64_t csize, usize;
    uint32_t crc;
} hlr_file_header;

/*
 * The whole file for a payload: header (flags as given) and the payload
 * deflated at `level`.  *out is owned (hlr__free).  Tests use it to wrap
 * hostile payloads in valid checksums.
 */
hlr_status hlr__file_wrap(const void *payload, size_t len, int level, uint32_t flags, void **out, size_t *outlen);
/* The same, writing format minor version `minor` in the header (hlr__file_wrap: 0). */
hlr_status hlr__file_wrap_minor(const void *payload, size_t len, int level, int minor, uint32_t flags, void **out,
                                size_t *outlen);

/*
 * Check a file's header and sizes, inflate the payload and check its CRC.
 * *payload (owned, hlr__free) holds h->usize bytes.  With tolerate_crc a
 * CRC mismatch is not an error: *crc_ok says whether it matched.
 */
hlr_status hlr__file_unwrap(const void *data, size_t size, hlr_file_header *h, unsigned char **payload,
                            int tolerate_crc, int *crc_ok);

/* The payload of a model (ARCH, PARM, OPTM, OMOM, TRST, META, HIST); *flags the header's flags. */
hlr_status hlr__file_payload(const hlr_model *m, const hlr_save_options *opt, hlr_bytes *out, uint32_t *flags);

/* Read a whole file into memory (owned, hlr__free); HLR_EIO naming path on failure. */
hlr_status hlr__read_file(const char *path, const char *fn, unsigned char **data, size_t *size);


/* ---- what the writer and the reader both need ---- */

static inline int hlr__host_is_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

/* zlib's crc32() takes at most UINT_MAX bytes at a time. */
static inline uint32_t hlr__crc32(const unsigned char *p, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)crc;
}

/* HLR_EIO: "fn: cannot WHAT PATH: why". */
static inline hlr_status hlr__io_fail(const char *fn, const char *what, const char *path, int err)
{
    char buf[128];
    const char *why = strerror_r(err, buf, sizeof buf);
    return hlr__fail(HLR_EIO, "%s: cannot %s %s: %s", fn, what, path, why);
}

#endif
