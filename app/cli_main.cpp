// quantscope-cli: everything the GUI does, for scripts and CI. Thin: parses arguments, calls
// core (and, for `report`, the chart widgets offscreen), prints. Errors: one line on stderr, exit status 1 (2 for usage errors).
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "base/allocator.h"
#include "base/error.h"
#include "cli_report.h"
#include "cli_suggest.h"
#include "data/array_dataset.h"
#include "data/idx_dataset.h"
#include "engine/float_engine.h"
#include "engine/quantized_model.h"
#include "eval/quantized_evaluation.h"
#include "export/exports.h"
#include "formats/h5_preflight.h"
#include "formats/keras_config.h"
#include "formats/model_loader.h"
#include "model/model_summary.h"
#include "quant/analysis_report.h"
#include "quant/quant_config.h"

namespace {

const char* kUsage =
    "usage: quantscope-cli <command> [options]\n"
    "\n"
    "commands:\n"
    "  inspect MODEL [--arch FILE] [--json]\n"
    "      Detected format, Keras version, one row per layer (name, class, output shape,\n"
    "      parameters, weight tensors), total parameters and float32 size.\n"
    "      --arch FILE  architecture for a weights-only file (Keras to_json .json, to_yaml\n"
    "                   .yaml, or a .keras archive); found by itself when it sits beside\n"
    "                   the weights as m.json / m.yaml / m.keras for m_weights.h5.\n"
    "      --json       print JSON (schema in README.md).\n"
    "\n"
    "  analyze MODEL [--bits 16|8|4|2] [--per-channel|--per-tensor] [--method NAME|all]\n"
    "                [--all-tensors] [--json|--csv] [--arch FILE]\n"
    "      Per weight tensor: range, histograms, every candidate scale and its errors.\n"
    "\n"
    "  eval MODEL --data PATH [--config cfg.json] [--calib N] [--bits 16|8|4|2]\n"
    "             [--per-channel|--per-tensor] [--mode integer|hybrid|float16]\n"
    "             [--scale S --mean M --std D] [--x NAME --y NAME] [--float-only]\n"
    "             [--limit N] [--arch FILE] [--json]\n"
    "      Float and quantized side by side: top-1/top-5, agreement, confusion matrices,\n"
    "      size, peak activation memory, per-op SQNR; the integer engine and its fake-quant\n"
    "      simulation. Without --config: every layer int8, per-channel, max-abs weights,\n"
    "      min/max activations, 500 calibration images (the training split beside the test\n"
    "      set when there is one, else the test set).\n"
    "      --data   a folder with an IDX images/labels pair, an IDX images file, a .npz\n"
    "               (x_test/y_test, x/y, images/labels, or --x/--y), an .npy images file\n"
    "               with its labels beside it, an HDF5 file, or a folder of class\n"
    "               sub-folders of .png/.jpg/.bmp/.gif images (classes in name order).\n"
    "      x = (v / S - M) / D; default S is inferred (255 for uint8 data or values past\n"
    "      1.5, else 1), M = 0, D = 1; the JSON says which was used. Ctrl-C stops cleanly\n"
    "      (exit status 130). --limit N scores the first N test images only.\n"
    "\n"
    "  config MODEL [--bits B] [--per-channel|--per-tensor] [--method M]\n"
    "               [--layer NAME=SPEC ...] [--calib N] [--data PATH] --out cfg.json\n"
    "      Writes a quantization config (schema in README.md); SPEC such as 4, 16,\n"
    "      float32, 8:per-tensor:pow2.\n"
    "\n"
    "  export MODEL --config cfg.json --format aimet|hdf5|c-header --out PATH [--data PATH]\n"
    "      AIMET encodings JSON (0.5.0), quantized weights as HDF5, or a C header.\n"
    "\n"
    "  report MODEL --data PATH --config a.json --config b.json ... --out DIR\n"
    "         [--limit N] [--arch FILE]\n"
    "      Evaluates each config as eval does and writes to DIR, headless: the charts\n"
    "      accuracy_vs_size, layer_sqnr and layer_size (.png and .svg), report.html (the\n"
    "      charts and tables of the numbers) and report.json. A config is named after its\n"
    "      file (a.json -> a). Every config is checked against the model before the first\n"
    "      evaluation starts.\n"
    "\n"
    "  sensitivity MODEL --data PATH [--baseline int8|float] [--shard K/N] [--json|--csv]\n"
    "              [--search-images N] [--sensitivity-images N] [--calib N] [--limit N]\n"
    "              [--arch FILE]\n"
    "      Per quantizable layer and setting (weights 8/4/2 bits with int8 or int16\n"
    "      activations, 16 bits, per channel and per tensor, float16, float32), that layer\n"
    "      alone changed on the baseline (other layers int8, or float32), run by the integer\n"
    "      engine on the first 2,000 search images (--sensitivity-images N, 0: all; the\n"
    "      search images are the first half of the test set, or --search-images N):\n"
    "      top-1, agreement with float, output SQNR and KL divergence, model bytes.\n"
    "      --shard K/N measures every N-th layer from the K-th; merge the shards' JSON\n"
    "      tables with: sensitivity --merge a.json b.json ... [--json|--csv].\n"
    "\n"
    "  suggest MODEL --data PATH (--max-drop PTS | --bits-per-weight B | --max-bytes N)\n"
    "          --out cfg.json [--pareto pareto.json] [--sensitivity table.json]\n"
    "          [--max-evals N] [--baseline int8|float] [--search-images N] [--json]\n"
    "      Mixed precision: the sensitivity table (measured, or read), a greedy search\n"
    "      over it, every config on its path evaluated for real on the search images;\n"
    "      prints the Pareto front (bytes, bits per weight, search and held-out top-1,\n"
    "      agreement) and writes the budget's pick as a config for eval/export/report.\n"
    "      Held-out images (the rest of the test set) are never seen by the search.\n";

int usage(const std::string& msg) {
    if (!msg.empty()) std::fprintf(stderr, "quantscope-cli: %s\n", msg.c_str());
    std::fputs(kUsage, stderr);
    return 2;
}

int inspect(const std::vector<std::string>& args) {
    std::string model_path;
    qs::LoadOptions options;
    bool as_json = false;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--json") as_json = true;
        else if (a == "--arch") {
            if (i + 1 >= args.size()) return usage("--arch needs a file");
            options.arch_path = args[++i];
        } else if (!a.empty() && a[0] == '-') return usage("unknown option " + a);
        else if (model_path.empty()) model_path = a;
        else return usage("more than one model given");
    }
    if (model_path.empty()) return usage("inspect needs a MODEL");
    options.values = false;  // shapes and counts: the weights' values are never read
    const qs::Model m = qs::loadModel(model_path, options);
    if (as_json) std::cout << qs::modelSummaryJson(m).dump(2) << "\n";
    else std::cout << qs::modelSummaryText(m);
    return 0;
}

