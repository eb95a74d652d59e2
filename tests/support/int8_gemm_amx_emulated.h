#pragma once
// The AMX tile kernel (core/engine/kernels/int8_gemm_kernel_amx.inc) compiled against a plain C++
// model of the tile registers, so tests check its integers, and that its reads stay inside the
// packed weights (AddressSanitizer sees the model's memcpy), on CPUs without AMX. Test-only.
#include "engine/kernels/int8_gemm_kernel.h"

namespace qs::kernels {
void amxTilesEmulated(const AmxTiles& t);
}  // namespace qs::kernels
