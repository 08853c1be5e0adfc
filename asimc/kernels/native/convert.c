/* The fused bit-level kernel of docs/numeric-model.md: MAC, noise, ADC and shift-add in one pass.
 *
 * Binary MACs by bit operations: per row tile, every input bit plane and every weight bit plane
 * is a bit mask over the tile's rows (a 255-row tile is four 64-bit words), so the MAC of input
 * bit b with weight bit i is popcount(x_b & w_i) summed over the words, and a cycle's MAC is the
 * shifted sum over its input bits. The MACs of a block of columns live in a small buffer (L1),
 * are converted there and shift-added into the row's output: the MAC tensor never exists in
 * memory. Threads split the rows; every row is computed the same way whatever the thread count.
 *
 * A noisy conversion draws its code from the tables of asimc/kernels/conversion_model.py (built
 * once per layer in Python and passed in): one Philox4x32-10 word per conversion, one guide
 * table look-up and one comparison (a count over the thresholds in the rare flagged cells).
 * Where the column ADCs' gain, offset or code thresholds act on the noisy value, a Box-Muller
 * normal is drawn instead and added to the tabulated analog value with the tabulated sigma, in
 * float32 with -ffp-contract=off, operation by operation as asimc/kernels/{adc,rng}.py do, so
 * that the codes are the reference kernel's, bit for bit. Cell or driver mismatch makes the MACs
 * non-integer: asimc_convert_macs converts such MACs, computed outside (exact float64 products
 * rounded to float32), with the same draws and steps.
 *
 * The same source is built three times (native/__init__.py): for the baseline instruction set
 * (scalar), for AVX2 and for AVX-512; the generator, the guided draw and the bit packing have
 * explicit vector code for AVX2 / AVX-512 and scalar code for the rest and the tails. The
 * @NAME@ constants are filled in from asimc/kernels/rng.py when the library is built.
 */
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <math.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#define GUIDE_BITS @GUIDE_BITS@
#define GUIDE_SHIFT (32 - GUIDE_BITS)
#define LOW_MASK ((1u << GUIDE_SHIFT) - 1u)
#define ESCAPE ((1u << GUIDE_BITS) - 1u)   /* guide code: count over the thresholds */

#define MAX_VOTES 64
#define BLOCK 32            /* columns converted together (one vector loop) */
_Static_assert(BLOCK <= 32, "block_codes keeps one flag bit per column of a block");
#define MAX_PAIRS 2048      /* cycles * weight bits: native.MAX_PLANE_PAIRS */

/* ---------------------------------------------------------------------------------------------
 * Philox4x32-10 and Box-Muller (asimc/kernels/rng.py)
 * ------------------------------------------------------------------------------------------ */

static inline void philox(uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1, uint32_t *out) {
    uint32_t c2 = 0, c3 = 0;
    for (int r = 0; r < 10; r++) {
        if (r) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

static inline float log_unit(float u) {
    int32_t bits;
    memcpy(&bits, &u, 4);
    int32_t exponent = ((bits >> 23) & 255) - 127;
    int32_t mbits = (bits & 0x7FFFFF) | 0x3F800000;
    float m;
    memcpy(&m, &mbits, 4);
    int32_t big = m > @SQRT2@;
    m = big ? m * 0.5f : m;
    exponent += big;
    float s = (m - 1.0f) / (m + 1.0f);
    float x = s * s;
    float p = @LN4@;
    p = p * x + @LN3@;
    p = p * x + @LN2C@;
    p = p * x + @LN1@;
    p = p * x + @LN0@;
    return s * p + (float)exponent * @LN2@;
}

static inline float cos_turns(uint32_t k) {
    uint32_t quadrant = k >> 22;
    float a = (float)(int32_t)(k & 0x3FFFFF) * @QUARTER_STEP@;
    float b = (quadrant & 1) ? @HALF_PI@ - a : a;
    float x = b * b;
    float c = @COS7@;
    c = c * x + @COS6@;
    c = c * x + @COS5@;
    c = c * x + @COS4@;
    c = c * x + @COS3@;
    c = c * x + @COS2@;
    c = c * x + @COS1@;
    c = c * x + @COS0@;
    return (quadrant == 1 || quadrant == 2) ? -c : c;
}

/* Box-Muller on two words: r cos(theta), r sin(theta). */
static inline void normal_pair(uint32_t w0, uint32_t w1, float *z0, float *z1) {
    float u1 = (float)(int32_t)((w0 >> 8) + 1) * @INV_2_24@;
    uint32_t angle = w1 >> 8;
    float radius = sqrtf(log_unit(u1) * -2.0f);
    *z0 = radius * cos_turns(angle);
    *z1 = radius * cos_turns((angle + @QUARTER_TURN@u) & 0xFFFFFF);
}

#if defined(__AVX2__)


/* Horner's rule on eight lanes: the same multiplies and adds, in the same order, as the scalar
 * code (no FMA: -ffp-contract=off, and _mm256_mul_ps/_mm256_add_ps round each step). */
#define HORNER8(P, X, C) (P) = _mm256_add_ps(_mm256_mul_ps((P), (X)), _mm256_set1_ps(C))

/* The Box-Muller helpers below work on L independent vectors in lock step (each step of the
 * polynomials is a loop over the L vectors, unrolled): one vector's Horner chain is a long
 * dependency chain, and interleaving L of them keeps the adders and multipliers busy. */
#define LANES(L) _Pragma("GCC unroll 8") for (int q = 0; q < (L); q++)

/* log_unit() on L vectors of eight lanes. */
static inline __attribute__((always_inline)) void log_unit8(const __m256 *u, __m256 *out, int L) {
    __m256i exponent[8];
    __m256 s[8], x[8], p[8];
    const __m256 one = _mm256_set1_ps(1.0f);
    LANES(L) {
        const __m256i bits = _mm256_castps_si256(u[q]);
        exponent[q] = _mm256_sub_epi32(
            _mm256_and_si256(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(255)),
            _mm256_set1_epi32(127));
        __m256 m = _mm256_castsi256_ps(_mm256_or_si256(
            _mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFF)), _mm256_set1_epi32(0x3F800000)));
        const __m256 big = _mm256_cmp_ps(m, _mm256_set1_ps(@SQRT2@), _CMP_GT_OQ);
        m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5f)), big);
        exponent[q] = _mm256_sub_epi32(exponent[q], _mm256_castps_si256(big));  /* mask: -1 */
        s[q] = _mm256_div_ps(_mm256_sub_ps(m, one), _mm256_add_ps(m, one));
        x[q] = _mm256_mul_ps(s[q], s[q]);
        p[q] = _mm256_set1_ps(@LN4@);
    }
    LANES(L) HORNER8(p[q], x[q], @LN3@);
    LANES(L) HORNER8(p[q], x[q], @LN2C@);
    LANES(L) HORNER8(p[q], x[q], @LN1@);
    LANES(L) HORNER8(p[q], x[q], @LN0@);
    LANES(L) out[q] = _mm256_add_ps(_mm256_mul_ps(s[q], p[q]),
                                    _mm256_mul_ps(_mm256_cvtepi32_ps(exponent[q]),
                                                  _mm256_set1_ps(@LN2@)));
}