int analyze(const std::vector<std::string>& args) {
    std::string model_path, format = "text";
    qs::LoadOptions load;
    qs::AnalysisOptions options;
    bool all_tensors = false, list_all = true;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&](const char* what) -> const std::string& {
            if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs " + what);
            return args[++i];
        };
        if (a == "--json") format = "json";
        else if (a == "--csv") format = "csv";
        else if (a == "--per-channel") options.granularity = qs::Granularity::PerChannel;
        else if (a == "--per-tensor") options.granularity = qs::Granularity::PerTensor;
        else if (a == "--all-tensors") all_tensors = true;
        else if (a == "--arch") load.arch_path = value("a file");
        else if (a == "--bits") {
            const std::string& v = value("2, 4, 8 or 16");
            if (v != "2" && v != "4" && v != "8" && v != "16") return usage("--bits must be 2, 4, 8 or 16 (got " + v + ")");
            options.bits = std::stoi(v);
        } else if (a == "--method") {
            const std::string& m = value("a method");
            list_all = m == "all";
            if (!list_all) {
                const auto& known = qs::candidateMethods();
                if (std::find(known.begin(), known.end(), m) == known.end()) return usage("unknown method '" + m + "'");
                options.method = m;
            }
        } else if (!a.empty() && a[0] == '-') return usage("unknown option " + a);
        else if (model_path.empty()) model_path = a;
        else return usage("more than one model given");
    }
    if (model_path.empty()) return usage("analyze needs a MODEL");
    const qs::Model m = qs::loadModel(model_path, load);
    // A file without a Keras architecture has no kernels to pick out: its tensors are the thing
    // to analyse, 1-D ones included.
    if (m.format == qs::ModelFormat::GenericH5) all_tensors = true;
    const auto result = qs::analyzeModel(m, options, all_tensors);
    if (result.empty())
        std::cerr << "quantscope-cli: " << model_path << ": no tensor analysed: "
                  << (m.paramCount() == 0 ? "the file holds no floating-point weights"
                                          : "no kernel (rank >= 2); --all-tensors also analyses 1-D tensors (biases, BatchNorm vectors)")
                  << "\n";
    if (format == "json") std::cout << qs::analysisJson(result, options).dump(2) << "\n";
    else if (format == "csv") std::cout << qs::analysisCsv(result);
    else std::cout << qs::analysisText(result, /*only_chosen=*/!list_all);
    return 0;
}

