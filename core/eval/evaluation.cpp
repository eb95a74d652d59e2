#include "eval/evaluation.h"

#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "base/parallel.h"

namespace qs {

namespace {

// A label the model cannot predict is a wrong test set (or the wrong model), not an error to
// score: refuse it by name. A single output (sigmoid) takes labels 0 and 1.
void checkLabels(const ImageDataset& data, int64_t b0, int64_t bn, Eigen::Index outputs) {
    const int64_t limit = outputs == 1 ? 2 : outputs;
    for (int64_t i = b0; i < b0 + bn; ++i) {
        const int32_t label = data.labels[static_cast<size_t>(i)];
        if (label < 0 || label >= limit)
            throw Error(data.source, "", "label " + std::to_string(label) + " of image " + std::to_string(i) + " is past the model's " +
                                             std::to_string(outputs) + " classes (outputs); is this the model's test set?");
    }
}

}  // namespace

EvalResult evaluate(const ForwardFn& forward, int64_t input_size, const ImageDataset& data, const Preprocessing& pre,
                    const Progress& progress, int threads, int batch) {
    const int64_t per = data.rows * data.cols * data.channels;
    if (per != input_size)
        throw Error(data.source, "", "images have " + std::to_string(per) + " values but the model's input takes " + std::to_string(input_size));
    if (threads <= 0) threads = defaultThreadCount();
    EvalResult r;
    r.n = data.n;
    r.predictions.assign(static_cast<size_t>(data.n), -1);
    std::vector<int64_t> correct1(static_cast<size_t>(threads), 0), correct5(static_cast<size_t>(threads), 0);
    std::atomic<int> classes{0};
    parallelBatches(data.n, batch, threads, progress, 0, data.n, [&](int t, int64_t b0, int64_t bn) {
        const RowMatrix y = forward(preprocessRows(data, pre, b0, bn));
        classes = static_cast<int>(y.cols());
        checkLabels(data, b0, bn, y.cols());
        for (int64_t i = 0; i < bn; ++i) {
            Eigen::Index arg;
            y.row(i).maxCoeff(&arg);
            const int32_t label = data.labels[static_cast<size_t>(b0 + i)];
            r.predictions[static_cast<size_t>(b0 + i)] = static_cast<int32_t>(arg);
            correct1[static_cast<size_t>(t)] += arg == label;
            int64_t higher = 0;  // top-5: fewer than five classes score above the label
            if (label >= 0 && label < y.cols())
                for (Eigen::Index j = 0; j < y.cols(); ++j) higher += y(i, j) > y(i, label);
            else
                higher = 5;
            correct5[static_cast<size_t>(t)] += higher < 5;
        }
    });
    for (int t = 0; t < threads; ++t) r.top1_correct += correct1[static_cast<size_t>(t)], r.top5_correct += correct5[static_cast<size_t>(t)];
    r.top1 = r.n ? static_cast<double>(r.top1_correct) / static_cast<double>(r.n) : 0;
    r.top5 = r.n ? static_cast<double>(r.top5_correct) / static_cast<double>(r.n) : 0;
    r.classes = std::max(classes.load(), data.num_classes);
    r.confusion.assign(static_cast<size_t>(r.classes) * static_cast<size_t>(r.classes), 0);
    for (int64_t i = 0; i < r.n; ++i) {
        const int32_t label = data.labels[static_cast<size_t>(i)], pred = r.predictions[static_cast<size_t>(i)];
        if (label >= 0 && label < r.classes && pred >= 0 && pred < r.classes)
            ++r.confusion[static_cast<size_t>(label) * static_cast<size_t>(r.classes) + static_cast<size_t>(pred)];
    }
    return r;
}

double agreement(const EvalResult& a, const EvalResult& b) {
    if (a.predictions.size() != b.predictions.size() || a.predictions.empty()) return 0;
    int64_t same = 0;
    for (size_t i = 0; i < a.predictions.size(); ++i) same += a.predictions[i] == b.predictions[i];
    return static_cast<double>(same) / static_cast<double>(a.predictions.size());
}

double sqnrDb(const RowMatrix& ref, const RowMatrix& x) {
    double signal = 0, noise = 0;
    for (Eigen::Index i = 0; i < ref.size() && i < x.size(); ++i) {
        const double r = ref.data()[i], e = r - x.data()[i];
        signal += r * r;
        noise += e * e;
    }
    if (noise == 0) return std::numeric_limits<double>::infinity();
    if (signal == 0) return -std::numeric_limits<double>::infinity();
    return 10 * std::log10(signal / noise);
}

EvalResult evaluateFloat(const FloatEngine& engine, const ImageDataset& data, const Preprocessing& pre, const Progress& progress,
                         int threads, int batch) {
    return evaluate([&engine](const RowMatrix& x) { return engine.forward(x); }, engine.inputSize(), data, pre, progress, threads, batch);
}

}  // namespace qs