/* cos_turns() on L vectors of eight lanes (k < 2^24). */
static inline __attribute__((always_inline)) void cos_turns8(const __m256i *k, __m256 *out, int L) {
    __m256i negative[8];
    __m256 x[8], c[8];
    LANES(L) {
        const __m256i quadrant = _mm256_srli_epi32(k[q], 22);
        const __m256 a = _mm256_mul_ps(
            _mm256_cvtepi32_ps(_mm256_and_si256(k[q], _mm256_set1_epi32(0x3FFFFF))),
            _mm256_set1_ps(@QUARTER_STEP@));
        const __m256 odd = _mm256_castsi256_ps(_mm256_cmpeq_epi32(
            _mm256_and_si256(quadrant, _mm256_set1_epi32(1)), _mm256_set1_epi32(1)));
        const __m256 b = _mm256_blendv_ps(a, _mm256_sub_ps(_mm256_set1_ps(@HALF_PI@), a), odd);
        x[q] = _mm256_mul_ps(b, b);
        c[q] = _mm256_set1_ps(@COS7@);
        /* quadrants 1 and 2 negate (bit 1 of quadrant + 1); -c flips the sign bit alone. */
        negative[q] = _mm256_slli_epi32(_mm256_and_si256(
            _mm256_add_epi32(quadrant, _mm256_set1_epi32(1)), _mm256_set1_epi32(2)), 30);
    }
    LANES(L) HORNER8(c[q], x[q], @COS6@);
    LANES(L) HORNER8(c[q], x[q], @COS5@);
    LANES(L) HORNER8(c[q], x[q], @COS4@);
    LANES(L) HORNER8(c[q], x[q], @COS3@);
    LANES(L) HORNER8(c[q], x[q], @COS2@);
    LANES(L) HORNER8(c[q], x[q], @COS1@);
    LANES(L) HORNER8(c[q], x[q], @COS0@);
    LANES(L) out[q] = _mm256_xor_ps(c[q], _mm256_castsi256_ps(negative[q]));
}

/* normal_pair() on L vectors of eight lanes: z[2q], z[2q + 1] from words w0[q], w1[q]. */
static inline __attribute__((always_inline)) void normal_pairs8(const __m256i *w0, const __m256i *w1,
                                                                __m256 *z, int L) {
    __m256 u1[8], ln[8], radius[8], c[16];
    __m256i angle[16];
    LANES(L) {
        u1[q] = _mm256_mul_ps(_mm256_cvtepi32_ps(
            _mm256_add_epi32(_mm256_srli_epi32(w0[q], 8), _mm256_set1_epi32(1))),
            _mm256_set1_ps(@INV_2_24@));
        angle[2 * q] = _mm256_srli_epi32(w1[q], 8);
        angle[2 * q + 1] = _mm256_and_si256(
            _mm256_add_epi32(angle[2 * q], _mm256_set1_epi32(@QUARTER_TURN@)),
            _mm256_set1_epi32(0xFFFFFF));
    }
    log_unit8(u1, ln, L);
    cos_turns8(angle, c, 2 * L);
    LANES(L) radius[q] = _mm256_sqrt_ps(_mm256_mul_ps(ln[q], _mm256_set1_ps(-2.0f)));
    LANES(L) {
        z[2 * q] = _mm256_mul_ps(radius[q], c[2 * q]);
        z[2 * q + 1] = _mm256_mul_ps(radius[q], c[2 * q + 1]);
    }
}

#endif

/* The four words of the Philox calls of counters (lo[n], hi[n]) in stream (k0, k1), for
 * n < count, into w[q * BLOCK + n]: sixteen (AVX-512) or eight (AVX2) counters at a time. */
#if defined(__AVX512F__)
/* hi and lo 32 bits of the sixteen products m * c (even lanes 32x32->64, then the odd ones). */
static inline void mulhilo16(__m512i m, __m512i c, __m512i *hi, __m512i *lo) {
    __m512i even = _mm512_mul_epu32(m, c);
    __m512i odd = _mm512_mul_epu32(m, _mm512_srli_epi64(c, 32));
    *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
    *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}
#endif
#if defined(__AVX2__)
/* hi and lo 32 bits of the eight products m * c (AVX2 multiplies even lanes 32x32->64). */
static inline void mulhilo8(__m256i m, __m256i c, __m256i *hi, __m256i *lo) {
    __m256i even = _mm256_mul_epu32(m, c);
    __m256i odd = _mm256_mul_epu32(m, _mm256_srli_epi64(c, 32));
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}
#endif

static void random_quads(uint32_t k0, uint32_t k1, const uint32_t *lo, const uint32_t *hi,
                         int count, uint32_t *w) {
    int n = 0;
#if defined(__AVX512F__)
    {
        const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53u);
        const __m512i m1 = _mm512_set1_epi32((int)0xCD9E8D57u);
        /* Two independent sets of sixteen counters in lock step: one set's rounds are a chain
         * of dependent multiplies, two keep the multiplier busy. */
        for (; n + 32 <= count; n += 32) {
            __m512i a0 = _mm512_loadu_si512((const void *)(lo + n));
            __m512i a1 = _mm512_loadu_si512((const void *)(hi + n));
            __m512i b0 = _mm512_loadu_si512((const void *)(lo + n + 16));
            __m512i b1 = _mm512_loadu_si512((const void *)(hi + n + 16));
            __m512i a2 = _mm512_setzero_si512(), a3 = a2, b2 = a2, b3 = a2;
            for (int r = 0; r < 10; r++) {
                const __m512i key0 = _mm512_set1_epi32((int)(k0 + (uint32_t)r * 0x9E3779B9u));
                const __m512i key1 = _mm512_set1_epi32((int)(k1 + (uint32_t)r * 0xBB67AE85u));
                __m512i ha0, la0, ha1, la1, hb0, lb0, hb1, lb1;
                mulhilo16(m0, a0, &ha0, &la0);
                mulhilo16(m0, b0, &hb0, &lb0);
                mulhilo16(m1, a2, &ha1, &la1);
                mulhilo16(m1, b2, &hb1, &lb1);
                a0 = _mm512_ternarylogic_epi32(ha1, a1, key0, 0x96);
                b0 = _mm512_ternarylogic_epi32(hb1, b1, key0, 0x96);
                a2 = _mm512_ternarylogic_epi32(ha0, a3, key1, 0x96);
                b2 = _mm512_ternarylogic_epi32(hb0, b3, key1, 0x96);
                a1 = la1; b1 = lb1;
                a3 = la0; b3 = lb0;
            }
            _mm512_storeu_si512((void *)(w + n), a0);
            _mm512_storeu_si512((void *)(w + n + 16), b0);
            _mm512_storeu_si512((void *)(w + BLOCK + n), a1);
            _mm512_storeu_si512((void *)(w + BLOCK + n + 16), b1);
            _mm512_storeu_si512((void *)(w + 2 * BLOCK + n), a2);
            _mm512_storeu_si512((void *)(w + 2 * BLOCK + n + 16), b2);
            _mm512_storeu_si512((void *)(w + 3 * BLOCK + n), a3);
            _mm512_storeu_si512((void *)(w + 3 * BLOCK + n + 16), b3);
        }
        for (; n + 16 <= count; n += 16) {
            __m512i c0 = _mm512_loadu_si512((const void *)(lo + n));
            __m512i c1 = _mm512_loadu_si512((const void *)(hi + n));
            __m512i c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
            for (int r = 0; r < 10; r++) {
                const __m512i key0 = _mm512_set1_epi32((int)(k0 + (uint32_t)r * 0x9E3779B9u));
                const __m512i key1 = _mm512_set1_epi32((int)(k1 + (uint32_t)r * 0xBB67AE85u));
                __m512i h0, l0, h1, l1;
                mulhilo16(m0, c0, &h0, &l0);
                mulhilo16(m1, c2, &h1, &l1);
                c0 = _mm512_xor_si512(_mm512_xor_si512(h1, c1), key0);
                c2 = _mm512_xor_si512(_mm512_xor_si512(h0, c3), key1);
                c1 = l1;
                c3 = l0;
            }
            _mm512_storeu_si512((void *)(w + n), c0);
            _mm512_storeu_si512((void *)(w + BLOCK + n), c1);
            _mm512_storeu_si512((void *)(w + 2 * BLOCK + n), c2);
            _mm512_storeu_si512((void *)(w + 3 * BLOCK + n), c3);
        }
    }
