#pragma once
// Deterministic corruptions of a file's bytes for robustness sweeps: the same (file, seed) gives
// the same damaged bytes on every machine, so an input that once crashed is made again from the
// corpus file instead of being kept. Kinds, chosen by the seed:
//  - random run: 1-8 random bytes overwritten anywhere;
//  - head: 4 bytes within the first 4 KiB (superblock, root object header, root heap);
//  - structure: 1-8 bytes within the first 256 bytes of an HDF5 structure: an object header (its
//    address from libhdf5 on the clean file), a global heap collection (GCOL: variable-length
//    strings live there), a B-tree node (TREE), local heap (HEAP) or symbol table node (SNOD);
//  - truncation at a random offset.
#include <cstdint>
#include <string>
#include <vector>

namespace qs::testing {

enum class CorruptionKind { RandomRun, Head, Structure, Truncation };
const char* corruptionKindName(CorruptionKind k);

struct CorruptionTargets {
    std::vector<uint64_t> object_headers;  // from libhdf5 on the clean file
    std::vector<uint64_t> global_heaps;    // offsets of "GCOL"
    std::vector<uint64_t> other_structures;  // offsets of "TREE", "HEAP", "SNOD", "OHDR", "BTHD", "FRHP"
};

// Where the structures of `bytes` (an HDF5 file written to `path`) start; empty lists for files
// that are not HDF5 (a .keras zip is corrupted by runs and truncations only).
CorruptionTargets findCorruptionTargets(const std::string& path, const std::string& bytes);

struct Corruption {
    CorruptionKind kind;
    uint64_t offset;  // first byte changed, or the new length for a truncation
    std::string bytes;
};

Corruption corrupt(const std::string& bytes, const CorruptionTargets& targets, uint64_t seed);

}  // namespace qs::testing
