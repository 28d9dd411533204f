/* binas's native 1-bit x 1-bit convolutions, on channels_last (NHWC) activations.
 *
 * Loaded by binas/export/native.py (compiled on first use with the system C compiler, cached per machine).
 * Activations arrive in one of three forms:
 *   float32 NHWC  - a real-valued map; its sign is taken on the way in (x >= 0 -> +1, else -1, NaN -> -1);
 *   int8 NHWC     - signs as +1 / -1 (the input of a depth-wise conv);
 *   bits          - per pixel `words` uint64, bit c set when channel c is -1 (the input of a dense conv).
 * Zero padding contributes 0 to a sum (a padded tap is skipped), as in the +-1 float conv.
 *
 * Dense conv (groups = 1): XNOR-popcount. For +-1 values, x * w = 1 - 2 [x != w], so a tap adds
 * cin - 2 popcount(x_bits ^ w_bits) and a sum over the valid taps needs one popcount per 64 products.
 * Depth-wise conv (groups = channels): byte lanes. With +1 = 0x01 and -1 = 0xFF, x * w = 1 + (int8)(x ^ w),
 * so a sum is (valid taps) + sum of (x ^ w) over int8 lanes: one XOR and one add per 32 products in AVX2.
 *
 * Outputs (mode): 0 value = acc * scale + shift (float32 NHWC), 1 sign = acc >= thr ? +1 : -1 (int8 NHWC),
 * 2 acc (int32 NHWC, for bit-for-bit tests), 3 sign as bits (the input form of a dense conv).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

enum { MODE_VALUE = 0, MODE_SIGN = 1, MODE_ACC = 2, MODE_BITS = 3 };

#define MAX_CHANNELS 4096
#define MAX_ROW 32768 /* output pixels x channels of one output row, the kernels' per-row buffers */

/* float32 -> int8 +-1, element-wise (NaN -> -1). */
void binas_sign_f32(const float *x, int8_t *out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] >= 0.0f ? 1 : -1;
}

/* One pixel of `c` floats -> `words` uint64 of sign bits (bit set where !(x >= 0)). */
static inline void pack_pixel_f32(const float *x, uint64_t *out, int64_t c, int64_t words) {
    memset(out, 0, (size_t)words * sizeof(uint64_t));
    int64_t i = 0;
#ifdef __AVX2__
    const __m256 zero = _mm256_setzero_ps();
    for (; i + 8 <= c; i += 8) {
        uint64_t m = (uint64_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), zero, _CMP_NGE_UQ));
        out[i >> 6] |= m << (i & 63);
    }
#endif
    for (; i < c; ++i)
        if (!(x[i] >= 0.0f)) out[i >> 6] |= 1ULL << (i & 63);
}

/* One pixel of `c` int8 signs -> sign bits (bit set where the byte is negative). */
static inline void pack_pixel_i8(const int8_t *x, uint64_t *out, int64_t c, int64_t words) {
    memset(out, 0, (size_t)words * sizeof(uint64_t));
    int64_t i = 0;
#ifdef __AVX2__
    for (; i + 32 <= c; i += 32) {
        uint64_t m = (uint32_t)_mm256_movemask_epi8(_mm256_loadu_si256((const __m256i *)(x + i)));
        out[i >> 6] |= m << (i & 63);
    }
    for (; i + 16 <= c; i += 16) {
        uint64_t m = (uint32_t)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(x + i)));
        out[i >> 6] |= m << (i & 63);
    }
#endif
    for (; i < c; ++i) out[i >> 6] |= (uint64_t)(x[i] < 0) << (i & 63);
}

void binas_pack_f32(const float *x, uint64_t *out, int64_t pixels, int64_t c, int64_t words, int32_t nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t p = 0; p < pixels; ++p) pack_pixel_f32(x + p * c, out + p * words, c, words);
}

void binas_pack_i8(const int8_t *x, uint64_t *out, int64_t pixels, int64_t c, int64_t words, int32_t nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t p = 0; p < pixels; ++p) pack_pixel_i8(x + p * c, out + p * words, c, words);
}

