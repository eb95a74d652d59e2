#include "cli_report.h"

#include <QApplication>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>

#include "data/array_dataset.h"
#include "eval/config_comparison.h"
#include "formats/model_loader.h"
#include "quant/quant_config.h"
#include "report_writer.h"

namespace {

struct ReportArgs {
    std::string model, data, out;
    std::vector<std::string> configs;
    qs::LoadOptions load;
    int64_t limit = 0;
};

ReportArgs parseArgs(const std::vector<std::string>& args) {
    ReportArgs r;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&](const char* what) -> const std::string& {
            if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs " + what);
            return args[++i];
        };
        if (a == "--data") r.data = value("a path");
        else if (a == "--config") r.configs.push_back(value("a file"));
        else if (a == "--out") r.out = value("a folder");
        else if (a == "--arch") r.load.arch_path = value("a file");
        else if (a == "--limit") r.limit = std::stoll(value("a number of images"));
        else if (!a.empty() && a[0] == '-') throw std::invalid_argument("unknown option " + a);
        else if (r.model.empty()) r.model = a;
        else throw std::invalid_argument("more than one model given");
    }
    if (r.model.empty() || r.data.empty() || r.configs.empty() || r.out.empty())
        throw std::invalid_argument("report needs MODEL --data PATH --config FILE [--config FILE ...] --out DIR");
    if (r.limit < 0) throw std::invalid_argument("--limit must be positive");
    return r;
}

// A config's name in the charts: its file name without extension, numbered when two agree.
std::vector<std::string> configNames(const std::vector<std::string>& paths) {
    std::vector<std::string> names;
    std::map<std::string, int> seen;
    for (const std::string& p : paths) {
        std::string stem = std::filesystem::path(p).stem().string();
        const int n = ++seen[stem];
        names.push_back(n == 1 ? stem : stem + " (" + std::to_string(n) + ")");
    }
    return names;
}

// Qt for drawing only: offscreen unless the caller chose a platform, so it runs headless.
std::unique_ptr<QApplication> startQt() {
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
    static int argc = 1;
    static char name[] = "quantscope-cli";
    static char* argv[] = {name, nullptr};
    return std::make_unique<QApplication>(argc, argv);
}

}  // namespace

int reportCommand(const std::vector<std::string>& args, const qs::Progress& progress) {
    const ReportArgs a = parseArgs(args);
    // Every config is read and checked before the first (long) evaluation starts.
    const qs::Model model = qs::loadModel(a.model, a.load);
    std::vector<qs::ConfigRun> runs;
    const std::vector<std::string> names = configNames(a.configs);
    for (size_t i = 0; i < a.configs.size(); ++i) {
        qs::QuantConfig c = qs::loadQuantConfig(a.configs[i]);
        qs::checkConfigAgainstModel(c, model, a.configs[i]);
        runs.push_back({names[i], std::move(c), {}});
    }
    qs::ImageDataset data = qs::readDataset(a.data);
    if (a.limit > 0) qs::keepFirstImages(data, a.limit);
    std::string why;
    const qs::Preprocessing pre = qs::inferPreprocessing(data, &why);
    std::fprintf(stderr, "preprocessing: x = (v / %g - %g) / %g (%s)\n", pre.scale, pre.mean, pre.std, why.c_str());

    std::map<int, qs::RowMatrix> calibration;  // by sample count: configs usually share it
    for (size_t i = 0; i < runs.size(); ++i) {
        qs::ConfigRun& run = runs[i];
        const int count = run.config.calibration_samples;
        if (!calibration.count(count)) calibration[count] = qs::calibrationRows(a.data, data, pre, count);
        qs::Progress step;
        step.is_cancelled = progress.is_cancelled;
        step.on_report = [&](int64_t done, int64_t total) {
            std::fprintf(stderr, "\rconfig %zu/%zu (%s): %5.1f%%", i + 1, runs.size(), run.name.c_str(),
                         total > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 0.0);
        };
        qs::CompareOptions options;  // the float model is evaluated once, for the first config
        if (i > 0) options.float_result = &runs[0].result.float_result, options.float_seconds = runs[0].result.seconds_float;
        run.result = qs::compareQuantized(model, run.config, data, calibration[count], pre, options, step);
        std::fprintf(stderr, "\rconfig %zu/%zu (%s): top-1 %.4f, %lld bytes\n", i + 1, runs.size(), run.name.c_str(), run.result.quantized.top1,
                     static_cast<long long>(run.result.quantized_bytes));
    }

    const std::unique_ptr<QApplication> app = startQt();  // outlives the charts drawn below
    const QString html = writeComparisonReport(QString::fromStdString(a.out), runs, {a.model, data.source, data.n, {}});
    std::fprintf(stderr, "wrote %s\n", html.toStdString().c_str());
    return 0;
}
