// AVX2 instance of the candidate-error kernel, written with intrinsics. It keeps the portable
// kernel's exact semantics (quant_error_kernel.inc): lane k of a 16-block accumulates elements
// base + k, adds happen in the same order, no FMA; the ISA test checks the bits agree.
// Compile flags (core/CMakeLists.txt): -mavx2 -mf16c -ffp-contract=off.
#include <immintrin.h>

#include <cmath>

#include "quant_error_kernel.h"

#define QS_F16_KERNEL_NAME float16KernelAvx2
#define QS_ERROR_KERNEL_SKIP 1
#include "quant_error_kernel.inc"

namespace qs::kernels {

namespace {

// One half (8 lanes) of the 16-lane accumulators.
struct Half {
    __m256d e2[2], e1[2];
    __m256 maxe;
    __m256i below, beyond;
};

struct ErrBins {
    __m256 range, w, last;
    __m256i sink;
};

inline void eight(const float* x, const float* scale, const float* zp, __m256 vqmin, __m256 vqmax, Half& L, int32_t* qidx,
                  int32_t* eidx, const ErrBins& eb, __m256i vsink, __m256i viqmin) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f),
                 mhalf = _mm256_set1_ps(-0.5f);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 raw = _mm256_loadu_ps(x);
    const __m256 s = _mm256_loadu_ps(scale);
    const __m256 z = _mm256_loadu_ps(zp);
    const __m256 fin = _mm256_cmp_ps(_mm256_sub_ps(raw, raw), zero, _CMP_EQ_OQ);  // false for NaN, Inf
    const __m256 xv = _mm256_and_ps(raw, fin);
    // q = clamp(round_half_away(x / s) + z, qmin, qmax)
    const __m256 t = _mm256_div_ps(xv, s);
    const __m256 tr = _mm256_round_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 fr = _mm256_sub_ps(t, tr);
    __m256 r = _mm256_add_ps(tr, _mm256_and_ps(_mm256_cmp_ps(fr, half, _CMP_GE_OQ), one));
    r = _mm256_sub_ps(r, _mm256_and_ps(_mm256_cmp_ps(fr, mhalf, _CMP_LE_OQ), one));
    const __m256 u = _mm256_add_ps(r, z);
    const __m256 q = _mm256_min_ps(_mm256_max_ps(u, vqmin), vqmax);
    const __m256 e = _mm256_and_ps(_mm256_sub_ps(_mm256_mul_ps(_mm256_sub_ps(q, z), s), xv), fin);
    const __m256d elo = _mm256_cvtps_pd(_mm256_castps256_ps128(e)), ehi = _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1));
    L.e2[0] = _mm256_add_pd(L.e2[0], _mm256_mul_pd(elo, elo));
    L.e2[1] = _mm256_add_pd(L.e2[1], _mm256_mul_pd(ehi, ehi));
    L.e1[0] = _mm256_add_pd(L.e1[0], elo);
    L.e1[1] = _mm256_add_pd(L.e1[1], ehi);
    L.maxe = _mm256_max_ps(L.maxe, _mm256_and_ps(e, absmask));
    const __m256 below = _mm256_and_ps(_mm256_and_ps(fin, _mm256_cmp_ps(xv, zero, _CMP_NEQ_OQ)), _mm256_cmp_ps(q, z, _CMP_EQ_OQ));
    const __m256 beyond = _mm256_and_ps(fin, _mm256_or_ps(_mm256_cmp_ps(u, vqmin, _CMP_LT_OQ), _mm256_cmp_ps(u, vqmax, _CMP_GT_OQ)));
    L.below = _mm256_sub_epi32(L.below, _mm256_castps_si256(below));  // masks are -1 where true
    L.beyond = _mm256_sub_epi32(L.beyond, _mm256_castps_si256(beyond));
    const __m256i qi = _mm256_sub_epi32(_mm256_cvtps_epi32(q), viqmin);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qidx), _mm256_blendv_epi8(vsink, qi, _mm256_castps_si256(fin)));
    if (eidx) {  // error histogram bin: floor((e / s + range) * w), clamped as float
        __m256 v = _mm256_floor_ps(_mm256_mul_ps(_mm256_add_ps(_mm256_div_ps(e, s), eb.range), eb.w));
        v = _mm256_min_ps(_mm256_max_ps(v, _mm256_setzero_ps()), eb.last);
        const __m256i bi = _mm256_cvttps_epi32(v);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(eidx), _mm256_blendv_epi8(eb.sink, bi, _mm256_castps_si256(fin)));
    }
}

}  // namespace