/* OR the sign bits of `c` float channels per pixel into `out` (pixels x words), starting at channel `offset`:
 * one part of a concatenation written straight as bits (the float concatenation is never built). */
void binas_pack_f32_at(const float *x, uint64_t *out, int64_t pixels, int64_t c, int64_t words, int64_t offset,
                       int32_t nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t p = 0; p < pixels; ++p) {
        const float *xp = x + p * c;
        uint64_t *op = out + p * words;
        for (int64_t q = 0; q < c; q += 64) {
            uint64_t word;
            const int64_t n = c - q < 64 ? c - q : 64;
            pack_pixel_f32(xp + q, &word, n, 1);
            const int64_t bit = offset + q, w = bit >> 6, sh = bit & 63;
            op[w] |= word << sh;
            if (sh != 0 && w + 1 < words) op[w + 1] |= word >> (64 - sh);
        }
    }
}

/* The per-channel output parameters repeated for every pixel of an output row, so that writing a row is
 * one straight (vectorized) loop. */
typedef struct {
    float *scale, *shift;
    int32_t *thr;
} RowParams;

static int row_params(RowParams *p, int64_t ow, int64_t c, const float *scale, const float *shift,
                      const int32_t *thr) {
    const int64_t n = ow * c;
    p->scale = malloc((size_t)n * sizeof(float));
    p->shift = malloc((size_t)n * sizeof(float));
    p->thr = malloc((size_t)n * sizeof(int32_t));
    if (p->scale == NULL || p->shift == NULL || p->thr == NULL) return 0;
    for (int64_t i = 0; i < ow; ++i) {
        memcpy(p->scale + i * c, scale, (size_t)c * sizeof(float));
        memcpy(p->shift + i * c, shift, (size_t)c * sizeof(float));
        memcpy(p->thr + i * c, thr, (size_t)c * sizeof(int32_t));
    }
    return 1;
}

static void free_row_params(RowParams *p) {
    free(p->scale);
    free(p->shift);
    free(p->thr);
}

/* Write one output row (`ow` pixels x `c` channels of sums) in the requested form. Branch-free straight loops
 * over restrict pointers, so that the compiler vectorizes them. */
static inline void emit_row(int32_t mode, const int32_t *restrict acc, int64_t ow, int64_t c, int64_t row,
                            const RowParams *p, void *out) {
    const int64_t n = ow * c, words = (c + 63) / 64;
    const float *restrict scale = p->scale, *restrict shift = p->shift;
    const int32_t *restrict thr = p->thr;
    if (mode == MODE_VALUE) {
        float *restrict o = (float *)out + row * n;
        for (int64_t k = 0; k < n; ++k) o[k] = (float)acc[k] * scale[k] + shift[k];
    } else if (mode == MODE_SIGN) {
        int8_t *restrict o = (int8_t *)out + row * n;
        for (int64_t k = 0; k < n; ++k) o[k] = (int8_t)(1 - 2 * (acc[k] < thr[k]));
    } else if (mode == MODE_ACC) {
        memcpy((int32_t *)out + row * n, acc, (size_t)n * sizeof(int32_t));
    } else {
        int8_t neg[MAX_ROW];
        for (int64_t k = 0; k < n; ++k) neg[k] = (int8_t)(-(acc[k] < thr[k]));
        uint64_t *o = (uint64_t *)out + row * ow * words;
        for (int64_t i = 0; i < ow; ++i) pack_pixel_i8(neg + i * c, o + i * words, c, words);
    }
}

/* Valid taps along the width per output column (zero padding: a tap outside the input is skipped). */
static void column_taps(int32_t *colv, int64_t OW, int64_t kw, int64_t sw, int64_t pw, int64_t dw, int64_t W) {
    for (int64_t ow = 0; ow < OW; ++ow) {
        colv[ow] = 0;
        for (int64_t j = 0; j < kw; ++j) {
            const int64_t iw = ow * sw - pw + j * dw;
            colv[ow] += iw >= 0 && iw < W;
        }
    }
}