std::atomic<bool> g_interrupted{false};

extern "C" void onInterrupt(int) { g_interrupted = true; }

// Percent done on stderr; Ctrl-C asks the running job to stop at its next check.
qs::Progress interruptibleProgress() {
    std::signal(SIGINT, onInterrupt);
    qs::Progress progress;
    progress.is_cancelled = [] { return g_interrupted.load(); };
    progress.on_report = [](int64_t done, int64_t total) {
        std::fprintf(stderr, "\r%5.1f%%", total > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 0.0);
    };
    return progress;
}

int eval(const std::vector<std::string>& args) {
    std::string model_path, data_path, config_path;
    qs::LoadOptions load;
    std::optional<double> scale;
    double mean = 0, sd = 1;
    qs::ArrayDatasetOptions data_options;
    qs::QuantConfig config;
    int calib = -1;
    int64_t limit = 0;
    bool as_json = false, float_only = false;
    std::optional<qs::Granularity> granularity;
    std::optional<qs::Precision> precision;
    std::optional<qs::QuantMode> mode;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&](const char* what) -> const std::string& {
            if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs " + what);
            return args[++i];
        };
        if (a == "--json") as_json = true;
        else if (a == "--data") data_path = value("a path");
        else if (a == "--arch") load.arch_path = value("a file");
        else if (a == "--config") config_path = value("a file");
        else if (a == "--calib") calib = std::stoi(value("a number of samples"));
        else if (a == "--float-only") float_only = true;
        else if (a == "--limit") limit = std::stoll(value("a number of images"));
        else if (a == "--per-tensor") granularity = qs::Granularity::PerTensor;
        else if (a == "--per-channel") granularity = qs::Granularity::PerChannel;
        else if (a == "--bits") {
            const std::string& v = value("16, 8, 4 or 2");
            precision = qs::parsePrecision(v);
            if (!precision || !qs::isInteger(*precision)) return usage("--bits must be 16, 8, 4 or 2 (got " + v + ")");
        } else if (a == "--mode") {
            const std::string& v = value("integer, hybrid or float16");
            mode = qs::parseQuantMode(v);
            if (!mode) return usage("--mode must be integer, hybrid or float16 (got " + v + ")");
        } else if (a == "--scale") scale = std::stod(value("a number"));
        else if (a == "--mean") mean = std::stod(value("a number"));
        else if (a == "--std") sd = std::stod(value("a number"));
        else if (a == "--x") data_options.x_name = value("an array name");
        else if (a == "--y") data_options.y_name = value("an array name");
        else if (!a.empty() && a[0] == '-') return usage("unknown option " + a);
        else if (model_path.empty()) model_path = a;
        else return usage("more than one model given");
    }
    if (model_path.empty() || data_path.empty()) return usage("eval needs a MODEL and --data PATH");
    if ((scale && !(*scale != 0)) || !(sd != 0)) return usage("--scale and --std must be non-zero");
    if (data_options.x_name.empty() != data_options.y_name.empty()) return usage("--x and --y go together");
    if (calib == 0 || calib < -1) return usage("--calib must be at least 1");
    if (limit < 0) return usage("--limit must be positive");
    if (!config_path.empty()) config = qs::loadQuantConfig(config_path);
    if (precision) config.defaults.precision = *precision;
    if (granularity) config.defaults.granularity = *granularity;
    if (mode) config.mode = *mode;
    if (calib > 0) config.calibration_samples = calib;
    const qs::Model m = qs::loadModel(model_path, load);
    if (!config_path.empty()) qs::checkConfigAgainstModel(config, m, config_path);
    qs::ImageDataset data = qs::readDataset(data_path, data_options);
    if (limit > 0) qs::keepFirstImages(data, limit);
    std::string pre_why;
    const qs::Preprocessing pre = qs::choosePreprocessing(data, scale, mean, sd, &pre_why);
    std::fprintf(stderr, "preprocessing: x = (v / %g - %g) / %g (%s)\n", pre.scale, pre.mean, pre.std, pre_why.c_str());

    const qs::Progress progress = interruptibleProgress();
    const nlohmann::json pre_json = {{"scale", pre.scale}, {"mean", pre.mean}, {"std", pre.std}, {"source", pre_why}};
    try {
        if (float_only) {
            const qs::FloatEngine engine(m, {data.rows, data.cols, data.channels});
            const qs::EvalResult r = qs::evaluateFloat(engine, data, pre, progress);
            std::fprintf(stderr, "\n");
            if (as_json) {
                const nlohmann::json j = {{"model", model_path}, {"data", data.source}, {"n", r.n}, {"preprocessing", pre_json},
                                          {"float", {{"top1", r.top1}, {"top5", r.top5}}}, {"quantized", nullptr}};
                std::cout << j.dump(2) << "\n";
            } else {
                std::printf("images: %lld (%s)\nfloat top-1: %.4f  top-5: %.4f\n", static_cast<long long>(r.n), data.source.c_str(), r.top1, r.top5);
            }
            return 0;
        }
        std::string calib_source;
        const qs::RowMatrix calibration = qs::calibrationRows(data_path, data, pre, config.calibration_samples, &calib_source);
        const qs::Comparison c = qs::compareQuantized(m, config, data, calibration, pre, {}, progress);
        std::fprintf(stderr, "\n");
        if (as_json) {
            nlohmann::json j = qs::comparisonJson(c);
            j["model"] = model_path;
            j["data"] = data.source;
            j["n"] = data.n;
            j["preprocessing"] = pre_json;
            j["calibration_source"] = calib_source;
            j["config"] = qs::quantConfigToJson(config);
            std::cout << j.dump(2) << "\n";
        } else {
            std::printf("images: %lld (%s); calibration: %lld from %s\n", static_cast<long long>(data.n), data.source.c_str(),
                        static_cast<long long>(c.calibration_samples), calib_source.c_str());
            std::printf("%-22s %10s %10s\n", "", "float", "quantized");
            std::printf("%-22s %10.4f %10.4f\n", "top-1", c.float_result.top1, c.quantized.top1);
            std::printf("%-22s %10.4f %10.4f\n", "top-5", c.float_result.top5, c.quantized.top5);
            std::printf("%-22s %10lld %10lld\n", "size (bytes)", static_cast<long long>(c.float_bytes), static_cast<long long>(c.quantized_bytes));
            std::printf("%-22s %10lld %10lld\n", "peak activations (B)", static_cast<long long>(c.float_peak_activation_bytes),
                        static_cast<long long>(c.quantized_peak_activation_bytes));
            std::printf("%-22s %10.2f %10.2f\n", "seconds", c.seconds_float, c.seconds_quantized);
            std::printf("agreement with float: %.4f; with fake-quant simulation: %.4f (simulation top-1 %.4f)\n", c.agreement_float,
                        c.agreement_fake_quant, c.fake_quant.top1);
            std::printf("\n%-28s %-16s %-8s %-8s %6s %9s %10s\n", "op", "kind", "domain", "prec", "wbits", "SQNR dB", "bytes");
            for (const qs::OpReport& r : c.ops)
                std::printf("%-28s %-16s %-8s %-8s %6d %9.2f %10lld\n", r.name.c_str(), r.kind.c_str(), r.domain.c_str(), r.precision.c_str(),
                            r.weight_bits, r.sqnr_db, static_cast<long long>(r.weight_bytes));
            for (const std::string& n : c.notes) std::printf("note: %s\n", n.c_str());
        }
    } catch (const qs::Cancelled&) {
        std::fprintf(stderr, "\nquantscope-cli: cancelled\n");
        return 130;
    }
    return 0;
}

