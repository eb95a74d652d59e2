// AVX-512 instance of the weight-histogram bins (weight_histogram_kernel.h): the operations of
// histogram.cpp's histogramIndices, sixteen values at a time, so the bins are identical; masks
// in k registers. vgetexpps gives floor(log2 |x|) for subnormals too (they are normalised
// first), so no scalar fix-up is needed for them.
// Compile flags (core/CMakeLists.txt): -mavx512f -mavx512bw -mavx512dq -mavx512vl.
#include <immintrin.h>

#include <algorithm>

#include "quant/kernels/weight_histogram_kernel.h"

namespace qs::kernels {

void weightHistogramKernelAvx512(const float* x, int64_t m, const WeightBins& w, Count* joint, Count* abs) {
    const __m512 zero = _mm512_setzero_ps(), lo = _mm512_set1_ps(w.lo), hi = _mm512_set1_ps(w.hi);
    const __m512 lin_inv = _mm512_set1_ps(w.lin_inv), lin_last = _mm512_set1_ps(static_cast<float>(w.lin_bins - 1));
    const __m512 max_abs = _mm512_set1_ps(w.max_abs), abs_inv = _mm512_set1_ps(w.abs_inv);
    const __m512 abs_last = _mm512_set1_ps(static_cast<float>(w.abs_bins - 1));
    const __m512i lin_below = _mm512_set1_epi32(w.lin_bins), lin_above = _mm512_set1_epi32(w.lin_bins + 1),
                  lin_sink = _mm512_set1_epi32(w.lin_bins + 2), abs_above = _mm512_set1_epi32(w.abs_bins),
                  abs_sink = _mm512_set1_epi32(w.abs_bins + 1), log_zero = _mm512_set1_epi32(kLog2Bins),
                  log_sink = _mm512_set1_epi32(kLog2Bins + 1), log_min = _mm512_set1_epi32(kLog2Min),
                  row = _mm512_set1_epi32(kLog2Row);
    constexpr int64_t kSpan = 2048;  // values per index buffer: 8 KB each, in L1
    alignas(64) int32_t ji[kSpan], ai[kSpan];
    for (int64_t b0 = 0; b0 < m; b0 += kSpan) {
        const int64_t nb = std::min(kSpan, m - b0);
        for (int64_t i = 0; i < nb; i += 16) {
            prefetchFloats(x + b0 + i, kPrefetchAhead);  // see quant_error_kernel.h
            const __m512 v = _mm512_loadu_ps(x + b0 + i);
            const __mmask16 fin = _mm512_cmp_ps_mask(_mm512_sub_ps(v, v), zero, _CMP_EQ_OQ), nfin = _knot_mask16(fin);
            const __m512 f = _mm512_maskz_mov_ps(fin, v), a = _mm512_abs_ps(f);
            // std::min(A, B) is B < A ? B : A, i.e. min_ps(B, A); "x > 0 ? x : 0" is max_ps(x, 0).
            const __m512 lf = _mm512_min_ps(_mm512_mul_ps(_mm512_sub_ps(f, lo), lin_inv), lin_last);
            __m512i l = _mm512_cvttps_epi32(_mm512_max_ps(lf, zero));
            l = _mm512_mask_mov_epi32(l, _mm512_cmp_ps_mask(f, hi, _CMP_GT_OQ), lin_above);
            l = _mm512_mask_mov_epi32(l, _mm512_cmp_ps_mask(f, lo, _CMP_LT_OQ), lin_below);
            l = _mm512_mask_mov_epi32(l, nfin, lin_sink);
            __m512i ab = _mm512_cvttps_epi32(_mm512_min_ps(_mm512_mul_ps(a, abs_inv), abs_last));
            ab = _mm512_mask_mov_epi32(ab, _mm512_cmp_ps_mask(a, max_abs, _CMP_GT_OQ), abs_above);
            ab = _mm512_mask_mov_epi32(ab, nfin, abs_sink);
            __m512i g = _mm512_sub_epi32(_mm512_cvttps_epi32(_mm512_getexp_ps(a)), log_min);  // getexp(0) = -Inf: replaced next
            g = _mm512_mask_mov_epi32(g, _mm512_cmp_ps_mask(a, zero, _CMP_EQ_OQ), log_zero);
            g = _mm512_mask_mov_epi32(g, nfin, log_sink);
            _mm512_store_si512(ji + i, _mm512_add_epi32(_mm512_mullo_epi32(l, row), g));
            _mm512_store_si512(ai + i, ab);
        }
        for (int64_t i = 0; i < nb; ++i) ++joint[ji[i]], ++abs[ai[i]];
    }
}

}  // namespace qs::kernels