/* cnt += e, uint8 table row into uint16 counts (16 lanes per AVX2 add; gcc leaves the plain loop scalar). */
static inline void add_counts(uint16_t *restrict cnt, const uint8_t *restrict e, int64_t n) {
    int64_t o = 0;
#ifdef __AVX2__
    for (; o + 16 <= n; o += 16) {
        const __m256i a = _mm256_loadu_si256((const __m256i *)(cnt + o));
        const __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(e + o)));
        _mm256_storeu_si256((__m256i *)(cnt + o), _mm256_add_epi16(a, b));
    }
#endif
    for (; o < n; ++o) cnt[o] = (uint16_t)(cnt[o] + e[o]);
}

/* Dense conv on sign bits; xb: (N, H, W, words). With `lut` (taps, bytes, 256, cout) uint8, a tap adds, per
 * 8 input channels, a table row holding the -1 products of that input byte with each output's weights
 * (small fan-in, at most 65535); otherwise wb (taps, cout, words) bit set where the weight is -1 and one
 * popcount per 64 products. */
static void conv_dense(const uint64_t *xb, int64_t N, int64_t H, int64_t W, int64_t cin, int64_t words,
                       const uint64_t *wb, const uint8_t *lut, int64_t cout, int64_t kh, int64_t kw, int64_t sh,
                       int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t OH, int64_t OW, int32_t mode,
                       const float *scale, const float *shift, const int32_t *thr, void *out, int32_t nthreads) {
    const int64_t nbytes = (cin + 7) / 8;
    RowParams params = {NULL, NULL, NULL};
    int32_t *colv = malloc((size_t)OW * sizeof(int32_t));
    if (colv == NULL || !row_params(&params, OW, cout, scale, shift, thr)) goto done;
    column_taps(colv, OW, kw, sw, pw, dw, W);
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t row = 0; row < N * OH; ++row) {
        const int64_t n = row / OH, oh = row % OH, len = OW * cout;
        int32_t acc[MAX_ROW];
        uint16_t cnt16[MAX_ROW]; /* -1 products per output, table path */
        int32_t rowv = 0;
        if (lut != NULL)
            memset(cnt16, 0, (size_t)len * sizeof(uint16_t));
        else
            memset(acc, 0, (size_t)len * sizeof(int32_t));
        for (int64_t i = 0; i < kh; ++i) {
            const int64_t ih = oh * sh - ph + i * dh;
            if (ih < 0 || ih >= H) continue;
            ++rowv;
            for (int64_t j = 0; j < kw; ++j) {
                const int64_t tap = i * kw + j;
                for (int64_t ow = 0; ow < OW; ++ow) {
                    const int64_t iw = ow * sw - pw + j * dw;
                    if (iw < 0 || iw >= W) continue;
                    const uint64_t *xp = xb + ((n * H + ih) * W + iw) * words;
                    if (lut != NULL) {
                        const uint8_t *bytes = (const uint8_t *)xp, *tp = lut + tap * nbytes * 256 * cout;
                        for (int64_t b = 0; b < nbytes; ++b)
                            add_counts(cnt16 + ow * cout, tp + (b * 256 + bytes[b]) * cout, cout);
                    } else {
                        const uint64_t *wp = wb + tap * cout * words;
                        int32_t *cnt = acc + ow * cout;
                        for (int64_t o = 0; o < cout; ++o)
                            for (int64_t w = 0; w < words; ++w)
                                cnt[o] += __builtin_popcountll(xp[w] ^ wp[o * words + w]);
                    }
                }
            }
        }
        for (int64_t ow = 0; ow < OW; ++ow) { /* sum = taps * cin - 2 (-1 products) */
            const int32_t base = rowv * colv[ow] * (int32_t)cin;
            int32_t *restrict a = acc + ow * cout;
            if (lut != NULL) {
                const uint16_t *restrict c16 = cnt16 + ow * cout;
                for (int64_t o = 0; o < cout; ++o) a[o] = base - 2 * (int32_t)c16[o];
            } else {
                for (int64_t o = 0; o < cout; ++o) a[o] = base - 2 * a[o];
            }
        }
        emit_row(mode, acc, OW, cout, row, &params, out);
    }
