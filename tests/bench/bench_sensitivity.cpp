// Benchmark: the sensitivity analysis and the mixed-precision search on fmnist_cnn, in one run.
//  1. One plain int8 evaluation of N test images (quantize from the calibration, run, score)
//     against the sensitivity of every layer over the full grid on the same N images: the ratio
//     says what reusing the baseline's activations and one calibration saves (aim: under 15x).
//  2. `suggest` end to end as the CLI runs it (load, calibrate, float references for the search
//     and held-out halves of the 10,000 images, sensitivity on the search half, the search and
//     its real evaluations, the held-out scores): seconds on all cores (aim: under 30 s).
//   usage: bench_sensitivity [SAMPLE_MODELS_DIR] [N=2000]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/allocator.h"
#include "base/cpu_isa.h"
#include "base/parallel.h"
#include "data/array_dataset.h"
#include "data/preprocessing.h"
#include "engine/int8_gemm.h"
#include "eval/mixed_precision.h"
#include "formats/model_loader.h"

#include "bench_timing.h"
#include "bench_main.h"

using namespace qs;

namespace {
int runBench(int argc, char** argv) {
    qs::tuneAllocator();
    const std::string dir = argc > 1 ? argv[1] : QUANTSCOPE_SOURCE_DIR "/sample_models";
    const int64_t n = argc > 2 ? std::atoll(argv[2]) : 2000;
    std::printf("ISA: %s%s%s; %d threads\n", kernels::isaName(kernels::activeIsa()), kernels::vnniSupported() ? " with VNNI" : "",
                kernels::amxActive() ? " and AMX" : "", defaultThreadCount());
    const Model m = loadModel(dir + "/fmnist_cnn.h5");
    const ImageDataset data = readDataset("/usr/share/datasets/fashion-mnist");
    const Preprocessing pre = inferPreprocessing(data);
    const Shape shape{data.rows, data.cols, data.channels};
    const RowMatrix calib = calibrationRows("/usr/share/datasets/fashion-mnist", data, pre, 500);
    const GraphCalibration cal = calibrateModel(m, calib, shape);
    const ReferenceOutputs ref = referenceOutputs(m, preprocessRows(data, pre, 0, n),
                                                  std::vector<int32_t>(data.labels.begin(), data.labels.begin() + n), shape);

    OutputScore plain;
    const double t_plain = bench::best(3, [&] { plain = scoreConfig(m, cal, QuantConfig{}, ref); });
    SensitivityTable table;
    const double t_sens = bench::best(1, [&] { table = measureSensitivity(m, cal, ref, {}); });
    std::printf("\nfmnist_cnn, %lld images: one int8 evaluation %.3f s (top-1 %.4f); sensitivity of %zu layers, %zu cells %.2f s\n",
                static_cast<long long>(n), t_plain, plain.top1, table.layers.size(), table.cells.size(), t_sens);
    std::printf("sensitivity / one evaluation: %.1fx (aim: under 15x); %.1f evaluations' worth per cell\n", t_sens / t_plain,
                t_sens / t_plain / static_cast<double>(table.cells.size()));

    // suggest end to end, as the CLI does it (minus printing).
    const double t0 = bench::now();
    const Model m2 = loadModel(dir + "/fmnist_cnn.h5");
    const ImageDataset all = readDataset("/usr/share/datasets/fashion-mnist");
    const GraphCalibration cal2 = calibrateModel(m2, calibrationRows("/usr/share/datasets/fashion-mnist", all, pre, 500), shape);
    const TestSplit split = splitForSearch(all.n);
    auto refOf = [&](int64_t b, int64_t c) {
        return referenceOutputs(m2, preprocessRows(all, pre, b, c), std::vector<int32_t>(all.labels.begin() + b, all.labels.begin() + b + c), shape);
    };
    const ReferenceOutputs search = refOf(split.search_begin, split.search_count), heldout = refOf(split.heldout_begin, split.heldout_count);
    const double t_refs = bench::now() - t0;
    const SensitivityTable t2 = measureSensitivity(m2, cal2, search, {});
    const double t_table = bench::now() - t0 - t_refs;
    const SearchResult r = searchMixedPrecision(m2, cal2, t2, search, heldout, {SearchBudget::BitsPerWeight, 4.5});
    const double t_all = bench::now() - t0;
    std::printf("\nsuggest --bits-per-weight 4.5 end to end: %.1f s (aim: under 30 s): load, calibration and float references %.1f s,\n"
                "sensitivity on %lld search images %.1f s, search with %zu real evaluations and held-out scores %.1f s\n",
                t_all, t_refs, static_cast<long long>(split.search_count), t_table, r.points.size(), t_all - t_refs - t_table);
    if (r.chosen >= 0) {
        const SearchPoint& c = r.points[static_cast<size_t>(r.chosen)];
        std::printf("chosen: %.2f bits per weight, %lld bytes, held-out top-1 %.4f (float %.4f)\n", c.bits_per_weight,
                    static_cast<long long>(c.bytes), c.heldout.top1, r.float_heldout_top1);
    }
    return 0;
}
}  // namespace

int main(int argc, char** argv) {
    return qs::bench::benchMain(argc, argv, "bench_sensitivity [SAMPLE_MODELS_DIR] [N=2000]", {}, runBench);
}