void errorKernelAvx2(const float* x, const float* scale, const float* zero_point, int64_t count, float qmin, float qmax,
                     ErrorAccum& acc, int64_t* level_counts, int64_t level_stride, const ErrorHistogramSpec& hist) {
    const __m256 vqmin = _mm256_set1_ps(qmin), vqmax = _mm256_set1_ps(qmax);
    const int32_t iqmin = static_cast<int32_t>(qmin);
    const __m256i vsink = _mm256_set1_epi32(static_cast<int32_t>(qmax) - iqmin + 1);  // one past the last level
    const __m256i viqmin = _mm256_set1_epi32(iqmin);
    ErrBins eb{};
    if (hist.counts) {
        eb.range = _mm256_set1_ps(hist.range_lsb);
        eb.w = _mm256_set1_ps(static_cast<float>(hist.bins) / (2.0f * hist.range_lsb));
        eb.last = _mm256_set1_ps(static_cast<float>(hist.bins - 1));
        eb.sink = _mm256_set1_epi32(hist.bins);
    }
    // Tail: padded with NaN (not finite: contributes nothing), as the portable kernel treats it.
    const int64_t full = count / kLanes * kLanes;
    alignas(32) float px[kLanes], ps[kLanes], pz[kLanes];
    for (int k = 0; k < kLanes; ++k) {
        const bool in = full + k < count;
        px[k] = in ? x[full + k] : std::nanf("");
        ps[k] = in ? scale[full + k] : 1.0f;
        pz[k] = in ? zero_point[full + k] : 0.0f;
    }
    // Lanes 0-7, then lanes 8-15: each lane still adds its elements in order, so the sums are
    // those of the portable kernel; eight lanes at a time keep the accumulators in registers.
    for (int h = 0; h < 2; ++h) {
        Half L;
        L.e2[0] = _mm256_loadu_pd(acc.sum_e2 + 8 * h);
        L.e2[1] = _mm256_loadu_pd(acc.sum_e2 + 8 * h + 4);
        L.e1[0] = _mm256_loadu_pd(acc.sum_e + 8 * h);
        L.e1[1] = _mm256_loadu_pd(acc.sum_e + 8 * h + 4);
        L.maxe = _mm256_loadu_ps(acc.max_e + 8 * h);
        L.below = L.beyond = _mm256_setzero_si256();
        int64_t* c[4] = {level_counts, level_counts, level_counts, level_counts};
        if (level_stride > 0)
            for (int i = 1; i < 4; ++i) c[i] = level_counts + i * level_stride;
        alignas(32) int32_t qidx[8], eidx[8];
        int32_t* ep = hist.counts ? eidx : nullptr;
        int64_t* hc = hist.counts;
        auto scatter = [&] {
            ++c[0][qidx[0]], ++c[1][qidx[1]], ++c[2][qidx[2]], ++c[3][qidx[3]];
            ++c[0][qidx[4]], ++c[1][qidx[5]], ++c[2][qidx[6]], ++c[3][qidx[7]];
            if (!ep) return;
            for (int k = 0; k < 8; ++k) ++hc[eidx[k]];
        };
        for (int64_t base = 0; base < full; base += kLanes) {
            eight(x + base + 8 * h, scale + base + 8 * h, zero_point + base + 8 * h, vqmin, vqmax, L, qidx, ep, eb, vsink, viqmin);
            scatter();
        }
        if (full < count) {
            eight(px + 8 * h, ps + 8 * h, pz + 8 * h, vqmin, vqmax, L, qidx, ep, eb, vsink, viqmin);
            scatter();
        }
        _mm256_storeu_pd(acc.sum_e2 + 8 * h, L.e2[0]);
        _mm256_storeu_pd(acc.sum_e2 + 8 * h + 4, L.e2[1]);
        _mm256_storeu_pd(acc.sum_e + 8 * h, L.e1[0]);
        _mm256_storeu_pd(acc.sum_e + 8 * h + 4, L.e1[1]);
        _mm256_storeu_ps(acc.max_e + 8 * h, L.maxe);
        alignas(32) int32_t b[8], o[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(b), L.below);
        _mm256_store_si256(reinterpret_cast<__m256i*>(o), L.beyond);
        for (int k = 0; k < 8; ++k) {
            acc.below[8 * h + k] += b[k];
            acc.beyond[8 * h + k] += o[k];
        }
    }
}

}  // namespace qs::kernels
