#include "jobs.h"

#include <QPromise>
#include <QtConcurrent/QtConcurrentRun>

#include "error.h"

namespace {

// Progress reports land in the promise (0..1000, whatever the core's unit); cancel is polled.
qs::Progress progressFor(QPromise<LoadResult>& promise) {
    promise.setProgressRange(0, 1000);
    qs::Progress p;
    p.on_report = [&promise](int64_t done, int64_t total) {
        if (total > 0) promise.setProgressValue(static_cast<int>(1000 * done / total));
    };
    p.is_cancelled = [&promise] { return promise.isCanceled(); };
    return p;
}

}  // namespace

QFuture<LoadResult> startLoadModel(const QString& path, const qs::LoadOptions& options) {
    return QtConcurrent::run([path, options](QPromise<LoadResult>& promise) {
        LoadResult r;
        r.path = path;
        try {
            r.model = std::make_shared<const qs::Model>(qs::loadModel(path.toStdString(), options, progressFor(promise)));
        } catch (const qs::Cancelled&) {
            r.cancelled = true;
        } catch (const qs::Error& e) {
            r.error = QString::fromStdString(e.what());
        } catch (const std::bad_alloc&) {
            r.error = path + QStringLiteral(": out of memory while loading");
        } catch (const std::exception& e) {
            r.error = path + QStringLiteral(": internal error: ") + QString::fromUtf8(e.what());
        }
        promise.addResult(r);
    });
}
