#include "engine/kernels/int8_gemm_kernel.h"

#include "quant/requantize.h"

namespace qs::kernels {

void gemmTilePortable(const int16_t* a, const int8_t* b, int64_t pairs, int32_t* acc) {
    int32_t c[kGemmMR][kGemmNR] = {};
    for (int64_t p = 0; p < pairs; ++p) {
        const int16_t* ap = a + p * kGemmMR * 2;
        const int8_t* bp = b + p * kGemmNR * 2;
        for (int r = 0; r < kGemmMR; ++r) {
            const int32_t a0 = ap[2 * r], a1 = ap[2 * r + 1];
            for (int n = 0; n < kGemmNR; ++n) c[r][n] += a0 * bp[2 * n] + a1 * bp[2 * n + 1];
        }
    }
    for (int r = 0; r < kGemmMR; ++r)
        for (int n = 0; n < kGemmNR; ++n) acc[r * kGemmNR + n] = c[r][n];
}

void requantRowPortable(const int32_t* acc, const int32_t* bias, const int32_t* m, const int32_t* rshift, int32_t zp, int32_t lo,
                        int32_t hi, int64_t n, int8_t* out) {
    for (int64_t j = 0; j < n; ++j) {
        const int32_t v = roundingDivideByPot(saturatingRoundingDoublingHighMul(acc[j] + bias[j], m[j]), rshift[j]) + zp;
        out[j] = static_cast<int8_t>(v < lo ? lo : (v > hi ? hi : v));
    }
}

void gemmRowPortable(const int16_t* a, const int8_t* b, int64_t pairs, int32_t* acc) {
    int32_t c[kGemmNR] = {};
    for (int64_t p = 0; p < pairs; ++p) {
        const int32_t a0 = a[2 * p], a1 = a[2 * p + 1];
        const int8_t* bp = b + p * kGemmNR * 2;
        for (int n = 0; n < kGemmNR; ++n) c[n] += a0 * bp[2 * n] + a1 * bp[2 * n + 1];
    }
    for (int n = 0; n < kGemmNR; ++n) acc[n] = c[n];
}

GemmRowKernel gemmRowKernel(Isa isa) { return isa == Isa::Portable ? gemmRowPortable : gemmRowAvx2; }

RequantRowKernel requantRowKernel(Isa isa) {
    switch (isa) {
        case Isa::Avx512: return requantRowAvx512;
        case Isa::Avx2: return requantRowAvx2;
        case Isa::Portable: break;
    }
    return requantRowPortable;
}

GemmTileKernel gemmTileKernel(Isa isa) {
    // AVX-512 machines without VNNI run the AVX2 tile; with VNNI the driver takes the VNNI
    // kernels instead (another packing; see int8_gemm.cpp).
    return isa == Isa::Portable ? gemmTilePortable : gemmTileAvx2;
}

bool vnniSupported() {
    static const bool yes = [] {
        __builtin_cpu_init();
        return isaSupported(Isa::Avx512) && __builtin_cpu_supports("avx512vnni");
    }();
    return yes;
}

}  // namespace qs::kernels
