// Eigen's GEMM for AVX-512 (F, DQ, VL) + FMA, called only where the CPU has them: on cores with
// full-width AVX-512 units it runs about 1.8x the AVX2 build (bench_int8's float GEMM lines). Its
// own namespace for the reason float_gemm_avx2.cpp gives.
#define Eigen QsEigenAvx512
#define QS_FLOAT_GEMM_NAME floatGemmAvx512
#include "engine/kernels/float_gemm.inc"
