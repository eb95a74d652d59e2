// `quantscope-cli sensitivity` and `quantscope-cli suggest`: the per-layer sensitivity table and
// the mixed-precision search (core/eval/sensitivity.h, mixed_precision.h), with the test set
// split into search images and held-out images the search never sees.
#include "cli_suggest.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>

#include "base/atomic_file.h"
#include "base/error.h"
#include "data/array_dataset.h"
#include "data/preprocessing.h"
#include "eval/mixed_precision.h"
#include "formats/model_loader.h"

namespace {

using nlohmann::json;

struct Options {
    std::string model_path, data_path, out, pareto, table_path;
    qs::LoadOptions load;
    qs::ArrayDatasetOptions data_options;
    std::optional<double> scale;
    double mean = 0, sd = 1;
    int64_t limit = 0, search_images = 0, calib = 500;
    qs::SensitivityOptions sens;
    std::string format = "text";
    std::optional<qs::SearchBudget> budget;
    int max_evaluations = 48;
};

// Options both commands take; the command's own ones go to `extra` (true when it took it).
template <class Extra>
Options parse(const std::vector<std::string>& args, Extra extra) {
    Options o;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&](const char* what) -> const std::string& {
            if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs " + what);
            return args[++i];
        };
        if (a == "--data") o.data_path = value("a path");
        else if (a == "--arch") o.load.arch_path = value("a file");
        else if (a == "--json") o.format = "json";
        else if (a == "--csv") o.format = "csv";
        else if (a == "--limit") o.limit = std::stoll(value("a number of images"));
        else if (a == "--search-images") o.search_images = std::stoll(value("a number of images"));
        else if (a == "--calib") o.calib = std::stoll(value("a number of samples"));
        else if (a == "--sensitivity-images") o.sens.max_images = std::stoll(value("a number of images"));
        else if (a == "--scale") o.scale = std::stod(value("a number"));
        else if (a == "--mean") o.mean = std::stod(value("a number"));
        else if (a == "--std") o.sd = std::stod(value("a number"));
        else if (a == "--x") o.data_options.x_name = value("an array name");
        else if (a == "--y") o.data_options.y_name = value("an array name");
        else if (a == "--baseline") {
            const std::string& v = value("int8 or float");
            if (v != "int8" && v != "float") throw std::invalid_argument("--baseline must be int8 or float (got " + v + ")");
            o.sens.baseline = v == "float" ? qs::SensitivityBaseline::Float : qs::SensitivityBaseline::Int8;
        } else if (extra(o, a, value)) {
        } else if (!a.empty() && a[0] == '-') throw std::invalid_argument("unknown option " + a);
        else if (o.model_path.empty()) o.model_path = a;
        else throw std::invalid_argument("more than one model given");
    }
    if (o.model_path.empty()) throw std::invalid_argument("needs a MODEL");
    if (o.limit < 0 || o.search_images < 0) throw std::invalid_argument("--limit and --search-images must be positive");
    if (o.calib < 1) throw std::invalid_argument("--calib must be at least 1");
    if ((o.scale && !(*o.scale != 0)) || !(o.sd != 0)) throw std::invalid_argument("--scale and --std must be non-zero");
    return o;
}

// The model, its calibration and the two halves of the test set, ready for a measurement.
struct Setup {
    qs::Model model;
    qs::SearchSetup run;
};