#endif
#if defined(__AVX2__)
    {
        const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u);
        const __m256i m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
        for (; n + 8 <= count; n += 8) {
            __m256i c0 = _mm256_loadu_si256((const __m256i *)(lo + n));
            __m256i c1 = _mm256_loadu_si256((const __m256i *)(hi + n));
            __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
            for (int r = 0; r < 10; r++) {
                const __m256i key0 = _mm256_set1_epi32((int)(k0 + (uint32_t)r * 0x9E3779B9u));
                const __m256i key1 = _mm256_set1_epi32((int)(k1 + (uint32_t)r * 0xBB67AE85u));
                __m256i h0, l0, h1, l1;
                mulhilo8(m0, c0, &h0, &l0);
                mulhilo8(m1, c2, &h1, &l1);
                c0 = _mm256_xor_si256(_mm256_xor_si256(h1, c1), key0);
                c2 = _mm256_xor_si256(_mm256_xor_si256(h0, c3), key1);
                c1 = l1;
                c3 = l0;
            }
            _mm256_storeu_si256((__m256i *)(w + n), c0);
            _mm256_storeu_si256((__m256i *)(w + BLOCK + n), c1);
            _mm256_storeu_si256((__m256i *)(w + 2 * BLOCK + n), c2);
            _mm256_storeu_si256((__m256i *)(w + 3 * BLOCK + n), c3);
        }
    }
#endif
    for (; n < count; n++) {
        uint32_t out[4];
        philox(k0, k1, lo[n], hi[n], out);
        for (int q = 0; q < 4; q++) w[q * BLOCK + n] = out[q];
    }
}

/* The four normals of the same calls into z[q * BLOCK + n] (Box-Muller on words 0, 1 and on
 * words 2, 3): the draws of conversions whose code is not tabulated. */
static void normal_quads(uint32_t k0, uint32_t k1, const uint32_t *lo, const uint32_t *hi,
                         int count, float *z) {
    uint32_t w[4 * BLOCK];
    random_quads(k0, k1, lo, hi, count, w);
    int n = 0;
#if defined(__AVX2__)
    for (; n + 8 <= count; n += 8) {
        const __m256i w0[2] = {_mm256_loadu_si256((const __m256i *)(w + n)),
                               _mm256_loadu_si256((const __m256i *)(w + 2 * BLOCK + n))};
        const __m256i w1[2] = {_mm256_loadu_si256((const __m256i *)(w + BLOCK + n)),
                               _mm256_loadu_si256((const __m256i *)(w + 3 * BLOCK + n))};
        __m256 zq[4];
        normal_pairs8(w0, w1, zq, 2);
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(z + k * BLOCK + n, zq[k]);
    }
#endif
    for (; n < count; n++) {
        normal_pair(w[n], w[BLOCK + n], z + n, z + BLOCK + n);
        normal_pair(w[2 * BLOCK + n], w[3 * BLOCK + n], z + 2 * BLOCK + n, z + 3 * BLOCK + n);
    }
}

/* ---------------------------------------------------------------------------------------------
 * One conversion (asimc/kernels/conversion_model.py, adc.py)
 * ------------------------------------------------------------------------------------------ */

static inline float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

/* The column ADC's fixed-pattern error (adc.column_errors): gain g (1 + g) and offset o of
 * the conversion's column, or none (g == NULL). */
static inline float column(float u, const float *g, const float *o, int n) {
    return g ? clamp01(u * g[n] + o[n]) : u;
}

/* mismatch { adc_dnl } (asimc/kernels/thresholds.py): code[n] = #{k : v[n] >= theta_k} for
 * v[n] in [0, 1], with theta_k = theta[column[n] + k - 1] (float32 in units of the range,
 * ascending in k). Thresholds c - 1 .. c + 2 around c = round(v L) decide it when theta_{c-1}
 * is reached and theta_{c+2} is not (sorted: all below are reached, all above not), k < 1
 * counting as reached and k > levels as not: four independent loads (vector gathers) and no
 * branch. The rest (offsets beyond a LSB or so) walk from c. */
static inline int threshold_reached(const float *t, int levels, float x, int k) {
    const int at = k < 1 ? 0 : (k > levels ? levels - 1 : k - 1);     /* a load in bounds */
    return (k < 1 || x >= t[at]) && k <= levels;
}

/* Not inlined: it would grow the fused loop of every chip. */
static __attribute__((noinline)) void threshold_codes(const float *theta, const int32_t *column,
                                                     int levels, const float *v, int count,
                                                     float *code) {
    uint32_t walk = 0;              /* bit n: code[n] needs the walk (count <= BLOCK = 32) */
    int n = 0;
#if defined(__AVX512F__)
    {
        const __m512 scale = _mm512_set1_ps((float)levels);
        const __m512i one = _mm512_set1_epi32(1), top = _mm512_set1_epi32(levels - 1);
        const __m512i last = _mm512_set1_epi32(levels), zero = _mm512_setzero_si512();
        for (; n + 16 <= count; n += 16) {
            const __m512 x = _mm512_loadu_ps(v + n);
            /* round(x L): the conversion rounds to nearest even, as nearbyintf */
            const __m512i c = _mm512_cvtps_epi32(_mm512_mul_ps(x, scale));
            const __m512i col = _mm512_loadu_si512((const void *)(column + n));
            __m512i sum = _mm512_sub_epi32(c, _mm512_set1_epi32(2));
            __mmask16 reached[4];
            for (int j = 0; j < 4; j++) {               /* threshold k = c + j - 1 */
                const __m512i k = _mm512_add_epi32(c, _mm512_set1_epi32(j - 1));
                const __m512i at = _mm512_min_epi32(_mm512_max_epi32(
                    _mm512_sub_epi32(k, one), zero), top);
                const __m512 t = _mm512_i32gather_ps(_mm512_add_epi32(at, col), theta, 4);
                reached[j] = (_mm512_cmp_ps_mask(x, t, _CMP_GE_OQ)
                              | _mm512_cmplt_epi32_mask(k, one))
                             & _mm512_cmple_epi32_mask(k, last);
                sum = _mm512_mask_add_epi32(sum, reached[j], sum, one);
            }
            _mm512_storeu_ps(code + n, _mm512_cvtepi32_ps(sum));
            walk |= (uint32_t)(uint16_t)(~reached[0] | reached[3]) << n;
        }
    }
#elif defined(__AVX2__)
    {
        const __m256 scale = _mm256_set1_ps((float)levels);
        const __m256i one = _mm256_set1_epi32(1), top = _mm256_set1_epi32(levels - 1);
        const __m256i last = _mm256_set1_epi32(levels), zero = _mm256_setzero_si256();
        for (; n + 8 <= count; n += 8) {
            const __m256 x = _mm256_loadu_ps(v + n);
            const __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(x, scale));
            const __m256i col = _mm256_loadu_si256((const __m256i *)(column + n));
            __m256i sum = _mm256_sub_epi32(c, _mm256_set1_epi32(2));
            __m256i reached[4];                         /* lanes -1 (reached) or 0 */
            for (int j = 0; j < 4; j++) {
                const __m256i k = _mm256_add_epi32(c, _mm256_set1_epi32(j - 1));
                const __m256i at = _mm256_min_epi32(_mm256_max_epi32(
                    _mm256_sub_epi32(k, one), zero), top);
                const __m256 t = _mm256_i32gather_ps(theta, _mm256_add_epi32(at, col), 4);
                reached[j] = _mm256_andnot_si256(
                    _mm256_cmpgt_epi32(k, last),
                    _mm256_or_si256(_mm256_castps_si256(_mm256_cmp_ps(x, t, _CMP_GE_OQ)),
                                    _mm256_cmpgt_epi32(one, k)));
                sum = _mm256_sub_epi32(sum, reached[j]);
            }
            _mm256_storeu_ps(code + n, _mm256_cvtepi32_ps(sum));
            const __m256i flag = _mm256_or_si256(
                _mm256_xor_si256(reached[0], _mm256_set1_epi32(-1)), reached[3]);
            walk |= (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(flag)) << n;
        }
    }
#endif
    for (; n < count; n++) {
        const float x = v[n], *t = theta + column[n];
        const int c = (int)nearbyintf(x * (float)levels);
        const int low = threshold_reached(t, levels, x, c - 1);
        const int high = threshold_reached(t, levels, x, c + 2);
        code[n] = (float)(c - 2 + low + threshold_reached(t, levels, x, c)
                          + threshold_reached(t, levels, x, c + 1) + high);
        walk |= (uint32_t)(!low | high) << n;
    }
    for (; walk; walk &= walk - 1) {
        const int k = __builtin_ctz(walk);
        const float *t = theta + column[k];
        int c = (int)nearbyintf(v[k] * (float)levels);
        while (c < levels && v[k] >= t[c]) c++;
        while (c > 0 && v[k] < t[c - 1]) c--;
        code[k] = (float)c;
    }
}

