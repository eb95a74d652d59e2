#pragma once
// The main window: opens a model (File > Open, drag and drop, command line) off the GUI
// thread; the layer table with per-layer bits / granularity / method edited in place (for
// every selected row at once, undoable); the selected layer's histogram and candidates; the
// evaluation panel. Analyses and evaluations run in QtConcurrent with progress and Cancel; a
// newer request replaces an older one still running. A failed open leaves the previous model
// in place and tells why in a (non-blocking) message box.
#include <QFutureWatcher>
#include <QMainWindow>

#include <map>
#include <memory>
#include <tuple>

#include "jobs.h"
#include "layer_table_model.h"

class CandidatePanel;
class ComparisonPanel;
class EvaluationPanel;
class HistogramPlot;
class AnalysisScheduler;
class EvaluationController;
class LoadController;
class SuggestController;
class LayerTableModel;
class LayerTableView;
class QDockWidget;
class QLabel;
class QMenu;
class QProgressBar;
class QPushButton;
class QTableView;
class QTabWidget;
class SuggestPanel;
class QUndoStack;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    // Starts loading `path`; a load still running is cancelled first.
    void openModel(const QString& path, const qs::LoadOptions& options = {});
    // Stops a load (the status bar's Cancel): a previewed structure gives way to the session.
    void cancelLoading();
    void setDataPath(const QString& path);

    const qs::Model* model() const;
    LayerTableModel* layerTable() const { return table_model_; }
    LayerTableView* tableView() const { return table_view_; }
    HistogramPlot* histogram() const { return histogram_; }
    CandidatePanel* candidates() const { return candidates_; }
    EvaluationPanel* evaluation() const { return evaluation_; }
    ComparisonPanel* comparisonPanel() const { return compare_; }
    SuggestPanel* suggestPanel() const { return suggest_; }
    bool isSuggesting() const;
    QUndoStack* undoStack() const { return undo_; }
    AnalysisScheduler* analyses() const { return analyses_; }
    bool isLoading() const;
    bool isAnalyzing() const;
    bool isEvaluating() const;
    std::shared_ptr<const qs::Comparison> lastComparison() const;

    // The quantization config the table describes (what Run evaluates).
    qs::QuantConfig currentConfig() const;
    // Sets rows to `values` (one undoable step); the entry point of every table edit.
    void changeLayers(const std::vector<int>& rows, const std::vector<qs::LayerQuant>& values, const QString& what);
    void selectLayer(int row);
    // Sets the weights of every selected layer to `precision` (one undo step; Layer menu, Ctrl+8 ...).
    void setSelectedPrecision(qs::Precision precision);
    void runEvaluation();
    void cancelEvaluation();
    // Sensitivity and the mixed-precision search on the evaluation panel's test set; the
    // result fills the Suggest panel and the table's sensitivity column.
    void runSuggest(const qs::SearchBudget& budget);
    // Puts the search's point `index` in the table as one undo step.
    void applySuggestion(int index);
    // Quantization configs (quant_config.h): save records each layer's weight scales and the
    // test set; open checks the file against the model and applies it as one undo step.
    // Both return false and show the reason (message box and status bar) on failure.
    bool saveConfig(const QString& path);
    bool openConfig(const QString& path);

    // Keeps the last evaluation and the config it ran with as a named snapshot in the Compare
    // panel; false when there is no result yet. The Keep button asks for the name.
    bool keepSnapshot(const QString& name);
    // Writes the ticked snapshots as a report (report_writer.h) into `dir`; false and a
    // message on failure.
    bool saveComparisonReport(const QString& dir);
    // Puts `config`'s settings in the table as one undo step named `what`.
    void applyConfig(const qs::QuantConfig& config, const QString& what);

    // Applies settings without recording an undo step (the undo command calls this).
    void applyLayers(const std::vector<int>& rows, const std::vector<qs::LayerQuant>& values);

signals:
    void modelLoaded();
    void loadFailed(const QString& message);
    void analysesSettled();
    void evaluationFinished(bool ok);
    void suggestFinished(bool ok);

protected:
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;
    void closeEvent(QCloseEvent* event) override;

private:
    void buildMenus();
    void chooseAndOpen();
    void showError(const QString& title, const QString& text, const char* name = "errorBox");
    void onModelLoaded(std::shared_ptr<const qs::Model> model, const QString& path);
    void previewStructure(std::shared_ptr<const qs::Model> shapes);
    void endPreview();  // the file did not open: the session as it was
    bool reading();     // true (and says so) while a new file's weights load
    void onEditRequested(int row, int column, const QString& value);
    void layOutDocks();
    std::vector<int> selectedLayerRows() const;  // quantizable rows with a selected cell, ascending
    void showSelected();
    void setBusy(bool busy, const QString& what = {});

    LayerTableModel* table_model_ = nullptr;
    LayerTableView* table_view_ = nullptr;
    AnalysisScheduler* analyses_ = nullptr;
    EvaluationController* evaluations_ = nullptr;
    LoadController* loads_ = nullptr;
    SuggestController* suggestions_ = nullptr;
    QList<QDockWidget*> bottom_docks_;
    QLabel* summary_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QPushButton* cancel_ = nullptr;
    HistogramPlot* histogram_ = nullptr;
    CandidatePanel* candidates_ = nullptr;
    EvaluationPanel* evaluation_ = nullptr;
    ComparisonPanel* compare_ = nullptr;
    SuggestPanel* suggest_ = nullptr;
    QTabWidget* layer_tabs_ = nullptr;
    QUndoStack* undo_ = nullptr;
    std::shared_ptr<const qs::Model> model_;
    int selected_ = -1;
    bool fit_columns_ = false;
    bool restored_layout_ = false;
    bool previewing_ = false;  // the table shows a file whose weights are still loading
    std::pair<LayerTableModel::State, int> backup_;  // the session meanwhile, and its selected row  // the dock arrangement came from QSettings: keep it
};