done:
    free(colv);
    free_row_params(&params);
}

/* The extra outputs of a conv that ends a DARTS cell node (value mode): an addend (the node's other op;
 * may be the output buffer itself), and the sign bits of the values ORed into the cell's concatenation
 * (N, OH, OW, cat_words) from channel cat_offset on. Either may be absent (NULL); out may be NULL too when
 * only the sign bits are needed. */
typedef struct {
    const float *addend;
    uint64_t *cat;
    int64_t cat_words, cat_offset;
} NodeOut;

#ifdef __AVX2__
/* The common case in one pass, accumulators in registers: a 1x1 conv without padding (point-wise convs,
 * FactorizedReduce's halves) by byte tables, cout a multiple of 16. (Nibble tables, 16x smaller, measured
 * slower even where byte tables outgrow L1.) For +1 iff sum >= thr with
 * sum = cin - 2 cnt: -1 iff cnt > lim = floor((cin - thr) / 2); a value is (cin scale + shift) - 2 scale cnt. */
static void dense_1x1_tables(const uint64_t *xb, int64_t N, int64_t H, int64_t W, int64_t cin, int64_t words,
                             const uint8_t *lut, int64_t cout, int64_t sh, int64_t sw, int64_t OH, int64_t OW,
                             int32_t mode, const float *scale, const float *shift, const int32_t *thr,
                             void *out, const NodeOut *node, int32_t nthreads) {
    const int64_t lookups = (cin + 7) / 8, out_words = (cout + 63) / 64;
    int16_t lim[MAX_CHANNELS];
    float a[MAX_CHANNELS], b[MAX_CHANNELS];
    for (int64_t o = 0; o < cout; ++o) {
        int64_t d = (int64_t)cin - (thr != NULL ? thr[o] : 0); /* floor division by 2, clamped to int16 */
        d = d >= 0 ? d / 2 : -((-d + 1) / 2);
        lim[o] = (int16_t)(d < -32768 ? -32768 : d > 32767 ? 32767 : d);
        a[o] = (float)cin * scale[o] + shift[o];
        b[o] = -2.0f * scale[o];
    }
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t row = 0; row < N * OH; ++row) {
        const int64_t n = row / OH, oh = row % OH;
        const uint8_t *rows[MAX_CHANNELS / 8]; /* this pixel's table row per input byte */
        for (int64_t ow = 0; ow < OW; ++ow) {
            const int64_t pixel = row * OW + ow;
            const uint8_t *bytes = (const uint8_t *)(xb + ((n * H + oh * sh) * W + ow * sw) * words);
            for (int64_t k = 0; k < lookups; ++k) rows[k] = lut + (k * 256 + bytes[k]) * cout;
            if (mode == MODE_BITS) memset((uint64_t *)out + pixel * out_words, 0, (size_t)out_words * 8);
            for (int64_t o = 0; o < cout; o += 16) {
                __m256i c0 = _mm256_setzero_si256(), c1 = _mm256_setzero_si256();
                int64_t k = 0;
                for (; k + 2 <= lookups; k += 2) { /* two chains: the adds wait on table loads */
                    c0 = _mm256_add_epi16(c0, _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(rows[k] + o))));
                    c1 = _mm256_add_epi16(c1,
                                          _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(rows[k + 1] + o))));
                }
                if (k < lookups)
                    c0 = _mm256_add_epi16(c0, _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(rows[k] + o))));
                const __m256i cnt = _mm256_add_epi16(c0, c1);
                if (mode == MODE_VALUE) {
                    const int64_t at = pixel * cout + o;
                    const __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(cnt)));
                    const __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(cnt, 1)));
                    __m256 v0 = _mm256_fmadd_ps(_mm256_loadu_ps(b + o), lo, _mm256_loadu_ps(a + o));
                    __m256 v1 = _mm256_fmadd_ps(_mm256_loadu_ps(b + o + 8), hi, _mm256_loadu_ps(a + o + 8));
                    if (node != NULL && node->addend != NULL) {
                        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(node->addend + at));
                        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(node->addend + at + 8));
                    }
                    if (out != NULL) {
                        _mm256_storeu_ps((float *)out + at, v0);
                        _mm256_storeu_ps((float *)out + at + 8, v1);
                    }
                    if (node != NULL && node->cat != NULL) { /* 16 channels never straddle a word: offsets are
                                                               * multiples of 16 (binas.export.native checks) */
                        const __m256 zero = _mm256_setzero_ps();
                        const uint64_t m = (uint64_t)_mm256_movemask_ps(_mm256_cmp_ps(v0, zero, _CMP_NGE_UQ)) |
                                           (uint64_t)_mm256_movemask_ps(_mm256_cmp_ps(v1, zero, _CMP_NGE_UQ)) << 8;
                        const int64_t bit = node->cat_offset + o;
                        node->cat[pixel * node->cat_words + (bit >> 6)] |= m << (bit & 63);
                    }
                    continue;
                }
                const __m256i neg16 = _mm256_cmpgt_epi16(cnt, _mm256_loadu_si256((const __m256i *)(lim + o)));
                const __m128i neg8 = _mm_packs_epi16(_mm256_castsi256_si128(neg16), _mm256_extracti128_si256(neg16, 1));
                if (mode == MODE_SIGN)
                    _mm_storeu_si128((__m128i *)((int8_t *)out + pixel * cout + o), _mm_or_si128(neg8, _mm_set1_epi8(1)));
                else
                    ((uint64_t *)out)[pixel * out_words + (o >> 6)] |= (uint64_t)(uint16_t)_mm_movemask_epi8(neg8)
                                                                       << (o & 63);
            }
        }
    }
}
#endif