// Calibration rows for an export: the training split beside the data when there is one.
qs::RowMatrix calibrationFor(const std::string& data_path, int samples) {
    const qs::ImageDataset data = qs::readDataset(data_path);
    const qs::Preprocessing pre = qs::inferPreprocessing(data);
    return qs::calibrationRows(data_path, data, pre, samples);
}

int config(const std::vector<std::string>& args) {
    std::string model_path, out, data_path;
    qs::LoadOptions load;
    qs::QuantConfig c;
    std::vector<std::pair<std::string, std::string>> layer_specs;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&](const char* what) {
            if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs " + what);
            return args[++i];
        };
        if (a == "--out") out = value("a file");
        else if (a == "--arch") load.arch_path = value("a file");
        else if (a == "--data") data_path = value("a path");
        else if (a == "--per-channel") c.defaults.granularity = qs::Granularity::PerChannel;
        else if (a == "--per-tensor") c.defaults.granularity = qs::Granularity::PerTensor;
        else if (a == "--bits") c.defaults = qs::parseLayerSpec(value("16, 8, 4, 2, float16 or float32"), c.defaults);
        else if (a == "--method") c.defaults = qs::parseLayerSpec(std::string(qs::precisionName(c.defaults.precision)) + ":" + value("a method"), c.defaults);
        else if (a == "--calib") {
            const std::string v = value("a count");
            c.calibration_samples = std::atoi(v.c_str());
            if (c.calibration_samples < 1) return usage("--calib must be at least 1");
        } else if (a == "--layer") {
            const std::string v = value("NAME=SPEC");
            const size_t eq = v.rfind('=');
            if (eq == std::string::npos || eq == 0) return usage("--layer takes NAME=SPEC, e.g. dense_1=4:per-tensor");
            layer_specs.emplace_back(v.substr(0, eq), v.substr(eq + 1));
        } else if (!a.empty() && a[0] == '-') return usage("unknown option " + a);
        else if (model_path.empty()) model_path = a;
        else return usage("more than one model given");
    }
    if (model_path.empty() || out.empty()) return usage("config needs a MODEL and --out FILE");
    for (const auto& [name, spec] : layer_specs) c.layers[name] = qs::parseLayerSpec(spec, c.defaults);
    c.calibration_dataset = data_path;
    const qs::Model m = qs::loadModel(model_path, load);
    qs::checkConfigAgainstModel(c, m, "--layer");
    qs::recordScales(c, m);
    qs::saveQuantConfig(out, c);
    std::fprintf(stderr, "wrote %s: %zu layer overrides, scales for %zu layers\n", out.c_str(), c.layers.size(), c.scales.size());
    return 0;
}

