// Benchmark: the analysis latencies a user feels (issue 23), each printed with its target:
//   1. one layer of 4 M weights (a 2048 x 2048 Dense kernel, normal values): analyzeTensor with
//      every candidate, per channel and per tensor, at 8 and 4 bits: what the GUI computes when
//      a layer is selected or its bits or granularity change           target <= 100 ms
//   2. the whole-model analysis of the VGG16-shaped file of bench_open (138 M weights): 4 bit
//      widths x 2 granularities x every candidate, both cores          target <= 10 s
//      and the process's peak memory against the float32 weights       target <= 1.3x
// Best of REPS for (1); (2) runs once (it takes seconds).
//   usage: bench_analysis [VGG16_FILE] [REPS=3]   (VGG16_FILE: as bench_open writes it; default
//          $TMPDIR/vgg16_bench.h5; the second part is skipped when it is missing)
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "base/allocator.h"
#include "base/cpu_isa.h"
#include "formats/model_loader.h"
#include "quant/analysis_report.h"
#include "engine/kernels/int8_gemm_kernel.h"  // vnniSupported
#include "quant/quant_analysis.h"

#include "bench_timing.h"
#include "bench_main.h"

using namespace qs;

namespace {

double peakRssBytes() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) * 1024.0;
}

}  // namespace

namespace {
int runBench(int argc, char** argv) {
    qs::tuneAllocator();
    const char* tmp = std::getenv("TMPDIR");
    const std::string file = argc > 1 ? argv[1] : std::string(tmp ? tmp : "/tmp") + "/vgg16_bench.h5";
    const int reps = argc > 2 ? std::atoi(argv[2]) : 3;
    std::printf("ISA: %s%s%s\n", kernels::isaName(kernels::activeIsa()), kernels::vnniSupported() ? " with VNNI" : "",
                kernels::amxActive() ? " and AMX" : "");

    Tensor t;
    t.name = "dense/kernel:0";
    t.shape = t.stored_shape = {2048, 2048};
    t.data.resize(2048 * 2048);
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    for (float& v : t.data) v = nd(rng);
    std::printf("one layer, 2048 x 2048 weights (4.2 M), every candidate          target <= 100 ms\n");
    for (int bits : {8, 4})
        for (Granularity g : {Granularity::PerChannel, Granularity::PerTensor}) {
            AnalysisOptions o;
            o.bits = bits;
            o.granularity = g;
            const double s = bench::best(reps, [&] { analyzeTensor(t, 2048, o); });
            std::printf("  %d bits, %-11s %8.1f ms\n", bits, granularityName(g), s * 1e3);
        }

    if (!std::filesystem::exists(file)) {
        std::printf("whole model: skipped (%s missing; bench_open writes it)\n", file.c_str());
        return 0;
    }
    const double t0 = bench::now();
    const Model m = loadModel(file);
    const double t_load = bench::now() - t0;
    std::printf("peak after load %.0f MB\n", peakRssBytes() / 1e6);
    const double weights = static_cast<double>(m.paramCount()) * 4.0;
    const double t1 = bench::now();
    // Per granularity, the four widths share each tensor's statistics and histograms
    // (analyzeModelWidths), as the GUI's background analyses of one layer do.
    for (Granularity g : {Granularity::PerChannel, Granularity::PerTensor}) {
        AnalysisOptions o;
        o.granularity = g;
        const double s0 = bench::now();
        const std::vector<std::vector<LayerAnalysis>> a = analyzeModelWidths(m, o, {16, 8, 4, 2}, false);
        std::printf("  whole model, 16/8/4/2 bits, %-11s %7.2f s (%zu layers)\n", granularityName(g), bench::now() - s0, a[0].size());
    }
    const double t_all = bench::now() - t1;
    std::printf("whole model (%s, %.0f M weights): load %.2f s; analysis 4 widths x 2 granularities %.2f s   target <= 10 s\n",
                file.c_str(), m.paramCount() / 1e6, t_load, t_all);
    std::printf("peak memory %.0f MB = %.2fx the float32 weights (%.0f MB)                             target <= 1.3x\n",
                peakRssBytes() / 1e6, peakRssBytes() / weights, weights / 1e6);
    return 0;
}
}  // namespace

int main(int argc, char** argv) {
    return qs::bench::benchMain(argc, argv, "bench_analysis [VGG16_FILE] [REPS=3]", {}, runBench);
}
