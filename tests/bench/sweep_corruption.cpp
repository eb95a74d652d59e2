// Long robustness sweep: damaged copies of every model file in ../shared/corpus and
// sample_models/ (tests/support/file_corruption.h: random byte runs, the first 4 KiB, object
// headers / global heaps / B-trees, truncations), each loaded as `quantscope-cli inspect`
// loads it (loadModel, then every tensor's statistics) in a child process with a 10 s alarm.
// Prints the counts: loaded, refused, crashed, hung, over 2 s, the slowest case; and every case
// that crashed or hung, by file and seed, so the CI subset (test_corruption_sweep) can make it
// again. Two cases run at once (one per core).
//   usage: sweep_corruption [--cases N] [--first-seed S] [--raw] [FILE...]
//   --raw: without the metadata preflight (QUANTSCOPE_PREFLIGHT=0), to find what crashes libhdf5.
//   sweep_corruption --emit SEED OUT FILE: writes that one damaged copy of FILE to OUT.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "base/allocator.h"
#include "corruption_case.h"
#include "file_corruption.h"
#include "bench_main.h"

namespace fs = std::filesystem;
using namespace qs::testing;

namespace {

std::vector<fs::path> defaultFiles() {
    std::vector<fs::path> files;
    for (const fs::path& dir : {fs::path(QUANTSCOPE_SHARED_DIR) / "corpus", fs::path(QUANTSCOPE_SOURCE_DIR) / "sample_models"})
        if (fs::exists(dir))
            for (const auto& e : fs::directory_iterator(dir)) {
                const std::string ext = e.path().extension().string();
                if (ext == ".h5" || ext == ".keras") files.push_back(e.path());
            }
    std::sort(files.begin(), files.end());
    return files;
}

struct Running {
    std::string what;
    std::chrono::steady_clock::time_point start;
};

}  // namespace

namespace {
int runBench(int argc, char** argv) {
    qs::tuneAllocator();
    int64_t cases = 20000;
    uint64_t first_seed = 1;
    bool raw = false;
    std::vector<fs::path> files;
    if (argc == 5 && !std::strcmp(argv[1], "--emit")) {
        std::ifstream in(argv[4], std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), {});
        const Corruption c = corrupt(bytes, findCorruptionTargets(argv[4], bytes), std::strtoull(argv[2], nullptr, 10));
        std::ofstream(argv[3], std::ios::binary | std::ios::trunc) << c.bytes;
        std::printf("%s at %llu\n", corruptionKindName(c.kind), static_cast<unsigned long long>(c.offset));
        return 0;
    }
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--cases") && i + 1 < argc) cases = std::atoll(argv[++i]);
        else if (!std::strcmp(argv[i], "--first-seed") && i + 1 < argc) first_seed = std::strtoull(argv[++i], nullptr, 10);
        else if (!std::strcmp(argv[i], "--raw")) raw = true;
        else files.push_back(argv[i]);
    }
    if (files.empty()) files = defaultFiles();
    if (files.empty()) {
        std::fprintf(stderr, "sweep_corruption: no files (../shared/corpus missing?)\n");
        return 2;
    }
    if (raw) setenv("QUANTSCOPE_PREFLIGHT", "0", 1);
    const fs::path tmp = fs::temp_directory_path() / ("qs_sweep_" + std::to_string(getpid()));
    fs::create_directories(tmp);
    const int64_t per_file = (cases + static_cast<int64_t>(files.size()) - 1) / static_cast<int64_t>(files.size());
    std::map<int, int64_t> outcomes;
    int64_t crashed = 0, hung = 0, over2 = 0, total = 0;
    double slowest = 0;
    std::string slowest_case;
    std::vector<std::string> bad;
    std::map<pid_t, Running> running;
    auto reap = [&](bool block) {
        int status = 0;
        const pid_t pid = waitpid(-1, &status, block ? 0 : WNOHANG);
        if (pid <= 0) return false;
        const Running r = running[pid];
        running.erase(pid);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - r.start).count();
        if (secs > slowest) slowest = secs, slowest_case = r.what;
        if (secs > 2.0) ++over2, bad.push_back("over 2 s (" + std::to_string(secs) + " s): " + r.what);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) ++hung, bad.push_back("hang: " + r.what);
        else if (WIFSIGNALED(status)) ++crashed, bad.push_back("crash (signal " + std::to_string(WTERMSIG(status)) + "): " + r.what);
        else {
            ++outcomes[WEXITSTATUS(status)];
            if (WEXITSTATUS(status) != kLoaded && WEXITSTATUS(status) != kRefused)
                bad.push_back("outcome " + std::to_string(WEXITSTATUS(status)) + ": " + r.what);
        }
        return true;
    };
    const auto t0 = std::chrono::steady_clock::now();
    int slot = 0;
    for (const fs::path& f : files) {
        std::ifstream in(f, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), {});
        const CorruptionTargets targets = findCorruptionTargets(f.string(), bytes);
        for (int64_t k = 0; k < per_file && total < cases; ++k, ++total) {
            const uint64_t seed = first_seed + static_cast<uint64_t>(k);
            const Corruption c = corrupt(bytes, targets, seed);
            while (running.size() >= 2) reap(true);
            const std::string target = (tmp / ("case" + std::to_string(slot++ % 4) + f.extension().string())).string();
            std::ofstream(target, std::ios::binary | std::ios::trunc) << c.bytes;
            char what[512];
            std::snprintf(what, sizeof what, "%s seed %llu (%s at %llu)", f.filename().c_str(),
                          static_cast<unsigned long long>(seed), corruptionKindName(c.kind), static_cast<unsigned long long>(c.offset));
            const pid_t pid = fork();
            if (pid == 0) {
                alarm(10);
                _exit(loadCorruptedCase(target));
            }
            running[pid] = {what, std::chrono::steady_clock::now()};
        }
        std::fprintf(stderr, "%s: %lld cases done\n", f.filename().c_str(), static_cast<long long>(total));
    }
    while (!running.empty()) reap(true);
    fs::remove_all(tmp);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("corruption sweep%s: %lld cases over %zu files in %.0f s: %lld loaded, %lld refused naming the file, "
                "%lld other outcomes, %lld crashed, %lld hung, %lld over 2 s (slowest %.2f s: %s)\n",
                raw ? " (raw, no preflight)" : "", static_cast<long long>(total), files.size(), secs,
                static_cast<long long>(outcomes[kLoaded]), static_cast<long long>(outcomes[kRefused]),
                static_cast<long long>(total - outcomes[kLoaded] - outcomes[kRefused] - crashed - hung), static_cast<long long>(crashed),
                static_cast<long long>(hung), static_cast<long long>(over2), slowest, slowest_case.c_str());
    for (const std::string& b : bad) std::printf("  %s\n", b.c_str());
    return bad.empty() && over2 == 0 ? 0 : 1;
}
}  // namespace

int main(int argc, char** argv) {
    return qs::bench::benchMain(argc, argv, "sweep_corruption [--cases N] [--first-seed S] [--raw] [FILE...] | sweep_corruption --emit SEED OUT FILE", {"--cases", "--first-seed", "--raw", "--emit"}, runBench);
}
