// AVX2 instance of the candidate-error kernel, written with intrinsics. It keeps the portable
// kernel's exact semantics (quant_error_kernel.inc): lane k of a 16-block accumulates elements
// base + k, adds happen in the same order, no FMA; the ISA test checks the bits agree.
// Compile flags (core/CMakeLists.txt): -mavx2 -mf16c -ffp-contract=off.
//
// Cost per eight values, which is what the benchmark measures: one division (it must be a
// true division, x * (1/s) rounds differently), four for the rounding, two for the clamp, and
// compares that feed counters directly (beyond range is r != clamp(r); at the zero point is
// clamp(r) == 0, counted only where channels' zero points differ). Per-tensor parameters stay
// in registers; a tensor without NaN/Inf (known from the first pass) skips the masks. The
// level and error-bin counts, one memory increment per value each, run after the vector loop
// (see run()).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "quant/kernels/quant_error_kernel.h"

namespace qs::kernels {

namespace {

// One half (8 lanes) of the 16-lane accumulators.
struct Half {
    __m256d e2[2], e1[2];
    __m256 maxe;
    __m256i at_zero, beyond;
};

struct Consts {
    __m256 halfdown, absmask, zero;
    __m256i sink, copy_offset;  // copy_offset: lane k counts into level histogram copy k % 4
    __m256 hw, hrw, hlast, hrow;  // error histogram: bins per step, range * that, last bin, bins + 1
    __m256i hsink, hjoint_sink;
};

// Error histogram: none, counted separately, or jointly with the levels (quant_error_kernel.h).
enum HistMode { kNoHist, kSeparate, kJoint };

// Lanes 8h..8h+7 of the accumulators, in and out of registers.
Half loadHalf(const ErrorAccum& acc, int h) {
    Half L;
    L.e2[0] = _mm256_loadu_pd(acc.sum_e2 + 8 * h);
    L.e2[1] = _mm256_loadu_pd(acc.sum_e2 + 8 * h + 4);
    L.e1[0] = _mm256_loadu_pd(acc.sum_e + 8 * h);
    L.e1[1] = _mm256_loadu_pd(acc.sum_e + 8 * h + 4);
    L.maxe = _mm256_loadu_ps(acc.max_e + 8 * h);
    L.at_zero = L.beyond = _mm256_setzero_si256();
    return L;
}

void storeHalf(ErrorAccum& acc, int h, const Half& L) {
    _mm256_storeu_pd(acc.sum_e2 + 8 * h, L.e2[0]);
    _mm256_storeu_pd(acc.sum_e2 + 8 * h + 4, L.e2[1]);
    _mm256_storeu_pd(acc.sum_e + 8 * h, L.e1[0]);
    _mm256_storeu_pd(acc.sum_e + 8 * h + 4, L.e1[1]);
    _mm256_storeu_ps(acc.max_e + 8 * h, L.maxe);
    alignas(32) int32_t zc[8], bc[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(zc), L.at_zero);
    _mm256_store_si256(reinterpret_cast<__m256i*>(bc), L.beyond);
    for (int k = 0; k < 8; ++k) {
        acc.at_zero[8 * h + k] += zc[k];
        acc.beyond[8 * h + k] += bc[k];
    }
}

Consts makeConsts(int32_t sink, int64_t level_stride, const ErrorHistogramSpec& hist) {
    Consts K{};
    K.halfdown = _mm256_set1_ps(kHalfDown);
    K.absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    K.zero = _mm256_setzero_ps();
    K.sink = _mm256_set1_epi32(sink);
    const int32_t st = static_cast<int32_t>(level_stride);
    K.copy_offset = _mm256_setr_epi32(0, st, 2 * st, 3 * st, 0, st, 2 * st, 3 * st);
    if (hist.bins > 0) {
        const ErrorBinning eb = errorBinning(hist, sink);
        K.hw = _mm256_set1_ps(eb.per_step);
        K.hrw = _mm256_set1_ps(eb.offset);
        K.hlast = _mm256_set1_ps(eb.last);
        K.hrow = _mm256_set1_ps(eb.row);
        K.hsink = _mm256_set1_epi32(eb.sink);
        K.hjoint_sink = _mm256_set1_epi32(eb.joint_sink);
    }
    return K;
}

// Parameters of eight lanes: from registers (per-tensor) or from the expanded arrays.
struct Params {
    __m256 s, lo, hi, off;
};

// Adds eight errors e (and the at-zero / beyond-range masks) into the lanes' sums; with
// non-finite values possible, only the lanes where fin is set count. CountZero: see run().
template <bool Finite, bool CountZero>
inline void accumulate(Half& L, __m256 e, __m256 zero, __m256 beyond, __m256 fin, __m256 absmask) {
    if constexpr (!Finite) {
        e = _mm256_and_ps(e, fin);
        zero = _mm256_and_ps(zero, fin);
        beyond = _mm256_and_ps(beyond, fin);
    }
    const __m256d elo = _mm256_cvtps_pd(_mm256_castps256_ps128(e)), ehi = _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1));
    L.e2[0] = _mm256_add_pd(L.e2[0], _mm256_mul_pd(elo, elo));
    L.e2[1] = _mm256_add_pd(L.e2[1], _mm256_mul_pd(ehi, ehi));
    L.e1[0] = _mm256_add_pd(L.e1[0], elo);
    L.e1[1] = _mm256_add_pd(L.e1[1], ehi);
    L.maxe = _mm256_max_ps(L.maxe, _mm256_and_ps(e, absmask));
    if constexpr (CountZero) L.at_zero = _mm256_sub_epi32(L.at_zero, _mm256_castps_si256(zero));  // masks are -1 where true
    L.beyond = _mm256_sub_epi32(L.beyond, _mm256_castps_si256(beyond));
}

