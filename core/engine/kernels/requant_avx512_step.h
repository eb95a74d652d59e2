#pragma once
// The output stage's integer steps on sixteen int32 sums in an AVX-512 register: shared by
// requantRowsAvx512 (requant_row_avx512.cpp) and the VNNI kernels that requantize in registers
// (int8_gemm_kernel_vnni.inc), so both give the same integers by construction. Internal linkage
// only (each includer compiles its own copy with its own flags, and SIMDe's emulation test
// includes it after SIMDe's native aliases): no function here may be an inline function with
// external linkage, which the linker could share between an AVX-512 and a plain caller.
// The includer includes <immintrin.h> (or SIMDe's aliases) first.
#include <cstdint>

namespace qs::kernels {
namespace {

// One column group's constants (sixteen columns): loaded once for all the rows they serve.
struct RequantColumns {
    __m512i bias, m, m_odd, shift, mask, half;
};

// Columns j .. j + 15 of bias / m / rshift; `k` masks the last, partial group's loads (and full
// says it is all ones, so a plain load serves).
[[maybe_unused]] static RequantColumns requantColumns(const int32_t* bias, const int32_t* m, const int32_t* rshift, __mmask16 k,
                                                      bool full) {
    const auto load = [&](const int32_t* p) { return full ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi32(k, p); };
    RequantColumns c;
    c.bias = load(bias), c.m = load(m), c.shift = load(rshift);
    c.m_odd = _mm512_srli_epi64(c.m, 32);
    const __m512i one = _mm512_set1_epi32(1);
    c.mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, c.shift), one);
    c.half = _mm512_srai_epi32(c.mask, 1);
    return c;
}

// clamp(zp + RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc + bias, m), shift)) per
// lane (gemmlowp / TFLite's MultiplyByQuantizedMultiplier with multipliers <= 1; requantize.h),
// as int32 lanes already inside [lo, hi].
[[maybe_unused]] static __m512i requantLanes(__m512i acc, const RequantColumns& c, __m512i zp, __m512i lo, __m512i hi) {
    const __m512i nudge = _mm512_set1_epi64(int64_t(1) << 30), one = _mm512_set1_epi32(1);
    const __m512i x = _mm512_add_epi32(acc, c.bias);
    // round(x * m / 2^31) in 64 bits for even and odd lanes, the high halves put back together
    const __m512i even = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, c.m), nudge), 31);
    const __m512i odd = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), c.m_odd), nudge), 31);
    const __m512i high = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
    // rounding divide by 2^shift, ties away from zero (gemmlowp RoundingDivideByPOT)
    const __m512i remainder = _mm512_and_si512(high, c.mask);
    const __mmask16 negative = _mm512_cmpgt_epi32_mask(_mm512_setzero_si512(), high);
    const __m512i threshold = _mm512_mask_add_epi32(c.half, negative, c.half, one);
    const __mmask16 up = _mm512_cmpgt_epi32_mask(remainder, threshold);
    __m512i v = _mm512_srav_epi32(high, c.shift);
    v = _mm512_mask_add_epi32(v, up, v, one);
    // The zero-masked forms: GCC 12's plain max/min pass _mm512_undefined_epi32() as the masked-off
    // source and may then warn that it is used uninitialized.
    return _mm512_maskz_min_epi32(0xFFFF, _mm512_maskz_max_epi32(0xFFFF, _mm512_add_epi32(v, zp), lo), hi);
}

// The lanes (in range already) narrowed to int8 at out: in a register and then an ordinary store
// (perf had the masked narrowing store, vpmovdb to memory, as the output stage's hottest
// instruction on Zen 5); only a partial group (k not all ones) needs the masked form.
[[maybe_unused]] static void storeInt8Lanes(__m512i v, __mmask16 k, bool full, int8_t* out) {
    if (full)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(v));
    else
        _mm512_mask_cvtepi32_storeu_epi8(out, k, v);
}

}  // namespace
}  // namespace qs::kernels