void binas_conv_dense(const uint64_t *xb, int64_t N, int64_t H, int64_t W, int64_t cin, int64_t words,
                      const uint64_t *wb, int64_t cout, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph,
                      int64_t pw, int64_t dh, int64_t dw, int64_t OH, int64_t OW, int32_t mode, const float *scale,
                      const float *shift, const int32_t *thr, void *out, int32_t nthreads) {
    conv_dense(xb, N, H, W, cin, words, wb, NULL, cout, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW, mode, scale, shift,
               thr, out, nthreads);
}

void binas_conv_dense_lut(const uint64_t *xb, int64_t N, int64_t H, int64_t W, int64_t cin, int64_t words,
                          const uint8_t *lut, int64_t cout, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                          int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t OH, int64_t OW, int32_t mode,
                          const float *scale, const float *shift, const int32_t *thr, void *out, int32_t nthreads) {
#ifdef __AVX2__
    if (kh == 1 && kw == 1 && ph == 0 && pw == 0 && cout % 16 == 0 && mode != MODE_ACC) {
        dense_1x1_tables(xb, N, H, W, cin, words, lut, cout, sh, sw, OH, OW, mode, scale, shift, thr, out, NULL,
                         nthreads);
        return;
    }
#endif
    conv_dense(xb, N, H, W, cin, words, NULL, lut, cout, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW, mode, scale, shift,
               thr, out, nthreads);
}

/* A 1x1 conv by byte tables (cout a multiple of 16, AVX2) that ends a DARTS cell node: value + addend, written
 * to `out` (NULL: not written) and/or as sign bits into the cell's concatenation (see NodeOut). Returns 0 where
 * this path does not exist (no AVX2), so that the caller computes the node the unfused way. */
