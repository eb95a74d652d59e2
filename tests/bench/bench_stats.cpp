// Benchmark: statistics passes on a 100M-value float32 tensor (400 MB) against a plain summing
// pass over the same memory, in the same run (best of N each):
//   0. the range pass (min, max, sums, counts) every analysis starts with, per tensor and with
//      100 channels; no target, for reference
//   1. all statistics of one candidate (no histograms)           target <= 1.5x
//      and, for reference, a loop of nothing but its level-count increments (the floor
//      exact level counts set on this machine)
//   2. the same plus its error histogram and the weight histograms target <= 3x
//   3. all twelve candidates: their statistics alone (as in 1)   target <= 8x (both cores)
//      and the whole analyzeTensor (range pass, weight histograms, MSE/KL searches, every
//      candidate's statistics and error histogram)
//   4. the same per channel (256 channels; no target, for reference)
//   5. analyzeTensor of a 1024 x 1024 Dense kernel (the GUI's per-layer work), per tensor and
//      per channel
// Prints GB/s and ratios for the ISA chosen at run time and, for (1), every ISA this CPU runs.
//   usage: bench_stats [N_MILLIONS=100] [REPS=3]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "base/allocator.h"
#include "base/parallel.h"
#include "quant/histogram.h"
#include "quant/kernels/quant_error_kernel.h"
#include "quant/quant_analysis.h"

#include "bench_timing.h"
#include "bench_main.h"

using namespace qs;

namespace {

using bench::best;
using bench::now;

// The baseline: read every float once and add it up (8 independent accumulators so the
// compiler vectorises it; memory bandwidth is the limit).
double plainSum(const float* x, int64_t n, int threads) {
    std::vector<double> parts(static_cast<size_t>(std::max(1, threads)), 0.0);
    parallelRanges(n, threads, 64, [&](int64_t b, int64_t e, int t) {
        float acc[16] = {};
        int64_t i = b;
        for (; i + 16 <= e; i += 16)
            for (int k = 0; k < 16; ++k) acc[k] += x[i + k];
        double s = 0;
        for (float a : acc) s += a;
        for (; i < e; ++i) s += x[i];
        parts[static_cast<size_t>(t)] = s;
    });
    double s = 0;
    for (double p : parts) s += p;
    return s;
}

}  // namespace

namespace {
int runBench(int argc, char** argv) {
    qs::tuneAllocator();
    const int64_t n = (argc > 1 ? std::atoll(argv[1]) : 100) * 1000000LL;
    const int reps = argc > 2 ? std::atoi(argv[2]) : 3;
    const int threads = defaultThreadCount();
    std::vector<float> x(static_cast<size_t>(n));
    uint64_t s = 88172645463325252ull;
    for (int64_t i = 0; i < n; ++i) {  // roughly Gaussian weights (sum of 4 uniforms), sigma ~0.05
        float g = 0;
        for (int k = 0; k < 4; ++k) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            g += static_cast<float>(s >> 40) / 16777216.0f - 0.5f;
        }
        x[static_cast<size_t>(i)] = g * 0.087f;
    }
    const double gb = static_cast<double>(n) * 4 / 1e9;
    volatile double sink = 0;
    const double t_sum1 = best(reps, [&] { sink = sink + plainSum(x.data(), n, 1); });
    const double t_sum2 = best(reps, [&] { sink = sink + plainSum(x.data(), n, threads); });
    const double t_sum = std::min(t_sum1, t_sum2);
    std::printf("tensor: %lld floats (%.1f GB), %d threads, ISA %s\n", static_cast<long long>(n), gb, threads,
                kernels::isaName(kernels::selectedIsa()));
    std::printf("plain sum, 1 thread:   %.3f s  %.2f GB/s\n", t_sum1, gb / t_sum1);
    std::printf("plain sum, %d threads:  %.3f s  %.2f GB/s   (baseline: the faster of the two)\n", threads, t_sum2, gb / t_sum2);

