#include "analysis_scheduler.h"

#include <QTimer>

#include <algorithm>

#include "layer_table_model.h"

namespace {

// float16 and float32 rows show the 8-bit analysis (its float16 candidate, its statistics).
int analysisBits(const qs::LayerQuant& q) { return qs::isInteger(q.precision) ? qs::weightBits(q.precision) : 8; }

}  // namespace

AnalysisScheduler::AnalysisScheduler(LayerTableModel* table, QObject* parent) : QObject(parent), table_(table) {
    connect(&watcher_, &QFutureWatcher<AnalysisResult>::resultReadyAt, this, [this](int i) { onResult(watcher_.resultAt(i)); });
    connect(&watcher_, &QFutureWatcher<AnalysisResult>::finished, this, &AnalysisScheduler::onFinished);
    connect(&prefetch_watcher_, &QFutureWatcher<AnalysisResult>::resultReadyAt, this,
            [this](int i) { onResult(prefetch_watcher_.resultAt(i)); });
    connect(&prefetch_watcher_, &QFutureWatcher<AnalysisResult>::finished, this, [this] {
        prefetching_ = false;
        if (!running_) startPrefetch();
    });
}

AnalysisScheduler::~AnalysisScheduler() {
    for (QFutureWatcher<AnalysisResult>* w : {&watcher_, &prefetch_watcher_}) {
        w->disconnect(this);
        cancelAndWait(*w);
    }
}

void AnalysisScheduler::reset(std::shared_ptr<const qs::Model> model) {
    watcher_.cancel();  // running_ stays until its finished() arrives
    prefetch_watcher_.cancel();
    held_ = false;
    pending_.clear();
    prefetch_.clear();
    cache_.clear();
    model_ = std::move(model);
}

void AnalysisScheduler::cancel() {
    pending_.clear();
    prefetch_.clear();
    watcher_.cancel();
    prefetch_watcher_.cancel();
}

void AnalysisScheduler::prefetch(int row) {
    first_ = row;  // and again, relative to its settings then, each time the work settles
    prefetch_.clear();
    if (!model_ || held_ || !table_->quantizable(row)) return;
    const auto [r, bits, granularity] = keyFor(row);
    const int other = granularity == static_cast<int>(qs::Granularity::PerChannel) ? static_cast<int>(qs::Granularity::PerTensor)
                                                                                    : static_cast<int>(qs::Granularity::PerChannel);
    std::vector<Key> likely;
    for (int b : {4, 8, 2, 16}) likely.push_back({r, b, granularity});
    likely.push_back({r, bits, other});
    for (const Key& k : likely)
        if (!cache_.count(k)) prefetch_.push_back({r, std::get<1>(k), static_cast<qs::Granularity>(std::get<2>(k))});
    if (!running_ && !prefetching_) startPrefetch();
}

void AnalysisScheduler::startPrefetch() {
    if (prefetch_.empty() || !model_) return;
    std::vector<AnalysisRequest> batch;
    batch.swap(prefetch_);
    prefetching_ = true;
    prefetch_watcher_.setFuture(startAnalyses(model_, std::move(batch)));
}

AnalysisScheduler::Key AnalysisScheduler::keyFor(int row) const {
    const qs::LayerQuant& q = table_->layerQuant(row);
    return {row, analysisBits(q), static_cast<int>(q.granularity)};
}

void AnalysisScheduler::request(int row) {
    if (!table_->quantizable(row)) return;
    const Key key = keyFor(row);
    if (auto it = cache_.find(key); it != cache_.end()) {
        table_->setAnalysis(row, it->second);
        return;
    }
    table_->setAnalysis(row, nullptr);
    const auto [r, bits, granularity] = key;
    for (const AnalysisRequest& p : pending_)
        if (p.row == r && p.bits == bits && static_cast<int>(p.granularity) == granularity) return;
    pending_.push_back({r, bits, static_cast<qs::Granularity>(granularity)});
}

void AnalysisScheduler::start(int first) {
    first_ = first;
    if (!running_ && pending_.empty()) {
        // Everything asked for was cached: still settled, once the caller has returned (a
        // listener may connect after asking).
        QTimer::singleShot(0, this, [this] {
            if (!busy()) emit settled();
        });
        return;
    }
    if (running_ || pending_.empty() || !model_) return;
    prefetch_watcher_.cancel();  // what is asked for comes first (the prefetch stops inside its analysis)
    std::stable_partition(pending_.begin(), pending_.end(), [first](const AnalysisRequest& r) { return r.row == first; });
    std::vector<AnalysisRequest> batch;
    batch.swap(pending_);
    running_ = true;
    watcher_.setFuture(startAnalyses(model_, std::move(batch)));
}

void AnalysisScheduler::onResult(const AnalysisResult& r) {
    if (!r.analysis) {
        if (!r.error.isEmpty()) emit failed(r.error);
        return;
    }
    const Key key{r.request.row, r.request.bits, static_cast<int>(r.request.granularity)};
    cache_[key] = r.analysis;
    const int row = r.request.row;
    if (!held_ && row < table_->layerCount() && keyFor(row) == key && table_->analysis(row) != r.analysis) {
        table_->setAnalysis(row, r.analysis);
        emit rowReady(row);
    }
}

void AnalysisScheduler::onFinished() {
    running_ = false;
    if (!pending_.empty()) {
        start(first_);
        return;
    }
    emit settled();
    prefetch(first_);  // the selected row's likely next settings, relative to its settings now
}
