#pragma once
// The table's per-layer analyses: each row's analysis at its bits and granularity, cached by
// (row, bits, granularity) so going back to a setting is instant, computed off the GUI thread
// one batch at a time with the selected layer first. A result lands in the table only while it
// still matches the row's settings (a newer choice may have come in meanwhile).
#include <QFutureWatcher>
#include <QObject>

#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "jobs.h"

class LayerTableModel;

class AnalysisScheduler : public QObject {
    Q_OBJECT
public:
    AnalysisScheduler(LayerTableModel* table, QObject* parent = nullptr);
    ~AnalysisScheduler() override;

    // A new model: what was cached or running belongs to the old one.
    void reset(std::shared_ptr<const qs::Model> model);
    // Puts the row's cached analysis in the table, or queues it ("..." until it arrives).
    void request(int row);
    // Starts the queue (when idle); `first` (the selected row) is analysed first.
    void start(int first);
    // Until settled() (the watcher's future can end before its results are delivered here).
    bool busy() const { return running_ || !pending_.empty(); }
    void cancel();
    // What is likely next for `row` (its other bit widths at its granularity, its other
    // granularity at its bits) is analysed in the background while nothing else runs, so
    // changing them is a cache hit; each time the work settles this is done again for the
    // last row given here or to start(). Any request stops it at once; busy() does not count it.
    void prefetch(int row);
    // While held (the table previews another file's structure) results are cached but not
    // put in the table, and nothing is prefetched.
    void hold(bool on) { held_ = on; }
    bool cached(int row, int bits, qs::Granularity g) const { return cache_.count({row, bits, static_cast<int>(g)}) > 0; }

signals:
    void rowReady(int row);             // the table has the row's new analysis
    void failed(const QString& message);
    void settled();                     // nothing queued or running

private:
    using Key = std::tuple<int, int, int>;  // row, bits, granularity
    Key keyFor(int row) const;
    void onResult(const AnalysisResult& r);
    void onFinished();
    void startPrefetch();

    LayerTableModel* table_;
    std::shared_ptr<const qs::Model> model_;
    QFutureWatcher<AnalysisResult> watcher_;
    std::map<Key, std::shared_ptr<const qs::TensorAnalysis>> cache_;
    std::vector<AnalysisRequest> pending_;
    int first_ = -1;
    bool running_ = false;
    QFutureWatcher<AnalysisResult> prefetch_watcher_;
    std::vector<AnalysisRequest> prefetch_;  // not started yet
    bool prefetching_ = false;
    bool held_ = false;
};