    const TensorStats st = computeTensorStats(x.data(), n, 1, threads);
    {
        // The first pass every analysis makes (range, sums, counts): per tensor, and per channel
        // with a channel count that is not a multiple of 8 (lcm lanes, tensor_stats.cpp).
        const double tr = best(reps, [&] { sink = sink + computeTensorStats(x.data(), n, 1, threads).all.sum; });
        const double tr100 = best(reps, [&] { sink = sink + computeTensorStats(x.data(), n, 100, threads).all.sum; });
        std::printf("0. range pass, per tensor:                     %.3f s  %.2f GB/s  ratio %.2fx\n", tr, gb / tr, tr / t_sum);
        std::printf("   range pass, 100 channels:                   %.3f s  %.2f GB/s  ratio %.2fx\n", tr100, gb / tr100, tr100 / t_sum);
    }
    Candidate c;
    c.method = "max_abs";
    c.bits = 8;
    c.params = {symmetricParams(st.all.max_abs, 8)};
    for (kernels::Isa isa : {kernels::Isa::Portable, kernels::Isa::Avx2, kernels::Isa::Avx512}) {
        if (!kernels::isaSupported(isa)) continue;
        kernels::forceIsa(isa);
        std::vector<Candidate> one{c};
        const double t = best(reps, [&] { evaluateCandidates(x.data(), n, 1, one, false, 0, threads, &st); });
        std::printf("1. all statistics, one candidate [%-8s]: %.3f s  %.2f GB/s  ratio %.2fx (target 1.5x)\n", kernels::isaName(isa), t,
                    gb / t, t / t_sum);
    }
    kernels::clearForcedIsa();
    {
        // The floor the level counts set: a loop that does nothing but their one memory increment
        // per value, over this candidate's levels of the first 2048 values (already in L1, four
        // counter copies as the kernels use), on both cores; no arithmetic, no memory traffic.
        std::vector<int32_t> idx(2048);
        for (size_t i = 0; i < idx.size(); ++i) idx[i] = quantize(x[i], c.params[0]) + 127 + 256 * static_cast<int32_t>(i % 4);
        std::vector<uint32_t> seen(static_cast<size_t>(threads), 0);
        const double t = best(reps, [&] {
            parallelRanges(n, threads, 2048, [&](int64_t b, int64_t e, int th) {
                std::vector<uint32_t> cnt(1024, 0);
                for (int64_t s0 = b; s0 < e; s0 += 2048)
                    for (int64_t i = 0, m = std::min<int64_t>(2048, e - s0); i < m; ++i) ++cnt[static_cast<size_t>(idx[static_cast<size_t>(i)])];
                seen[static_cast<size_t>(th)] += cnt[127];
            });
        });
        sink = sink + seen[0];
        std::printf("   floor: the level-count increments alone:    %.3f s             ratio %.2fx\n", t, t / t_sum);
    }
    {
        std::vector<Candidate> one{c};
        const double t = best(reps, [&] {
            evaluateCandidates(x.data(), n, 1, one, true, 101, threads, &st);
            weightHistograms(x.data(), n, st.all.min, st.all.max, 101, st.all.max_abs, 2048, threads);
        });
        std::printf("2. + error, weight and log2 histograms:        %.3f s  %.2f GB/s  ratio %.2fx (target 3x)\n", t, gb / t, t / t_sum);
    }
    {
        Tensor tensor;
        tensor.name = "big";
        tensor.shape = {n};
        tensor.data = std::move(x);
        AnalysisOptions o;
        o.granularity = Granularity::PerTensor;
        std::vector<Candidate> twelve = analyzeTensor(tensor, 1, o).candidates;
        const double ts = best(reps, [&] { evaluateCandidates(tensor.data.data(), n, 1, twelve, false, 0, threads, &st); });
        std::printf("3. all 12 candidates' statistics (as in 1.):   %.3f s  %.2f GB/s  ratio %.2fx (target 8x)\n", ts, gb / ts, ts / t_sum);
        const double t = best(reps, [&] { analyzeTensor(tensor, 1, o); });
        std::printf("   the whole analyzeTensor, error histograms:   %.3f s  %.2f GB/s  ratio %.2fx\n", t, gb / t, t / t_sum);
        // The GUI's default: per channel (here 256 output channels, as a Dense kernel has).
        tensor.shape = {n / 256, 256};
        o.granularity = Granularity::PerChannel;
        const double tc = best(reps, [&] { analyzeTensor(tensor, 256, o); });
        std::printf("4. the same per channel (256 channels):         %.3f s  %.2f GB/s  ratio %.2fx\n", tc, gb / tc, tc / t_sum);
        x = std::move(tensor.data);
    }
    {
        // What the GUI does per layer: a 1024 x 1024 Dense kernel (1M values), per tensor and per
        // channel; per channel adds 1024 |w| histograms and their MSE and KL searches.
        Tensor dense;
        dense.name = "dense";
        dense.shape = {1024, 1024};
        dense.data.assign(x.begin(), x.begin() + std::min<int64_t>(n, 1 << 20));
        dense.data.resize(1 << 20, 0.01f);
        AnalysisOptions o;
        o.granularity = Granularity::PerTensor;
        const double tt = best(reps * 5, [&] { analyzeTensor(dense, 1024, o); });
        o.granularity = Granularity::PerChannel;
        const double tc = best(reps * 5, [&] { analyzeTensor(dense, 1024, o); });
        std::printf("5. analyzeTensor of a 1024x1024 Dense kernel: per tensor %.1f ms, per channel %.1f ms\n", tt * 1e3, tc * 1e3);
    }
    return sink == 12345 ? 1 : 0;
}
}  // namespace

int main(int argc, char** argv) {
    return qs::bench::benchMain(argc, argv, "bench_stats [N_MILLIONS=100] [REPS=3]", {}, runBench);
}
