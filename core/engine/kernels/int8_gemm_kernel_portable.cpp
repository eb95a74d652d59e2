#include "engine/kernels/int8_gemm_kernel.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

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

bool amxSupported() {
    static const bool yes = [] {
        __builtin_cpu_init();
        if (!vnniSupported() || !__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("amx-int8")) return false;
#if defined(__linux__) && defined(SYS_arch_prctl)
        // Linux enables the 8 KB tile data state per process on request (ARCH_REQ_XCOMP_PERM =
        // 0x1023, XFEATURE_XTILEDATA = 18; Documentation/arch/x86/xstate.rst); without it the
        // first tile instruction raises SIGILL. A kernel that predates AMX refuses.
        return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
        return false;
#endif
    }();
    return yes;
}

namespace {
std::atomic<int> amx_forced{-1};
}

bool amxActive() {
    static const bool env_off = [] {
        const char* v = std::getenv("QUANTSCOPE_AMX");
        return v && (std::strcmp(v, "0") == 0 || std::strcmp(v, "off") == 0);
    }();
    const int f = amx_forced.load();
    const bool wanted = f < 0 ? !env_off : f == 1;
    return wanted && activeIsa() == Isa::Avx512 && amxSupported();
}
void forceAmx(bool on) { amx_forced.store(on ? 1 : 0); }
void clearForcedAmx() { amx_forced.store(-1); }

}  // namespace qs::kernels
