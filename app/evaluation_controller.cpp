#include "evaluation_controller.h"

#include <QInputDialog>
#include <QSettings>

#include "comparison_panel.h"
#include "evaluation_panel.h"
#include "report_writer.h"

EvaluationController::EvaluationController(EvaluationPanel* evaluation, ComparisonPanel* compare, QWidget* window)
    : QObject(window), evaluation_(evaluation), compare_(compare), window_(window) {
    connect(&watcher_, &QFutureWatcher<EvaluationResult>::progressValueChanged, evaluation_, &EvaluationPanel::setProgress);
    connect(&watcher_, &QFutureWatcher<EvaluationResult>::finished, this, &EvaluationController::onFinished);
    connect(evaluation_, &EvaluationPanel::cancelRequested, this, &EvaluationController::cancel);
    connect(compare_, &ComparisonPanel::keepRequested, this, &EvaluationController::askNameAndKeep);
}

EvaluationController::~EvaluationController() {
    watcher_.disconnect(this);
    cancelAndWait(watcher_);
}

void EvaluationController::reset() {
    watcher_.cancel();
    last_.reset();
    compare_->clear();
    compare_->setCanKeep(false);
    evaluation_->clearResult();
}

void EvaluationController::run(std::shared_ptr<const qs::Model> model, const qs::QuantConfig& config) {
    if (!model) {
        evaluation_->setMessage(tr("Open a model first."));
        return;
    }
    const QString path = evaluation_->dataPath();
    if (path.isEmpty()) {
        evaluation_->setMessage(tr("Choose a test set: a folder with an IDX pair, or an .npz, .npy or HDF5 file."));
        return;
    }
    cancelAndWait(watcher_);  // a newer run replaces an older one
    const PreprocessingChoice pre{evaluation_->scaleOverride(), evaluation_->mean(), evaluation_->stddev()};
    if ((pre.scale && *pre.scale == 0) || pre.std == 0) {  // checked here too, to say so before any work
        evaluation_->setMessage(tr("The scale and the standard deviation must not be zero."));
        return;
    }
    QSettings().setValue("paths/lastDataPath", path);
    evaluation_->setRunning(true);
    evaluation_->setMessage(tr("Evaluating on %1...").arg(path));
    watcher_.setFuture(startEvaluation(std::move(model), config, path, pre));
}

void EvaluationController::onFinished() {
    evaluation_->setRunning(false);
    const bool got = watcher_.future().resultCount() > 0;
    const EvaluationResult r = got ? watcher_.result() : EvaluationResult{};
    if (!got || r.cancelled || !r.comparison) {
        evaluation_->setMessage(!got || r.cancelled ? tr("Evaluation cancelled.") : r.error);
        emit finished(false);
        return;
    }
    last_ = r.comparison;
    last_config_ = r.config;
    evaluation_->setResult(*last_);
    evaluation_->setMessage(tr("%1 test images; calibrated on %2; x = (v / %3 - %4) / %5 (%6)")
                                .arg(last_->quantized.n)
                                .arg(last_->calibration_samples)
                                .arg(r.preprocessing.scale)
                                .arg(r.preprocessing.mean)
                                .arg(r.preprocessing.std)
                                .arg(r.preprocessing_source));
    compare_->setCanKeep(true);
    emit finished(true);
}

void EvaluationController::askNameAndKeep() {
    if (!last_) {
        emit status(tr("Run an evaluation first: a snapshot keeps a config with its results."), 5000);
        return;
    }
    const QString suggested = tr("#%1 %2").arg(compare_->snapshots().size() + 1).arg(QString::fromStdString(qs::precisionSummary(*last_)));
    bool ok = false;
    const QString name = QInputDialog::getText(window_, tr("Keep snapshot"), tr("Name:"), QLineEdit::Normal, suggested, &ok);
    if (ok) keep(name.trimmed().isEmpty() ? suggested : name.trimmed());
}

bool EvaluationController::keep(const QString& name) {
    if (!last_) return false;
    compare_->addSnapshot({name.toStdString(), last_config_, *last_});
    emit status(tr("Kept snapshot %1").arg(name), 4000);
    return true;
}

bool EvaluationController::saveReport(const QString& dir, const std::string& model_path) {
    const std::vector<qs::ConfigRun> runs = compare_->shownRuns();
    if (runs.empty()) return false;
    try {
        const qs::ConfigRun& first = runs.front();
        const QString html = writeComparisonReport(dir, runs, {model_path, first.config.calibration_dataset, first.result.quantized.n, {}});
        QSettings().setValue("paths/lastReportDir", dir);
        emit status(tr("Wrote %1").arg(html), 6000);
        return true;
    } catch (const std::exception& e) {
        emit failed(tr("Cannot save the report"), QString::fromStdString(e.what()));
        return false;
    }
}
