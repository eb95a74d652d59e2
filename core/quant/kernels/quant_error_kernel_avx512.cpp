// AVX-512 instance of the candidate-error kernel, written with intrinsics (GCC 12 does not
// vectorise the portable loop for AVX-512: compiled from quant_error_kernel.inc it ran no
// faster than the portable build). One 512-bit register holds a whole 16-block, so lane k of
// the register is lane k of the accumulators and every lane adds its elements in order, as
// the portable kernel does; no FMA. The ISA test checks the bits agree.
// Compile flags (core/CMakeLists.txt): -mavx512f -mavx512bw -mavx512dq -mavx512vl -mf16c
// -ffp-contract=off. The algorithm is the AVX2 kernel's (see quant_error_kernel_avx2.cpp):
// a vector loop that stores each value's level (and error-bin) index, counting afterwards;
// masks live in k registers, so the finite / beyond-range / at-zero tests cost no blends.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/kernels/quant_error_kernel.h"

namespace qs::kernels {

namespace {

// The 16 lanes of the accumulators, in registers.
struct Lanes {
    __m512d e2[2], e1[2];
    __m512 maxe;
    __m512i at_zero, beyond;  // int32 per lane, added to the int64 counters at the end
};

Lanes load(const ErrorAccum& acc) {
    Lanes L;
    for (int h = 0; h < 2; ++h) {
        L.e2[h] = _mm512_loadu_pd(acc.sum_e2 + 8 * h);
        L.e1[h] = _mm512_loadu_pd(acc.sum_e + 8 * h);
    }
    L.maxe = _mm512_loadu_ps(acc.max_e);
    L.at_zero = L.beyond = _mm512_setzero_si512();
    return L;
}

void store(ErrorAccum& acc, const Lanes& L) {
    for (int h = 0; h < 2; ++h) {
        _mm512_storeu_pd(acc.sum_e2 + 8 * h, L.e2[h]);
        _mm512_storeu_pd(acc.sum_e + 8 * h, L.e1[h]);
    }
    _mm512_storeu_ps(acc.max_e, L.maxe);
    alignas(64) int32_t zc[kLanes], bc[kLanes];
    _mm512_store_si512(zc, L.at_zero);
    _mm512_store_si512(bc, L.beyond);
    for (int k = 0; k < kLanes; ++k) {
        acc.at_zero[k] += zc[k];
        acc.beyond[k] += bc[k];
    }
}

// Adds sixteen errors (zero where fin is clear) into the lanes' sums, lane by lane in order.
inline void accumulate(Lanes& L, __m512 e) {
    const __m512d elo = _mm512_cvtps_pd(_mm512_castps512_ps256(e)), ehi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1));
    L.e2[0] = _mm512_add_pd(L.e2[0], _mm512_mul_pd(elo, elo));
    L.e2[1] = _mm512_add_pd(L.e2[1], _mm512_mul_pd(ehi, ehi));
    L.e1[0] = _mm512_add_pd(L.e1[0], elo);
    L.e1[1] = _mm512_add_pd(L.e1[1], ehi);
    L.maxe = _mm512_max_ps(L.maxe, _mm512_abs_ps(e));
}

struct Params {
    __m512 s, lo, hi, off;
};

// As in the AVX2 kernel: all parameters from registers (per-tensor), the scale from the
// arrays (per-channel symmetric), or all from the arrays.
enum Mode { kAllFixed, kScaleVaries, kAllVary };

template <int M>
inline Params params(const CandidateLanes& p, int64_t j, const Params& fixed) {
    if constexpr (M == kAllFixed) return fixed;
    if constexpr (M == kScaleVaries) return {_mm512_loadu_ps(p.scale + j), fixed.lo, fixed.hi, fixed.off};
    return {_mm512_loadu_ps(p.scale + j), _mm512_loadu_ps(p.lo + j), _mm512_loadu_ps(p.hi + j),
            _mm512_loadu_ps(p.level_offset + j)};
}

