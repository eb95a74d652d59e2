// Compiled with -mavx2 only; called only when the CPU has AVX2 (see gemmTileKernel).
#include <immintrin.h>

#include <cstring>

#include "engine/kernels/int8_gemm_kernel.h"

namespace qs::kernels {

namespace {
inline __m256i broadcastPair(const int16_t* p) {
    int32_t v;
    std::memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

// The 6 x 16 tile both entry points share: row r's pair p of run j at rows[r] + j * run_step +
// p * PairStep (int16 values). A compile-time pair step keeps the addressing to one offset register.
template <int64_t PairStep>
inline __attribute__((always_inline)) void tile6(const int16_t* const* rows, int64_t runs, int64_t run_step, int64_t run_pairs,
                                                 const int8_t* b, int32_t* acc) {
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const int16_t *a0 = rows[0], *a1 = rows[1], *a2 = rows[2], *a3 = rows[3], *a4 = rows[4], *a5 = rows[5];
    for (int64_t j = 0; j < runs; ++j) {
        for (int64_t p = 0; p < run_pairs * PairStep; p += PairStep) {
            const __m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
            const __m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16)));
            __m256i x = broadcastPair(a0 + p);
            c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(x, b0));
            c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(x, b1));
            x = broadcastPair(a1 + p);
            c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(x, b0));
            c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(x, b1));
            x = broadcastPair(a2 + p);
            c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(x, b0));
            c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(x, b1));
            x = broadcastPair(a3 + p);
            c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(x, b0));
            c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(x, b1));
            x = broadcastPair(a4 + p);
            c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(x, b0));
            c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(x, b1));
            x = broadcastPair(a5 + p);
            c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(x, b0));
            c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(x, b1));
            b += kGemmNR * 2;
        }
        a0 += run_step, a1 += run_step, a2 += run_step, a3 += run_step, a4 += run_step, a5 += run_step;
    }
    __m256i* o = reinterpret_cast<__m256i*>(acc);
    _mm256_storeu_si256(o + 0, c00), _mm256_storeu_si256(o + 1, c01);
    _mm256_storeu_si256(o + 2, c10), _mm256_storeu_si256(o + 3, c11);
    _mm256_storeu_si256(o + 4, c20), _mm256_storeu_si256(o + 5, c21);
    _mm256_storeu_si256(o + 6, c30), _mm256_storeu_si256(o + 7, c31);
    _mm256_storeu_si256(o + 8, c40), _mm256_storeu_si256(o + 9, c41);
    _mm256_storeu_si256(o + 10, c50), _mm256_storeu_si256(o + 11, c51);
}

}  // namespace

void gemmTileAvx2(const int16_t* a, const int8_t* b, int64_t pairs, int32_t* acc) {
    // The packed block interleaves the rows: row r's pair p at a + (p * kGemmMR + r) * 2.
    const int16_t* rows[kGemmMR] = {a, a + 2, a + 4, a + 6, a + 8, a + 10};
    tile6<kGemmMR * 2>(rows, 1, 0, pairs, b, acc);
}

void gemmTileRowsAvx2(const int16_t* const* rows, int64_t runs, int64_t run_step, int64_t run_pairs, const int8_t* b, int32_t* acc) {
    tile6<2>(rows, runs, run_step, run_pairs, b, acc);
}

void gemmRowAvx2(const int16_t* a, const int8_t* b, int64_t pairs, int32_t* acc) {
    // Two pairs per step into separate accumulators: four independent add chains.
    __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0;
    int64_t p = 0;
    for (; p + 2 <= pairs; p += 2) {
        const __m256i x0 = broadcastPair(a + 2 * p), x1 = broadcastPair(a + 2 * p + 2);
        const int8_t* bp = b + p * kGemmNR * 2;
        c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(x0, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bp)))));
        c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(x0, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bp + 16)))));
        c2 = _mm256_add_epi32(c2, _mm256_madd_epi16(x1, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bp + 32)))));
        c3 = _mm256_add_epi32(c3, _mm256_madd_epi16(x1, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bp + 48)))));
    }
    if (p < pairs) {
        const __m256i x0 = broadcastPair(a + 2 * p);
        const int8_t* bp = b + p * kGemmNR * 2;
        c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(x0, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bp)))));
        c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(x0, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bp + 16)))));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc), _mm256_add_epi32(c0, c2));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + 8), _mm256_add_epi32(c1, c3));
}

// gemmlowp's steps, 8 lanes at once:
//  SaturatingRoundingDoublingHighMul(a, m) = (a * m + 2^30) >> 31 (arithmetic); the one
//    overflow case (both INT32_MIN) cannot occur as m > 0. The 64-bit products come from
//    _mm256_mul_epi32 on the even lanes and on the odd lanes shifted down; bits 31..62 of the
//    sum are the result, so a logical 64-bit shift gives the right low 32 bits.
//  RoundingDivideByPOT(x, e) = (x >> e) + (remainder > (mask >> 1) + (x < 0)).
void requantRowAvx2(const int32_t* acc, const int32_t* bias, const int32_t* m, const int32_t* rshift, int32_t zp, int32_t lo,
                    int32_t hi, int64_t n, int8_t* out) {
    const __m256i nudge = _mm256_set1_epi64x(int64_t(1) << 30), one = _mm256_set1_epi32(1);
    const __m256i vzp = _mm256_set1_epi32(zp), vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256i x = _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + j)),
                                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + j)));
        const __m256i mm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + j));
        const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rshift + j));
        const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, mm), nudge), 31);
        const __m256i odd = _mm256_srli_epi64(
            _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(mm, 32)), nudge), 31);
        const __m256i high = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
        const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, e), one);
        const __m256i remainder = _mm256_and_si256(high, mask);
        const __m256i negative = _mm256_cmpgt_epi32(_mm256_setzero_si256(), high);  // -1 where x < 0
        const __m256i threshold = _mm256_sub_epi32(_mm256_srai_epi32(mask, 1), negative);
        const __m256i up = _mm256_cmpgt_epi32(remainder, threshold);                 // -1 where rounding up
        __m256i v = _mm256_sub_epi32(_mm256_srav_epi32(high, e), up);
        v = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(v, vzp), vlo), vhi);
        const __m256i p16 = _mm256_packs_epi32(v, v);      // in range already: no saturation
        const __m256i p8 = _mm256_packs_epi16(p16, p16);
        const int32_t lo4 = _mm256_extract_epi32(p8, 0), hi4 = _mm256_extract_epi32(p8, 4);
        std::memcpy(out + j, &lo4, 4);
        std::memcpy(out + j + 4, &hi4, 4);
    }
    if (j < n) requantRowPortable(acc + j, bias + j, m + j, rshift + j, zp, lo, hi, n - j, out + j);
}

}  // namespace qs::kernels
