// Eigen's GEMM for baseline x86-64; the dispatch lives here too.
#define QS_FLOAT_GEMM_NAME floatGemmBaseline
#include "engine/kernels/float_gemm.inc"

#include "quant/kernels/quant_error_kernel.h"  // Isa, activeIsa

namespace qs::kernels {

namespace {

template <class T>
void dispatch(const T* A, int64_t M, int64_t K, const T* B, int64_t N, T* C) {
    static const bool fma = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }();
    static const bool avx512 = [] {
        __builtin_cpu_init();
        return fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    }();
    const Isa isa = activeIsa();  // honours forceIsa, so tests and benches can pin each build
    if (avx512 && isa == Isa::Avx512) floatGemmAvx512(A, M, K, B, N, C);
    else if (fma && isa != Isa::Portable) floatGemmAvx2(A, M, K, B, N, C);
    else floatGemmBaseline(A, M, K, B, N, C);
}

}  // namespace

void floatGemm(const float* A, int64_t M, int64_t K, const float* B, int64_t N, float* C) { dispatch(A, M, K, B, N, C); }
void floatGemm(const double* A, int64_t M, int64_t K, const double* B, int64_t N, double* C) { dispatch(A, M, K, B, N, C); }

}  // namespace qs::kernels
