#pragma once
// The Suggest panel's work: every layer's sensitivity, then the mixed-precision search under
// the panel's budget, on the Evaluation panel's test set, off the GUI thread. The result fills
// the panel's front and the layer table's sensitivity column; a chosen front point comes back
// as a config to apply (applyRequested), which the window turns into one undo step.
#include <QFutureWatcher>
#include <QObject>

#include <memory>

#include "jobs.h"

class EvaluationPanel;
class LayerTableModel;
class SuggestPanel;

class SuggestController : public QObject {
    Q_OBJECT
public:
    SuggestController(SuggestPanel* panel, const EvaluationPanel* data, LayerTableModel* table, QObject* parent);
    ~SuggestController() override;

    void run(std::shared_ptr<const qs::Model> model, const qs::SearchBudget& budget);
    bool isRunning() const { return watcher_.isRunning(); }
    void reset();  // a new model: the old model's suggestions are void
    // Asks for the search's point `index` to be applied (applyRequested).
    void apply(int index);

signals:
    void finished(bool ok);
    void applyRequested(const qs::QuantConfig& config, const QString& what);

private:
    void onFinished();

    SuggestPanel* panel_;
    const EvaluationPanel* data_;
    LayerTableModel* table_;
    std::shared_ptr<const qs::Model> model_;
    QFutureWatcher<SuggestResult> watcher_;
};
