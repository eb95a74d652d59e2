// Benchmark: the integer engine against our float engine on the sample models, in one run:
// fmnist_mlp and fmnist_cnn, one thread and two, batch 256 and batch 1; images per second and
// microseconds per image of each, and the ratio; also the float engine held to its baseline
// x86-64 GEMM (SSE2, as before it had an AVX2 + FMA path) and the ratio against that. Then
// one int8 GEMM of 256x784x256 (the MLP's first layer at batch 256) in GOP/s on one core, for
// every ISA this CPU runs, next to the float engine's GEMM of the same shape (baseline SSE2,
// and as dispatched: AVX2 + FMA or AVX-512 where the CPU has them). Last, in the same run, the
// peer: PyTorch's eager int8 (onednn) on the same two models, timed by
// ../shared/bench/torch_peer.py with Debian's python3-torch, next to ours and the ratio; skipped
// with the reason when the script or python3-torch is missing (a bench dependency only).
//   usage: bench_int8 [SAMPLE_MODELS_DIR] [IMAGES=2048] [--no-peer | --profile MODEL | --profile-float MODEL]
// --profile MODEL runs only MODEL's int8 forward (--profile-float: float), one thread, batch 256, for about ten seconds
// (a loop to put under `perf record`).
#include <nlohmann/json.hpp>

#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/allocator.h"
#include "engine/float_engine.h"
#include "engine/int8_gemm.h"
#include "engine/kernels/float_gemm.h"
#include "engine/quantized_engine.h"
#include "formats/model_loader.h"

#include "bench_timing.h"
#include "bench_main.h"

using namespace qs;

namespace {

using bench::best;
using bench::now;

// `data` cut into batches of `batch` rows. Cut before the clock starts, as the peer passes tensor
// slices (views): a middleRows() handed to a const RowMatrix& parameter is a copy of the batch,
// and copying 0.8 MB per batch of 256 was a tenth of fmnist_mlp's int8 time (perf, --profile).
std::vector<RowMatrix> batchesOf(const RowMatrix& data, int64_t batch) {
    std::vector<RowMatrix> out;
    for (int64_t b0 = 0; b0 < data.rows(); b0 += batch) out.emplace_back(data.middleRows(b0, std::min<int64_t>(batch, data.rows() - b0)));
    return out;
}

// Seconds to push `images` rows through `forward` in batches of `batch`, on `threads` threads
// (each thread its own batches, as evaluation runs), the best of 3 passes after an untimed one.
// The threads live across the passes, as PyTorch's pool does: a thread started for each pass
// (as this bench did until 2026-12-05) builds its thread-local scratch again every pass, which
// on fmnist_mlp's 2 ms passes read 1.1-1.6 us per image against 0.8 for --profile's warm loop.
template <class Forward>
double run(const RowMatrix& data, int batch, int threads, Forward forward) {
    const std::vector<RowMatrix> batches = batchesOf(data, batch);
    constexpr int kPasses = 4;  // the first untimed
    std::barrier<> sync(threads + 1);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            for (int pass = 0; pass < kPasses; ++pass) {
                sync.arrive_and_wait();  // start
                for (size_t i = static_cast<size_t>(t); i < batches.size(); i += static_cast<size_t>(threads)) {
                    const RowMatrix y = forward(batches[i]);
                    if (y.rows() == 0) std::abort();
                }
                sync.arrive_and_wait();  // done
            }
        });
    double fastest = 1e30;
    for (int pass = 0; pass < kPasses; ++pass) {
        const double t0 = now();
        sync.arrive_and_wait();
        sync.arrive_and_wait();
        if (pass > 0) fastest = std::min(fastest, now() - t0);
    }
    for (std::thread& th : pool) th.join();
    return fastest;
}

// "fmnist_cnn t1 b256": our int8 timings by model, threads and batch, for the peer table.
std::string runKey(const char* model, int threads, int batch) {
    return std::string(model) + " t" + std::to_string(threads) + " b" + std::to_string(batch);
}

// Our kernels held to AVX2 (QUANTSCOPE_SIMD=avx2) race oneDNN held to AVX2 as well, as on a
// CPU without AVX-512: oneDNN reads ONEDNN_MAX_CPU_ISA (unless the caller set it already).
bool peerHeldToAvx2() { return qs::kernels::activeIsa() == qs::kernels::Isa::Avx2 && !std::getenv("ONEDNN_MAX_CPU_ISA"); }

// Runs the PyTorch peer script; its JSON, or null with the reason in *why.
nlohmann::json torchPeer(const std::string& dir, std::string* why) {
    const std::string script = QUANTSCOPE_SHARED_DIR "/bench/torch_peer.py";
    if (!std::filesystem::exists(script)) {
        *why = script + " not found";
        return nullptr;
    }
    const std::string cmd = std::string(peerHeldToAvx2() ? "ONEDNN_MAX_CPU_ISA=AVX2 " : "") + "/usr/bin/python3 " + script + " '" + dir +
                            "' 3 onednn int8 2>/dev/null";
    std::string out;
    if (FILE* p = popen(cmd.c_str(), "r")) {
        char buf[4096];
        for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
        if (pclose(p) != 0) out.clear();
    }
    const nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        *why = "the peer script failed (is python3-torch installed?)";
        return nullptr;
    }
    return j;
}

