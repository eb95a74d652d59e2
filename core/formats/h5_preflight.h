#pragma once
// A damaged HDF5 file can crash libhdf5 itself (1.10 copies past its buffer on a corrupted
// global-heap reference in a variable-length string attribute) or make it allocate and read for
// a long time. No check of ours can prevent either inside the library, so a helper process runs
// the same load first in metadata-only mode (every attribute, group and dataset header the load
// touches; dataset values skipped), naming each object before it reads it (noteStep). The caller's
// own load trails it step by step: it reads nothing with libhdf5 that the helper has not read
// first without harm (the same library reading the same bytes behaves the same way the second
// time), and the two loads share the two cores instead of running one after the other. A helper
// that crashes, runs past the time limit or needs more memory than allowed makes the file refused
// with one line saying so and where (the last object it named).
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace qs::h5 {

struct PreflightLimits {
    double seconds = 1.5;                       // wall time for the metadata-only load
    int64_t extra_bytes = int64_t(512) << 20;   // memory the helper may take beyond the file's size
};

// The limits for a file of `file_bytes`: 1.5 s, plus 1 s per 16 MiB of file since a large file
// may legitimately hold large metadata (libhdf5 takes 2-3.5 s to read a 100 MB model_config,
// depending on the machine: most of it first-touch page faults), at most 10 s; so every file up
// to 8 MiB (the whole corpus) is refused within 2 s. Wall time, as the 2 s promise is: a machine
// busy with other work can still refuse a healthy file with tens of MB of metadata.
// QUANTSCOPE_PREFLIGHT_SECONDS overrides the time; sanitizer builds allow 5x (the load runs
// instrumented) and no address-space limit (ASan reserves terabytes).
PreflightLimits preflightLimits(int64_t file_bytes);

// A metadata-only load to run in the helper: a plain function of this program (the helper is a
// forked copy of the process), given `args`.
using PreflightJob = void (*)(const std::vector<std::string>& args);

// Starts `job(args)` in the helper under the limits, in metadata-only mode, and returns at once.
// While it lives, every noteStep on this thread waits until the helper has finished that step
// (named the next one, or ended), and throws qs::Error(display_name, object, "the file is damaged:
// ...") once the helper has crashed, timed out or run out of memory; finish() waits for the
// helper's end and throws the same way. A job that throws is no verdict: the caller's load gives
// its own message. With no helper (none can be started, QUANTSCOPE_PREFLIGHT=0, or inside the
// helper itself) steps do not wait and the file is loaded unchecked. One at a time per process:
// it holds the helper until destroyed.
class Preflight {
public:
    Preflight(PreflightJob job, const std::vector<std::string>& args, int64_t data_bytes, std::string display_name);
    ~Preflight();  // lets the helper end its job (the caller's load may have stopped early)
    Preflight(const Preflight&) = delete;
    Preflight& operator=(const Preflight&) = delete;

    void finish();
    void awaitStep();  // noteStep's part in the caller
    void passStep() { ++steps_; }  // noteLibraryFree's

private:
    enum End { Running, Clean, TimedOut, Crashed, OutOfMemory };
    void waitFor(int64_t helper_steps);  // until the helper has named that many steps (0: its end)
    void pump(std::chrono::microseconds wait);  // the helper's status or end, waiting at most `wait`
    void refuse() const;

    std::string display_name_;
    PreflightLimits limits_;
    std::unique_lock<std::mutex> lock_;  // the helper, for this load
    bool checking_ = false;
    std::chrono::steady_clock::time_point deadline_;
    Preflight* previous_ = nullptr;
    int64_t steps_ = 0;  // steps of the caller's load so far
    End end_ = Running;
    int signal_ = 0;
};

// Metadata-only mode: true only inside the helper. Readers check tensors (type, shape, size)
// but skip their values there, and name each object with noteStep before reading it, so a crash
// inside libhdf5 can be placed.
bool metadataOnly();
void noteStep(const std::string& where);
// A step without libhdf5: what follows, up to the next noteStep, calls nothing in libhdf5, so the
// caller's load runs it without waiting for the helper to have done it first.
void noteLibraryFree();

// Starts the helper now; programs call it first thing in main(), while they have one thread.
void startPreflightHelper();

}  // namespace qs::h5
