#include "quant/quant_params.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace qs {

QuantRange quantRange(int bits, Scheme scheme) {
    const int32_t half = int32_t(1) << (bits - 1);
    if (scheme == Scheme::Symmetric) return {-(half - 1), half - 1};
    return {-half, half - 1};
}

QuantParams symmetricParams(double clip, int bits) {
    const QuantRange r = quantRange(bits, Scheme::Symmetric);
    QuantParams p;
    p.qmin = r.qmin;
    p.qmax = r.qmax;
    p.zero_point = 0;
    p.scale = clip > 0 && std::isfinite(clip) ? clip / r.qmax : 1.0;
    return p;
}

QuantParams asymmetricParams(double lo, double hi, QuantRange range) {
    QuantParams p;
    p.qmin = range.qmin;
    p.qmax = range.qmax;
    lo = std::min(lo, 0.0);  // the range must contain real 0 so that padding and ReLU are exact
    hi = std::max(hi, 0.0);
    if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) {
        p.scale = 1.0;
        p.zero_point = 0;
        return p;
    }
    p.scale = (hi - lo) / (static_cast<double>(range.qmax) - range.qmin);
    // TFLite: pick the zero point from whichever end has the smaller rounding error, then nudge.
    const double zp_from_min = range.qmin - lo / p.scale;
    const double zp_from_max = range.qmax - hi / p.scale;
    const double err_min = std::abs(range.qmin) + std::abs(lo / p.scale);
    const double err_max = std::abs(range.qmax) + std::abs(hi / p.scale);
    const double zp = err_min < err_max ? zp_from_min : zp_from_max;
    p.zero_point = static_cast<int32_t>(std::clamp(roundHalfAway(zp), double(range.qmin), double(range.qmax)));
    return p;
}

int bestPrecisionFractionLength(double max_abs, int bits) {
    const double qmax = quantRange(bits, Scheme::Symmetric).qmax;
    if (!(max_abs > 0) || !std::isfinite(max_abs)) return bits - 1;
    int f = static_cast<int>(std::floor(std::log2(qmax / max_abs)));
    // Guard log2's rounding at exact powers: the largest f with max_abs * 2^f <= qmax.
    while (std::ldexp(max_abs, f + 1) <= qmax) ++f;
    while (std::ldexp(max_abs, f) > qmax) --f;
    return f;
}

QuantParams powerOfTwoParams(int fraction_length, int bits) {
    const QuantRange r = quantRange(bits, Scheme::Symmetric);
    QuantParams p;
    p.qmin = r.qmin;
    p.qmax = r.qmax;
    p.scale = std::ldexp(1.0, -fraction_length);
    return p;
}

float roundToFloat16(float x) {
    if (!std::isfinite(x)) return x;
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    const uint32_t sign = bits & 0x80000000u;
    const float a = std::fabs(x);
    float out;
    if (a >= 65520.0f) {
        out = std::numeric_limits<float>::infinity();  // rounds past half's max 65504
    } else if (a < 6.103515625e-05f) {
        // Subnormal half: multiples of 2^-24, round to nearest even.
        out = std::nearbyint(a * 16777216.0f) / 16777216.0f;
    } else {
        // Keep 10 mantissa bits, round to nearest even on the dropped 13.
        uint32_t m;
        std::memcpy(&m, &a, 4);
        const uint32_t lsb = (m >> 13) & 1u;
        m += 0x0FFFu + lsb;
        m &= ~0x1FFFu;
        std::memcpy(&out, &m, 4);
    }
    uint32_t ob;
    std::memcpy(&ob, &out, 4);
    ob |= sign;
    std::memcpy(&out, &ob, 4);
    return out;
}

namespace {

#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) void roundToFloat16F16c(float* x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; ++i) x[i] = roundToFloat16(x[i]);
}
#endif

}  // namespace

void roundToFloat16(float* x, int64_t n) {
#if defined(__x86_64__)
    static const bool f16c = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
    }();
    if (f16c) return roundToFloat16F16c(x, n);
#endif
    for (int64_t i = 0; i < n; ++i) x[i] = roundToFloat16(x[i]);
}

}  // namespace qs
