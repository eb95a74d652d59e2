#include "eval/config_comparison.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>
#include <sstream>

namespace qs {

std::vector<size_t> paretoFront(const std::vector<double>& sizes, const std::vector<double>& accuracies) {
    std::vector<size_t> front;
    for (size_t i = 0; i < sizes.size(); ++i) {
        bool dominated = false;
        for (size_t j = 0; j < sizes.size() && !dominated; ++j)
            dominated = sizes[j] <= sizes[i] && accuracies[j] >= accuracies[i] &&
                        (sizes[j] < sizes[i] || accuracies[j] > accuracies[i]);
        if (!dominated) front.push_back(i);
    }
    std::stable_sort(front.begin(), front.end(), [&](size_t a, size_t b) { return sizes[a] < sizes[b]; });
    return front;
}

std::vector<size_t> paretoFront(const std::vector<ConfigRun>& runs) {
    std::vector<double> sizes, accuracies;
    for (const ConfigRun& r : runs) {
        sizes.push_back(static_cast<double>(r.result.quantized_bytes));
        accuracies.push_back(r.result.quantized.top1);
    }
    return paretoFront(sizes, accuracies);
}

LayerSeries layerSeries(const std::vector<ConfigRun>& runs) {
    LayerSeries s;
    if (runs.empty()) return s;
    for (const OpReport& op : runs.front().result.ops)
        if (op.weight_bits > 0) s.layers.push_back(op.name);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (const ConfigRun& run : runs) {
        std::map<std::string, const OpReport*> by_name;
        for (const OpReport& op : run.result.ops) by_name[op.name] = &op;
        std::vector<double> sqnr, bytes;
        std::vector<std::string> precision;
        for (const std::string& name : s.layers) {
            auto it = by_name.find(name);
            sqnr.push_back(it == by_name.end() ? nan : it->second->sqnr_db);
            bytes.push_back(it == by_name.end() ? nan : static_cast<double>(it->second->weight_bytes));
            precision.push_back(it == by_name.end() ? "" : it->second->precision);
        }
        s.sqnr_db.push_back(std::move(sqnr));
        s.bytes.push_back(std::move(bytes));
        s.precision.push_back(std::move(precision));
    }
    return s;
}

std::string precisionSummary(const Comparison& c) {
    std::map<std::string, int> count;
    std::string domain;
    for (const OpReport& op : c.ops) {
        if (op.weight_bits <= 0) continue;
        ++count[op.precision];
        if (op.domain == "hybrid") domain = "hybrid ";
    }
    if (count.empty()) return "no weights";
    if (count.size() == 1) return domain + count.begin()->first;
    std::string s = domain + "mixed:";
    for (const auto& [precision, n] : count) s += " " + std::to_string(n) + "x " + precision + ",";
    s.pop_back();
    return s;
}

namespace {

nlohmann::json finiteOrNull(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::string escapeHtml(const std::string& s) {
    std::string out;
    for (char ch : s) {
        switch (ch) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += ch;
        }
    }
    return out;
}

std::string format(const char* fmt, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, v);
    return buf;
}

std::string percent(double fraction) { return format("%.2f", 100 * fraction); }
std::string kilobytes(double bytes) { return std::isfinite(bytes) ? format("%.1f", bytes / 1000) : std::string("&ndash;"); }
std::string decibels(double db) { return std::isfinite(db) ? format("%.1f", db) : std::string(db > 0 ? "exact" : "&ndash;"); }

}  // namespace

nlohmann::json comparisonReportJson(const std::vector<ConfigRun>& runs, const ReportInfo& info) {
    const std::vector<size_t> front = paretoFront(runs);
    const LayerSeries series = layerSeries(runs);
    nlohmann::json configs = nlohmann::json::array();
    for (size_t i = 0; i < runs.size(); ++i) {
        const Comparison& c = runs[i].result;
        nlohmann::json layers = nlohmann::json::array();
        for (size_t k = 0; k < series.layers.size(); ++k)
            layers.push_back({{"name", series.layers[k]}, {"precision", series.precision[i][k]},
                              {"sqnr_db", finiteOrNull(series.sqnr_db[i][k])}, {"size_bytes", finiteOrNull(series.bytes[i][k])}});
        configs.push_back({{"name", runs[i].name},
                           {"precision", precisionSummary(c)},
                           {"mode", quantModeName(runs[i].config.mode)},
                           {"top1", c.quantized.top1},
                           {"top5", c.quantized.top5},
                           {"agreement", c.agreement_float},
                           {"size_bytes", c.quantized_bytes},
                           {"peak_activation_bytes", c.quantized_peak_activation_bytes},
                           {"pareto", std::find(front.begin(), front.end(), i) != front.end()},
                           {"layers", layers},
                           {"config", quantConfigToJson(runs[i].config)}});
    }
    nlohmann::json j = {{"model", info.model}, {"data", info.data}, {"images", info.images}, {"configs", configs}, {"charts", info.chart_files}};
    nlohmann::json names = nlohmann::json::array();
    for (size_t i : front) names.push_back(runs[i].name);
    j["pareto_front"] = names;
    if (!runs.empty()) {
        const Comparison& c = runs.front().result;
        j["float"] = {{"top1", c.float_result.top1}, {"top5", c.float_result.top5}, {"size_bytes", c.float_bytes},
                      {"peak_activation_bytes", c.float_peak_activation_bytes}};
    }
    return j;
}