Setup prepare(const Options& o, const qs::Progress& progress) {
    if (o.data_path.empty()) throw std::invalid_argument("needs --data PATH (a labelled test set)");
    Setup s;
    s.model = qs::loadModel(o.model_path, o.load);
    qs::ImageDataset data = qs::readDataset(o.data_path, o.data_options);
    if (o.limit > 0) qs::keepFirstImages(data, o.limit);
    std::string why;
    const qs::Preprocessing pre = qs::choosePreprocessing(data, o.scale, o.mean, o.sd, &why);
    std::fprintf(stderr, "preprocessing: x = (v / %g - %g) / %g (%s)\n", pre.scale, pre.mean, pre.std, why.c_str());
    s.run = qs::prepareSearch(s.model, o.data_path, data, pre, o.calib, o.search_images, progress);
    const qs::TestSplit& split = s.run.split;
    std::fprintf(stderr, "\nimages: %lld search (test 0..%lld), %lld held out; calibration: %lld from %s\n",
                 static_cast<long long>(split.search_count), static_cast<long long>(split.search_count - 1),
                 static_cast<long long>(split.heldout_count), static_cast<long long>(s.run.calibration.samples),
                 s.run.calibration_source.c_str());
    return s;
}

qs::SensitivityTable readTable(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw qs::Error(path, "", "cannot open");
    json j;
    try {
        j = json::parse(in);
    } catch (const json::exception& e) {
        throw qs::Error(path, "", std::string("not JSON: ") + e.what());
    }
    return qs::sensitivityFromJson(j, path);
}

void printTable(const qs::SensitivityTable& t, const std::string& format) {
    if (format == "json") std::cout << qs::sensitivityJson(t).dump(2) << "\n";
    else if (format == "csv") std::cout << qs::sensitivityCsv(t);
    else std::cout << qs::sensitivityText(t);
}

}  // namespace

int sensitivityCommand(const std::vector<std::string>& args, const qs::Progress& progress) {
    if (std::find(args.begin(), args.end(), "--merge") != args.end()) {
        // `sensitivity --merge a.json b.json ... [--json|--csv]`: the shards' tables, as one.
        std::string format = "text";
        std::vector<qs::SensitivityTable> parts;
        for (const std::string& a : args) {
            if (a == "--merge") continue;
            if (a == "--json" || a == "--csv") format = a.substr(2);
            else if (!a.empty() && a[0] == '-') throw std::invalid_argument("--merge takes table files and --json/--csv only (got " + a + ")");
            else parts.push_back(readTable(a));
        }
        printTable(qs::mergeSensitivity(parts, "--merge"), format);
        return 0;
    }
    const Options o = parse(args, [&](Options& opt, const std::string& a, auto& value) {
        if (a == "--shard") {
            const std::string& v = value("K/N");
            const size_t slash = v.find('/');
            if (slash == std::string::npos) throw std::invalid_argument("--shard takes K/N, e.g. 0/2");
            opt.sens.shard = std::stoi(v.substr(0, slash));
            opt.sens.shards = std::stoi(v.substr(slash + 1));
            if (opt.sens.shards < 1 || opt.sens.shard < 0 || opt.sens.shard >= opt.sens.shards)
                throw std::invalid_argument("--shard K/N needs 0 <= K < N");
            return true;
        }
        return false;
    });
    const Setup s = prepare(o, progress);
    const qs::SensitivityTable t = qs::measureSensitivity(s.model, s.run.calibration, s.run.search, o.sens, progress);
    std::fprintf(stderr, "\n");
    printTable(t, o.format);
    return 0;
}