static float majority(const float *codes, int n, int stride) {
    float best = codes[0];
    int best_count = 0;
    for (int a = 0; a < n; a++) {
        int count = 0;
        for (int b = 0; b < n; b++) count += codes[b * stride] == codes[a * stride];
        if (count > best_count || (count == best_count && codes[a * stride] < best)) {
            best = codes[a * stride];
            best_count = count;
        }
    }
    return best;
}

/* The layer's tables (conversion_model.FlatTables): the conversions of a (tile, pair) with MAC
 * value M use row base + M. */
typedef struct {
    const float *analog, *sigma, *code;
    const int32_t *low;
    const uint32_t *thresholds;     /* rows x width, ascending, padded with 2^32 - 1 */
    const uint32_t *guide;          /* rows x 2^GUIDE_BITS entries (native.compact_guide) */
    int64_t width;
} Tables;

/* The definition: low + #{j : w > threshold[j]}. */
static inline uint32_t scan_code(const Tables *tb, int64_t row, uint32_t w) {
    const uint32_t *thr = tb->thresholds + row * tb->width;
    uint32_t code = (uint32_t)tb->low[row];
    for (int64_t j = 0; j < tb->width; j++) code += w > thr[j];
    return code;
}

/* The same code through the guide table: a word and the thresholds of its cell share their
 * top GUIDE_BITS bits, so the low bits decide. */
static inline uint32_t drawn_code(const Tables *tb, int64_t row, uint32_t w) {
    const uint32_t e = tb->guide[(row << GUIDE_BITS) | (w >> GUIDE_SHIFT)];
    const uint32_t code = e >> GUIDE_SHIFT;
    if (__builtin_expect(code == ESCAPE, 0)) return scan_code(tb, row, w);
    return code + ((w & LOW_MASK) > (e & LOW_MASK));
}

/* A transfer table with one distribution per physical column (conversion_model.ColumnTables):
 * the measured distributions (rows of ``rows``: low and thresholds, no guide, so that they stay
 * in cache; a row has a few thresholds) and per map entry start + M * physical + p the measured
 * row to draw from and the shift of the drawn code; map[t * pairs + p] is the start of pair p's
 * input width in tile t, or -1 where the pair draws from the layer's tables. */
typedef struct {
    Tables rows;
    const int32_t *source, *shift;
    const int64_t *map;
    int64_t physical;               /* physical columns P */
    int64_t channels;               /* output channels per column tile: floor(P / bw) */
    int32_t bw;
} ColumnTables;

/* code[n] of the per-column conversions of weight bit i, output columns first + n, MAC mac[n]
 * (docs/numeric-model.md, section 8b): D* drawn from the measured distribution of its physical
 * column (n mod channels) * bw + i and the nearest measured MAC value (a count over the row's
 * thresholds, as scan_code), shifted and clamped. Map entries and rows * width fit in int32
 * (native_path.fits). AVX-512 gathers sixteen at a time (AVX2's gathers were slower than the
 * scalar loop on the machine this was measured on). */
static void column_codes(const ColumnTables *ct, int64_t start, int64_t first, int i,
                         const int32_t *mac, const uint32_t *w, int count, float levels,
                         float *code) {
    const int32_t top = (int32_t)levels;
    const Tables *tb = &ct->rows;
    int32_t at[BLOCK];
    int64_t channel = first % ct->channels;
    for (int n = 0; n < count; n++) {
        at[n] = (int32_t)(start + (int64_t)mac[n] * ct->physical + channel * ct->bw + i);
        if (++channel == ct->channels) channel = 0;
    }
    int n = 0;
#if defined(__AVX512F__)
    for (; n + 16 <= count; n += 16) {
        const __m512i entry = _mm512_loadu_si512((const void *)(at + n));
        const __m512i words = _mm512_loadu_si512((const void *)(w + n));
        const __m512i row = _mm512_i32gather_epi32(entry, (const void *)ct->source, 4);
        const __m512i first_threshold = _mm512_mullo_epi32(
            row, _mm512_set1_epi32((int32_t)tb->width));
        __m512i d = _mm512_i32gather_epi32(row, (const void *)tb->low, 4);
        for (int32_t j = 0; j < (int32_t)tb->width; j++) {
            const __m512i threshold = _mm512_i32gather_epi32(
                _mm512_add_epi32(first_threshold, _mm512_set1_epi32(j)),
                (const void *)tb->thresholds, 4);
            d = _mm512_mask_add_epi32(d, _mm512_cmpgt_epu32_mask(words, threshold), d,
                                      _mm512_set1_epi32(1));
        }
        d = _mm512_add_epi32(d, _mm512_i32gather_epi32(entry, (const void *)ct->shift, 4));
        d = _mm512_min_epi32(_mm512_max_epi32(d, _mm512_setzero_si512()),
                             _mm512_set1_epi32(top));
        _mm512_storeu_ps(code + n, _mm512_cvtepi32_ps(d));
    }
#endif
    for (; n < count; n++) {
        const int32_t d = (int32_t)scan_code(tb, ct->source[at[n]], w[n]) + ct->shift[at[n]];
        code[n] = (float)(d < 0 ? 0 : (d > top ? top : d));
    }
}

/* code[n] of the conversions with MAC mac[n] (rows base + mac[n]): drawn from words w (noisy,
 * tabulated), or m + z sigma then the column errors g, o (normal draws), or noiseless (w and z
 * NULL). With thresholds d (g then given too: adc_dnl), conversion n counts the thresholds
 * d + d_column[n] (its physical column's, levels of them) instead of rounding. */
static inline __attribute__((always_inline)) void block_codes(const Tables *tb, int64_t base, const int32_t *mac, const uint32_t *w,
                        const float *z, const float *g, const float *o, int count, float levels,
                        const float *d, const int32_t *d_column, float *code) {
    int n = 0;
    if (w) {
#if defined(__AVX512F__)
        /* The flagged lanes are counted after the loop: no branch between the gathers. */
        const __m512i vbase = _mm512_set1_epi32((int32_t)base);
        const __m512i low_mask = _mm512_set1_epi32((int32_t)LOW_MASK);
        uint32_t flagged = 0;       /* bit n: code[n] needs the count (count <= BLOCK = 32) */
        for (; n + 16 <= count; n += 16) {
            const __m512i words = _mm512_loadu_si512((const void *)(w + n));
            const __m512i index = _mm512_or_si512(
                _mm512_slli_epi32(_mm512_add_epi32(vbase, _mm512_loadu_si512((const void *)(mac + n))),
                                  GUIDE_BITS),
                _mm512_srli_epi32(words, GUIDE_SHIFT));
            const __m512i e = _mm512_i32gather_epi32(index, (const void *)tb->guide, 4);
            __m512i c = _mm512_srli_epi32(e, GUIDE_SHIFT);
            flagged |= (uint32_t)_mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32((int32_t)ESCAPE))
                       << n;
            c = _mm512_mask_add_epi32(c, _mm512_cmpgt_epi32_mask(
                _mm512_and_si512(words, low_mask), _mm512_and_si512(e, low_mask)), c,
                _mm512_set1_epi32(1));
            _mm512_storeu_ps(code + n, _mm512_cvtepi32_ps(c));
        }
        for (; flagged; flagged &= flagged - 1) {
            const int k = __builtin_ctz(flagged);
            code[k] = (float)scan_code(tb, base + mac[k], w[k]);
        }
#endif
        for (; n < count; n++) code[n] = (float)drawn_code(tb, base + mac[n], w[n]);
    } else if (z && d) {
        float v[BLOCK];
        for (; n < count; n++) {
            const int64_t row = base + mac[n];
            v[n] = column(clamp01(tb->analog[row] + z[n] * tb->sigma[row]), g, o, n);
        }
        threshold_codes(d, d_column, (int)levels, v, count, code);
    } else if (z) {
        for (; n < count; n++) {
            const int64_t row = base + mac[n];
            const float u = clamp01(tb->analog[row] + z[n] * tb->sigma[row]);
            code[n] = nearbyintf(column(u, g, o, n) * levels);
        }
    } else if (d) {
        float v[BLOCK];
        for (; n < count; n++) v[n] = column(tb->analog[base + mac[n]], g, o, n);
        threshold_codes(d, d_column, (int)levels, v, count, code);
    } else if (g) {
        for (; n < count; n++)
            code[n] = nearbyintf(column(tb->analog[base + mac[n]], g, o, n) * levels);
    } else {
        for (; n < count; n++) code[n] = tb->code[base + mac[n]];
    }
}

