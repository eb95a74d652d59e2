// AVX-512 instance of the output stage (int8_gemm_kernel.h: RequantRowKernel, and the rows
// version for a whole tile, which loads each column group's constants once), sixteen columns
// at a time. The same integer steps as the AVX2 instance (int8_gemm_kernel_avx2.cpp), with
// masks for the comparisons and the last, partial group (masked loads and a masked narrowing
// store, so no scalar tail). For a convolution with few input channels the output stage costs
// more than the products (fmnist_cnn's first conv: 9 multiply-adds per output).
// Compile flags (core/CMakeLists.txt): -mavx512f.
#include <immintrin.h>

#include "engine/kernels/int8_gemm_kernel.h"

namespace qs::kernels {

void requantRowsAvx512(const int32_t* acc, int64_t acc_stride, int64_t rows, const int32_t* bias, const int32_t* m,
                       const int32_t* rshift, int32_t zp, int32_t lo, int32_t hi, int64_t n, int8_t* out, int64_t ldc) {
    const __m512i nudge = _mm512_set1_epi64(int64_t(1) << 30), one = _mm512_set1_epi32(1), zero = _mm512_setzero_si512();
    const __m512i vzp = _mm512_set1_epi32(zp), vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(hi);
    for (int64_t j = 0; j < n; j += 16) {
        const bool full = n - j >= 16;
        const __mmask16 k = full ? __mmask16(0xffff) : static_cast<__mmask16>((1u << (n - j)) - 1);
        // Plain loads for whole groups, masked ones only for the last, partial group.
        const auto load = [&](const int32_t* p) { return full ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi32(k, p); };
        // The columns' constants once for all rows of the tile.
        const __m512i b = load(bias + j), mm = load(m + j), e = load(rshift + j), mm_odd = _mm512_srli_epi64(mm, 32);
        const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, e), one), half = _mm512_srai_epi32(mask, 1);
        for (int64_t r = 0; r < rows; ++r) {
            const __m512i x = _mm512_add_epi32(load(acc + r * acc_stride + j), b);
            // round(x * m / 2^31) in 64 bits for even and odd lanes, the high halves put back together
            const __m512i even = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, mm), nudge), 31);
            const __m512i odd = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), mm_odd), nudge), 31);
            const __m512i high = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
            // rounding divide by 2^e, ties away from zero (gemmlowp RoundingDivideByPOT)
            const __m512i remainder = _mm512_and_si512(high, mask);
            const __mmask16 negative = _mm512_cmpgt_epi32_mask(zero, high);
            const __m512i threshold = _mm512_mask_add_epi32(half, negative, half, one);
            const __mmask16 up = _mm512_cmpgt_epi32_mask(remainder, threshold);
            __m512i v = _mm512_srav_epi32(high, e);
            v = _mm512_mask_add_epi32(v, up, v, one);
            v = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(v, vzp), vlo), vhi);
            // In range already: plain narrowing, in a register and then an ordinary store (perf had
            // the masked narrowing store, vpmovdb to memory, as this function's hottest instruction
            // on Zen 5); only a partial group needs the masked form.
            if (full)
                _mm_storeu_si128(reinterpret_cast<__m128i*>(out + r * ldc + j), _mm512_cvtepi32_epi8(v));
            else
                _mm512_mask_cvtepi32_storeu_epi8(out + r * ldc + j, k, v);
        }
    }
}

void requantRowAvx512(const int32_t* acc, const int32_t* bias, const int32_t* m, const int32_t* rshift, int32_t zp,
                      int32_t lo, int32_t hi, int64_t n, int8_t* out) {
    requantRowsAvx512(acc, 0, 1, bias, m, rshift, zp, lo, hi, n, out, 0);
}

}  // namespace qs::kernels
