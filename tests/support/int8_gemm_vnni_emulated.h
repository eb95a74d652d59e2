#pragma once
// The VNNI GEMM kernels (core/engine/kernels/int8_gemm_kernel_vnni.inc) compiled against SIMDe's
// portable AVX-512 VNNI, so tests check their integers on CPUs without VNNI. Test-only.
#include "engine/kernels/int8_gemm_kernel.h"

namespace qs::kernels {
void gemmTileVnniEmulated(const uint8_t* a, const int8_t* b0, const int8_t* b1, int64_t quads, const int32_t* init,
                          int32_t* acc);
void gemmTileRowsVnniEmulated(const uint8_t* const* rows, int64_t runs, int64_t run_step, int64_t run_quads, const int8_t* b0,
                              const int8_t* b1, const int32_t* init, int32_t* acc, int64_t acc_stride);
void gemmTileRowsMax4VnniEmulated(const uint8_t* const* rows, int64_t runs, int64_t run_step, int64_t run_quads, const int8_t* b0,
                                  const int8_t* b1, const int32_t* init, int32_t* acc, int64_t acc_stride);
void smallConvRowVnniEmulated(const VnniSmallConvRow& row);
void gemmRowVnniEmulated(const uint8_t* a, const int8_t* b, int64_t quads, const int32_t* init, int32_t* acc);
}  // namespace qs::kernels
