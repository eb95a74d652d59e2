// The direct float convolution for baseline x86-64 (SSE2), the packing, and the dispatch.
#define QS_VEC_FLOATS 4
#define QS_FLOAT_CONV_NAME floatConvBaseline
#define QS_FLOAT_CONV_PANEL_NAME floatConvPanelBaseline
#include "engine/kernels/float_conv.inc"

namespace qs::kernels {

namespace {
// The kernel an ISA runs: AVX-512 needs F only (the vector extensions use no other subset), and
// the AVX2 and AVX-512 kernels need FMA, which every CPU with AVX-512 F has.
Isa convIsa(Isa isa) {
    static const bool fma = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }();
    static const bool avx512 = [] {
        __builtin_cpu_init();
        return fma && __builtin_cpu_supports("avx512f");
    }();
    if (isa == Isa::Avx512 && avx512) return Isa::Avx512;
    if (isa != Isa::Portable && fma) return Isa::Avx2;
    return Isa::Portable;
}
}  // namespace

int64_t floatConvPanel(Isa isa, int64_t OC) {
    switch (convIsa(isa)) {
        case Isa::Avx512: return floatConvPanelAvx512(OC);
        case Isa::Avx2: return floatConvPanelAvx2(OC);
        case Isa::Portable: break;
    }
    return floatConvPanelBaseline(OC);
}

void floatConv(Isa isa, const FloatConvJob& job) {
    switch (convIsa(isa)) {
        case Isa::Avx512: return floatConvAvx512(job);
        case Isa::Avx2: return floatConvAvx2(job);
        case Isa::Portable: break;
    }
    floatConvBaseline(job);
}

bool floatConvPackTail(const float* w, int64_t K, int64_t OC, int64_t nr, float* tail) {
    const int64_t first = OC / nr * nr, n = OC - first;
    if (n == 0) return false;
    for (int64_t k = 0; k < K; ++k) {
        std::memcpy(tail + k * nr, w + k * OC + first, static_cast<size_t>(n) * sizeof(float));
        std::fill(tail + k * nr + n, tail + (k + 1) * nr, 0.0f);
    }
    return true;
}

}  // namespace qs::kernels
