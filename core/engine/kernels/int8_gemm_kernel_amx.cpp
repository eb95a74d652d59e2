// The AMX kernel for CPUs with AMX-INT8; compile flags in core/CMakeLists.txt.
#include <immintrin.h>

#include <cstdint>

namespace qs::kernels {
namespace {
// n_write bytes to dst: src's first n_read XORed with flip, then zeros; whole 64-byte vectors,
// the last part through a mask (no byte past n_read is read: the source may end there). Inline
// and branch-light: fmnist_cnn's second convolution packs three runs of 96 bytes per row, 256 rows a sample.
inline __attribute__((always_inline)) void copyRun(uint8_t* dst, const uint8_t* src, int64_t n_read, int64_t n_write, uint8_t flip) {
    if (n_read == n_write && n_write % 32 == 0) {  // a convolution's runs (96 bytes in fmnist_cnn): 32 at a time, no
        // store split across cache lines (2.1 against 4.6 us for that convolution's 256 rows)
        const __m256i g = _mm256_set1_epi8(static_cast<char>(flip));
        for (int64_t o = 0; o < n_write; o += 32)
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + o),
                                _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + o)), g));
        return;
    }
    const __m512i f = _mm512_set1_epi8(static_cast<char>(flip));
    int64_t off = 0;
    for (; off + 64 <= n_read; off += 64) _mm512_storeu_si512(dst + off, _mm512_xor_si512(_mm512_loadu_si512(src + off), f));
    for (; off < n_write; off += 64) {
        const int64_t len = n_write - off < 64 ? n_write - off : 64, valid = n_read - off > 0 ? n_read - off : 0;
        const __mmask64 read = (valid >= 64 ? ~__mmask64{0} : (__mmask64{1} << valid) - 1);
        const __mmask64 write = len >= 64 ? ~__mmask64{0} : (__mmask64{1} << len) - 1;
        const __m512i v = _mm512_maskz_mov_epi8(read, _mm512_xor_si512(_mm512_maskz_loadu_epi8(read, src + off), f));
        _mm512_mask_storeu_epi8(dst + off, write, v);
    }
}
}  // namespace
}  // namespace qs::kernels

#define QS_AMX_TILES_NAME amxTiles
#include "engine/kernels/int8_gemm_kernel_amx.inc"