int32_t binas_conv_1x1_node(const uint64_t *xb, int64_t N, int64_t H, int64_t W, int64_t cin, int64_t words,
                            const uint8_t *lut, int64_t cout, int64_t sh, int64_t sw, int64_t OH, int64_t OW,
                            const float *scale, const float *shift, const float *addend, float *out, uint64_t *cat,
                            int64_t cat_words, int64_t cat_offset, int32_t nthreads) {
#ifdef __AVX2__
    const NodeOut node = {addend, cat, cat_words, cat_offset};
    if (cout % 16 != 0 || cat_offset % 16 != 0) return 0;
    dense_1x1_tables(xb, N, H, W, cin, words, lut, cout, sh, sw, OH, OW, MODE_VALUE, scale, shift, NULL, out, &node,
                     nthreads);
    return 1;
#else
    (void)xb, (void)N, (void)H, (void)W, (void)cin, (void)words, (void)lut, (void)cout, (void)sh, (void)sw;
    (void)OH, (void)OW, (void)scale, (void)shift, (void)addend, (void)out, (void)cat, (void)cat_words;
    (void)cat_offset, (void)nthreads;
    return 0;
#endif
}

/* Depth-wise conv on int8 signs. x: (N, H, W, C); w: (KH * KW, C) int8 +-1; at most 63 taps (int8 sums).
 * Each output row is summed into int8 lanes, then written from the exact sums with the per-channel
 * parameters repeated along the row (`RowParams`, thresholds clamped to int8: |sum| <= 63).
 * AVX2, stride 1 along the width: the input is copied once with zero columns around each row (into
 * `workspace` when given: N * H * (W + 2 pw) * C + 64 bytes, else a buffer of its own), so a tap of
 * a 32-byte run of output lanes is one load at a fixed offset, and _mm256_sign_epi8(w, x) gives w * x with
 * a padded 0 contributing 0; the sums stay in a register across the taps. Otherwise: one output pixel at a
 * time, with +1 = 0x01 and -1 = 0xFF so that x * w = 1 + (int8)(x ^ w) over the taps inside the input. */
