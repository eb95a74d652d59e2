#pragma once
// What both engines' depthwise convolutions (depth multiplier 1) share: the sample copied into
// a padded buffer (minus its zero point, widened: so padding is plain 0 and no tap is
// bounds-checked), and one output row's per-channel sums over the kernel taps from it.
#include <cstdint>

#include "engine/float_ops.h"  // ConvGeometry, paddedExtent

namespace qs {

// Tap (ky, kx) of output pixel ox in a row starts at x + ky * dy + ox * sx + kx * dx.
struct TapRow {
    int64_t dy, dx, sx, KH, KW, C, OW;
};
// The taps of `g` over a padded buffer Wp pixels wide (paddedExtent).
TapRow tapRow(const ConvGeometry& g, int64_t Wp);

// The sample `src` (H, W, C) minus `zero`, as W, into the interior of `dst`, a buffer of
// paddedExtent(g) pixels whose padding holds 0 (left from its allocation, never written).
template <class T, class W>
void padInto(const T* src, const ConvGeometry& g, int64_t Wp, W zero, W* dst) {
    for (int64_t y = 0; y < g.H; ++y) {
        W* d = dst + ((y + g.pt) * Wp + g.pl) * g.C;
        const T* s = src + y * g.W * g.C;
        for (int64_t i = 0; i < g.W * g.C; ++i) d[i] = static_cast<W>(static_cast<W>(s[i]) - zero);
    }
}

// acc[ox * C + c] = sum over taps of x[tap][c] * k[(ky * KW + kx) * C + c], for one output row
// (x: the row's first padded input row). The float engine's sums in float; the int8 domain's
// int16 x int16 in int32 (its wrapping as the scalar loop's); the int16 domain's in double, which
// holds them exactly (each product is below 2^31, and a sum has KH * KW of them).
void depthwiseTapSums(const float* x, const TapRow& t, const float* k, float* acc);
void depthwiseTapSums(const int16_t* x, const TapRow& t, const int16_t* k, int32_t* acc);
void depthwiseTapSums(const double* x, const TapRow& t, const double* k, double* acc);

}  // namespace qs
