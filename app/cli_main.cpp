// quantscope-cli: everything the GUI does, for scripts and CI. Thin: parses arguments, calls
// core, prints. Errors: one line on stderr, exit status 1 (2 for usage errors).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "analysis_report.h"
#include "error.h"
#include "float_engine.h"
#include "idx_dataset.h"
#include "model_loader.h"
#include "model_summary.h"

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
    "      --json       print JSON (schema in README.md).\n";

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
    const auto result = qs::analyzeModel(m, options, all_tensors);
    if (format == "json") std::cout << qs::analysisJson(result, options).dump(2) << "\n";
    else if (format == "csv") std::cout << qs::analysisCsv(result);
    else std::cout << qs::analysisText(result, /*only_chosen=*/!list_all);
    return 0;
}

int eval(const std::vector<std::string>& args) {
    std::string model_path, data_path;
    qs::LoadOptions load;
    qs::Preprocessing pre;
    bool as_json = false;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&](const char* what) -> const std::string& {
            if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs " + what);
            return args[++i];
        };
        if (a == "--json") as_json = true;
        else if (a == "--data") data_path = value("a path");
        else if (a == "--arch") load.arch_path = value("a file");
        else if (a == "--scale") pre.scale = std::stod(value("a number"));
        else if (a == "--mean") pre.mean = std::stod(value("a number"));
        else if (a == "--std") pre.std = std::stod(value("a number"));
        else if (!a.empty() && a[0] == '-') return usage("unknown option " + a);
        else if (model_path.empty()) model_path = a;
        else return usage("more than one model given");
    }
    if (model_path.empty() || data_path.empty()) return usage("eval needs a MODEL and --data PATH");
    if (!(pre.scale != 0) || !(pre.std != 0)) return usage("--scale and --std must be non-zero");
    const qs::Model m = qs::loadModel(model_path, load);
    std::error_code ec;
    qs::ImageDataset data;
    if (std::filesystem::is_directory(data_path, ec)) {
        data = qs::readIdxFolder(data_path);
    } else {
        std::string labels = data_path;
        const size_t at = labels.find("images-idx3");
        if (at == std::string::npos) throw qs::Error(data_path, "", "give a folder, or an IDX images file named *images-idx3*");
        labels.replace(at, 11, "labels-idx1");
        data = qs::readIdxPair(data_path, labels);
    }
    const qs::FloatEngine engine(m, {data.rows, data.cols, data.channels});
    qs::Progress progress;
    progress.on_report = [](int64_t done, int64_t total) { std::fprintf(stderr, "\r%lld/%lld", static_cast<long long>(done), static_cast<long long>(total)); };
    const qs::EvalResult r = qs::evaluateFloat(engine, data, pre, progress);
    std::fprintf(stderr, "\n");
    if (as_json) {
        const nlohmann::json j = {{"model", model_path}, {"data", data.source}, {"n", r.n},
                                  {"preprocessing", {{"scale", pre.scale}, {"mean", pre.mean}, {"std", pre.std}}},
                                  {"float", {{"top1", r.top1}, {"top5", r.top5}}}, {"quantized", nullptr}};
        std::cout << j.dump(2) << "\n";
    } else {
        std::printf("images: %lld (%s)\nfloat top-1: %.4f  top-5: %.4f\nquantized: not implemented yet\n", static_cast<long long>(r.n),
                    data.source.c_str(), r.top1, r.top5);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage("");
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
        return usage("unknown command '" + cmd + "'");
    } catch (const qs::Error& e) {
        std::fprintf(stderr, "quantscope-cli: %s\n", e.what());
        return 1;
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