void binas_conv_depthwise(const void *input, int32_t input_float, int8_t *workspace, int64_t N, int64_t H,
                          int64_t W, int64_t c, const int8_t *w, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                          int64_t dh, int64_t dw, int64_t OH, int64_t OW, int32_t mode, const float *scale,
                          const float *shift, const int32_t *thr, void *out, int32_t nthreads) {
    const int64_t row_len = OW * c, taps = kh * kw, words = (c + 63) / 64;
    const int64_t row_pad = (row_len + 31) / 32 * 32, wp = W + 2 * pw; /* padded output row, input row */
    RowParams params = {NULL, NULL, NULL};
    int8_t *wrow = calloc((size_t)(taps * row_pad), 1); /* each tap's weights, repeated for every output pixel */
    int8_t *tadj = malloc((size_t)row_pad);             /* thresholds clamped to int8 */
    int32_t *colv = malloc((size_t)OW * sizeof(int32_t));
    int8_t *padded = NULL, *signs = NULL;
    const int8_t *x = (const int8_t *)input;
    int vector = 0;
#ifdef __AVX2__
    vector = sw == 1;
#endif
    if (wrow == NULL || tadj == NULL || colv == NULL || !row_params(&params, OW, c, scale, shift, thr)) goto done;
    if (vector) { /* zero columns left and right of every row, and a 64-byte tail for the last run; a float
                   * input is signed on the way in */
        padded = workspace != NULL ? workspace : malloc((size_t)(N * H * wp * c + 64));
        if (padded == NULL) goto done;
        memset(padded + N * H * wp * c, 0, 64);
#pragma omp parallel for num_threads(nthreads) schedule(static)
        for (int64_t r = 0; r < N * H; ++r) {
            int8_t *dst = padded + r * wp * c;
            memset(dst, 0, (size_t)(pw * c));
            if (input_float)
                binas_sign_f32((const float *)input + r * W * c, dst + pw * c, W * c);
            else
                memcpy(dst + pw * c, x + r * W * c, (size_t)(W * c));
            memset(dst + (pw + W) * c, 0, (size_t)(pw * c));
        }
    } else if (input_float) {
        signs = malloc((size_t)(N * H * W * c));
        if (signs == NULL) goto done;
        binas_sign_f32((const float *)input, signs, N * H * W * c);
        x = signs;
    }
    column_taps(colv, OW, kw, sw, pw, dw, W);
    for (int64_t t = 0; t < taps; ++t)
        for (int64_t ow = 0; ow < OW; ++ow) memcpy(wrow + t * row_pad + ow * c, w + t * c, (size_t)c);
    for (int64_t k = 0; k < row_len; ++k) {
        const int32_t t = params.thr[k];
        tadj[k] = (int8_t)(t < -127 ? -127 : t > 127 ? 127 : t);
    }
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t row = 0; row < N * OH; ++row) {
        const int64_t n = row / OH, oh = row % OH;
        int8_t s_buffer[MAX_ROW + 32];
        int8_t *restrict s = s_buffer;
#ifdef __AVX2__
        if (vector) {
            const int8_t *rows[64]; /* the padded input rows inside the image, per kernel row */
            const int8_t *wts[64];
            int64_t used = 0;
            for (int64_t i = 0; i < kh; ++i) {
                const int64_t ih = oh * sh - ph + i * dh;
                if (ih >= 0 && ih < H) rows[used] = padded + (n * H + ih) * wp * c, wts[used++] = wrow + i * kw * row_pad;
            }
            /* sign bits straight from the register when a 32-byte run holds whole pixels or whole words */
            const int bits_direct = mode == MODE_BITS && (32 % c == 0 || c % 32 == 0) && row_len % 32 == 0;
            uint64_t *bits_out = (uint64_t *)out + row * OW * words;
            const int64_t step = dw * c;
            for (int64_t b = 0; b < row_len; b += 32) {
                __m256i acc = _mm256_setzero_si256(), acc2 = _mm256_setzero_si256();
                for (int64_t r = 0; r < used; ++r) {
                    const int8_t *xr = rows[r] + b, *wr = wts[r] + b;
                    int64_t j = 0;
                    for (; j + 3 <= kw; j += 3) { /* 3x3 kernels: one unrolled row of taps, two sum chains */
                        const __m256i x0 = _mm256_loadu_si256((const __m256i *)(xr + j * step));
                        const __m256i x1 = _mm256_loadu_si256((const __m256i *)(xr + (j + 1) * step));
                        const __m256i x2 = _mm256_loadu_si256((const __m256i *)(xr + (j + 2) * step));
                        acc = _mm256_add_epi8(
                            acc, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(wr + j * row_pad)), x0));
                        acc2 = _mm256_add_epi8(
                            acc2, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(wr + (j + 1) * row_pad)), x1));
                        acc = _mm256_add_epi8(
                            acc, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(wr + (j + 2) * row_pad)), x2));
                    }
                    for (; j < kw; ++j) {
                        const __m256i xv = _mm256_loadu_si256((const __m256i *)(xr + j * step));
                        const __m256i wv = _mm256_loadu_si256((const __m256i *)(wr + j * row_pad));
                        acc = _mm256_add_epi8(acc, _mm256_sign_epi8(wv, xv));
                    }
                }
                acc = _mm256_add_epi8(acc, acc2);
                if (!bits_direct) {
                    _mm256_storeu_si256((__m256i *)(s + b), acc);
                    continue;
                }
                const __m256i neg = _mm256_cmpgt_epi8(_mm256_loadu_si256((const __m256i *)(tadj + b)), acc);
                const uint64_t m = (uint32_t)_mm256_movemask_epi8(neg);
                if (c % 32 == 0) { /* a 32-channel half of a word of one pixel */
                    const int64_t pixel = b / c, bit = b % c;
                    uint64_t *word = bits_out + pixel * words + (bit >> 6);
                    *word = (bit & 63) ? (*word | (m << 32)) : m;
                } else { /* 32 / c whole pixels */
                    const uint64_t keep = (1ULL << c) - 1;
                    for (int64_t q = 0; q < 32 / c; ++q) bits_out[(b / c + q) * words] = (m >> (q * c)) & keep;
                }
            }
            if (bits_direct) continue;
        } else