struct HistConsts {
    __m512 w, rw, last, row;  // row: bins + 1, the joint table's row length
    __m512i sink, joint_sink;
};

// Error histogram: none, counted separately, or jointly with the levels (quant_error_kernel.h).
enum HistMode { kNoHist, kSeparate, kJoint };

// Counts level indices stored as bytes (up to 256 levels with the sink), eight per 64-bit
// load: half the loads of reading int32 indices. Byte j of a 16-block is lane j, so it counts
// into copy j % 4 as the int32 path does (quant_error_kernel.h). n: a multiple of 16.
void countLevelBytes(const uint8_t* q, int64_t n, Count* c, int64_t stride) {
    Count *const c0 = c, *const c1 = c + stride, *const c2 = c + 2 * stride, *const c3 = c + 3 * stride;
    for (int64_t i = 0; i < n; i += 8) {
        uint64_t w;
        std::memcpy(&w, q + i, 8);
        ++c0[w & 255], ++c1[(w >> 8) & 255], ++c2[(w >> 16) & 255], ++c3[(w >> 24) & 255];
        ++c0[(w >> 32) & 255], ++c1[(w >> 40) & 255], ++c2[(w >> 48) & 255], ++c3[w >> 56];
    }
}

template <int M, bool Finite, int Hist>
void run(const float* x, const CandidateLanes& p, int64_t blocks, int64_t level_stride, const HistConsts& H,
         ErrorAccum& acc, Count* c, Count* hc) {
    constexpr bool kCountZero = M == kAllVary;  // otherwise the caller reads it from the level counts
    constexpr int64_t kSpan = 128;              // blocks per index buffer: 8 KB, in L1
    const __m512 halfdown = _mm512_set1_ps(kHalfDown), zero = _mm512_setzero_ps();
    const __m512i sink = _mm512_set1_epi32(p.sink), one = _mm512_set1_epi32(1);
    const int32_t st = static_cast<int32_t>(level_stride);
    const __m512i copy_offset = _mm512_setr_epi32(0, st, 2 * st, 3 * st, 0, st, 2 * st, 3 * st, 0, st, 2 * st, 3 * st,
                                                  0, st, 2 * st, 3 * st);  // lane k counts into copy k % 4
    const __m512i sign = _mm512_set1_epi32(static_cast<int32_t>(0x80000000u));
    const Params fixed{_mm512_set1_ps(p.scale[0]), _mm512_set1_ps(p.lo[0]), _mm512_set1_ps(p.hi[0]),
                       _mm512_set1_ps(p.level_offset[0])};
    alignas(64) int32_t qidx[kSpan * kLanes], eidx[Hist == kSeparate ? kSpan * kLanes : kLanes];
    alignas(64) uint8_t qbytes[Hist == kNoHist ? kSpan * kLanes : kLanes];
    const bool bytes = Hist == kNoHist && level_stride > 0 && p.sink <= 255;
    Lanes L = load(acc);
    for (int64_t b0 = 0; b0 < blocks; b0 += kSpan) {
        const int64_t nb = std::min(kSpan, blocks - b0);
        for (int64_t i = 0; i < nb; ++i) {
            const int64_t j = (b0 + i) * kLanes;
            const Params P = params<M>(p, j, fixed);
            prefetchFloats(x + j, kPrefetchAhead);  // one line per block
            __m512 xv = _mm512_loadu_ps(x + j);
            __mmask16 fin = 0xffff;
            if constexpr (!Finite) {
                fin = _mm512_cmp_ps_mask(_mm512_sub_ps(xv, xv), zero, _CMP_EQ_OQ);  // false for NaN, Inf
                xv = _mm512_maskz_mov_ps(fin, xv);
            }
            // r = round_half_away(x / s) as trunc(t + copysign(kHalfDown, t)); as in the AVX2
            // kernel, no bound on t is needed (vrndscaleps handles any float).
            const __m512 t = _mm512_div_ps(xv, P.s);
            const __m512 hd = _mm512_castsi512_ps(
                _mm512_or_si512(_mm512_and_si512(_mm512_castps_si512(t), sign), _mm512_castps_si512(halfdown)));
            const __m512 r = _mm512_roundscale_ps(_mm512_add_ps(t, hd), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            const __m512 cq = _mm512_min_ps(_mm512_max_ps(r, P.lo), P.hi);  // q - zp
            __m512 e = _mm512_sub_ps(_mm512_mul_ps(cq, P.s), xv);
            if constexpr (!Finite) e = _mm512_maskz_mov_ps(fin, e);
            accumulate(L, e);
            const __mmask16 beyond = _mm512_mask_cmp_ps_mask(fin, r, cq, _CMP_NEQ_UQ);
            L.beyond = _mm512_mask_add_epi32(L.beyond, beyond, L.beyond, one);
            if constexpr (kCountZero) {
                const __mmask16 at0 = _mm512_mask_cmp_ps_mask(fin, cq, zero, _CMP_EQ_OQ);
                L.at_zero = _mm512_mask_add_epi32(L.at_zero, at0, L.at_zero, one);
            }
            const __m512 level = _mm512_add_ps(cq, P.off);  // q - qmin: exact small integers
            if constexpr (Hist != kJoint) {
                __m512i qi = _mm512_cvtps_epi32(level);
                if constexpr (!Finite) qi = _mm512_mask_blend_epi32(fin, sink, qi);
                if (bytes) _mm_store_si128(reinterpret_cast<__m128i*>(qbytes + kLanes * i), _mm512_cvtepi32_epi8(qi));
                else _mm512_store_si512(qidx + kLanes * i, _mm512_add_epi32(qi, copy_offset));
            }
            if constexpr (Hist != kNoHist) {  // error in steps c - x/s, binned as floor(v * w + range * w), clamped as float
                __m512 v = _mm512_roundscale_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(cq, t), H.w), H.rw),
                                                _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
                v = _mm512_min_ps(_mm512_max_ps(v, zero), H.last);
                if constexpr (Hist == kSeparate) {
                    __m512i bi = _mm512_cvttps_epi32(v);
                    if constexpr (!Finite) bi = _mm512_mask_blend_epi32(fin, H.sink, bi);
                    _mm512_store_si512(eidx + kLanes * i, bi);
                } else {  // level * row + bin: integers below 2^24 (the caller's limit), exact in float
                    __m512i ji = _mm512_cvtps_epi32(_mm512_add_ps(_mm512_mul_ps(level, H.row), v));
                    if constexpr (!Finite) ji = _mm512_mask_blend_epi32(fin, H.joint_sink, ji);
                    _mm512_store_si512(qidx + kLanes * i, ji);
                }
            }
        }
        if (bytes) countLevelBytes(qbytes, nb * kLanes, c, level_stride);
        else
            for (int64_t i = 0; i < nb * kLanes; ++i) ++c[qidx[i]];  // qidx holds the copy's offset
        if constexpr (Hist == kSeparate)
            for (int64_t i = 0; i < nb * kLanes; ++i) ++hc[eidx[i]];
    }
    store(acc, L);
}

