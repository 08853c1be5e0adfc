/* The fused bit-level kernel of DESIGN.md section 4: MAC, noise, ADC and shift-add in one pass.
 *
 * Binary MACs by bit operations: per row tile, every input bit plane and every weight bit plane
 * is a bit mask over the tile's rows (a 255-row tile is four 64-bit words), so the MAC of input
 * bit b with weight bit i is popcount(x_b & w_i) summed over the words, and a cycle's MAC is the
 * shifted sum over its input bits. The MACs of a block of columns live in a small buffer (L1),
 * are converted there (Philox4x32-10 + Box-Muller, noise, ADC) and shift-added into the row's
 * output: the MAC tensor never exists in memory. Threads split the rows; every row is computed
 * the same way whatever the thread count.
 *
 * This file mirrors asimc/kernels/{adc,rng,fast}.py operation by operation in float32 (and exact
 * integer sums for the shift-add), with -ffp-contract=off, so that it produces the very same
 * codes as the reference kernel, noise included. The generator and the noisy conversion are
 * written in AVX2 intrinsics (same operations, same order, correctly rounded division and square
 * root) with scalar code for CPUs without AVX2 and for the tails; the other loops are left to the
 * compiler's vectoriser. A conversion's analog value and noise sigma come from tables indexed by
 * its MAC value, built per call with the scalar operations. The @NAME@ constants are filled in
 * from asimc/kernels/rng.py when the library is built.
 */
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <math.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#define MAX_VOTES 64
#define BLOCK 32            /* columns converted together (one vector loop) */
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