int suggestCommand(const std::vector<std::string>& args, const qs::Progress& progress) {
    Options o = parse(args, [&](Options& opt, const std::string& a, auto& value) {
        auto budget = [&](qs::SearchBudget::Kind k) {
            if (opt.budget) throw std::invalid_argument("give one budget: --max-drop, --bits-per-weight or --max-bytes");
            const double v = std::stod(value("a number"));
            if (!(v >= 0)) throw std::invalid_argument(a + " must be a non-negative number");
            opt.budget = qs::SearchBudget{k, v};
            return true;
        };
        if (a == "--max-drop") return budget(qs::SearchBudget::MaxDrop);
        if (a == "--bits-per-weight") return budget(qs::SearchBudget::BitsPerWeight);
        if (a == "--max-bytes") return budget(qs::SearchBudget::MaxBytes);
        if (a == "--out") return opt.out = value("a file"), true;
        if (a == "--pareto") return opt.pareto = value("a file"), true;
        if (a == "--sensitivity") return opt.table_path = value("a file"), true;
        if (a == "--max-evals") return opt.max_evaluations = std::stoi(value("a number")), true;
        return false;
    });
    if (!o.budget) throw std::invalid_argument("suggest needs a budget: --max-drop PTS, --bits-per-weight B or --max-bytes N");
    if (o.out.empty()) throw std::invalid_argument("suggest needs --out cfg.json");
    if (o.max_evaluations < 2) throw std::invalid_argument("--max-evals must be at least 2");
    const Setup s = prepare(o, progress);
    qs::SensitivityTable table;
    if (!o.table_path.empty()) {
        table = readTable(o.table_path);
        if (table.samples > s.run.search.rows.rows())
            throw qs::Error(o.table_path, "samples", "measured on " + std::to_string(table.samples) + " search images, this run has only " +
                                                         std::to_string(s.run.search.rows.rows()));
    } else {
        o.sens.shard = 0, o.sens.shards = 1;
        table = qs::measureSensitivity(s.model, s.run.calibration, s.run.search, o.sens, progress);
    }
    qs::SearchOptions so;
    so.max_evaluations = o.max_evaluations;
    const qs::SearchResult r = qs::searchMixedPrecision(s.model, s.run.calibration, table, s.run.search, s.run.heldout, *o.budget, so, progress);
    std::fprintf(stderr, "\n");
    json j = qs::searchJson(r, table);
    j["data"] = o.data_path;
    j["calibration_source"] = s.run.calibration_source;
    if (!o.pareto.empty()) qs::writeFileAtomically(o.pareto, j.dump(2) + "\n");
    if (r.chosen >= 0) {
        qs::QuantConfig cfg = r.points[static_cast<size_t>(r.chosen)].config;
        cfg.calibration_dataset = o.data_path;
        qs::recordScales(cfg, s.model);
        qs::saveQuantConfig(o.out, cfg);
    }
    if (o.format == "json") {
        std::cout << j.dump(2) << "\n";
    } else {
        std::printf("float: %lld bytes, search top-1 %.4f, held-out top-1 %.4f\n", static_cast<long long>(table.float_bytes),
                    r.float_search_top1, r.float_heldout_top1);
        std::printf("\nPareto front (%zu of %zu evaluated configs):\n", r.front.size(), r.points.size());
        std::printf("  %-18s %11s %9s %10s %10s %10s\n", "config", "bytes", "bits/w", "search", "held-out", "agreement");
        for (size_t i : r.front) {
            const qs::SearchPoint& p = r.points[i];
            std::printf("%s %-18s %11lld %9.2f %10.4f %10.4f %10.4f\n", static_cast<int>(i) == r.chosen ? "*" : " ", p.origin.c_str(),
                        static_cast<long long>(p.bytes), p.bits_per_weight, p.search.top1, p.heldout.top1, p.heldout.agreement);
        }
        std::printf("\n%s\n", r.note.c_str());
        if (r.chosen >= 0) {
            const qs::SearchPoint& c = r.points[static_cast<size_t>(r.chosen)];
            std::printf("chosen: held-out top-1 %.4f (float %.4f, %+.2f points); per layer:\n", c.heldout.top1, r.float_heldout_top1,
                        100 * (c.heldout.top1 - r.float_heldout_top1));
            for (size_t li = 0; li < table.layers.size(); ++li) std::printf("  %-28s %s\n", table.layers[li].c_str(), c.settings[li].c_str());
        }
    }
    if (r.chosen < 0) {
        std::fprintf(stderr, "quantscope-cli: %s; no config written\n", r.note.c_str());
        return 1;
    }
    std::fprintf(stderr, "wrote %s\n", o.out.c_str());
    return 0;
}
