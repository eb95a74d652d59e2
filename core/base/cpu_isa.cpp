#include "base/cpu_isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace qs::kernels {

const char* isaName(Isa isa) {
    switch (isa) {
        case Isa::Portable: return "portable";
        case Isa::Avx2: return "avx2";
        case Isa::Avx512: return "avx512";
    }
    return "?";
}

bool isaSupported(Isa isa) {
    __builtin_cpu_init();
    switch (isa) {
        case Isa::Portable: return true;
        case Isa::Avx2: return __builtin_cpu_supports("avx2");
        case Isa::Avx512:
            return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    }
    return false;
}

Isa selectedIsa() {
    static const Isa isa = [] {
        if (const char* want = std::getenv("QUANTSCOPE_SIMD")) {
            for (Isa i : {Isa::Portable, Isa::Avx2, Isa::Avx512})
                if (std::strcmp(want, isaName(i)) == 0 && isaSupported(i)) return i;
        }
        if (isaSupported(Isa::Avx512)) return Isa::Avx512;
        if (isaSupported(Isa::Avx2)) return Isa::Avx2;
        return Isa::Portable;
    }();
    return isa;
}

namespace {
std::atomic<int> forced{-1};
}

Isa activeIsa() {
    const int f = forced.load();
    return f < 0 ? selectedIsa() : static_cast<Isa>(f);
}
void forceIsa(Isa isa) { forced.store(static_cast<int>(isa)); }
void clearForcedIsa() { forced.store(-1); }

}  // namespace qs::kernels