template <int M, bool Finite>
void dispatchHist(const float* x, const CandidateLanes& p, int64_t blocks, int64_t level_stride, const HistConsts& H,
                  const ErrorHistogramSpec& hist, ErrorAccum& acc, Count* c) {
    if (hist.joint()) run<M, Finite, kJoint>(x, p, blocks, level_stride, H, acc, c, nullptr);
    else if (hist.bins > 0) run<M, Finite, kSeparate>(x, p, blocks, level_stride, H, acc, c, hist.counts);
    else run<M, Finite, kNoHist>(x, p, blocks, level_stride, H, acc, c, nullptr);
}

template <int M>
void dispatch(const float* x, const CandidateLanes& p, int64_t blocks, bool finite, int64_t level_stride,
              const HistConsts& H, const ErrorHistogramSpec& hist, ErrorAccum& acc, Count* c) {
    if (finite) dispatchHist<M, true>(x, p, blocks, level_stride, H, hist, acc, c);
    else dispatchHist<M, false>(x, p, blocks, level_stride, H, hist, acc, c);
}

}  // namespace

void errorKernelAvx512(const float* x, int64_t count, const CandidateLanes& p, bool all_finite, ErrorAccum& acc,
                       Count* level_counts, int64_t level_stride, const ErrorHistogramSpec& hist) {
    HistConsts H{};
    if (hist.bins > 0) {
        const ErrorBinning eb = errorBinning(hist, p.sink);
        H.w = _mm512_set1_ps(eb.per_step);
        H.rw = _mm512_set1_ps(eb.offset);
        H.last = _mm512_set1_ps(eb.last);
        H.row = _mm512_set1_ps(eb.row);
        H.sink = _mm512_set1_epi32(eb.sink);
        H.joint_sink = _mm512_set1_epi32(eb.joint_sink);
    }
    Count* const c = level_counts;
    const int64_t blocks = count / kLanes;
    if (p.uniform_scale && p.uniform_range) dispatch<kAllFixed>(x, p, blocks, all_finite, level_stride, H, hist, acc, c);
    else if (p.uniform_range) dispatch<kScaleVaries>(x, p, blocks, all_finite, level_stride, H, hist, acc, c);
    else dispatch<kAllVary>(x, p, blocks, all_finite, level_stride, H, hist, acc, c);
    const int64_t full = blocks * kLanes;
    if (full == count) return;
    const TailBlock tail(x, full, count, p);
    dispatch<kAllVary>(tail.x, tail.lanes, 1, false, level_stride, H, hist, acc, c);
}