// Where the parameters come from: all from registers (per-tensor), the scale from the arrays
// and the range from registers (per-channel symmetric), or all from the arrays.
enum Mode { kAllFixed, kScaleVaries, kAllVary };

template <int M>
inline Params params(const CandidateLanes& p, int64_t j, const Params& fixed) {
    if constexpr (M == kAllFixed) return fixed;
    if constexpr (M == kScaleVaries) return {_mm256_loadu_ps(p.scale + j), fixed.lo, fixed.hi, fixed.off};
    return {_mm256_loadu_ps(p.scale + j), _mm256_loadu_ps(p.lo + j), _mm256_loadu_ps(p.hi + j), _mm256_loadu_ps(p.level_offset + j)};
}

// Lanes 0-7, then lanes 8-15, of `blocks` 16-blocks: each lane still adds its elements in
// order, so the sums are those of the portable kernel; eight lanes at a time keep the
// accumulators in registers. The vector loop only stores each value's level (and error bin)
// index; the counting runs afterwards over a short buffer of them. Counting inside the vector
// loop made GCC keep the accumulators in memory, so every iteration waited on a store-to-load
// round trip. Constants are locals (a const reference could alias the counters), and with one
// range for every element (M != kAllVary) the at-zero count is left to the caller, who reads
// it from the zero point's level count.
template <int M, bool Finite, int Hist>
void run(const float* x, const CandidateLanes& p, int64_t blocks, const Consts& K, ErrorAccum& acc, Count* c, Count* hc) {
    constexpr bool kCountZero = M == kAllVary;
    constexpr int64_t kSpan = 256;  // blocks per buffer: 8 KB of indices each, in L1
    const __m256 halfdown = K.halfdown, absmask = K.absmask;
    const __m256i copy_offset = K.copy_offset;
    alignas(32) int32_t qidx[kSpan * 8], eidx[Hist == kSeparate ? kSpan * 8 : 8];
    for (int h = 0; h < 2; ++h) {
        Half L = loadHalf(acc, h);
        const Params fixed{_mm256_set1_ps(p.scale[0]), _mm256_set1_ps(p.lo[0]), _mm256_set1_ps(p.hi[0]),
                           _mm256_set1_ps(p.level_offset[0])};
        for (int64_t b0 = 0; b0 < blocks; b0 += kSpan) {
            const int64_t nb = std::min(kSpan, blocks - b0);
            for (int64_t i = 0; i < nb; ++i) {
                const int64_t j = (b0 + i) * kLanes + 8 * h;
                const Params P = params<M>(p, j, fixed);
                if (h == 0) prefetchFloats(x + j, kPrefetchAhead);  // one line per block, on the first pass over it
                const __m256 raw = _mm256_loadu_ps(x + j);
                __m256 xv = raw, fin = _mm256_setzero_ps();
                if constexpr (!Finite) {
                    fin = _mm256_cmp_ps(_mm256_sub_ps(raw, raw), _mm256_setzero_ps(), _CMP_EQ_OQ);  // false for NaN, Inf
                    xv = _mm256_and_ps(raw, fin);
                }
                // The portable kernel holds x / s to +-2^30 for its conversion through int32;
                // vroundps needs no such bound, and nothing observable changes: r is then beyond
                // every level either way, so c, e and "beyond" are the same, and c - t lands in
                // the same (end) error histogram bin.
                const __m256 t = _mm256_div_ps(xv, P.s);
                const __m256 hd = _mm256_or_ps(_mm256_andnot_ps(absmask, t), halfdown);  // copysign(kHalfDown, t)
                const __m256 r = _mm256_round_ps(_mm256_add_ps(t, hd), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
                const __m256 cq = _mm256_min_ps(_mm256_max_ps(r, P.lo), P.hi);  // q - zp
                const __m256 e = _mm256_sub_ps(_mm256_mul_ps(cq, P.s), xv);
                const __m256 beyond = _mm256_cmp_ps(r, cq, _CMP_NEQ_UQ);
                __m256 zero = _mm256_setzero_ps();
                if constexpr (kCountZero) zero = _mm256_cmp_ps(cq, _mm256_setzero_ps(), _CMP_EQ_OQ);
                accumulate<Finite, kCountZero>(L, e, zero, beyond, fin, absmask);
                const __m256 level = _mm256_add_ps(cq, P.off);  // q - qmin: exact small integers
                if constexpr (Hist != kJoint) {
                    __m256i qi = _mm256_cvtps_epi32(level);
                    if constexpr (!Finite) qi = _mm256_blendv_epi8(K.sink, qi, _mm256_castps_si256(fin));
                    _mm256_store_si256(reinterpret_cast<__m256i*>(qidx + 8 * i), _mm256_add_epi32(qi, copy_offset));
                }
                if constexpr (Hist != kNoHist) {  // error in steps c - x/s, binned as floor(v * w + range * w), clamped as float
                    __m256 v = _mm256_floor_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(cq, t), K.hw), K.hrw));
                    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_setzero_ps()), K.hlast);
                    if constexpr (Hist == kSeparate) {
                        __m256i bi = _mm256_cvttps_epi32(v);
                        if constexpr (!Finite) bi = _mm256_blendv_epi8(K.hsink, bi, _mm256_castps_si256(fin));
                        _mm256_store_si256(reinterpret_cast<__m256i*>(eidx + 8 * i), bi);
                    } else {  // level * row + bin: integers below 2^24 (the caller's limit), exact in float
                        __m256i ji = _mm256_cvtps_epi32(_mm256_add_ps(_mm256_mul_ps(level, K.hrow), v));
                        if constexpr (!Finite) ji = _mm256_blendv_epi8(K.hjoint_sink, ji, _mm256_castps_si256(fin));
                        _mm256_store_si256(reinterpret_cast<__m256i*>(qidx + 8 * i), ji);
                    }
                }
            }
            for (int64_t i = 0; i < nb * 8; ++i) ++c[qidx[i]];  // qidx holds the copy's offset
            if constexpr (Hist == kSeparate)
                for (int64_t i = 0; i < nb * 8; ++i) ++hc[eidx[i]];
        }
        storeHalf(acc, h, L);
    }
}

