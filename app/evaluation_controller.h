#pragma once
// Evaluations for the Evaluation panel and snapshots for the Compare panel: runs the table's
// config on the panel's test set off the GUI thread (a newer run replaces an older one), shows
// the result, and keeps the last result with the config it ran with, which is what Keep
// snapshot keeps and what a report is written from.
#include <QFutureWatcher>
#include <QObject>

#include <memory>

#include "jobs.h"

class ComparisonPanel;
class EvaluationPanel;
class QWidget;

class EvaluationController : public QObject {
    Q_OBJECT
public:
    EvaluationController(EvaluationPanel* evaluation, ComparisonPanel* compare, QWidget* window);
    ~EvaluationController() override;

    // Evaluates `config` of `model` on the panel's test set; says in the panel what is missing.
    void run(std::shared_ptr<const qs::Model> model, const qs::QuantConfig& config);
    void cancel() { watcher_.cancel(); }
    bool isRunning() const { return watcher_.isRunning(); }
    // A new model: what ran and was kept belongs to the old one.
    void reset();
    std::shared_ptr<const qs::Comparison> last() const { return last_; }

    bool keep(const QString& name);  // false when nothing has run yet
    void askNameAndKeep();           // the Keep button: a name dialog, then keep()
    // The ticked snapshots as a report (report_writer.h) into `dir`.
    bool saveReport(const QString& dir, const std::string& model_path);

signals:
    void finished(bool ok);
    void status(const QString& text, int ms);
    void failed(const QString& title, const QString& text);

private:
    void onFinished();

    EvaluationPanel* evaluation_;
    ComparisonPanel* compare_;
    QWidget* window_;
    QFutureWatcher<EvaluationResult> watcher_;
    std::shared_ptr<const qs::Comparison> last_;
    qs::QuantConfig last_config_;  // the config last_ was evaluated with
};
