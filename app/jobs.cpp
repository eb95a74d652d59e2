#include "jobs.h"

#include <optional>

#include <QPromise>
#include <QThreadPool>
#include <QtConcurrent/QtConcurrentRun>

#include "base/error.h"
#include "data/array_dataset.h"
#include "quant/quant_config.h"
#include "quant/tensor_stats.h"

namespace {

// Our jobs' own pool, not QThreadPool::globalInstance(): Qt's raster paint engine hands parts
// of some fills to the global pool and waits for them, so jobs holding every global thread
// froze repaints (measured: 580 ms with a 3.2M-weight analysis and an evaluation running).
// One thread per job kind that can run at once: load, analyses, prefetched analyses,
// evaluation, suggestion.
QThreadPool* jobPool() {
    static QThreadPool pool;
    pool.setMaxThreadCount(5);
    return &pool;
}

// Progress reports land in the promise (0..1000, whatever the core's unit); cancel is polled.
template <class T>
qs::Progress progressFor(QPromise<T>& promise) {
    promise.setProgressRange(0, 1000);
    qs::Progress p;
    p.on_report = [&promise](int64_t done, int64_t total) {
        if (total > 0) promise.setProgressValue(static_cast<int>(1000 * done / total));
    };
    p.is_cancelled = [&promise] { return promise.isCanceled(); };
    return p;
}

// Runs `work`; what it throws becomes the result's cancel flag or one-line error (naming
// `subject`, the file, when the exception does not), so no exception crosses threads.
template <class Result, class Work>
void guarded(Result& r, const QString& subject, const char* doing, Work work) {
    try {
        work();
    } catch (const qs::Cancelled&) {
        r.cancelled = true;
    } catch (const qs::Error& e) {
        r.error = QString::fromStdString(e.what());
    } catch (const std::bad_alloc&) {
        r.error = subject + QStringLiteral(": out of memory while ") + QLatin1String(doing);
    } catch (const std::exception& e) {
        r.error = subject + QStringLiteral(": internal error: ") + QString::fromUtf8(e.what());
    }
}

}  // namespace

QFuture<LoadResult> startLoadModel(const QString& path, const qs::LoadOptions& options) {
    return QtConcurrent::run(jobPool(), [path, options](QPromise<LoadResult>& promise) {
        LoadResult shapes;
        shapes.path = path;
        shapes.structure_only = true;
        qs::LoadOptions structure = options;
        structure.values = false;
        guarded(shapes, path, "loading", [&] { shapes.model = std::make_shared<const qs::Model>(qs::loadModel(path.toStdString(), structure)); });
        if (!shapes.model) shapes.structure_only = false;  // the error (or cancel) is the answer
        promise.addResult(shapes);
        if (!shapes.model || promise.isCanceled()) return;
        LoadResult r;
        r.path = path;
        guarded(r, path, "loading", [&] {
            r.model = std::make_shared<const qs::Model>(qs::loadModel(path.toStdString(), options, progressFor(promise)));
        });
        promise.addResult(r);
    });
}

QFuture<AnalysisResult> startAnalyses(std::shared_ptr<const qs::Model> model, std::vector<AnalysisRequest> requests) {
    return QtConcurrent::run(jobPool(), [model, requests](QPromise<AnalysisResult>& promise) {
        promise.setProgressRange(0, static_cast<int>(requests.size()));
        int done = 0;
        // Requests for one row at one granularity (a prefetch's other widths) share the
        // statistics and histograms: prepared once, for the first of them.
        std::optional<qs::AnalysisPrep> prep;
        int prep_row = -1;
        for (const AnalysisRequest& req : requests) {
            if (promise.isCanceled()) return;
            AnalysisResult r;
            r.request = req;
            const qs::Layer& layer = model->layers.at(static_cast<size_t>(req.row));
            const qs::Tensor* kernel = qs::layerKernel(layer);
            try {
                if (kernel) {
                    qs::AnalysisOptions o;
                    o.bits = req.bits;
                    o.granularity = req.granularity;
                    qs::Progress cancel;  // a cancelled batch stops inside the analysis, not after it
                    cancel.is_cancelled = [&promise] { return promise.isCanceled(); };
                    if (!prep || prep_row != req.row || prep->granularity != req.granularity) {
                        prep.reset();  // before the next is made: one at a time in memory
                        prep = qs::prepareAnalysis(*kernel, qs::channelCount(layer, *kernel), req.granularity, o.threads, cancel);
                        prep_row = req.row;
                    }
                    r.analysis = std::make_shared<const qs::TensorAnalysis>(qs::analyzeTensor(*kernel, *prep, o, cancel));
                }
            } catch (const qs::Cancelled&) {
                return;
            } catch (const std::exception& e) {
                r.error = QString::fromStdString(e.what());
            }
            promise.addResult(r);
            promise.setProgressValue(++done);
        }
    });
}

QFuture<EvaluationResult> startEvaluation(std::shared_ptr<const qs::Model> model, qs::QuantConfig config, QString data_path,
                                          PreprocessingChoice choice) {
    return QtConcurrent::run(jobPool(), [model, config, data_path, choice](QPromise<EvaluationResult>& promise) {
        EvaluationResult r;
        r.config = config;
        guarded(r, data_path, "evaluating", [&] {
            const std::string path = data_path.toStdString();
            const qs::ImageDataset test = qs::readDataset(path);
            std::string why;
            const qs::Preprocessing pre = qs::choosePreprocessing(test, choice.scale, choice.mean, choice.std, &why);
            r.preprocessing = pre;
            r.preprocessing_source = QString::fromStdString(why);
            const qs::RowMatrix calib = qs::calibrationRows(path, test, pre, config.calibration_samples);  // as the CLI
            r.comparison = std::make_shared<const qs::Comparison>(qs::compareQuantized(*model, config, test, calib, pre, {}, progressFor(promise)));
        });
        promise.addResult(r);
    });
}

QFuture<SuggestResult> startSuggest(std::shared_ptr<const qs::Model> model, QString data_path, PreprocessingChoice choice,
                                    qs::SearchBudget budget) {
    return QtConcurrent::run(jobPool(), [model, data_path, choice, budget](QPromise<SuggestResult>& promise) {
        SuggestResult r;
        guarded(r, data_path, "searching", [&] {
            const std::string path = data_path.toStdString();
            const qs::ImageDataset test = qs::readDataset(path);
            const qs::Preprocessing pre = qs::choosePreprocessing(test, choice.scale, choice.mean, choice.std);
            // Stages on one bar: preparation 10%, sensitivity 60%, the search 30%.
            const qs::Progress all = progressFor(promise);
            const qs::SearchSetup s = qs::prepareSearch(*model, path, test, pre, 500, 0, all.stage(0, 100));
            auto table = std::make_shared<qs::SensitivityTable>(qs::measureSensitivity(*model, s.calibration, s.search, {}, all.stage(100, 600)));
            r.search = std::make_shared<const qs::SearchResult>(
                qs::searchMixedPrecision(*model, s.calibration, *table, s.search, s.heldout, budget, {}, all.stage(700, 300)));
            r.table = std::move(table);
        });
        promise.addResult(r);
    });
}