/* acc[n] += code[n] * scale (float32, exact: the caller checks that every partial sum is an
 * integer below 2^24), or, acc NULL, out[n] += code[n] * weight in float64. */
static inline __attribute__((always_inline)) void accumulate(const float *code, int count, float scale, float *acc, double weight,
                       double *out) {
    if (acc)
        for (int n = 0; n < count; n++) acc[n] += code[n] * scale;
    else
        for (int n = 0; n < count; n++) out[n] += (double)code[n] * weight;
}

/* ---------------------------------------------------------------------------------------------
 * Bit packing
 * ------------------------------------------------------------------------------------------ */

/* Bits of the integers values[k * stride] (two's complement, ``bits`` wide) for k in [k0, k1)
 * as ``bits`` masks of ``words`` 64-bit words: out[b * words + w] (zero padded). */
static void pack_vector(const float *values, int64_t stride, int64_t k0, int64_t k1, int bits,
                        int64_t words, uint64_t *out) {
    memset(out, 0, sizeof(uint64_t) * bits * words);
    const uint32_t mask = bits >= 32 ? 0xFFFFFFFFu : ((1u << bits) - 1u);
    int64_t k = k0;
#if defined(__AVX2__)
    if (stride == 1) {
        /* Eight rows at a time: bit b of each value to the sign bit, then one movemask. */
        const __m256i vmask = _mm256_set1_epi32((int)mask);
        for (; k + 8 <= k1; k += 8) {
            __m256i u = _mm256_and_si256(_mm256_cvttps_epi32(_mm256_loadu_ps(values + k)),
                                         vmask);
            const int64_t row = k - k0, word = row >> 6;
            const int shift = (int)(row & 63);
            for (int b = 0; b < bits; b++) {
                __m256i top = _mm256_sll_epi32(u, _mm_cvtsi32_si128(31 - b));
                uint64_t m = (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(top));
                out[b * words + word] |= m << shift;
            }
        }
    }
#endif
    for (; k < k1; k++) {
        uint32_t u = (uint32_t)(int32_t)values[k * stride] & mask;
        int64_t row = k - k0;
        uint64_t bit = 1ULL << (row & 63);
        int64_t word = row >> 6;
        while (u) {
            int b = __builtin_ctz(u);
            out[b * words + word] |= bit;
            u &= u - 1;
        }
    }
}

/* Weight bit planes of w (wgroups, K, N) float32 for columns [n0, n1), columns innermost (so
 * that a vector loads the same word of neighbouring columns):
 * out[(((gw * tiles + t) * bits + i) * words + w) * (n1 - n0) + n]. */
void asimc_pack_weights(const float *w, int64_t wgroups, int64_t k_total, int64_t columns,
                        int64_t n0, int64_t n1, const int64_t *tile_bounds, int64_t tiles,
                        int32_t bits, int64_t words, uint64_t *out, int32_t threads) {
    const int64_t width = n1 - n0;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        uint64_t *planes = malloc(sizeof(uint64_t) * bits * words);
#pragma omp for collapse(2) schedule(static)
        for (int64_t gw = 0; gw < wgroups; gw++)
            for (int64_t n = 0; n < width; n++)
                for (int64_t t = 0; t < tiles; t++) {
                    pack_vector(w + gw * k_total * columns + n0 + n, columns, tile_bounds[2 * t],
                                tile_bounds[2 * t + 1], bits, words, planes);
                    uint64_t *dst = out + (gw * tiles + t) * bits * words * width + n;
                    for (int64_t k = 0; k < bits * words; k++) dst[k * width] = planes[k];
                }
        free(planes);
    }
}

/* P[(b * bw + i) * BLOCK + n] = MAC of input bit b and weight bit i of columns n < count:
 * popcount(x_b & w_i) summed over the words. x: bx * words words of the row; w: the tile's
 * planes from the block's first column, word (i, q) of column n at w[(i * words + q) * width
 * + n]. AVX-512 VPOPCNTDQ: eight columns per vector; AVX2: four. */
