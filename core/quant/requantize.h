#pragma once
// Fixed-point requantization, TFLite's integer scheme (gemmlowp's fixed-point arithmetic, as
// described in the TFLite int8 quantization spec and Jacob et al. 2018, "Quantization and
// Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference", sec. 2.2):
// a real multiplier M = in_scale * w_scale / out_scale is stored as a Q31 integer m in
// [2^30, 2^31) and a power-of-two exponent, M = m * 2^(shift - 31). An int32 accumulator is
// then scaled with an integer multiply, a rounding high half and a rounding right shift; no
// float is involved at run time.
#include <climits>
#include <cmath>
#include <cstdint>

namespace qs {

struct FixedMultiplier {
    int32_t multiplier = 0;  // Q31, in [2^30, 2^31) unless the real multiplier is 0
    int shift = 0;           // > 0: shift left first; < 0: rounding shift right after
};

// Splits a real multiplier (>= 0) into a Q31 mantissa and exponent (TFLite QuantizeMultiplier):
// 0.5 -> (2^30, 0); 0.25 -> (2^30, -1); 3.0 -> (0.75 * 2^31, 2). Mantissas that round up to 1.0
// move to the next exponent; multipliers below 2^-31 become 0.
inline FixedMultiplier quantizeMultiplier(double real) {
    FixedMultiplier f;
    if (!(real > 0)) return f;
    int exp = 0;
    const double q = std::frexp(real, &exp);  // real = q * 2^exp, q in [0.5, 1)
    int64_t fixed = static_cast<int64_t>(std::round(q * static_cast<double>(int64_t(1) << 31)));
    if (fixed == (int64_t(1) << 31)) fixed /= 2, ++exp;
    if (exp < -31) return f;
    if (exp > 30) exp = 30, fixed = INT32_MAX;  // saturate: a multiplier this large is a calibration bug
    f.multiplier = static_cast<int32_t>(fixed);
    f.shift = exp;
    return f;
}

// round(a * b / 2^31) as gemmlowp defines it: the nudge is 2^30 for a non-negative product and
// 1 - 2^30 for a negative one, then the division truncates toward zero, so ties go toward
// +infinity (1.5 -> 2, -1.5 -> -1); the one overflowing case (INT32_MIN^2) saturates.
inline int32_t saturatingRoundingDoublingHighMul(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    const int64_t ab = static_cast<int64_t>(a) * b;
    const int64_t nudge = ab >= 0 ? (int64_t(1) << 30) : (1 - (int64_t(1) << 30));
    return static_cast<int32_t>((ab + nudge) / (int64_t(1) << 31));
}

// x / 2^exponent rounded to nearest, ties away from zero (gemmlowp RoundingDivideByPOT).
inline int32_t roundingDivideByPot(int32_t x, int exponent) {
    const int32_t mask = static_cast<int32_t>((int64_t(1) << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

// acc * M in integers (TFLite MultiplyByQuantizedMultiplier). The left shift is done in
// 64 bits and saturated, so a large accumulator with M > 1 clamps instead of wrapping.
inline int32_t multiplyByQuantizedMultiplier(int32_t x, FixedMultiplier m) {
    const int left = m.shift > 0 ? m.shift : 0, right = m.shift > 0 ? 0 : -m.shift;
    int64_t shifted = static_cast<int64_t>(x) * (int64_t(1) << left);
    if (shifted > INT32_MAX) shifted = INT32_MAX;
    if (shifted < INT32_MIN) shifted = INT32_MIN;
    return roundingDivideByPot(saturatingRoundingDoublingHighMul(static_cast<int32_t>(shifted), m.multiplier), right);
}

// The 64-bit accumulator variant for 16-bit layers (int16 x int16 products): round(x * M),
// ties toward +infinity, computed exactly in 128 bits.
inline int64_t multiplyByQuantizedMultiplier64(int64_t x, FixedMultiplier m) {
    const int total = 31 - m.shift;  // >= 1 since shift <= 30
    const __int128 p = static_cast<__int128>(x) * m.multiplier + (static_cast<__int128>(1) << (total - 1));
    return static_cast<int64_t>(p >> total);
}

}  // namespace qs