namespace {

// float16 candidate: clip to +-65504, round to half and back (nearest even).
template <bool Finite>
void runF16(const float* x, int64_t blocks, ErrorAccum& acc) {
    const __m512 zero = _mm512_setzero_ps(), big = _mm512_set1_ps(65504.0f), mbig = _mm512_set1_ps(-65504.0f);
    const __m512i one = _mm512_set1_epi32(1);
    Lanes L = load(acc);
    for (int64_t b = 0; b < blocks; ++b) {
        __m512 xv = _mm512_loadu_ps(x + b * kLanes);
        __mmask16 fin = 0xffff;
        if constexpr (!Finite) {
            fin = _mm512_cmp_ps_mask(_mm512_sub_ps(xv, xv), zero, _CMP_EQ_OQ);
            xv = _mm512_maskz_mov_ps(fin, xv);
        }
        const __mmask16 over = _mm512_mask_cmp_ps_mask(fin, _mm512_abs_ps(xv), big, _CMP_GT_OQ);
        const __m512 clipped = _mm512_min_ps(_mm512_max_ps(xv, mbig), big);
        const __m512 h = _mm512_cvtph_ps(_mm512_cvtps_ph(clipped, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m512 e = _mm512_sub_ps(h, xv);
        if constexpr (!Finite) e = _mm512_maskz_mov_ps(fin, e);
        accumulate(L, e);
        const __mmask16 at0 = _mm512_mask_cmp_ps_mask(fin, h, zero, _CMP_EQ_OQ);
        L.at_zero = _mm512_mask_add_epi32(L.at_zero, at0, L.at_zero, one);
        L.beyond = _mm512_mask_add_epi32(L.beyond, over, L.beyond, one);
    }
    store(acc, L);
}

}  // namespace

void float16KernelAvx512(const float* x, int64_t count, bool all_finite, ErrorAccum& acc) {
    const int64_t blocks = count / kLanes;
    if (all_finite) runF16<true>(x, blocks, acc);
    else runF16<false>(x, blocks, acc);
    const int64_t full = blocks * kLanes;
    if (full == count) return;
    alignas(64) float px[kLanes];
    for (int k = 0; k < kLanes; ++k) px[k] = full + k < count ? x[full + k] : std::nanf("");  // NaN: adds nothing
    runF16<false>(px, 1, acc);
}

}  // namespace qs::kernels
