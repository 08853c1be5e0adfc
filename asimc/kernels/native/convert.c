/* The noise / ADC / shift-add step of the fast kernel, fused into one pass (DESIGN.md sec. 4).
 *
 * Input: the MACs of one row tile for every (cycle, weight bit) pair, as the stacked matrix
 * product leaves them: mac[g][c][r][i][n]. Output: acc[g][r][n] += sign * D * F * 2^(i+b_c).
 *
 * This file mirrors asimc/kernels/{adc,rng,fast}.py operation by operation in float32 (and
 * exact integer float64 for the shift-add), with -ffp-contract=off, so that it produces the
 * very same codes as the torch path, noise included. The @NAME@ constants are filled in from
 * asimc/kernels/rng.py when the library is built.
 */
#include <stdint.h>
#include <string.h>
#include <math.h>

#define MAX_VOTES 64

static inline uint64_t random_bits(uint64_t stream, uint64_t counter) {
    uint64_t z = stream + counter * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline float log_unit(float u) {
    int32_t bits;
    memcpy(&bits, &u, 4);
    int32_t exponent = ((bits >> 23) & 255) - 127;
    int32_t mbits = (bits & 0x7FFFFF) | 0x3F800000;
    float m;
    memcpy(&m, &mbits, 4);
    int big = m > @SQRT2@;
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
    float a = (float)(k & 0x3FFFFF) * @QUARTER_STEP@;
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

/* Box-Muller: the cosine (side 0) and sine (side 1) halves of one draw. */
static inline void standard_normal_pair(uint64_t stream, uint64_t counter, float *z0,
                                        float *z1) {
    uint64_t z = random_bits(stream, counter);
    float u1 = (float)((z >> 40) + 1) * @INV_2_24@;
    uint32_t angle = (uint32_t)((z >> 16) & 0xFFFFFF);
    float radius = sqrtf(log_unit(u1) * -2.0f);
    *z0 = radius * cos_turns(angle);
    *z1 = radius * cos_turns((angle + @QUARTER_TURN@u) & 0xFFFFFF);
}

static inline float standard_normal(uint64_t stream, uint64_t counter, int side) {
    float z0, z1;
    standard_normal_pair(stream, counter, &z0, &z1);
    return side ? z1 : z0;
}

static inline float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

static inline float noisy_value(float m, float z, float sigma, float nonlinear2, float rows) {
    if (nonlinear2 != 0.0f) {
        float denom = m * rows + 1.0f;
        sigma = sqrtf(sigma * sigma + nonlinear2 / denom);
    }
    return clamp01(m + z * sigma);
}

static float majority(const float *codes, int n) {
    float best = codes[0];
    int best_count = 0;
    for (int a = 0; a < n; a++) {
        int count = 0;
        for (int b = 0; b < n; b++) count += codes[b] == codes[a];
        if (count > best_count || (count == best_count && codes[a] < best)) {
            best = codes[a];
            best_count = count;
        }
    }
    return best;
}

/* One row tile of a chunk. Per (cycle, weight bit) pair p = c * bits + i:
 *   step[p]:  the counter step of the conversion's vote 0 (the tile's steps included); weight
 *             bits 2j and 2j+1 share it: bit 2j takes the cosine half of the draw, 2j+1 the sine;
 *   votes[p]: 0 = digital (no noise), 1 = analog, > 1 = analog and majority-voted;
 *   alpha[p]: gain compression (current domain), 0 for digital conversions.
 * The inner loops run over the columns of one (group, row, cycle, bit or bit pair), with every
 * per-bit value hoisted out, and accumulate straight into the row's output. */

static void convert_bit(const float *in, double *out, int64_t columns, float fs, float a,
                        double weight, int vote_count, float s, int side, uint64_t row_stream,
                        uint64_t base, uint64_t stride, int64_t elements, float nonlinear2,
                        float rows, float levels) {
    if (vote_count == 0) {                                  /* noiseless or digital */
        for (int64_t n = 0; n < columns; n++) {
            float v = in[n];
            if (a != 0.0f) v = v / (1.0f + a * v);
            out[n] += (double)nearbyintf(clamp01(v / fs) * levels) * weight;
        }
    } else if (vote_count == 1) {
        for (int64_t n = 0; n < columns; n++) {
            float v = in[n];
            if (a != 0.0f) v = v / (1.0f + a * v);
            float m = clamp01(v / fs);
            float z = standard_normal(row_stream, base + (uint64_t)n * stride, side);
            out[n] += (double)nearbyintf(noisy_value(m, z, s, nonlinear2, rows) * levels)
                      * weight;
        }
    } else {
        float codes[MAX_VOTES];
        for (int64_t n = 0; n < columns; n++) {
            float v = in[n];
            if (a != 0.0f) v = v / (1.0f + a * v);
            float m = clamp01(v / fs);
            for (int k = 0; k < vote_count; k++) {
                uint64_t counter = base + (uint64_t)k * (uint64_t)elements + (uint64_t)n * stride;
                float z = standard_normal(row_stream, counter, side);
                codes[k] = nearbyintf(noisy_value(m, z, s, nonlinear2, rows) * levels);
            }
            out[n] += (double)majority(codes, vote_count) * weight;
        }
    }
}

void asimc_convert_tile(const float *mac, double *acc,
                        int64_t groups, int64_t cycles, int64_t rows_out, int64_t bits,
                        int64_t columns,
                        const float *full_scale, const double *shift_add, const float *sigma,
                        const int64_t *step, const int32_t *votes,
                        const int64_t *stream, const int64_t *offset,
                        int64_t elements, int64_t col_stride,
                        const float *alpha, float nonlinear2, float rows, float levels,
                        int32_t noisy, int32_t threads) {
    int64_t total_rows = groups * rows_out;
    const uint64_t stride = (uint64_t)col_stride;
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads) if (threads > 1)
    for (int64_t gr = 0; gr < total_rows; gr++) {
        int64_t g = gr / rows_out, r = gr % rows_out;
        double *out = acc + gr * columns;
        const uint64_t row_stream = noisy ? (uint64_t)stream[gr] : 0;
        const uint64_t row_offset = noisy ? (uint64_t)offset[gr] : 0;
        for (int64_t c = 0; c < cycles; c++) {
            const float fs = full_scale[c];
            const float *cycle_in = mac + ((g * cycles + c) * rows_out + r) * bits * columns;
            int64_t i = 0;
            while (i < bits) {
                const int64_t p = c * bits + i;
                const int v0 = noisy ? votes[p] : 0;
                const uint64_t base = row_offset + (uint64_t)step[p] * (uint64_t)elements;
                if ((i & 1) == 0 && i + 1 < bits && v0 == 1 && votes[p + 1] == 1 && noisy) {
                    /* Two analog bits: one Box-Muller draw serves both. */
                    const float *in0 = cycle_in + i * columns, *in1 = in0 + columns;
                    const double w0 = shift_add[p], w1 = shift_add[p + 1];
                    const float a0 = alpha[p], a1 = alpha[p + 1];
                    const float s0 = sigma[p], s1 = sigma[p + 1];
                    for (int64_t n = 0; n < columns; n++) {
                        float x0 = in0[n], x1 = in1[n];
                        if (a0 != 0.0f) x0 = x0 / (1.0f + a0 * x0);
                        if (a1 != 0.0f) x1 = x1 / (1.0f + a1 * x1);
                        float m0 = clamp01(x0 / fs), m1 = clamp01(x1 / fs);
                        float z0, z1;
                        standard_normal_pair(row_stream, base + (uint64_t)n * stride, &z0, &z1);
                        out[n] += (double)nearbyintf(noisy_value(m0, z0, s0, nonlinear2, rows)
                                                     * levels) * w0
                                  + (double)nearbyintf(noisy_value(m1, z1, s1, nonlinear2, rows)
                                                       * levels) * w1;
                    }
                    i += 2;
                    continue;
                }
                convert_bit(cycle_in + i * columns, out, columns, fs, alpha[p], shift_add[p],
                            v0, sigma[p], (int)(i & 1), row_stream, base, stride, elements,
                            nonlinear2, rows, levels);
                i += 1;
            }
        }
    }
}

/* The normals of (stream, counters[k]), for tests that hold the torch path to the same bits. */
void asimc_standard_normals(int64_t stream, const int64_t *counters, int64_t count,
                            float *out) {
    for (int64_t k = 0; k < count; k++)
        out[k] = standard_normal((uint64_t)stream, (uint64_t)counters[k], 0);
}
