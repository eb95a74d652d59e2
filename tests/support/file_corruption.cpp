#include "file_corruption.h"

#include <H5Cpp.h>

#include <cstring>
#include <random>

namespace qs::testing {

const char* corruptionKindName(CorruptionKind k) {
    switch (k) {
        case CorruptionKind::RandomRun: return "random run";
        case CorruptionKind::Head: return "head";
        case CorruptionKind::Structure: return "structure";
        case CorruptionKind::Truncation: return "truncation";
    }
    return "?";
}

namespace {

herr_t collectHeader(hid_t, const char*, const H5O_info_t* info, void* data) {
    static_cast<std::vector<uint64_t>*>(data)->push_back(info->addr);
    return 0;
}

std::vector<uint64_t> signatureOffsets(const std::string& bytes, const char* sig) {
    std::vector<uint64_t> out;
    for (size_t at = bytes.find(sig); at != std::string::npos; at = bytes.find(sig, at + 4)) out.push_back(at);
    return out;
}

}  // namespace

CorruptionTargets findCorruptionTargets(const std::string& path, const std::string& bytes) {
    CorruptionTargets t;
    if (bytes.size() < 8 || std::memcmp(bytes.data(), "\x89HDF\r\n\x1a\n", 8) != 0) return t;
    H5::Exception::dontPrint();
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0) {
        H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, collectHeader, &t.object_headers, H5O_INFO_BASIC);
        H5Fclose(f);
    }
    t.global_heaps = signatureOffsets(bytes, "GCOL");
    for (const char* sig : {"TREE", "HEAP", "SNOD", "OHDR", "BTHD", "FRHP"}) {
        const std::vector<uint64_t> at = signatureOffsets(bytes, sig);
        t.other_structures.insert(t.other_structures.end(), at.begin(), at.end());
    }
    return t;
}

Corruption corrupt(const std::string& bytes, const CorruptionTargets& targets, uint64_t seed) {
    std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + 12345);
    auto below = [&rng](uint64_t n) { return n == 0 ? 0 : rng() % n; };
    const uint64_t size = bytes.size();
    Corruption c{CorruptionKind::RandomRun, 0, bytes};
    const bool hdf5 = !targets.object_headers.empty() || !targets.global_heaps.empty();
    const uint64_t pick = below(16);
    // 4 in 16 random runs, 3 head, 6 structure (3 of them global heaps), 3 truncations.
    uint64_t run = 1 + below(8), start = 0;
    if (pick < 4 || (!hdf5 && pick < 13)) {
        c.kind = CorruptionKind::RandomRun;
        start = below(size);
    } else if (pick < 7) {
        c.kind = CorruptionKind::Head;
        run = 4;
        start = below(std::min<uint64_t>(size, 4096));
    } else if (pick < 13) {
        c.kind = CorruptionKind::Structure;
        const std::vector<uint64_t>* list = pick < 10 && !targets.global_heaps.empty() ? &targets.global_heaps
                                            : pick < 12 || targets.other_structures.empty() ? &targets.object_headers
                                                                                            : &targets.other_structures;
        if (list->empty()) list = &targets.object_headers;
        start = list->empty() ? below(size) : (*list)[below(list->size())] + below(256);
    } else {
        c.kind = CorruptionKind::Truncation;
        c.offset = below(size);
        c.bytes.resize(c.offset);
        return c;
    }
    start = std::min(start, size == 0 ? 0 : size - 1);
    c.offset = start;
    for (uint64_t i = 0; i < run && start + i < size; ++i) c.bytes[start + i] = static_cast<char>(rng() & 0xff);
    return c;
}

}  // namespace qs::testing
