#pragma once
// A damaged HDF5 file can crash libhdf5 itself (1.10 copies past its buffer on a corrupted
// global-heap reference in a variable-length string attribute) or make it allocate and read for
// a long time. No check of ours can prevent either inside the library, so before a file is
// loaded in-process, a short-lived child process (fork) runs the same load in metadata-only mode
// (hdf5_util.h: every attribute, group and dataset header the load touches, dataset values
// skipped). Only when the child finishes does the caller load; the same library reading the same
// bytes behaves the same way the second time. A child that crashes, runs past the time limit or
// needs more memory than allowed makes the file refused with one line saying so and where (the
// last object the child named).
#include <cstdint>
#include <functional>
#include <string>

namespace qs::h5 {

struct PreflightLimits {
    double seconds = 1.5;                       // wall time for the whole metadata walk (a file is refused within 2 s)
    int64_t extra_bytes = int64_t(512) << 20;   // memory the child may take beyond the file's size
};

// The limits in force: the defaults, or QUANTSCOPE_PREFLIGHT_SECONDS; sanitizer builds allow 5x
// the time (the walk runs instrumented) and no address-space limit (ASan reserves terabytes).
PreflightLimits preflightLimits();

// Runs `metadata_load` in a child under the limits. Throws qs::Error(display_name, object,
// "the file is damaged: ...") when it crashes, hangs or runs out of memory; returns quietly
// otherwise, also when the load throws (the in-process load then gives its own message).
// QUANTSCOPE_PREFLIGHT=0 skips the child (for debugging).
void preflight(const std::function<void()>& metadata_load, int64_t data_bytes, const std::string& display_name);

}  // namespace qs::h5
