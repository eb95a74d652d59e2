#include "analysis_scheduler.h"

#include <algorithm>

#include "layer_table_model.h"

namespace {

// float16 and float32 rows show the 8-bit analysis (its float16 candidate, its statistics).
int analysisBits(const qs::LayerQuant& q) { return qs::isInteger(q.precision) ? qs::weightBits(q.precision) : 8; }

}  // namespace

AnalysisScheduler::AnalysisScheduler(LayerTableModel* table, QObject* parent) : QObject(parent), table_(table) {
    connect(&watcher_, &QFutureWatcher<AnalysisResult>::resultReadyAt, this, &AnalysisScheduler::onResult);
    connect(&watcher_, &QFutureWatcher<AnalysisResult>::finished, this, &AnalysisScheduler::onFinished);
}

AnalysisScheduler::~AnalysisScheduler() {
    watcher_.disconnect(this);
    watcher_.cancel();
    watcher_.waitForFinished();
}

void AnalysisScheduler::reset(std::shared_ptr<const qs::Model> model) {
    watcher_.cancel();  // running_ stays until its finished() arrives
    pending_.clear();
    cache_.clear();
    model_ = std::move(model);
}

void AnalysisScheduler::cancel() {
    pending_.clear();
    watcher_.cancel();
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
    if (running_ || pending_.empty() || !model_) return;
    std::stable_partition(pending_.begin(), pending_.end(), [first](const AnalysisRequest& r) { return r.row == first; });
    std::vector<AnalysisRequest> batch;
    batch.swap(pending_);
    running_ = true;
    watcher_.setFuture(startAnalyses(model_, std::move(batch)));
}

void AnalysisScheduler::onResult(int index) {
    const AnalysisResult r = watcher_.resultAt(index);
    if (!r.analysis) {
        if (!r.error.isEmpty()) emit failed(r.error);
        return;
    }
    const Key key{r.request.row, r.request.bits, static_cast<int>(r.request.granularity)};
    cache_[key] = r.analysis;
    const int row = r.request.row;
    if (row < table_->layerCount() && keyFor(row) == key) {
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
}