std::string comparisonReportHtml(const std::vector<ConfigRun>& runs, const ReportInfo& info) {
    const std::vector<size_t> front = paretoFront(runs);
    const LayerSeries series = layerSeries(runs);
    std::ostringstream h;
    h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Quantscope report: "
      << escapeHtml(info.model) << "</title>\n<style>\n"
      << "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
      << "th,td{border:1px solid #bbb;padding:3px 8px;text-align:right}th:first-child,td:first-child{text-align:left}"
      << "th{background:#eee}img{max-width:100%;margin:0.5em 0;border:1px solid #ddd}.pareto{font-weight:bold}\n"
      << "</style>\n</head>\n<body>\n";
    h << "<h1>Quantization comparison</h1>\n<p>Model: <code>" << escapeHtml(info.model) << "</code><br>Test set: <code>"
      << escapeHtml(info.data) << "</code> (" << info.images << " images)<br>"
      << "Accuracy: top-1 of the integer engine; size: packed weights, scales and biases; "
      << "SQNR: each layer's output from the integer engine against the float model.</p>\n";
    for (const std::string& chart : info.chart_files)
        h << "<img src=\"" << escapeHtml(chart) << "\" alt=\"" << escapeHtml(chart) << "\">\n";

    h << "<h2>Summary</h2>\n<table>\n<tr><th>config</th><th>weights</th><th>mode</th><th>top-1 %</th><th>&Delta; top-1 (points)</th>"
      << "<th>top-5 %</th><th>agreement %</th><th>size kB</th><th>compression</th><th>peak activations kB</th><th>Pareto</th></tr>\n";
    if (!runs.empty()) {
        const Comparison& c = runs.front().result;
        h << "<tr><td>float32 (reference)</td><td>float32</td><td>&ndash;</td><td>" << percent(c.float_result.top1)
          << "</td><td>0.00</td><td>" << percent(c.float_result.top5) << "</td><td>100.00</td><td>" << kilobytes(double(c.float_bytes))
          << "</td><td>1.0&times;</td><td>" << kilobytes(double(c.float_peak_activation_bytes)) << "</td><td></td></tr>\n";
    }
    for (size_t i = 0; i < runs.size(); ++i) {
        const Comparison& c = runs[i].result;
        const bool on_front = std::find(front.begin(), front.end(), i) != front.end();
        h << "<tr" << (on_front ? " class=\"pareto\"" : "") << "><td>" << escapeHtml(runs[i].name) << "</td><td>"
          << escapeHtml(precisionSummary(c)) << "</td><td>" << quantModeName(runs[i].config.mode) << "</td><td>" << percent(c.quantized.top1)
          << "</td><td>" << format("%+.2f", 100 * (c.quantized.top1 - c.float_result.top1)) << "</td><td>" << percent(c.quantized.top5)
          << "</td><td>" << percent(c.agreement_float) << "</td><td>" << kilobytes(double(c.quantized_bytes)) << "</td><td>"
          << format("%.1f", c.quantized_bytes > 0 ? double(c.float_bytes) / double(c.quantized_bytes) : 0.0) << "&times;</td><td>"
          << kilobytes(double(c.quantized_peak_activation_bytes)) << "</td><td>" << (on_front ? "&#10003;" : "") << "</td></tr>\n";
    }
    h << "</table>\n";

    h << "<h2>Per layer</h2>\n<table>\n<tr><th rowspan=\"2\">layer</th>";
    for (const ConfigRun& run : runs) h << "<th colspan=\"3\">" << escapeHtml(run.name) << "</th>";
    h << "</tr>\n<tr>";
    for (size_t i = 0; i < runs.size(); ++i) h << "<th>weights</th><th>SQNR dB</th><th>kB</th>";
    h << "</tr>\n";
    for (size_t k = 0; k < series.layers.size(); ++k) {
        h << "<tr><td>" << escapeHtml(series.layers[k]) << "</td>";
        for (size_t i = 0; i < runs.size(); ++i)
            h << "<td>" << escapeHtml(series.precision[i][k]) << "</td><td>" << decibels(series.sqnr_db[i][k]) << "</td><td>"
              << kilobytes(series.bytes[i][k]) << "</td>";
        h << "</tr>\n";
    }
    h << "</table>\n<p>Written by quantscope-cli report. The numbers are in report.json beside this file.</p>\n</body>\n</html>\n";
    return h.str();
}

}  // namespace qs
