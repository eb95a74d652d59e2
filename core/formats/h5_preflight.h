#pragma once
// A damaged HDF5 file can crash libhdf5 itself (1.10 copies past its buffer on a corrupted
// global-heap reference in a variable-length string attribute) or make it allocate and read for
// a long time. No check of ours can prevent either inside the library, so before a file is
// loaded in-process, a helper process runs the same load in metadata-only mode (every attribute,
// group and dataset header the load touches; dataset values skipped), naming each object it reads.
// Only when that load ends does the caller load; the same library reading the same bytes behaves
// the same way the second time. A helper that crashes, runs past the time limit or needs more
// memory than allowed makes the file refused with one line saying so and where (the last object
// it named).
#include <cstdint>
#include <string>
#include <vector>

namespace qs::h5 {

struct PreflightLimits {
    double seconds = 1.5;                       // wall time for the metadata-only load
    int64_t extra_bytes = int64_t(512) << 20;   // memory the helper may take beyond the file's size
};

// The limits for a file of `file_bytes`: 1.5 s, plus 1 s per 64 MiB of file since a large file
// may legitimately hold large metadata (libhdf5 takes about 2 s to read a 100 MB model_config),
// at most 10 s; so every file up to 32 MiB (the whole corpus) is refused within 2 s.
// QUANTSCOPE_PREFLIGHT_SECONDS overrides the time; sanitizer builds allow 5x (the load runs
// instrumented) and no address-space limit (ASan reserves terabytes).
PreflightLimits preflightLimits(int64_t file_bytes);

// A metadata-only load to run in the helper: a plain function of this program (the helper is a
// forked copy of the process), given `args`.
using PreflightJob = void (*)(const std::vector<std::string>& args);

// Runs `job(args)` in the helper under the limits, in metadata-only mode. Throws
// qs::Error(display_name, object, "the file is damaged: ...") when it crashes, hangs or runs out
// of memory; returns quietly otherwise, also when the job throws (the in-process load then gives
// its own message) and when no helper can be started (the file is then loaded unchecked). Does
// nothing inside the helper, or with QUANTSCOPE_PREFLIGHT=0 (for debugging).
void preflight(PreflightJob job, const std::vector<std::string>& args, int64_t data_bytes, const std::string& display_name);

// Metadata-only mode: true only inside the helper. Readers check tensors (type, shape, size)
// but skip their values there, and name each object with noteStep before reading it, so a crash
// inside libhdf5 can be placed.
bool metadataOnly();
void noteStep(const std::string& where);

// Starts the helper now; programs call it first thing in main(), while they have one thread.
void startPreflightHelper();

}  // namespace qs::h5