/* hi and lo 32 bits of the eight products m * c (AVX2 multiplies even lanes 32x32->64). */
static inline void mulhilo8(__m256i m, __m256i c, __m256i *hi, __m256i *lo) {
    __m256i even = _mm256_mul_epu32(m, c);
    __m256i odd = _mm256_mul_epu32(m, _mm256_srli_epi64(c, 32));
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

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

/* The four normals of counters[n] in stream (k0, k1), for n < count, into z[q * BLOCK + n]. */
#if defined(__AVX2__)
/* Eight counters at a time, Philox and Box-Muller in registers. */
static void normal_quads(uint32_t k0, uint32_t k1, const uint32_t *lo, const uint32_t *hi,
                         int count, float *z) {
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    __m256i key0[10], key1[10];
    for (int r = 0; r < 10; r++) {
        key0[r] = _mm256_set1_epi32((int)(k0 + (uint32_t)r * 0x9E3779B9u));
        key1[r] = _mm256_set1_epi32((int)(k1 + (uint32_t)r * 0xBB67AE85u));
    }
    int n = 0;
    for (; n + 8 <= count; n += 8) {
        __m256i c0 = _mm256_loadu_si256((const __m256i *)(lo + n));
        __m256i c1 = _mm256_loadu_si256((const __m256i *)(hi + n));
        __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
        for (int r = 0; r < 10; r++) {
            __m256i h0, l0, h1, l1;
            mulhilo8(m0, c0, &h0, &l0);
            mulhilo8(m1, c2, &h1, &l1);
            c0 = _mm256_xor_si256(_mm256_xor_si256(h1, c1), key0[r]);
            c2 = _mm256_xor_si256(_mm256_xor_si256(h0, c3), key1[r]);
            c1 = l1;
            c3 = l0;
        }
        const __m256i w0[2] = {c0, c2}, w1[2] = {c1, c3};
        __m256 zq[4];
        normal_pairs8(w0, w1, zq, 2);
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(z + k * BLOCK + n, zq[k]);
    }
    for (; n < count; n++) {
        uint32_t out[4];
        philox(k0, k1, lo[n], hi[n], out);
        normal_pair(out[0], out[1], z + n, z + BLOCK + n);
        normal_pair(out[2], out[3], z + 2 * BLOCK + n, z + 3 * BLOCK + n);
    }
}
#else
static void normal_quads(uint32_t k0, uint32_t k1, const uint32_t *lo, const uint32_t *hi,
                         int count, float *z) {
    for (int n = 0; n < count; n++) {
        uint32_t out[4];
        philox(k0, k1, lo[n], hi[n], out);
        normal_pair(out[0], out[1], z + n, z + BLOCK + n);
        normal_pair(out[2], out[3], z + 2 * BLOCK + n, z + 3 * BLOCK + n);
    }
}
#endif

/* ---------------------------------------------------------------------------------------------
 * One conversion (asimc/kernels/adc.py)
 * ------------------------------------------------------------------------------------------ */

static inline float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

typedef struct {
    float fs, alpha, sigma, nonlinear2, rows, levels;
} Conversion;

static inline float analog(const Conversion *k, float v) {
    if (k->alpha != 0.0f) v = v / (1.0f + k->alpha * v);
    return clamp01(v / k->fs);
}

/* The column ADC's fixed-pattern error (adc.column_errors): gain g (1 + g) and offset o of
 * the conversion's column, or none (g == NULL). */
static inline float column(float u, const float *g, const float *o, int n) {
    return g ? clamp01(u * g[n] + o[n]) : u;
}

static inline float noisy_code(const Conversion *k, float m, float z, const float *g,
                               const float *o, int n) {
    float sigma = k->sigma;
    if (k->nonlinear2 != 0.0f) {
        float denom = m * k->rows + 1.0f;
        sigma = sqrtf(sigma * sigma + k->nonlinear2 / denom);
    }
    return nearbyintf(column(clamp01(m + z * sigma), g, o, n) * k->levels);
}

/* The branches on alpha and nonlinear2 are loop invariant: one specialised loop each. */
#define CONVERT_LOOP(ALPHA, NONLINEAR)                                                         \
    for (int n = 0; n < count; n++) {                                                          \
        float v = (float)mac[n];                                                               \
        if (ALPHA) v = v / (1.0f + k.alpha * v);                                               \
        float m = clamp01(v / k.fs);                                                           \
        float code;                                                                            \
        if (z) {                                                                               \
            float sigma = k.sigma;                                                             \
            if (NONLINEAR) {                                                                   \
                float denom = m * k.rows + 1.0f;                                               \
                sigma = sqrtf(sigma * sigma + k.nonlinear2 / denom);                           \
            }                                                                                  \
            code = nearbyintf(column(clamp01(m + z[n] * sigma), g, o, n) * k.levels);          \
        } else {                                                                               \
            code = nearbyintf(column(m, g, o, n) * k.levels);                                  \
        }                                                                                      \
        out[n] += (double)code * weight;                                                       \
    }

/* out[n] += code(mac[n], z[n]) * weight; z == NULL: no noise (digital or noiseless); g, o:
 * the columns' ADC errors or NULL. */
static void convert_block(Conversion k, const int32_t *mac, const float *z, const float *g,
                          const float *o, int count, double weight, double *out) {
    if (k.alpha != 0.0f) {
        if (k.nonlinear2 != 0.0f) { CONVERT_LOOP(1, 1) } else { CONVERT_LOOP(1, 0) }
    } else {
        if (k.nonlinear2 != 0.0f) { CONVERT_LOOP(0, 1) } else { CONVERT_LOOP(0, 0) }
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

/* A conversion's analog value, noise sigma and noiseless code depend on its MAC alone (an
 * integer 0..most), so they are tabulated once per call with the very operations above:
 * m[v] = analog(v), sigma[v] (the non-linear term included), code[v] = round(m[v] * levels).
 * A noisy conversion is then m + z * sigma, clamped, scaled and rounded: no division and no
 * square root per conversion. */
#define MAX_TABLE 65536     /* entries per table; longer MAC ranges take the direct path */

typedef struct {
    uint64_t *pair;         /* m[v] in the low 32 bits, sigma[v] in the high ones */
    float *code;
} Table;

static int build_table(Conversion k, int most, Table *t) {
    t->pair = malloc(sizeof(uint64_t) * (size_t)(most + 1) + sizeof(float) * (size_t)(most + 1));
    if (!t->pair) return 0;
    t->code = (float *)(t->pair + most + 1);
    for (int v = 0; v <= most; v++) {
        const float m = analog(&k, (float)v);
        float sigma = k.sigma;
        if (k.nonlinear2 != 0.0f) {
            const float denom = m * k.rows + 1.0f;
            sigma = sqrtf(sigma * sigma + k.nonlinear2 / denom);
        }
        uint32_t mb, sb;
        memcpy(&mb, &m, 4);
        memcpy(&sb, &sigma, 4);
        t->pair[v] = (uint64_t)mb | (uint64_t)sb << 32;
        t->code[v] = nearbyintf(m * k.levels);
    }
    return 1;
}

/* acc[n] += code(mac[n], z[n]) * scale, codes from the table (z == NULL: noiseless; g, o:
 * the columns' ADC errors or NULL). acc is float32: the caller checks that every partial sum
 * is an integer below 2^24 (exact); or, acc NULL, out[n] += code * weight in float64. The
 * look-ups are scalar loads (AVX2's gathers are slow on several CPUs), the rest 8 lanes. */
static void convert_table(const Table *t, const int32_t *mac, const float *z, const float *g,
                          const float *o, int count, float levels, float scale, float *acc,
                          double weight, double *out) {
    float code[BLOCK];
    int n = 0;
    if (!z && !g) {
        for (; n < count; n++) code[n] = t->code[mac[n]];
    } else {
        uint64_t entry[BLOCK];
        for (int k = 0; k < count; k++) entry[k] = t->pair[mac[k]];
#if defined(__AVX2__)
        const __m256 vlevels = _mm256_set1_ps(levels);
        const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
        for (; n + 8 <= count; n += 8) {
            const __m256 lo = _mm256_loadu_ps((const float *)(entry + n));
            const __m256 hi = _mm256_loadu_ps((const float *)(entry + n + 4));
            /* (m, sigma) pairs to eight m and eight sigma, in column order */
            __m256 u = _mm256_castpd_ps(_mm256_permute4x64_pd(
                _mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xD8));
            if (z) {
                const __m256 sigma = _mm256_castpd_ps(_mm256_permute4x64_pd(
                    _mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)), 0xD8));
                u = _mm256_add_ps(u, _mm256_mul_ps(_mm256_loadu_ps(z + n), sigma));
                u = _mm256_min_ps(_mm256_max_ps(u, zero), one);
            }
            if (g) {
                u = _mm256_add_ps(_mm256_mul_ps(u, _mm256_loadu_ps(g + n)), _mm256_loadu_ps(o + n));
                u = _mm256_min_ps(_mm256_max_ps(u, zero), one);
            }
            _mm256_storeu_ps(code + n, _mm256_round_ps(
                _mm256_mul_ps(u, vlevels), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        }
#endif
        for (; n < count; n++) {
            float m, sigma;
            const uint32_t mb = (uint32_t)entry[n], sb = (uint32_t)(entry[n] >> 32);
            memcpy(&m, &mb, 4);
            memcpy(&sigma, &sb, 4);
            const float u = z ? clamp01(m + z[n] * sigma) : m;
            code[n] = nearbyintf(column(u, g, o, n) * levels);
        }
    }
    if (acc)
        for (n = 0; n < count; n++) acc[n] += code[n] * scale;
    else
        for (n = 0; n < count; n++) out[n] += (double)code[n] * weight;
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

/* Weight bit planes of w (wgroups, K, N) float32 for columns [n0, n1):
 * out[((gw * tiles + t) * (n1 - n0) + n) * bits * words + i * words + w]. */
void asimc_pack_weights(const float *w, int64_t wgroups, int64_t k_total, int64_t columns,
                        int64_t n0, int64_t n1, const int64_t *tile_bounds, int64_t tiles,
                        int32_t bits, int64_t words, uint64_t *out, int32_t threads) {
    const int64_t width = n1 - n0;
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t gw = 0; gw < wgroups; gw++)
        for (int64_t n = 0; n < width; n++)
            for (int64_t t = 0; t < tiles; t++)
                pack_vector(w + gw * k_total * columns + n0 + n, columns, tile_bounds[2 * t],
                            tile_bounds[2 * t + 1], bits,  words,
                            out + ((gw * tiles + t) * width + n) * bits * words);
}

/* popcount(x & w) summed over ``words`` words. */
static inline int32_t dot_bits(const uint64_t *x, const uint64_t *w, int64_t words) {
    int32_t s = 0;
    for (int64_t q = 0; q < words; q++) s += __builtin_popcountll(x[q] & w[q]);
    return s;
}

/* P[(b * bw + i) * BLOCK] = MAC of input bit b and weight bit i, WORDS known at compile time. */
#define PLANE_MACS(WORDS)                                                                      \
    for (int b = 0; b < bx; b++) {                                                             \
        const uint64_t *xb = xrow + b * (WORDS);                                               \
        for (int i = 0; i < bw; i++) {                                                         \
            const uint64_t *wi = wcol + i * (WORDS);                                           \
            int32_t s = 0;                                                                     \
            for (int q = 0; q < (WORDS); q++) s += __builtin_popcountll(xb[q] & wi[q]);        \
            P[(b * bw + i) * BLOCK] = s;                                                       \
        }                                                                                      \
    }

static void plane_macs(const uint64_t *xrow, const uint64_t *wcol, int bx, int bw,
                       int64_t words, int32_t *P) {
    switch (words) {
    case 1: PLANE_MACS(1) break;
    case 2: PLANE_MACS(2) break;
    case 3: PLANE_MACS(3) break;
    case 4: PLANE_MACS(4) break;
    default:
        for (int b = 0; b < bx; b++)
            for (int i = 0; i < bw; i++)
                P[(b * bw + i) * BLOCK] = dot_bits(xrow + b * words, wcol + i * words, words);
    }
}

/* ---------------------------------------------------------------------------------------------
 * The fused kernel
 * ------------------------------------------------------------------------------------------ */

/* acc[gr][n] (G*R rows, columns [n0, n1) of ``columns``) = sum over tiles t of f_t times the
 * sum over cycles and weight bits of sign * D * F * 2^(i + b_c), D the ADC code of the
 * conversion.
 *
 *   x:          (G, R, K) float32 integer-valued inputs; bx input bits (two's complement).
 *   wpack:      asimc_pack_weights of the columns [n0, n1), wgroups 1 or G.
 *   cycle_low / cycle_bits: each cycle's lowest input bit and width.
 *   per pair p = c * bw + i: shift_add[p], votes[p] (0 digital or noiseless, 1 analog, > 1
 *   voted), alpha[p] (0 for digital), step[p] (counter step of vote 0, tile 0), analog_pair[p]
 *   (whether the column errors apply). Per tile t: full_scale[t * cycles + c] (f_t F),
 *   sigma[t * pairs + p], nonlinear2[t], rows[t] (f_t rows), fraction[t] (f_t); gain, offset
 *   ((T, bw, columns) float32, both or neither): the column ADCs' errors. Tile t adds
 *   t * tile_step to every step. Weight bits 4j..4j+3 share one Philox call (the four normals
 *   in order).
 *   stream/offset: (G, R) int64 keys (NULL when noiseless); a conversion's counter is
 *   (step + vote) * elements + offset + n * col_stride.
 */
void asimc_acim(const float *x, const uint64_t *wpack, double *acc,
                int64_t groups, int64_t rows_out, int64_t k_total, int64_t wgroups,
                int64_t columns, int64_t n0, int64_t n1,
                const int64_t *tile_bounds, int64_t tiles, int64_t words,
                int32_t bx, int32_t bw, int32_t cycles,
                const int32_t *cycle_low, const int32_t *cycle_bits,
                const float *full_scale, const double *shift_add, const float *sigma,
                const int32_t *votes, const float *alpha, const int64_t *step, int64_t tile_step,
                const int64_t *stream, const int64_t *offset, int64_t elements,
                int64_t col_stride, const float *nonlinear2, const float *rows,
                const double *fraction, const float *gain, const float *column_offset,
                const int32_t *analog_pair, float levels, int32_t threads) {
    const int64_t total_rows = groups * rows_out;
    const int64_t width = n1 - n0;
    const int pairs = cycles * bw;
    const int quads = (bw + 3) / 4;
    const int noisy = stream != NULL;
    int serial = cycles == bx;                   /* one bit per cycle, cycle c = input bit c */
    for (int c = 0; c < cycles; c++) serial = serial && cycle_bits[c] == 1 && cycle_low[c] == c;
    /* Tables per (tile, pair), shared by those of equal parameters, and per cycle whether its
     * codes can be summed in float32: each pair's shift-add is +-2^e times the cycle's first
     * one (a power of two, exactly) and levels * sum of |2^e| < 2^24 keeps every partial sum
     * exact. Then one float64 multiply-add per cycle instead of one per pair. */
    int64_t longest = 0;
    for (int64_t t = 0; t < tiles; t++)
        if (tile_bounds[2 * t + 1] - tile_bounds[2 * t] > longest)
            longest = tile_bounds[2 * t + 1] - tile_bounds[2 * t];
    const int64_t slots = tiles * pairs;
    Table *table = malloc(sizeof(Table) * slots);
    Conversion *key = malloc(sizeof(Conversion) * slots);
    int *key_bits = malloc(sizeof(int) * slots), *table_of = malloc(sizeof(int) * slots);
    int distinct = 0, tabulated = table && key && key_bits && table_of;
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
    for (int64_t t = 0; t < tiles && tabulated; t++)
        for (int p = 0; p < pairs && tabulated; p++) {
            const int c = p / bw;
            const int64_t most = longest * ((1LL << cycle_bits[c]) - 1);
            if (most >= MAX_TABLE) { tabulated = 0; break; }
            Conversion k = {full_scale[t * cycles + c], alpha[p], sigma[t * pairs + p],
                            nonlinear2[t], rows[t], levels};
            int found = -1;
            for (int q = 0; q < distinct && found < 0; q++)
                if (key_bits[q] == cycle_bits[c] && !memcmp(&key[q], &k, sizeof k)) found = q;
            if (found < 0) {
                if (!build_table(k, (int)most, &table[distinct])) { tabulated = 0; break; }
                key[distinct] = k;
                key_bits[distinct] = cycle_bits[c];
                found = distinct++;
            }
            table_of[t * pairs + p] = found;
        }
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        uint64_t *xrow = malloc(sizeof(uint64_t) * tiles * bx * words);
        int32_t *mac = malloc(sizeof(int32_t) * pairs * BLOCK);
        float *codes = malloc(sizeof(float) * 4 * MAX_VOTES * BLOCK);
        int32_t *P = malloc(sizeof(int32_t) * bx * bw * BLOCK);
        float z[4 * BLOCK];
        uint32_t lo[BLOCK], hi[BLOCK];
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
            const uint32_t k0 = (uint32_t)row_stream, k1 = (uint32_t)(row_stream >> 32);
            for (int64_t nb = 0; nb < width; nb += BLOCK) {
                const int count = (int)(width - nb < BLOCK ? width - nb : BLOCK);
                for (int n = 0; n < count; n++) out[n] = 0.0;
                for (int64_t t = 0; t < tiles; t++) {
                    for (int n = 0; n < count; n++) tile_out[n] = 0.0;
                    /* 1. The MACs of every (cycle, weight bit) pair of the block. */
                    const uint64_t *xt = xrow + t * bx * words;
                    const uint64_t *wt = wpack + ((gw * tiles + t) * width + nb) * bw * words;
                    for (int n = 0; n < count; n++)
                        plane_macs(xt, wt + n * bw * words, bx, bw, words, P + n);
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
                        const int summed = cycle_float[c] && tabulated;
                        if (summed)
                            for (int n = 0; n < count; n++) accf[n] = 0.0f;
                        for (int j = 0; j < quads; j++) {
                            const int i0 = 4 * j, i1 = bw < i0 + 4 ? bw : i0 + 4;
                            int most = 0;
                            for (int i = i0; i < i1; i++)
                                if (votes[c * bw + i] > most) most = votes[c * bw + i];
                            if (!noisy) most = 0;
                            for (int v = 0; v < (most ? most : 1); v++) {
                                if (most) {
                                    const uint64_t s = (uint64_t)(step[c * bw + i0]
                                                                  + t * tile_step + v);
                                    const uint64_t base = s * (uint64_t)elements + row_offset
                                        + (uint64_t)(n0 + nb) * (uint64_t)col_stride;
                                    for (int n = 0; n < count; n++) {
                                        uint64_t counter = base + (uint64_t)n
                                            * (uint64_t)col_stride;
                                        lo[n] = (uint32_t)counter;
                                        hi[n] = (uint32_t)(counter >> 32);
                                    }
                                    normal_quads(k0, k1, lo, hi, count, z);
                                }
                                for (int i = i0; i < i1; i++) {
                                    const int p = c * bw + i;
                                    const int pv = noisy ? votes[p] : 0;
                                    Conversion k = {full_scale[t * cycles + c], alpha[p],
                                                    sigma[t * pairs + p], nonlinear2[t], rows[t],
                                                    levels};
                                    const int64_t at = (t * bw + i) * columns + n0 + nb;
                                    const float *cg = gain && analog_pair[p] ? gain + at : NULL;
                                    const float *co = cg ? column_offset + at : NULL;
                                    const int32_t *m = macs + p * BLOCK;
                                    if (pv <= 1) {
                                        const float *zi = pv ? z + (i - i0) * BLOCK : NULL;
                                        if (v > 0) continue;
                                        if (tabulated)
                                            convert_table(&table[table_of[t * pairs + p]], m, zi,
                                                          cg, co, count, levels, pair_scale[p],
                                                          summed ? accf : NULL, shift_add[p],
                                                          tile_out);
                                        else
                                            convert_block(k, m, zi, cg, co, count, shift_add[p],
                                                          tile_out);
                                        continue;
                                    }
                                    if (v >= pv) continue;
                                    float *cv = codes + ((i - i0) * MAX_VOTES + v) * BLOCK;
                                    const float *zi = z + (i - i0) * BLOCK;
                                    for (int n = 0; n < count; n++)
                                        cv[n] = noisy_code(&k, analog(&k, (float)m[n]), zi[n],
                                                           cg, co, n);
                                }
                            }
                            for (int i = i0; i < i1; i++) {
                                const int p = c * bw + i;
                                if (!noisy || votes[p] <= 1) continue;
                                const float *cb = codes + (i - i0) * MAX_VOTES * BLOCK;
                                for (int n = 0; n < count; n++)
                                    tile_out[n] += (double)majority(cb + n, votes[p], BLOCK)
                                                   * shift_add[p];
                            }
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
    }
    for (int q = 0; q < distinct; q++) free(table[q].pair);
    free(table);
    free(key);
    free(key_bits);
    free(table_of);
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
