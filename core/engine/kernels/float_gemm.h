#pragma once
// The float engine's matrix products (Dense, and Conv2D after im2col) through Eigen's GEMM
// compiled three times: for baseline x86-64 (SSE2), for AVX2 + FMA and for AVX-512 + FMA,
// picked at run time like the integer kernels (never -march=native). Only raw pointers cross
// this interface: the AVX2 and AVX-512 copies of Eigen live in their own namespaces (see
// float_gemm_avx2.cpp), so the copies of Eigen's templates can never be merged by the linker.
// Results differ between them in the last bits (FMA rounds once per multiply-add, and the
// blockings differ); the float engine is the yardstick of accuracy, not a bit-exact reference.
#include <cstdint>

namespace qs::kernels {

// C (M x N) = A (M x K) * B (K x N), all row-major and contiguous; C must not alias A or B.
void floatGemm(const float* A, int64_t M, int64_t K, const float* B, int64_t N, float* C);

void floatGemmBaseline(const float* A, int64_t M, int64_t K, const float* B, int64_t N, float* C);
void floatGemmAvx2(const float* A, int64_t M, int64_t K, const float* B, int64_t N, float* C);
void floatGemmAvx512(const float* A, int64_t M, int64_t K, const float* B, int64_t N, float* C);

// The same in double (the integer engine's int16-activation products, exact in double at any
// blocking or FMA use: every partial sum is an integer below 2^53; quantized_engine.cpp).
void floatGemm(const double* A, int64_t M, int64_t K, const double* B, int64_t N, double* C);
void floatGemmBaseline(const double* A, int64_t M, int64_t K, const double* B, int64_t N, double* C);
void floatGemmAvx2(const double* A, int64_t M, int64_t K, const double* B, int64_t N, double* C);
void floatGemmAvx512(const double* A, int64_t M, int64_t K, const double* B, int64_t N, double* C);

}  // namespace qs::kernels
