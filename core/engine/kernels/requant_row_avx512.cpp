// AVX-512 instance of the output stage (int8_gemm_kernel.h: RequantRowKernel, and the rows
// version for a whole tile, which loads each column group's constants once), sixteen columns
// at a time. The same integer steps as the AVX2 instance (int8_gemm_kernel_avx2.cpp), with
// masks for the comparisons and the last, partial group (masked loads and a masked narrowing
// store, so no scalar tail). For a convolution with few input channels the output stage costs
// more than the products (fmnist_cnn's first conv: 9 multiply-adds per output).
// Compile flags (core/CMakeLists.txt): -mavx512f.
#include <immintrin.h>

#include "engine/kernels/int8_gemm_kernel.h"
#include "engine/kernels/requant_avx512_step.h"

namespace qs::kernels {

void requantRowsAvx512(const int32_t* acc, int64_t acc_stride, int64_t rows, const int32_t* bias, const int32_t* m,
                       const int32_t* rshift, int32_t zp, int32_t lo, int32_t hi, int64_t n, int8_t* out, int64_t ldc) {
    const __m512i vzp = _mm512_set1_epi32(zp), vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(hi);
    for (int64_t j = 0; j < n; j += 16) {
        const bool full = n - j >= 16;
        const __mmask16 k = full ? __mmask16(0xffff) : static_cast<__mmask16>((1u << (n - j)) - 1);
        // The columns' constants once for all rows of the block.
        const RequantColumns c = requantColumns(bias + j, m + j, rshift + j, k, full);
        for (int64_t r = 0; r < rows; ++r) {
            const int32_t* a = acc + r * acc_stride + j;
            const __m512i sums = full ? _mm512_loadu_si512(a) : _mm512_maskz_loadu_epi32(k, a);
            storeInt8Lanes(requantLanes(sums, c, vzp, vlo, vhi), k, full, out + r * ldc + j);
        }
    }
}

void requantRowAvx512(const int32_t* acc, const int32_t* bias, const int32_t* m, const int32_t* rshift, int32_t zp,
                      int32_t lo, int32_t hi, int64_t n, int8_t* out) {
    requantRowsAvx512(acc, 0, 1, bias, m, rshift, zp, lo, hi, n, out, 0);
}

}  // namespace qs::kernels