// --profile / --profile-float: MODEL's int8 (or float) forward in a loop (batch 256, one thread),
// its time per image at the end.
int profile(const std::string& path, int64_t images, bool float_engine) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(0, 1);
    const Model m = loadModel(path);
    RowMatrix data(images, 784);  // the sample models take 28 x 28 images
    for (Eigen::Index i = 0; i < data.size(); ++i) data.data()[i] = u(rng);
    std::optional<FloatEngine> fe;  // only the engine that runs
    std::optional<QuantizedModel> qm;
    if (float_engine) fe.emplace(m);
    else qm.emplace(quantizeModel(m, QuantConfig{}, data.topRows(256)));
    const std::vector<RowMatrix> batches = batchesOf(data, 256);
    const auto start = now();
    double fastest = 1e9;  // the fastest pass over all images: steadier than the mean on a shared machine
    int64_t done = 0;
    while (now() - start < 10.0) {
        const double t0 = now();
        for (const RowMatrix& batch : batches)
            if ((fe ? fe->forward(batch) : runQuantizedOutput(*qm, QuantizedRun::Integer, batch)).rows() == 0) std::abort();
        fastest = std::min(fastest, now() - t0);
        done += images;
    }
    std::printf("%s %s: %.2f us per image mean, %.2f fastest pass (ISA %s)\n", path.c_str(), float_engine ? "float" : "int8",
                1e6 * (now() - start) / double(done), 1e6 * fastest / double(images), kernels::isaName(kernels::activeIsa()));
    return 0;
}

}  // namespace