#endif
        {
            memset(s, 0, (size_t)row_len);
            int64_t rowv = 0;
            for (int64_t i = 0; i < kh; ++i) {
                const int64_t ih = oh * sh - ph + i * dh;
                if (ih < 0 || ih >= H) continue;
                ++rowv;
                for (int64_t j = 0; j < kw; ++j) {
                    const int8_t *restrict wt = wrow + (i * kw + j) * row_pad;
                    for (int64_t ow = 0; ow < OW; ++ow) {
                        const int64_t iw = ow * sw - pw + j * dw;
                        if (iw < 0 || iw >= W) continue;
                        const int8_t *restrict xp = x + ((n * H + ih) * W + iw) * c;
                        for (int64_t k = 0; k < c; ++k) s[ow * c + k] += (int8_t)(xp[k] ^ wt[ow * c + k]);
                    }
                }
            }
            for (int64_t ow = 0; ow < OW; ++ow)
                for (int64_t k = 0; k < c; ++k) s[ow * c + k] = (int8_t)(s[ow * c + k] + rowv * colv[ow]);
        }
        /* emit_row's forms, on the int8 sums directly (widening them to int32 first was measured slower) */
        if (mode == MODE_VALUE) {
            const float *restrict sc = params.scale, *restrict sf = params.shift;
            float *restrict o = (float *)out + row * row_len;
            for (int64_t k = 0; k < row_len; ++k) o[k] = (float)s[k] * sc[k] + sf[k];
        } else if (mode == MODE_SIGN) {
            int8_t *restrict o = (int8_t *)out + row * row_len;
            for (int64_t k = 0; k < row_len; ++k) o[k] = (int8_t)(1 - 2 * (s[k] < tadj[k]));
        } else if (mode == MODE_BITS) {
            int8_t neg[MAX_ROW];
            for (int64_t k = 0; k < row_len; ++k) neg[k] = (int8_t)(-(s[k] < tadj[k]));
            uint64_t *o = (uint64_t *)out + row * OW * words;
            for (int64_t ow = 0; ow < OW; ++ow) pack_pixel_i8(neg + ow * c, o + ow * words, c, words);
        } else {
            int32_t *o = (int32_t *)out + row * row_len;
            for (int64_t k = 0; k < row_len; ++k) o[k] = s[k];
        }
    }
done:
    free(wrow);
    free(tadj);
    free(colv);
    if (padded != workspace) free(padded);
    free(signs);
    free_row_params(&params);
}

/* Max pooling of a float NHWC map (what a DARTS cell pools): the maximum over the taps inside the input
 * (padding never wins), NaN propagating as in PyTorch. */
void binas_max_pool_f32(const float *x, int64_t N, int64_t H, int64_t W, int64_t c, int64_t kh, int64_t kw,
                        int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t OH, int64_t OW, float *out,
                        int32_t nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t row = 0; row < N * OH; ++row) {
        const int64_t n = row / OH, oh = row % OH;
        for (int64_t ow = 0; ow < OW; ++ow) {
            float *restrict o = out + (row * OW + ow) * c;
            for (int64_t k = 0; k < c; ++k) o[k] = -INFINITY;
            for (int64_t i = 0; i < kh; ++i) {
                const int64_t ih = oh * sh - ph + i;
                if (ih < 0 || ih >= H) continue;
                for (int64_t j = 0; j < kw; ++j) {
                    const int64_t iw = ow * sw - pw + j;
                    if (iw < 0 || iw >= W) continue;
                    const float *restrict v = x + ((n * H + ih) * W + iw) * c;
                    for (int64_t k = 0; k < c; ++k) o[k] = (v[k] > o[k] || v[k] != v[k]) ? v[k] : o[k];
                }
            }
        }
    }
}