static void block_macs(const uint64_t *x, const uint64_t *w, int64_t width, int bx, int bw,
                       int64_t words, int count, int32_t *P) {
    int vectors = 0;                /* columns done by the vector code */
#if defined(__AVX512VPOPCNTDQ__) && defined(__AVX512F__)
    /* Eight columns per vector, four input bits per weight load: four independent popcount
     * chains share each load of the weights. */
    vectors = count & ~7;
    for (int i = 0; i < bw; i++) {
        const uint64_t *wi = w + i * words * width;
        for (int n = 0; n < vectors; n += 8) {
            int b = 0;
            for (; b + 4 <= bx; b += 4) {
                const uint64_t *xb = x + b * words;
                __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
                for (int64_t q = 0; q < words; q++) {
                    const __m512i v = _mm512_loadu_si512((const void *)(wi + q * width + n));
                    s0 = _mm512_add_epi64(s0, _mm512_popcnt_epi64(_mm512_and_si512(
                        v, _mm512_set1_epi64((long long)xb[q]))));
                    s1 = _mm512_add_epi64(s1, _mm512_popcnt_epi64(_mm512_and_si512(
                        v, _mm512_set1_epi64((long long)xb[words + q]))));
                    s2 = _mm512_add_epi64(s2, _mm512_popcnt_epi64(_mm512_and_si512(
                        v, _mm512_set1_epi64((long long)xb[2 * words + q]))));
                    s3 = _mm512_add_epi64(s3, _mm512_popcnt_epi64(_mm512_and_si512(
                        v, _mm512_set1_epi64((long long)xb[3 * words + q]))));
                }
                _mm256_storeu_si256((__m256i *)(P + (b * bw + i) * BLOCK + n),
                                    _mm512_cvtepi64_epi32(s0));
                _mm256_storeu_si256((__m256i *)(P + ((b + 1) * bw + i) * BLOCK + n),
                                    _mm512_cvtepi64_epi32(s1));
                _mm256_storeu_si256((__m256i *)(P + ((b + 2) * bw + i) * BLOCK + n),
                                    _mm512_cvtepi64_epi32(s2));
                _mm256_storeu_si256((__m256i *)(P + ((b + 3) * bw + i) * BLOCK + n),
                                    _mm512_cvtepi64_epi32(s3));
            }
            for (; b < bx; b++) {
                const uint64_t *xb = x + b * words;
                __m512i s = _mm512_setzero_si512();
                for (int64_t q = 0; q < words; q++)
                    s = _mm512_add_epi64(s, _mm512_popcnt_epi64(_mm512_and_si512(
                        _mm512_loadu_si512((const void *)(wi + q * width + n)),
                        _mm512_set1_epi64((long long)xb[q]))));
                _mm256_storeu_si256((__m256i *)(P + (b * bw + i) * BLOCK + n),
                                    _mm512_cvtepi64_epi32(s));
            }
        }
    }
#endif
    for (int b = 0; b < bx; b++) {
        const uint64_t *xb = x + b * words;
        for (int i = 0; i < bw; i++) {
            const uint64_t *wi = w + i * words * width;
            int32_t *dst = P + (b * bw + i) * BLOCK;
            int n = vectors;
#if defined(__AVX2__) && !(defined(__AVX512VPOPCNTDQ__) && defined(__AVX512F__))
            /* Four columns per vector: popcount by nibble look-up (vpshufb), summed to 64-bit
             * lanes with vpsadbw. */
            const __m256i nibbles = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                                     0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
            const __m256i low4 = _mm256_set1_epi8(0x0F), zero = _mm256_setzero_si256();
            const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
            for (; n + 4 <= count; n += 4) {
                __m256i s = zero;
                for (int64_t q = 0; q < words; q++) {
                    const __m256i v = _mm256_and_si256(
                        _mm256_loadu_si256((const __m256i *)(wi + q * width + n)),
                        _mm256_set1_epi64x((long long)xb[q]));
                    const __m256i bytes = _mm256_add_epi8(
                        _mm256_shuffle_epi8(nibbles, _mm256_and_si256(v, low4)),
                        _mm256_shuffle_epi8(nibbles, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4)));
                    s = _mm256_add_epi64(s, _mm256_sad_epu8(bytes, zero));
                }
                _mm_storeu_si128((__m128i *)(dst + n), _mm256_castsi256_si128(
                    _mm256_permutevar8x32_epi32(s, even)));
            }
#endif
            for (; n < count; n++) {
                int32_t s = 0;
                for (int64_t q = 0; q < words; q++)
                    s += __builtin_popcountll(xb[q] & wi[q * width + n]);
                dst[n] = s;
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Steps shared by the fused kernel and the conversion of given MACs
 * ------------------------------------------------------------------------------------------ */

/* The most votes of the pairs of weight bits [i0, i1) of cycle c (0 noiseless): how many
 * Philox calls their quad takes. */
static inline __attribute__((always_inline)) int quad_draws(const int32_t *votes, int c, int bw,
                                                            int i0, int i1, int noisy) {
    int most = 0;
    for (int i = i0; i < i1; i++)
        if (votes[c * bw + i] > most) most = votes[c * bw + i];
    return noisy ? most : 0;
}

/* The draws of ``count`` columns from the block's first, col_stride apart, at counters
 * (step + vote) * elements + row offset + n * col_stride (``s`` = step + vote) in the row's
 * stream ``key``: the Philox words into wq, or (wq NULL) the normals into z. */
static inline __attribute__((always_inline)) void draw_block(
        uint64_t key, uint64_t s, int64_t elements, uint64_t row_offset,
        int64_t column, int64_t col_stride, int count, uint32_t *wq, float *z) {
    uint32_t lo[BLOCK], hi[BLOCK];
    const uint64_t first = s * (uint64_t)elements + row_offset
        + (uint64_t)column * (uint64_t)col_stride;
    for (int n = 0; n < count; n++) {
        uint64_t counter = first + (uint64_t)n * (uint64_t)col_stride;
        lo[n] = (uint32_t)counter;
        hi[n] = (uint32_t)(counter >> 32);
    }
    const uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    if (wq)
        random_quads(k0, k1, lo, hi, count, wq);
    else
        normal_quads(k0, k1, lo, hi, count, z);
}

/* out[n] += majority of the voted pairs' codes (codes[((i - i0) * MAX_VOTES + v) * BLOCK + n])
 * times their shift-add. */
static inline __attribute__((always_inline)) void add_majorities(
        const float *codes, const int32_t *votes, const double *shift_add, int c, int bw,
        int i0, int i1, int noisy, int count, double *out) {
    for (int i = i0; i < i1; i++) {
        const int p = c * bw + i;
        if (!noisy || votes[p] <= 1) continue;
        const float *cb = codes + (i - i0) * MAX_VOTES * BLOCK;
        for (int n = 0; n < count; n++)
            out[n] += (double)majority(cb + n, votes[p], BLOCK) * shift_add[p];
    }
}

/* adc_dnl: where the thresholds of bit 0 of output columns first + n start, bit i of column n
 * sitting in physical column (n mod per_tile) * bw + i. */
static inline __attribute__((always_inline)) void threshold_columns(
        int64_t first, int count, int64_t per_tile, int bw, float levels, int32_t *column) {
    for (int n = 0; n < count; n++)
        column[n] = (int32_t)((first + n) % per_tile * bw * (int64_t)levels);
}

/* The column errors of a pair's conversions (none on digital pairs): gain and offset from
 * at = (t * bw + i) * columns + the block's first column, weight bit i's thresholds. */
typedef struct { const float *gain, *offset, *thresholds; } PairErrors;

static inline __attribute__((always_inline)) PairErrors pair_errors(
        const float *gain, const float *column_offset, const float *dnl, int analog, int64_t at,
        int i, float levels) {
    PairErrors e = {NULL, NULL, NULL};
    if (analog && gain) {
        e.gain = gain + at;
        e.offset = column_offset + at;
    }
    if (analog && dnl) e.thresholds = dnl + i * (int64_t)levels;
    return e;
}

/* Whether vote v of a pair with pv draws (0: one noiseless conversion) converts: the voted
 * pairs of a quad draw ``most`` times, the others once. */
static inline __attribute__((always_inline)) int converts(int pv, int v) {
    return !((pv <= 1 && v > 0) || (pv > 1 && v >= pv));
}

/* ---------------------------------------------------------------------------------------------
 * The fused kernel
 * ------------------------------------------------------------------------------------------ */

/* acc[gr][n] (G*R rows, columns [n0, n1) of ``columns``) = sum over tiles t of f_t times the
 * sum over cycles and weight bits of sign * D * F * 2^(i + b_c), D the ADC code of the
 * conversion.
 *
 *   x:          (G, R, K) float32 integer-valued inputs; bx input bits (two's complement).
 *   wpack:      asimc_pack_weights of the columns [n0, n1) (width n1 - n0), wgroups 1 or G.
 *   cycle_low / cycle_bits: each cycle's lowest input bit and width.
 *   per pair p = c * bw + i: shift_add[p], votes[p] (0 digital or noiseless, 1 analog, > 1
 *   voted), step[p] (counter step of vote 0, tile 0), analog_pair[p] (whether the column
 *   errors apply). Per tile t: fraction[t] (f_t), table_base[t * pairs + p] (the row of M = 0
 *   in the tables). gain, offset ((T, bw, columns) float32, both or neither): the column ADCs'
 *   errors. dnl ((P, levels) float32 or NULL): the code thresholds of the first P physical
 *   columns (adc_dnl), output column n's weight bit i in column (n mod dnl_per_tile) * bw + i
 *   (dnl_per_tile = P / bw); analog conversions count them instead of rounding. Tile t adds
 *   t * tile_step to every step. Weight bits 4j..4j+3 share one Philox call (its four words,
 *   or normals where draws_codes is 0, in order).
 *   stream/offset: (G, R) int64 keys (NULL when noiseless); a conversion's counter is
 *   (step + vote) * elements + offset + n * col_stride.
 *   t_*: conversion_model.FlatTables (analog, sigma, code, low, thresholds rows x t_width,
 *   guide rows x 2^GUIDE_BITS in 32 bits: native.compact_guide).
 *   c_*: a per-column transfer table (ColumnTables above; c_map NULL without one): c_map
 *   (T * pairs), c_source and c_shift (map entries), the measured rows' c_low and
 *   c_thresholds (x c_width) as t_*, c_physical physical columns.
 */
void asimc_acim(const float *x, const uint64_t *wpack, double *acc,
                int64_t groups, int64_t rows_out, int64_t k_total, int64_t wgroups,
                int64_t columns, int64_t n0, int64_t n1,
                const int64_t *tile_bounds, int64_t tiles, int64_t words,
                int32_t bx, int32_t bw, int32_t cycles,
                const int32_t *cycle_low, const int32_t *cycle_bits,
                const double *shift_add, const int32_t *votes, const int64_t *step,
                int64_t tile_step, const int64_t *stream, const int64_t *offset,
                int64_t elements, int64_t col_stride, const double *fraction,
                const float *gain, const float *column_offset, const float *dnl,
                int64_t dnl_per_tile, const int32_t *analog_pair,
                const int64_t *table_base, const float *t_analog, const float *t_sigma,
                const float *t_code, const int32_t *t_low, const uint32_t *t_thresholds,
                int64_t t_width, const uint32_t *t_guide, int32_t draws_codes, float levels,
                int32_t threads, const int64_t *c_map, const int32_t *c_source,
                const int32_t *c_shift, const int32_t *c_low, const uint32_t *c_thresholds,
                int64_t c_width, int64_t c_physical) {
    const int64_t total_rows = groups * rows_out;
    const int64_t width = n1 - n0;
    const int pairs = cycles * bw;
    const int quads = (bw + 3) / 4;
    const int noisy = stream != NULL;
    const Tables tb = {t_analog, t_sigma, t_code, t_low, t_thresholds, t_guide, t_width};
    const ColumnTables ct = {{NULL, NULL, NULL, c_low, c_thresholds, NULL, c_width},
                             c_source, c_shift, c_map, c_physical, c_physical / (bw ? bw : 1),
                             bw};
    int serial = cycles == bx;                   /* one bit per cycle, cycle c = input bit c */
    for (int c = 0; c < cycles; c++) serial = serial && cycle_bits[c] == 1 && cycle_low[c] == c;
    /* Per cycle whether its codes can be summed in float32: each pair's shift-add is +-2^e
     * times the cycle's first one (a power of two, exactly) and levels * sum of |2^e| < 2^24
     * keeps every partial sum exact. Then one float64 multiply-add per cycle instead of one
     * per pair. */
    float pair_scale[MAX_PAIRS];
    double cycle_base[MAX_PAIRS];
    int cycle_float[MAX_PAIRS];
    for (int c = 0; c < cycles; c++) {
        double weight_sum = 0.0;
        cycle_base[c] = fabs(shift_add[c * bw]);
        cycle_float[c] = cycle_base[c] > 0.0;
        for (int i = 0; i < bw; i++) {
            const int p = c * bw + i;
            const double ratio = cycle_float[c] ? shift_add[p] / cycle_base[c] : 0.0;
            int e;
            cycle_float[c] = cycle_float[c] && fabs(frexp(ratio, &e)) == 0.5
                             && (votes[p] <= 1 || !noisy);
            pair_scale[p] = (float)ratio;
            weight_sum += fabs(ratio);
        }
        cycle_float[c] = cycle_float[c] && levels * weight_sum < 16777216.0;
    }
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        uint64_t *xrow = malloc(sizeof(uint64_t) * tiles * bx * words);
        int32_t *mac = malloc(sizeof(int32_t) * pairs * BLOCK);
        float *codes = malloc(sizeof(float) * 4 * MAX_VOTES * BLOCK);
        /* adc_dnl: where each column's bit 0 thresholds start */
        int32_t *dnl_column = dnl ? malloc(sizeof(int32_t) * BLOCK) : NULL;
        int32_t *P = malloc(sizeof(int32_t) * bx * bw * BLOCK);
        float z[4 * BLOCK], code[BLOCK];
        uint32_t wq[4 * BLOCK];
        double out[BLOCK], tile_out[BLOCK];
        float accf[BLOCK];
#pragma omp for schedule(dynamic, 4)
        for (int64_t gr = 0; gr < total_rows; gr++) {
            const int64_t g = gr / rows_out;
            const int64_t gw = wgroups == 1 ? 0 : g;
            for (int64_t t = 0; t < tiles; t++)
                pack_vector(x + gr * k_total, 1, tile_bounds[2 * t], tile_bounds[2 * t + 1], bx,
                            words, xrow + t * bx * words);
            const uint64_t row_stream = noisy ? (uint64_t)stream[gr] : 0;
            const uint64_t row_offset = noisy ? (uint64_t)offset[gr] : 0;
            for (int64_t nb = 0; nb < width; nb += BLOCK) {
                const int count = (int)(width - nb < BLOCK ? width - nb : BLOCK);
                for (int n = 0; n < count; n++) out[n] = 0.0;
                if (dnl) threshold_columns(n0 + nb, count, dnl_per_tile, bw, levels, dnl_column);
                for (int64_t t = 0; t < tiles; t++) {
                    for (int n = 0; n < count; n++) tile_out[n] = 0.0;
                    /* 1. The MACs of every (cycle, weight bit) pair of the block. */
                    const uint64_t *xt = xrow + t * bx * words;
                    const uint64_t *wt = wpack + (gw * tiles + t) * bw * words * width + nb;
                    block_macs(xt, wt, width, bx, bw, words, count, P);
                    /* A cycle's MAC: its input bits' MACs, shifted (bit-serial: a copy). */
                    const int32_t *macs = P;
                    if (!serial) {
                        for (int c = 0; c < cycles; c++)
                            for (int i = 0; i < bw; i++) {
                                int32_t *dst = mac + (c * bw + i) * BLOCK;
                                for (int n = 0; n < count; n++) dst[n] = 0;
                                for (int b = cycle_bits[c] - 1; b >= 0; b--) {
                                    const int32_t *src = P + ((cycle_low[c] + b) * bw + i) * BLOCK;
                                    for (int n = 0; n < count; n++) dst[n] = 2 * dst[n] + src[n];
                                }
                            }
                        macs = mac;
                    }
                    /* 2-5. Convert and shift-add, four weight bits (one Philox call) at a time. */
                    for (int c = 0; c < cycles; c++) {
                        const int summed = cycle_float[c];
                        if (summed)
                            for (int n = 0; n < count; n++) accf[n] = 0.0f;
                        for (int j = 0; j < quads; j++) {
                            const int i0 = 4 * j, i1 = bw < i0 + 4 ? bw : i0 + 4;
                            const int most = quad_draws(votes, c, bw, i0, i1, noisy);
                            for (int v = 0; v < (most ? most : 1); v++) {
                                if (most)
                                    draw_block(row_stream, (uint64_t)(step[c * bw + i0]
                                                                  + t * tile_step + v),
                                               elements, row_offset, n0 + nb, col_stride, count,
                                               draws_codes ? wq : NULL, z);
                                for (int i = i0; i < i1; i++) {
                                    const int p = c * bw + i;
                                    const int pv = noisy ? votes[p] : 0;
                                    if (!converts(pv, v)) continue;
                                    const PairErrors e = pair_errors(
                                        gain, column_offset, dnl, analog_pair[p],
                                        (t * bw + i) * columns + n0 + nb, i, levels);
                                    const float *cg = e.gain, *co = e.offset, *cd = e.thresholds;
                                    const uint32_t *wi = pv && draws_codes
                                        ? wq + (i - i0) * BLOCK : NULL;
                                    const float *zi = pv && !draws_codes
                                        ? z + (i - i0) * BLOCK : NULL;
                                    const int64_t base = table_base[t * pairs + p];
                                    const int32_t *m = macs + p * BLOCK;
                                    float *dst = pv <= 1 ? code
                                        : codes + ((i - i0) * MAX_VOTES + v) * BLOCK;
                                    /* a per-column table (c_map is NULL for other chips) */
                                    const int64_t cstart = c_map ? c_map[t * pairs + p] : -1;
                                    if (cstart >= 0)
                                        column_codes(&ct, cstart, n0 + nb, i, m, wi, count,
                                                     levels, dst);
                                    else
                                        block_codes(&tb, base, m, wi, zi, cg, co, count, levels,
                                                    cd, dnl_column, dst);
                                    if (pv <= 1)
                                        accumulate(code, count, pair_scale[p],
                                                   summed ? accf : NULL, shift_add[p], tile_out);
                                }
                            }
                            add_majorities(codes, votes, shift_add, c, bw, i0, i1, noisy,
                                           count, tile_out);
                        }
                        if (summed)
                            for (int n = 0; n < count; n++)
                                tile_out[n] += (double)accf[n] * cycle_base[c];
                    }
                    /* as the torch path: each tile's exact sum times f_t, then added */
                    for (int n = 0; n < count; n++) out[n] += tile_out[n] * fraction[t];
                }
                double *dst = acc + gr * width + nb;
                for (int n = 0; n < count; n++) dst[n] = out[n];
            }
        }
        free(xrow);
        free(P);
        free(mac);
        free(codes);
        free(dnl_column);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Conversions of given MACs (cell or driver mismatch: the MACs are not integers)
 * ------------------------------------------------------------------------------------------ */

/* code[n] of the conversions of one pair with float32 MACs mac[n] (adc.py, operation by
 * operation as the reference): m = clamp(M' / F, 0, 1) with M' = M / (1 + alpha M) where alpha
 * is not 0; with a normal z (noisy), clamp(m + z sigma, 0, 1), sigma = sr alone or
 * sqrt(sr^2 + snl2 / (m rows + 1)) (snl2 >= 0; negative: no non-linear term); then the column errors g, o and the thresholds
 * d (as block_codes) or the rounding. */
static void mac_codes(const float *mac, const float *z, float full_scale, float alpha,
                      float sigma_random, float nonlinear2, float rows, const float *g,
                      const float *o, const float *d, const int32_t *d_column, int count,
                      float levels, float *code) {
    float v[BLOCK];
    for (int n = 0; n < count; n++) {
        float u = mac[n];
        if (alpha != 0.0f) u = u / (1.0f + alpha * u);
        float m = clamp01(u / full_scale);
        if (z) {
            const float sigma = nonlinear2 >= 0.0f
                ? sqrtf(sigma_random * sigma_random + nonlinear2 / (m * rows + 1.0f))
                : sigma_random;
            m = clamp01(m + z[n] * sigma);
        }
        v[n] = column(m, g, o, n);
    }
    if (d)
        threshold_codes(d, d_column, (int)levels, v, count, code);
    else
        for (int n = 0; n < count; n++) code[n] = nearbyintf(v[n] * levels);
}

/* acc[gr][n] += f * (sum over cycles and weight bits of shift_add[p] * D) for one row tile
 * with the MACs given: mac (G, cycles, R, bw, width) float32 of columns [n0, n0 + width) of
 * ``columns`` (digital pairs: the exact integer MAC). The draws, votes, column errors and
 * thresholds as asimc_acim with draws_codes 0, ``tile`` the tile's index; per cycle its range
 * full_scale[c] (float32), per pair alpha[p] (0 on digital pairs) and sigma_random[p];
 * nonlinear2 = snl^2 (negative: none) and rows = f * rows (float32) of the non-linear term. */
void asimc_convert_macs(const float *mac, double *acc, int64_t groups, int64_t rows_out,
                        int64_t columns, int64_t n0, int64_t width, int64_t tile, int32_t bw,
                        int32_t cycles, const double *shift_add, const int32_t *votes,
                        const int64_t *step, int64_t tile_step, const int64_t *stream,
                        const int64_t *offset, int64_t elements, int64_t col_stride,
                        double fraction, const float *gain, const float *column_offset,
                        const float *dnl, int64_t dnl_per_tile, const int32_t *analog_pair,
                        const float *full_scale, const float *alpha, const float *sigma_random,
                        float nonlinear2, float rows, float levels, int32_t threads) {
    const int64_t total_rows = groups * rows_out;
    const int quads = (bw + 3) / 4;
    const int noisy = stream != NULL;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        float *codes = malloc(sizeof(float) * 4 * MAX_VOTES * BLOCK);
        int32_t dnl_column[BLOCK];
        float z[4 * BLOCK], code[BLOCK];
        double tile_out[BLOCK];
#pragma omp for schedule(dynamic, 4)
        for (int64_t gr = 0; gr < total_rows; gr++) {
            const int64_t g = gr / rows_out, r = gr % rows_out;
            const uint64_t row_stream = noisy ? (uint64_t)stream[gr] : 0;
            const uint64_t row_offset = noisy ? (uint64_t)offset[gr] : 0;
            for (int64_t nb = 0; nb < width; nb += BLOCK) {
                const int count = (int)(width - nb < BLOCK ? width - nb : BLOCK);
                memset(tile_out, 0, sizeof(tile_out));
                if (dnl) threshold_columns(n0 + nb, count, dnl_per_tile, bw, levels, dnl_column);
                for (int c = 0; c < cycles; c++) {
                    const float *mc = mac + ((g * cycles + c) * rows_out + r) * bw * width + nb;
                    for (int j = 0; j < quads; j++) {
                        const int i0 = 4 * j, i1 = bw < i0 + 4 ? bw : i0 + 4;
                        const int most = quad_draws(votes, c, bw, i0, i1, noisy);
                        for (int v = 0; v < (most ? most : 1); v++) {
                            if (most)
                                draw_block(row_stream,
                                           (uint64_t)(step[c * bw + i0] + tile * tile_step + v),
                                           elements, row_offset, n0 + nb, col_stride, count,
                                           NULL, z);
                            for (int i = i0, p = c * bw + i0; i < i1; i++, p++) {
                                const int pv = noisy ? votes[p] : 0;
                                const int64_t at = (tile * bw + i) * columns + n0 + nb;
                                if (!converts(pv, v)) continue;
                                const PairErrors e = pair_errors(gain, column_offset, dnl,
                                                                 analog_pair[p], at, i, levels);
                                float *dst = pv <= 1 ? code
                                    : codes + ((i - i0) * MAX_VOTES + v) * BLOCK;
                                mac_codes(mc + i * width, pv ? z + (i - i0) * BLOCK : NULL,
                                          full_scale[c], alpha[p], sigma_random[p], nonlinear2,
                                          rows, e.gain, e.offset, e.thresholds, dnl_column, count,
                                          levels, dst);
                                if (pv <= 1)
                                    accumulate(code, count, 0.0f, NULL, shift_add[p], tile_out);
                            }
                        }
                        add_majorities(codes, votes, shift_add, c, bw, i0, i1, noisy, count,
                                       tile_out);
                    }
                }
                /* as the torch path: the tile's exact sum times f, then added */
                double *dst = acc + gr * width + nb;
                for (int n = 0; n < count; n++) dst[n] += tile_out[n] * fraction;
            }
        }
        free(codes);
    }
}

/* The four words of (stream, counters[k]), for tests that hold the torch path to the same
 * bits: out[4 k + q]. */
void asimc_random_words(int64_t stream, const int64_t *counters, int64_t count, uint32_t *out) {
    uint32_t lo[BLOCK], hi[BLOCK], w[4 * BLOCK];
    for (int64_t k0 = 0; k0 < count; k0 += BLOCK) {
        int n = (int)(count - k0 < BLOCK ? count - k0 : BLOCK);
        for (int j = 0; j < n; j++) {
            lo[j] = (uint32_t)(uint64_t)counters[k0 + j];
            hi[j] = (uint32_t)((uint64_t)counters[k0 + j] >> 32);
        }
        random_quads((uint32_t)(uint64_t)stream, (uint32_t)((uint64_t)stream >> 32), lo, hi, n, w);
        for (int j = 0; j < n; j++)
            for (int q = 0; q < 4; q++) out[4 * (k0 + j) + q] = w[q * BLOCK + j];
    }
}

/* The quads of (stream, counters[k]), for tests that hold the torch path to the same bits:
 * out[4 k + q]. */
void asimc_standard_normal_quads(int64_t stream, const int64_t *counters, int64_t count,
                                 float *out) {
    uint32_t lo[BLOCK], hi[BLOCK];
    float z[4 * BLOCK];
    for (int64_t k0 = 0; k0 < count; k0 += BLOCK) {
        int n = (int)(count - k0 < BLOCK ? count - k0 : BLOCK);
        for (int j = 0; j < n; j++) {
            lo[j] = (uint32_t)(uint64_t)counters[k0 + j];
            hi[j] = (uint32_t)((uint64_t)counters[k0 + j] >> 32);
        }
        normal_quads((uint32_t)(uint64_t)stream, (uint32_t)((uint64_t)stream >> 32), lo, hi, n,
                     z);
        for (int j = 0; j < n; j++)
            for (int q = 0; q < 4; q++) out[4 * (k0 + j) + q] = z[q * BLOCK + j];
    }
}