namespace {
int runBench(int argc, char** argv) {
    qs::tuneAllocator();
    const std::string dir = argc > 1 ? argv[1] : "sample_models";
    const int64_t images = argc > 2 ? std::atoll(argv[2]) : 2048;
    const bool peer = !(argc > 3 && std::string(argv[3]) == "--no-peer");
    if (argc > 4 && (std::string(argv[3]) == "--profile" || std::string(argv[3]) == "--profile-float"))
        return profile(dir + "/" + argv[4] + ".h5", images, std::string(argv[3]) == "--profile-float");
    std::map<std::string, double> ours_int8;  // runKey -> us per image
    const bool amx = kernels::amxActive();
    std::printf("ISA: %s%s%s\n", kernels::isaName(kernels::activeIsa()), kernels::vnniSupported() ? " with VNNI" : "", amx ? " and AMX" : "");
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(0, 1);
    RowMatrix data(images, 784);
    for (Eigen::Index i = 0; i < data.size(); ++i) data.data()[i] = u(rng);
    std::printf("%-12s %7s %5s %12s %12s %10s %10s %7s %12s %7s%s\n", "model", "threads", "batch", "float img/s", "int8 img/s", "float us",
                "int8 us", "ratio", "float-SSE2 us", "ratio", amx ? "  int8 VNNI us (AMX off)" : "");
    for (const char* name : {"fmnist_mlp", "fmnist_cnn"}) {
        const Model m = loadModel(dir + "/" + name + ".h5");
        const FloatEngine fe(m);
        const QuantizedModel qm = quantizeModel(m, QuantConfig{}, data.topRows(256));
        for (int threads : {1, 2})
            for (int batch : {256, 1}) {
                // Batch 1 on the CNN: fewer images, the per-call overhead is what is measured.
                const RowMatrix d = batch == 1 ? RowMatrix(data.topRows(std::min<int64_t>(images, 512))) : data;
                const double tf = run(d, batch, threads, [&](const RowMatrix& x) { return fe.forward(x); });
                const double tq = run(d, batch, threads, [&](const RowMatrix& x) { return runQuantizedOutput(qm, QuantizedRun::Integer, x); });
                // The float engine as built for baseline x86-64 (its GEMM without AVX2/FMA).
                kernels::forceIsa(kernels::Isa::Portable);
                const double ts = run(d, batch, threads, [&](const RowMatrix& x) { return fe.forward(x); });
                kernels::clearForcedIsa();
                const double n = static_cast<double>(d.rows());
                std::printf("%-12s %7d %5d %12.0f %12.0f %10.2f %10.2f %6.2fx %12.2f %6.2fx", name, threads, batch, n / tf, n / tq,
                            1e6 * tf / n, 1e6 * tq / n, tf / tq, 1e6 * ts / n, ts / tq);
                if (amx) {  // the same integers through the VNNI tiles, in the same minutes
                    kernels::forceAmx(false);
                    const double tv = run(d, batch, threads, [&](const RowMatrix& x) { return runQuantizedOutput(qm, QuantizedRun::Integer, x); });
                    kernels::clearForcedAmx();
                    std::printf(" %24.2f", 1e6 * tv / n);
                }
                std::printf("\n");
                ours_int8[runKey(name, threads, batch)] = 1e6 * tq / n;
            }
    }
    // One GEMM, one core.
    const int64_t M = 256, K = 784, N = 256;
    std::vector<int8_t> A(static_cast<size_t>(M * K)), W(static_cast<size_t>(K * N)), C(static_cast<size_t>(M * N));
    std::uniform_int_distribution<int> q(-127, 127);
    for (int8_t& v : A) v = static_cast<int8_t>(q(rng));
    for (int8_t& v : W) v = static_cast<int8_t>(q(rng));
    const PackedWeights pw = packWeights(W.data(), K, N);
    std::vector<int32_t> bias(static_cast<size_t>(N), 0);
    std::vector<FixedMultiplier> mult(static_cast<size_t>(N), quantizeMultiplier(0.001));
    std::vector<int32_t> mult_m, mult_rshift;  // the vectorised output stage, as the engine runs it
    splitMultipliers(mult, mult_m, mult_rshift);
    const double ops = 2.0 * M * K * N;
    GemmScratch s;
    for (kernels::Isa isa : {kernels::Isa::Portable, kernels::Isa::Avx2, kernels::Isa::Avx512}) {
        if (!kernels::isaSupported(isa)) continue;
        kernels::forceIsa(isa);
        // AVX-512 without VNNI runs the AVX2 tile: "avx512" then times the same kernel again.
        const bool vnni = isa == kernels::Isa::Avx512 && kernels::vnniSupported();
        for (bool with_amx : {false, true}) {
            if (with_amx && !(vnni && amx)) continue;
            kernels::forceAmx(with_amx);
            const char* name = with_amx ? "amx" : vnni ? "vnni" : kernels::isaName(isa);
            const double t = best(20, [&] {
                gemmRequant(A.data(), K, M, 3, pw, {bias.data(), mult.data(), 0, -128, 127, mult_m.data(), mult_rshift.data()}, C.data(), N, s);
            });
            std::printf("int8 GEMM %ldx%ldx%ld %-8s %8.1f GOP/s (%.3f ms)\n", long(M), long(K), long(N), name, ops / t * 1e-9,
                        t * 1e3);
        }
        kernels::clearForcedAmx();
    }
    kernels::clearForcedIsa();
    // The float engine's GEMM (kernels::floatGemm), as dispatched and held to baseline x86-64.
    RowMatrix fa = RowMatrix::Random(M, K), fw = RowMatrix::Random(K, N), fc(M, N);
    const kernels::Isa dispatched = kernels::activeIsa();
    for (kernels::Isa isa : {kernels::Isa::Portable, dispatched}) {
        kernels::forceIsa(isa);
        const double tf = best(20, [&] { kernels::floatGemm(fa.data(), M, K, fw.data(), N, fc.data()); });
        std::printf("float GEMM %ldx%ldx%ld %-8s %8.1f GFLOP/s (%.3f ms)\n", long(M), long(K), long(N),
                    isa == kernels::Isa::Portable ? "baseline" : "dispatch", ops / tf * 1e-9, tf * 1e3);
        if (dispatched == kernels::Isa::Portable) break;
    }
    kernels::clearForcedIsa();
    if (!peer) return 0;
    std::string why;
    const nlohmann::json tp = torchPeer(dir, &why);
    if (tp.is_null()) {
        std::printf("PyTorch peer: skipped (%s)\n", why.c_str());
        return 0;
    }
    std::printf("PyTorch %s int8 (%s engine%s), same models, same run:\n", tp.value("torch", "?").c_str(), tp.value("engine", "?").c_str(),
                peerHeldToAvx2() ? ", ONEDNN_MAX_CPU_ISA=AVX2" : "");
    std::printf("%-12s %7s %5s %12s %12s %9s\n", "model", "threads", "batch", "ours int8 us", "torch int8 us", "ours/torch");
    for (const char* name : {"fmnist_mlp", "fmnist_cnn"})
        for (int threads : {1, 2})
            for (int batch : {256, 1}) {
                const std::string key = "int8_us_t" + std::to_string(threads) + "_b" + std::to_string(batch);
                if (!tp.contains(name) || !tp[name].contains(key)) continue;
                const double theirs = tp[name][key].get<double>();
                const double ours = ours_int8[runKey(name, threads, batch)];
                std::printf("%-12s %7d %5d %12.2f %12.2f %8.2fx\n", name, threads, batch, ours, theirs, ours / theirs);
            }
    return 0;
}
}  // namespace

int main(int argc, char** argv) {
    return qs::bench::benchMain(argc, argv, "bench_int8 [SAMPLE_MODELS_DIR] [IMAGES=2048] [--no-peer | --profile MODEL | --profile-float MODEL]", {"--no-peer", "--profile", "--profile-float"}, runBench);
}
