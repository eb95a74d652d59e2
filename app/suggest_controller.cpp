#include "suggest_controller.h"

#include "evaluation_panel.h"
#include "layer_table_model.h"
#include "suggest_panel.h"

SuggestController::SuggestController(SuggestPanel* panel, const EvaluationPanel* data, LayerTableModel* table, QObject* parent)
    : QObject(parent), panel_(panel), data_(data), table_(table) {
    connect(&watcher_, &QFutureWatcher<SuggestResult>::progressValueChanged, panel_, &SuggestPanel::setProgress);
    connect(&watcher_, &QFutureWatcher<SuggestResult>::finished, this, &SuggestController::onFinished);
    connect(panel_, &SuggestPanel::cancelRequested, this, [this] { watcher_.cancel(); });
    connect(panel_, &SuggestPanel::pointActivated, this, &SuggestController::apply);
}

SuggestController::~SuggestController() {
    watcher_.disconnect(this);
    cancelAndWait(watcher_);
}

void SuggestController::reset() {
    watcher_.cancel();
    panel_->clear();
    model_.reset();
}

void SuggestController::run(std::shared_ptr<const qs::Model> model, const qs::SearchBudget& budget) {
    const QString path = data_->dataPath();
    if (!model || path.isEmpty()) {
        panel_->setMessage(model ? tr("Choose a test set in the Evaluation panel first.") : tr("Open a model first."));
        return;
    }
    cancelAndWait(watcher_);  // a newer search replaces an older one
    model_ = model;
    panel_->setRunning(true);
    panel_->setMessage(tr("Measuring every layer's sensitivity on %1, then searching...").arg(path));
    const PreprocessingChoice pre{data_->scaleOverride(), data_->mean(), data_->stddev()};
    watcher_.setFuture(startSuggest(std::move(model), path, pre, budget));
}

void SuggestController::onFinished() {
    panel_->setRunning(false);
    const bool got = watcher_.future().resultCount() > 0;
    const SuggestResult r = got ? watcher_.result() : SuggestResult{};
    if (!got || r.cancelled || !r.search || !model_) {
        panel_->setMessage(!got || r.cancelled ? tr("Suggestion cancelled.") : r.error);
        emit finished(false);
        return;
    }
    panel_->setResult(r.table, r.search);
    table_->clearSensitivity();
    for (int row = 0; row < table_->layerCount(); ++row) {
        const std::string& name = model_->layers[static_cast<size_t>(row)].name;
        QStringList lines;
        for (const qs::SensitivityCell& c : r.table->cells)
            if (c.layer == name)
                lines << tr("%1: top-1 %2%, KL %3").arg(QString::fromStdString(c.setting)).arg(100 * c.score.top1, 0, 'f', 2).arg(c.score.kl, 0, 'g', 3);
        if (!lines.isEmpty()) table_->setSensitivity(row, qs::bestDropAt(*r.table, name, 4), lines.join('\n'));
    }
    emit finished(true);
}

void SuggestController::apply(int index) {
    const qs::SearchResult* r = panel_->result();
    if (!r || index < 0 || index >= static_cast<int>(r->points.size())) return;
    const qs::SearchPoint& p = r->points[static_cast<size_t>(index)];
    emit applyRequested(p.config, tr("Apply suggestion (%1, %2 bits/weight)").arg(QString::fromStdString(p.origin)).arg(p.bits_per_weight, 0, 'f', 2));
}
