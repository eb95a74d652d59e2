#include "engine/depthwise_taps.h"

#include <cstring>

namespace qs {

TapRow tapRow(const ConvGeometry& g, int64_t Wp) { return {g.dh * Wp * g.C, g.dw * g.C, g.sw * g.C, g.KH, g.KW, g.C, g.OW}; }

namespace {
// One body for the three: each block of 64 bytes of sums (16 float or int32, 8 double) adds its
// taps in one vector (GCC's vector extensions; inputs converted lane by lane), the channels past
// the last whole block one at a time. Inlined into each clone below, so it is compiled for each ISA.
template <class In, class Acc>
inline __attribute__((always_inline)) void tapSums(const In* x, const TapRow& row, const In* k, Acc* acc) {
    const TapRow t = row;  // in registers: the stores to acc could otherwise alias it
    constexpr int64_t B = 64 / sizeof(Acc);
    typedef In InV __attribute__((vector_size(B * sizeof(In))));
    typedef Acc AccV __attribute__((vector_size(B * sizeof(Acc))));
    for (int64_t ox = 0; ox < t.OW; ++ox) {
        int64_t c0 = 0;
        for (; c0 + B <= t.C; c0 += B) {
            AccV a = {};
            InV xv, kv;  // loaded with memcpy: unaligned, no aliasing question
            for (int64_t ky = 0; ky < t.KH; ++ky)
                for (int64_t kx = 0; kx < t.KW; ++kx) {
                    std::memcpy(&xv, x + ky * t.dy + ox * t.sx + kx * t.dx + c0, sizeof xv);
                    std::memcpy(&kv, k + (ky * t.KW + kx) * t.C + c0, sizeof kv);
                    a += __builtin_convertvector(xv, AccV) * __builtin_convertvector(kv, AccV);
                }
            std::memcpy(acc + ox * t.C + c0, &a, sizeof a);
        }
        for (; c0 < t.C; ++c0) {
            Acc a = 0;
            for (int64_t ky = 0; ky < t.KH; ++ky)
                for (int64_t kx = 0; kx < t.KW; ++kx)
                    a += static_cast<Acc>(x[ky * t.dy + ox * t.sx + kx * t.dx + c0]) * static_cast<Acc>(k[(ky * t.KW + kx) * t.C + c0]);
            acc[ox * t.C + c0] = a;
        }
    }
}
}  // namespace

// A clone per ISA (one zmm, two ymm or four xmm per block), picked at load time.
__attribute__((target_clones("avx512f", "avx2", "default"))) void depthwiseTapSums(const float* x, const TapRow& t, const float* k, float* acc) {
    tapSums(x, t, k, acc);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void depthwiseTapSums(const int16_t* x, const TapRow& t, const int16_t* k,
                                                                                  int32_t* acc) {
    tapSums(x, t, k, acc);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void depthwiseTapSums(const double* x, const TapRow& t, const double* k,
                                                                                  double* acc) {
    tapSums(x, t, k, acc);
}

}  // namespace qs
