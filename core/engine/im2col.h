#pragma once
// im2col, the one both engines use: the float engine (Conv2D, GPTQ's Hessian inputs; padding
// 0) and the integer engine (int8 and int16 activations; padding holds the zero point). Rows are
// output pixels, columns (ky, kx, c). With unit horizontal dilation, a kernel row that lies
// inside the image is one contiguous run of KW * C values, copied in one move.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/float_ops.h"  // ConvGeometry

namespace qs {

// Copies n bytes with fixed-size moves (two, overlapping, of the largest size that fits) rather
// than a memmove call: the first conv of an image model has one input channel, so its im2col
// moves runs of 3 values, and the calls cost more than the copying (a third of fmnist_cnn's
// integer time, measured with perf); the second moves runs of 3 x 32 channels.
inline void copyFew(void* dst, const void* src, size_t n) {
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    const auto two = [&](auto tag) {
        constexpr size_t w = sizeof(tag);
        std::memcpy(d, s, w);
        std::memcpy(d + n - w, s + n - w, w);
    };
    if (n > 128) std::memcpy(d, s, n);
    else if (n >= 64) two(std::array<unsigned char, 64>{});
    else if (n >= 32) two(std::array<unsigned char, 32>{});
    else if (n >= 16) two(std::array<unsigned char, 16>{});
    else if (n >= 8) two(uint64_t{});
    else if (n >= 4) two(uint32_t{});
    else if (n >= 2) two(uint16_t{});
    else if (n == 1) *d = *s;
}

// One sample's patches into `out`: (OH * OW) x (KH * KW * C) values.
template <class T>
void im2col(const T* src, const ConvGeometry& g, T pad, T* out) {
    const int64_t K = g.KH * g.KW * g.C, run = g.KW * g.C;
    for (int64_t oy = 0; oy < g.OH; ++oy)
        for (int64_t ox = 0; ox < g.OW; ++ox) {
            T* dst = out + (oy * g.OW + ox) * K;
            const int64_t ix0 = ox * g.sw - g.pl;
            const bool row_inside = g.dw == 1 && ix0 >= 0 && ix0 + g.KW <= g.W;
            for (int64_t ky = 0; ky < g.KH; ++ky) {
                const int64_t iy = oy * g.sh - g.pt + ky * g.dh;
                T* d = dst + ky * run;
                if (iy < 0 || iy >= g.H) {
                    std::fill(d, d + run, pad);
                } else if (row_inside) {
                    copyFew(d, src + (iy * g.W + ix0) * g.C, static_cast<size_t>(run) * sizeof(T));
                } else {
                    for (int64_t kx = 0; kx < g.KW; ++kx, d += g.C) {
                        const int64_t ix = ix0 + kx * g.dw;
                        if (ix < 0 || ix >= g.W) std::fill(d, d + g.C, pad);
                        else copyFew(d, src + (iy * g.W + ix) * g.C, static_cast<size_t>(g.C) * sizeof(T));
                    }
                }
            }
        }
}

// The same into a vector sized to fit.
template <class T>
void im2col(const T* src, const ConvGeometry& g, T pad, std::vector<T>& out) {
    out.resize(static_cast<size_t>(g.OH * g.OW * g.KH * g.KW * g.C));
    im2col(src, g, pad, out.data());
}

}  // namespace qs
