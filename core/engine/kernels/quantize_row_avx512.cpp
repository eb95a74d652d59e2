// AVX-512 instance of quantize_row.h. Compile flags (core/CMakeLists.txt): -mavx512f.
#include <immintrin.h>

#include "engine/kernels/quantize_row.h"
#include "engine/kernels/requant_avx512_step.h"  // storeInt8Lanes

namespace qs::kernels {

namespace {

// quantize() (quant_params.h) on sixteen lanes: t = x / scale (a true division, as the scalar
// and TFLite's reference do); clamped to one step beyond the range, NaN to the low end (max_ps
// returns its second operand when the first is NaN, as `t > lo ? t : lo` does); truncated, then
// rounded half away from zero from the exact remainder; zero point added, clamped.
template <class Store>
void quantizeLanes(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin, int32_t qmax, Store store) {
    const __m512 vscale = _mm512_set1_ps(scale);
    const __m512 lo = _mm512_set1_ps(static_cast<float>(qmin - zero_point - 1)), hi = _mm512_set1_ps(static_cast<float>(qmax - zero_point + 1));
    const __m512 half = _mm512_set1_ps(0.5f), minus_half = _mm512_set1_ps(-0.5f);
    const __m512i zp = _mm512_set1_epi32(zero_point), vqmin = _mm512_set1_epi32(qmin), vqmax = _mm512_set1_epi32(qmax);
    const __m512i one = _mm512_set1_epi32(1);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
        __m512 t = _mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), vscale);
        t = _mm512_min_ps(_mm512_max_ps(t, lo), hi);
        __m512i q = _mm512_cvttps_epi32(t);
        const __m512 f = _mm512_sub_ps(t, _mm512_cvtepi32_ps(q));
        q = _mm512_mask_add_epi32(q, _mm512_cmp_ps_mask(f, half, _CMP_GE_OQ), q, one);
        q = _mm512_mask_sub_epi32(q, _mm512_cmp_ps_mask(f, minus_half, _CMP_LE_OQ), q, one);
        q = _mm512_add_epi32(q, zp);
        q = _mm512_maskz_min_epi32(0xFFFF, _mm512_maskz_max_epi32(0xFFFF, q, vqmin), vqmax);  // maskz: GCC 12, see storeTile
        store(i, k, q);
    }
}

}  // namespace

void quantizeRowAvx512(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin, int32_t qmax, int8_t* out) {
    quantizeLanes(x, n, scale, zero_point, qmin, qmax, [out](int64_t i, __mmask16 k, __m512i q) { storeInt8Lanes(q, k, k == 0xFFFF, out + i); });
}

void quantizeRowAvx512(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin, int32_t qmax, int16_t* out) {
    quantizeLanes(x, n, scale, zero_point, qmin, qmax, [out](int64_t i, __mmask16 k, __m512i q) {
        if (k == 0xFFFF) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_cvtepi32_epi16(q));
        else _mm512_mask_cvtepi32_storeu_epi16(out + i, k, q);
    });
}

}  // namespace qs::kernels
