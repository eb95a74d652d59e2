// Compiled without AVX-512 flags: SIMDe's native aliases map _mm512_* and __m512i to its own
// portable implementations (which follow Intel's pseudo-code), so this is the production
// kernel source running on an emulated AVX-512 VNNI.
#include <immintrin.h>

#include <cstring>
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include "int8_gemm_vnni_emulated.h"

// The few AVX-512F intrinsics the output stage uses that SIMDe 0.7.4 (Debian bookworm) lacks,
// written from Intel's pseudo-code on SIMDe's lane view. Test-only: production code compiles the
// same kernel source against the real intrinsics (checked there against the scalar output stage
// by vectorOutputStageMatchesScalar).
namespace {
simde__m512i emulatedSraiEpi32(simde__m512i a, unsigned count) {  // arithmetic; counts past 31 fill with the sign
    simde__m512i_private r, x = simde__m512i_to_private(a);
    for (int i = 0; i < 16; ++i) r.i32[i] = x.i32[i] >> (count > 31 ? 31 : count);
    return simde__m512i_from_private(r);
}
simde__m512i emulatedSravEpi32(simde__m512i a, simde__m512i count) {
    simde__m512i_private r, x = simde__m512i_to_private(a), c = simde__m512i_to_private(count);
    for (int i = 0; i < 16; ++i) r.i32[i] = x.i32[i] >> (static_cast<uint32_t>(c.i32[i]) > 31 ? 31 : c.i32[i]);
    return simde__m512i_from_private(r);
}
simde__m512i emulatedMaskzLoaduEpi32(simde__mmask16 k, const void* p) {  // masked-off lanes are not read
    simde__m512i_private r;
    for (int i = 0; i < 16; ++i) {
        int32_t v = 0;
        if (k >> i & 1) std::memcpy(&v, static_cast<const char*>(p) + 4 * i, 4);
        r.i32[i] = v;
    }
    return simde__m512i_from_private(r);
}
simde__m128i emulatedCvtepi32Epi8(simde__m512i a) {  // truncating
    simde__m512i_private x = simde__m512i_to_private(a);
    int8_t b[16];
    for (int i = 0; i < 16; ++i) b[i] = static_cast<int8_t>(x.i32[i]);
    return simde_mm_loadu_si128(b);
}
void emulatedMaskCvtepi32StoreuEpi8(void* p, simde__mmask16 k, simde__m512i a) {
    simde__m512i_private x = simde__m512i_to_private(a);
    for (int i = 0; i < 16; ++i)
        if (k >> i & 1) static_cast<int8_t*>(p)[i] = static_cast<int8_t>(x.i32[i]);
}
}  // namespace
#define _mm512_srai_epi32 emulatedSraiEpi32
#define _mm512_srav_epi32 emulatedSravEpi32
#define _mm512_maskz_loadu_epi32 emulatedMaskzLoaduEpi32
#define _mm512_cvtepi32_epi8 emulatedCvtepi32Epi8
#define _mm512_mask_cvtepi32_storeu_epi8 emulatedMaskCvtepi32StoreuEpi8

#define QS_VNNI_TILE_NAME gemmTileVnniEmulated
#define QS_VNNI_TILE_ROWS_NAME gemmTileRowsVnniEmulated
#define QS_VNNI_TILE_ROWS_MAX4_NAME gemmTileRowsMax4VnniEmulated
#define QS_VNNI_ROW_NAME gemmRowVnniEmulated
#define QS_VNNI_SMALL_CONV_ROW_NAME smallConvRowVnniEmulated
#include "engine/kernels/int8_gemm_kernel_vnni.inc"
