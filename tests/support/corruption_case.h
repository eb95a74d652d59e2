#pragma once
// One case of a corruption sweep, as `quantscope-cli inspect` would meet it: load the file, then
// check every tensor's statistics account for all its values. Returns the exit code a sweep's
// child process reports (tests/test_corruption_sweep.cpp, tests/bench/sweep_corruption.cpp).
#include <string>

#include "base/error.h"
#include "formats/model_loader.h"
#include "quant/tensor_stats.h"

namespace qs::testing {

enum CaseOutcome { kLoaded = 0, kRefused = 3, kRefusedWithoutName = 4, kBadStats = 5, kOtherException = 6 };

inline int loadCorruptedCase(const std::string& path) {
    try {
        const Model m = loadModel(path, LoadOptions{"", false});
        for (const Layer& l : m.layers)
            for (const Tensor& t : l.weights) {
                const TensorStats s = computeTensorStats(t.data.data(), static_cast<int64_t>(t.data.size()), 1, 1);
                if (s.all.finite + s.all.nan + s.all.inf != static_cast<int64_t>(t.data.size())) return kBadStats;
            }
        return kLoaded;
    } catch (const Error& e) {
        return std::string(e.what()).find(path) != std::string::npos ? kRefused : kRefusedWithoutName;
    } catch (...) {
        return kOtherException;
    }
}

}  // namespace qs::testing