template <int M, bool Finite>
void dispatchHist(const float* x, const CandidateLanes& p, int64_t blocks, const ErrorHistogramSpec& hist, const Consts& K,
                  ErrorAccum& acc, Count* c) {
    if (hist.joint()) run<M, Finite, kJoint>(x, p, blocks, K, acc, c, nullptr);
    else if (hist.bins > 0) run<M, Finite, kSeparate>(x, p, blocks, K, acc, c, hist.counts);
    else run<M, Finite, kNoHist>(x, p, blocks, K, acc, c, nullptr);
}

template <int M>
void dispatch(const float* x, const CandidateLanes& p, int64_t blocks, bool finite, const ErrorHistogramSpec& hist,
              const Consts& K, ErrorAccum& acc, Count* c) {
    if (finite) dispatchHist<M, true>(x, p, blocks, hist, K, acc, c);
    else dispatchHist<M, false>(x, p, blocks, hist, K, acc, c);
}

}  // namespace

void errorKernelAvx2(const float* x, int64_t count, const CandidateLanes& p, bool all_finite, ErrorAccum& acc,
                     Count* level_counts, int64_t level_stride, const ErrorHistogramSpec& hist) {
    const Consts K = makeConsts(p.sink, level_stride, hist);
    Count* const c = level_counts;
    const int64_t blocks = count / kLanes;
    if (p.uniform_scale && p.uniform_range) dispatch<kAllFixed>(x, p, blocks, all_finite, hist, K, acc, c);
    else if (p.uniform_range) dispatch<kScaleVaries>(x, p, blocks, all_finite, hist, K, acc, c);
    else dispatch<kAllVary>(x, p, blocks, all_finite, hist, K, acc, c);
    const int64_t full = blocks * kLanes;
    if (full == count) return;
    const TailBlock tail(x, full, count, p);
    dispatch<kAllVary>(tail.x, tail.lanes, 1, false, hist, K, acc, c);
}

