#pragma once
// Progress and cancellation for long core operations. Core functions that run long take a
// `const Progress&`, call report(done, total) between layers or chunks and check cancelled();
// the app maps this onto QPromise, the CLI onto stderr and SIGINT.
#include <atomic>
#include <cstdint>
#include <functional>

#include "base/error.h"

namespace qs {

struct Progress {
    std::function<void(int64_t done, int64_t total)> on_report;
    std::function<bool()> is_cancelled;

    void report(int64_t done, int64_t total) const {
        if (on_report) on_report(done, total);
    }
    bool cancelled() const { return is_cancelled && is_cancelled(); }
    // Throws Cancelled when the user asked to stop; call between units of work.
    void checkCancelled() const {
        if (cancelled()) throw Cancelled();
    }

    // This progress's [from, from + span) of `total` for one stage of a longer job: the stage
    // reports its own done/total and they land scaled in that range. Cancellation is shared.
    // The returned Progress refers to this one, which must outlive it.
    Progress stage(int64_t from, int64_t span, int64_t total = 1000) const {
        Progress s;
        s.is_cancelled = is_cancelled;
        s.on_report = [this, from, span, total](int64_t done, int64_t of) { report(from + (of > 0 ? done * span / of : 0), total); };
        return s;
    }

    static const Progress& none() {
        static const Progress p;
        return p;
    }
};

}  // namespace qs
