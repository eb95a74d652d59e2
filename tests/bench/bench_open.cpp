// Benchmark: opening a VGG16-shaped Keras HDF5 file (138M parameters, ~553 MB) against reading
// its bytes with a plain fread, in the same run with a warm page cache; and peak memory of the
// load against the float32 weights it holds. Each measurement runs in a fresh child process
// so ru_maxrss is the peak of that one operation.
//   usage: bench_open [FILE]   (FILE is generated when missing; default $TMPDIR/vgg16_bench.h5)
//          bench_open --corpus (only the preflight's cost on the corpus files, best of 31, and file by file)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "base/allocator.h"
#include "formats/model_loader.h"
#include "vgg16_shaped.h"
#include "bench_main.h"

namespace {

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double freadAll(const std::string& path) {
    const double t0 = now();
    FILE* f = std::fopen(path.c_str(), "rb");
    const auto size = std::filesystem::file_size(path);
    std::vector<char> buf(size);  // one buffer of the file's size, as a loader would need
    size_t got = std::fread(buf.data(), 1, size, f);
    std::fclose(f);
    if (got != size) std::abort();
    return now() - t0;
}

// The stricter baseline: the destination is already faulted in, so this is a pure copy out of
// the page cache (no allocation cost, which the loader does pay).
double freadIntoTouched(const std::string& path, std::vector<char>& buf) {
    const double t0 = now();
    FILE* f = std::fopen(path.c_str(), "rb");
    size_t got = std::fread(buf.data(), 1, buf.size(), f);
    std::fclose(f);
    if (got != buf.size()) std::abort();
    return now() - t0;
}

double loadAll(const std::string& path, int64_t* params) {
    const double t0 = now();
    const qs::Model m = qs::loadModel(path);
    const double t = now() - t0;
    if (params) *params = m.paramCount();
    return t;
}

// Opening with and without the metadata preflight (h5_preflight.h; QUANTSCOPE_PREFLIGHT=0 turns
// it off), alternating, best of 7 each: the VGG16-shaped file and every model file of the corpus
// (summed), so the ratio is measured in one run.
void preflightCost(const std::string& vgg, int reps, bool per_file) {
    std::vector<std::string> corpus;
    const std::filesystem::path dir = std::filesystem::path(QUANTSCOPE_SHARED_DIR) / "corpus";
    if (std::filesystem::exists(dir))
        for (const auto& e : std::filesystem::directory_iterator(dir)) {
            const std::string ext = e.path().extension().string();
            if ((ext == ".h5" || ext == ".keras") && e.path().filename() != "bad_utf8_mangled.h5") corpus.push_back(e.path().string());
        }
    auto openAll = [&](const std::vector<std::string>& files) {
        const double t0 = now();
        for (const std::string& f : files) {
            try {
                qs::loadModel(f);
            } catch (const std::exception&) {
            }
        }
        return now() - t0;
    };
    std::vector<std::string> vggs;
    if (!vgg.empty()) vggs.push_back(vgg);
    // Best of `reps` each, with and without, alternating.
    auto withAndWithout = [&](const std::vector<std::string>& files) {
        double with = 1e9, without = 1e9;
        for (int rep = 0; rep < reps; ++rep) {
            setenv("QUANTSCOPE_PREFLIGHT", "0", 1);
            without = std::min(without, openAll(files));
            unsetenv("QUANTSCOPE_PREFLIGHT");
            with = std::min(with, openAll(files));
        }
        return std::pair{with, without};
    };
    for (const auto& [what, files] : {std::pair<const char*, std::vector<std::string>>{"VGG16-shaped file", vggs},
                                      std::pair<const char*, std::vector<std::string>>{"corpus model files", corpus}}) {
        if (files.empty()) continue;
        const auto [with, without] = withAndWithout(files);
        std::printf("open with preflight / without, %s (%zu): %.3f s / %.3f s = %.3fx  (target <= 1.10x)\n", what, files.size(), with,
                    without, with / without);
    }
    if (!per_file) return;
    for (const std::string& f : corpus) {
        const auto [with, without] = withAndWithout({f});
        std::printf("  %-44s %7.2f ms / %7.2f ms = %.2fx\n", std::filesystem::path(f).filename().c_str(), with * 1e3, without * 1e3,
                    with / without);
    }
}

// Peak resident memory (bytes) of `fn` run in a child process.
template <class Fn>
long peakRssOfChild(Fn fn) {
    const pid_t pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int status = 0;
    rusage ru{};
    wait4(pid, &status, 0, &ru);
    return ru.ru_maxrss * 1024L;
}

}  // namespace

namespace {
int runBench(int argc, char** argv) {
    qs::tuneAllocator();
    if (argc > 1 && std::string(argv[1]) == "--corpus") {  // the preflight's cost on the corpus only (quick)
        preflightCost("", 31, true);
        return 0;
    }
    const char* tmp = std::getenv("TMPDIR");
    const std::string path = argc > 1 ? argv[1] : std::string(tmp ? tmp : "/tmp") + "/vgg16_bench.h5";
    if (!std::filesystem::exists(path)) std::printf("generating %s ...\n", path.c_str());
    qs::testing::writeVgg16Shaped(path);
    const double mb = static_cast<double>(std::filesystem::file_size(path)) / 1e6;
    int64_t params = 0;
    loadAll(path, &params);  // warm the page cache and check it opens
    freadAll(path);
    double best_read = 1e9, best_load = 1e9, best_touched = 1e9;
    {
        std::vector<char> touched(std::filesystem::file_size(path), 1);
        for (int rep = 0; rep < 5; ++rep) {  // alternate, best of 5 each
            best_read = std::min(best_read, freadAll(path));
            best_load = std::min(best_load, loadAll(path, nullptr));
            best_touched = std::min(best_touched, freadIntoTouched(path, touched));
        }
    }
    const double weights_bytes = static_cast<double>(params) * 4.0;
    const long rss_read = peakRssOfChild([&] { freadAll(path); });
    const long rss_load = peakRssOfChild([&] { loadAll(path, nullptr); });
    std::printf("file: %s, %.1f MB, %lld parameters (%.1f MB as float32)\n", path.c_str(), mb, static_cast<long long>(params),
                weights_bytes / 1e6);
    std::printf("fread:      %.3f s  (%.2f GB/s)   peak RSS %.1f MB\n", best_read, mb / 1e3 / best_read, rss_read / 1e6);
    std::printf("loadModel:  %.3f s  (%.2f GB/s)   peak RSS %.1f MB\n", best_load, mb / 1e3 / best_load, rss_load / 1e6);
    std::printf("fread, buffer already faulted in: %.3f s  (%.2f GB/s)\n", best_touched, mb / 1e3 / best_touched);
    std::printf("time ratio load/fread:          %.2fx  (target <= 1.2x)\n", best_load / best_read);
    std::printf("time ratio load/fread-touched:  %.2fx  (stricter: no allocation in the baseline)\n", best_load / best_touched);
    std::printf("peak memory / float32 weights:  %.2fx  (target <= 1.2x)\n", rss_load / weights_bytes);
    preflightCost(path, 7, false);
    return 0;
}
}  // namespace

int main(int argc, char** argv) {
    return qs::bench::benchMain(argc, argv, "bench_open [FILE] | bench_open --corpus", {"--corpus"}, runBench);
}