namespace {

// float16 candidate, eight lanes: clip to +-65504, round to half and back (F16C, nearest even).
template <bool Finite>
inline void eightF16(const float* x, const Consts& K, Half& L) {
    const __m256 raw = _mm256_loadu_ps(x);
    __m256 xv = raw, fin = _mm256_setzero_ps();
    if constexpr (!Finite) {
        fin = _mm256_cmp_ps(_mm256_sub_ps(raw, raw), K.zero, _CMP_EQ_OQ);
        xv = _mm256_and_ps(raw, fin);
    }
    const __m256 big = _mm256_set1_ps(65504.0f), mbig = _mm256_set1_ps(-65504.0f);
    const __m256 over = _mm256_cmp_ps(_mm256_and_ps(xv, K.absmask), big, _CMP_GT_OQ);
    const __m256 clipped = _mm256_min_ps(_mm256_max_ps(xv, mbig), big);
    const __m256 h = _mm256_cvtph_ps(_mm256_cvtps_ph(clipped, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __m256 e = _mm256_sub_ps(h, xv), zero = _mm256_cmp_ps(h, K.zero, _CMP_EQ_OQ);
    accumulate<Finite, true>(L, e, zero, over, fin, K.absmask);
}

template <bool Finite>
void runF16(const float* x, int64_t blocks, const Consts& K, ErrorAccum& acc) {
    for (int h = 0; h < 2; ++h) {
        Half L = loadHalf(acc, h);
        for (int64_t b = 0; b < blocks; ++b) eightF16<Finite>(x + b * kLanes + 8 * h, K, L);
        storeHalf(acc, h, L);
    }
}

}  // namespace

void float16KernelAvx2(const float* x, int64_t count, bool all_finite, ErrorAccum& acc) {
    const Consts K = makeConsts(0, 0, ErrorHistogramSpec{});
    const int64_t blocks = count / kLanes;
    if (all_finite) runF16<true>(x, blocks, K, acc);
    else runF16<false>(x, blocks, K, acc);
    const int64_t full = blocks * kLanes;
    if (full == count) return;
    alignas(32) float px[kLanes];
    for (int k = 0; k < kLanes; ++k) px[k] = full + k < count ? x[full + k] : std::nanf("");  // NaN: adds nothing
    runF16<false>(px, 1, K, acc);
}

}  // namespace qs::kernels