int exportCommand(const std::vector<std::string>& args) {
    std::string model_path, out, config_path, format, data_path;
    qs::LoadOptions load;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&](const char* what) {
            if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs " + what);
            return args[++i];
        };
        if (a == "--out") out = value("a path");
        else if (a == "--config") config_path = value("a file");
        else if (a == "--format") format = value("aimet, hdf5 or c-header");
        else if (a == "--data") data_path = value("a path");
        else if (a == "--arch") load.arch_path = value("a file");
        else if (!a.empty() && a[0] == '-') return usage("unknown option " + a);
        else if (model_path.empty()) model_path = a;
        else return usage("more than one model given");
    }
    if (model_path.empty() || out.empty() || config_path.empty() || format.empty())
        return usage("export needs MODEL --config FILE --format aimet|hdf5|c-header --out PATH");
    if (format != "aimet" && format != "hdf5" && format != "c-header") return usage("--format must be aimet, hdf5 or c-header");
    const qs::QuantConfig c = qs::loadQuantConfig(config_path);
    const qs::Model m = qs::loadModel(model_path, load);
    qs::checkConfigAgainstModel(c, m, config_path);
    std::vector<std::string> notes;
    if (format == "hdf5") {
        notes = qs::exportQuantizedWeightsH5(m, c, out);
    } else {
        if (data_path.empty()) data_path = c.calibration_dataset;
        if (data_path.empty())
            return usage("--format " + format + " calibrates activations: give --data PATH (or save calibration_dataset in the config)");
        const qs::QuantizedModel qm = qs::quantizeModel(m, c, calibrationFor(data_path, c.calibration_samples));
        notes = format == "aimet" ? qs::exportAimetEncodings(qm, out) : qs::exportCHeader(qm, out);
    }
    for (const std::string& n : notes) std::fprintf(stderr, "note: %s\n", n.c_str());
    std::fprintf(stderr, "wrote %s\n", out.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    qs::tuneAllocator();
    if (argc < 2) return usage("");
    qs::h5::startPreflightHelper();  // forked while we have one thread (h5_preflight.h)
    const std::string cmd = argv[1];
    if (cmd == "-h" || cmd == "--help" || cmd == "help") {
        std::fputs(kUsage, stdout);
        return 0;
    }
    std::vector<std::string> args(argv + 2, argv + argc);
    try {
        if (cmd == "inspect") return inspect(args);
        if (cmd == "analyze") return analyze(args);
        if (cmd == "eval") return eval(args);
        if (cmd == "config") return config(args);
        if (cmd == "export") return exportCommand(args);
        if (cmd == "report") return reportCommand(args, interruptibleProgress());
        if (cmd == "sensitivity") return sensitivityCommand(args, interruptibleProgress());
        if (cmd == "suggest") return suggestCommand(args, interruptibleProgress());
        return usage("unknown command '" + cmd + "'");
    } catch (const qs::Error& e) {
        std::fprintf(stderr, "quantscope-cli: %s\n", e.what());
        return 1;
    } catch (const qs::Cancelled&) {
        std::fprintf(stderr, "\nquantscope-cli: cancelled\n");
        return 130;
    } catch (const std::invalid_argument& e) {
        return usage(e.what());
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "quantscope-cli: out of memory\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "quantscope-cli: internal error: %s\n", e.what());
        return 1;
    }
}
