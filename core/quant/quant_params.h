#pragma once
// Quantization parameters and the scalar reference quantizer, following TFLite's int8 spec
// (https://www.tensorflow.org/lite/performance/quantization_spec):
//     real = scale * (q - zero_point)
// Weights are symmetric with zero_point 0 on a narrow range [-(2^(b-1) - 1), 2^(b-1) - 1]
// (8 bits: [-127, 127]; 4: [-7, 7]; 2: [-1, 1]; 16: [-32767, 32767]). Asymmetric ranges use the
// full signed range [-2^(b-1), 2^(b-1) - 1] with a zero point that makes real 0 exact.
// Rounding is half away from zero, then saturation to [qmin, qmax], as TFLite's reference
// AffineQuantize does: q = clamp(round(x / scale) + zero_point, qmin, qmax).
#include <cstdint>
#include <string>

namespace qs {

enum class Scheme { Symmetric, Asymmetric };

struct QuantParams {
    double scale = 1.0;      // real = scale * (q - zero_point); always > 0
    int32_t zero_point = 0;
    int32_t qmin = -127;
    int32_t qmax = 127;
    bool operator==(const QuantParams&) const = default;
};

struct QuantRange {
    int32_t qmin, qmax;
};

// Integer range for `bits` (2..16) under `scheme` (symmetric = narrow range).
QuantRange quantRange(int bits, Scheme scheme);

// Symmetric: scale = clip / qmax, zero_point 0. A zero clip gives scale 1 (nothing to represent).
QuantParams symmetricParams(double clip, int bits);

// Asymmetric over [lo, hi], widened to include 0; the zero point is nudged to an integer
// (TFLite ChooseQuantizationParams): e.g. uint8 over (-10, 30) -> scale 0.156863, zero_point 64.
QuantParams asymmetricParams(double lo, double hi, QuantRange range);

// Power-of-two ("best precision", MATLAB fi): the largest fraction length f with
// max_abs * 2^f <= qmax, so scale = 2^-f. Returns f (may be negative for large values).
int bestPrecisionFractionLength(double max_abs, int bits);
QuantParams powerOfTwoParams(int fraction_length, int bits);

// Round half away from zero (std::round semantics), the TFLite convention.
inline double roundHalfAway(double x) {
    const double t = static_cast<double>(static_cast<int64_t>(x));
    const double frac = x - t;
    if (frac >= 0.5) return t + 1.0;
    if (frac <= -0.5) return t - 1.0;
    return t;
}

// Quantize in float32 arithmetic as TFLite's quantize op: round(x / scale) + zero_point,
// half away from zero, saturated. t is first clamped to one step beyond the range (so the
// integer conversion cannot overflow; NaN goes to qmin), then rounded exactly: t - trunc(t) is
// exact in float for |t| < 2^24. Branch-free, so loops over arrays vectorise.
inline int32_t quantize(float x, const QuantParams& p) {
    const float lo = static_cast<float>(p.qmin - p.zero_point - 1), hi = static_cast<float>(p.qmax - p.zero_point + 1);
    float t = x / static_cast<float>(p.scale);
    t = t > lo ? t : lo;  // NaN compares false: lo
    t = t < hi ? t : hi;
    int32_t i = static_cast<int32_t>(t);
    const float f = t - static_cast<float>(i);
    i += static_cast<int32_t>(f >= 0.5f) - static_cast<int32_t>(f <= -0.5f);
    i += p.zero_point;
    return i < p.qmin ? p.qmin : (i > p.qmax ? p.qmax : i);
}
inline float dequantize(int32_t q, const QuantParams& p) {  // inline: element loops vectorise with it
    return static_cast<float>(q - p.zero_point) * static_cast<float>(p.scale);
}

// float16 "reduced float": round-to-nearest-even to IEEE half and back (with overflow to inf).
float roundToFloat16(float x);
// roundToFloat16 on a whole array, with the CPU's F16C conversion where it has one (the same
// rounding: round to nearest even, overflow to infinity, subnormal halves; NaN stays NaN).
void roundToFloat16(float* x, int64_t n);

}  // namespace qs
