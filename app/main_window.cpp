#include "main_window.h"

#include <QAction>
#include <QCloseEvent>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QScreen>
#include <QPushButton>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QUndoCommand>
#include <QUndoStack>
#include <QVBoxLayout>

#include "analysis_scheduler.h"
#include "candidate_panel.h"
#include "evaluation_controller.h"
#include "load_controller.h"
#include "suggest_controller.h"
#include "comparison_panel.h"
#include "evaluation_panel.h"
#include "histogram_plot.h"
#include "layer_table_model.h"
#include "layer_table_view.h"
#include "suggest_panel.h"

namespace {

constexpr int kLayoutVersion = 2;  // a saved dock arrangement of another version is not restored

// One table edit (possibly of many rows): the settings before and after.
class LayerQuantCommand : public QUndoCommand {
public:
    LayerQuantCommand(MainWindow* w, std::vector<int> rows, std::vector<qs::LayerQuant> before, std::vector<qs::LayerQuant> after,
                      const QString& text)
        : QUndoCommand(text), w_(w), rows_(std::move(rows)), before_(std::move(before)), after_(std::move(after)) {}
    void redo() override { w_->applyLayers(rows_, after_); }
    void undo() override { w_->applyLayers(rows_, before_); }

private:
    MainWindow* w_;
    std::vector<int> rows_;
    std::vector<qs::LayerQuant> before_, after_;
};

}  // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
    setWindowTitle(tr("Quantscope"));
    setAcceptDrops(true);
    undo_ = new QUndoStack(this);

    auto* central = new QWidget(this);
    auto* layout = new QVBoxLayout(central);
    summary_ = new QLabel(tr("Open a Keras model (File > Open, or drop a file here)."), central);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    summary_->setWordWrap(true);
    table_model_ = new LayerTableModel(this);
    table_view_ = new LayerTableView(table_model_, central);
    analyses_ = new AnalysisScheduler(table_model_, this);
    layout->setContentsMargins(4, 4, 4, 0);
    layout->addWidget(summary_);
    layout->addWidget(table_view_, 1);
    setCentralWidget(central);

    histogram_ = new HistogramPlot(this);
    candidates_ = new CandidatePanel(this);
    layer_tabs_ = new QTabWidget(this);
    layer_tabs_->setObjectName("layerTabs");
    layer_tabs_->addTab(histogram_, tr("Histogram"));
    layer_tabs_->addTab(candidates_, tr("Candidates"));
    // A dock per panel; the object names key the layout QSettings remembers.
    auto dock = [this](QWidget* panel, const QString& title, const char* name, Qt::DockWidgetArea area) {
        auto* d = new QDockWidget(title, this);
        d->setObjectName(name);
        d->setWidget(panel);
        addDockWidget(area, d);
        return d;
    };
    QDockWidget* layer_dock = dock(layer_tabs_, tr("Selected layer"), "layerDock", Qt::BottomDockWidgetArea);
    evaluation_ = new EvaluationPanel(this);
    compare_ = new ComparisonPanel(this);
    suggest_ = new SuggestPanel(this);
    QDockWidget* eval_dock = dock(evaluation_, tr("Evaluation"), "evaluationDock", Qt::BottomDockWidgetArea);
    QDockWidget* compare_dock = dock(compare_, tr("Compare"), "compareDock", Qt::BottomDockWidgetArea);
    QDockWidget* suggest_dock = dock(suggest_, tr("Suggest"), "suggestDock", Qt::BottomDockWidgetArea);
    // The plots below the table, side by side: the selected layer's, and the model's.
    splitDockWidget(layer_dock, eval_dock, Qt::Horizontal);
    tabifyDockWidget(eval_dock, compare_dock);
    tabifyDockWidget(compare_dock, suggest_dock);
    eval_dock->raise();
    bottom_docks_ = {layer_dock, eval_dock};

    progress_ = new QProgressBar(this);
    progress_->setMaximumWidth(240);
    cancel_ = new QPushButton(tr("Cancel"), this);
    statusBar()->addPermanentWidget(progress_);
    statusBar()->addPermanentWidget(cancel_);
    setBusy(false);
    connect(analyses_, &AnalysisScheduler::rowReady, this, [this](int row) {
        if (row == selected_) showSelected();
    });
    connect(analyses_, &AnalysisScheduler::failed, this, [this](const QString& m) { statusBar()->showMessage(m, 6000); });
    connect(analyses_, &AnalysisScheduler::settled, this, [this] {
        if (fit_columns_) {  // once per model: scales and statistics are in the cells now
            table_view_->fitColumns();
            fit_columns_ = false;
        }
        emit analysesSettled();
    });
    connect(table_model_, &LayerTableModel::editRequested, this, &MainWindow::onEditRequested);
    connect(table_view_->selectionModel(), &QItemSelectionModel::currentRowChanged, this, [this](const QModelIndex& current) {
        selected_ = current.isValid() && current.row() < table_model_->layerCount() ? current.row() : -1;
        showSelected();
        analyses_->prefetch(selected_);  // its other widths, in the background once nothing else runs
    });
    connect(candidates_, &CandidatePanel::candidateClicked, this, [this](const QString& method) {
        if (selected_ < 0 || !table_model_->quantizable(selected_)) return;
        if (const auto q = qs::withCandidate(table_model_->layerQuant(selected_), method.toStdString()))
            changeLayers({selected_}, {*q}, tr("Choose %1 for %2").arg(method, QString::fromStdString(model_->layers[static_cast<size_t>(selected_)].name)));
        else
            statusBar()->showMessage(tr("%1 is asymmetric: shown for comparison, the integer engine takes symmetric weights").arg(method), 6000);
    });
    evaluations_ = new EvaluationController(evaluation_, compare_, this);
    suggestions_ = new SuggestController(suggest_, evaluation_, table_model_, this);
    connect(evaluations_, &EvaluationController::finished, this, &MainWindow::evaluationFinished);
    connect(evaluations_, &EvaluationController::status, statusBar(), &QStatusBar::showMessage);
    connect(evaluations_, &EvaluationController::failed, this, [this](const QString& t, const QString& m) { showError(t, m); });
    connect(suggestions_, &SuggestController::finished, this, &MainWindow::suggestFinished);
    connect(suggestions_, &SuggestController::applyRequested, this, &MainWindow::applyConfig);
    connect(suggest_, &SuggestPanel::suggestRequested, this, &MainWindow::runSuggest);
    connect(evaluation_, &EvaluationPanel::runRequested, this, &MainWindow::runEvaluation);
    connect(compare_, &ComparisonPanel::saveReportRequested, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Folder for the report"), QSettings().value("paths/lastReportDir").toString());
        if (!dir.isEmpty() && model_) evaluations_->saveReport(dir, model_->source_path);
    });
    connect(compare_, &ComparisonPanel::restoreRequested, this, [this](const qs::QuantConfig& c, const QString& name) {
        if (model_) applyConfig(c, tr("Restore snapshot %1").arg(name));
    });

    buildMenus();
    connect(cancel_, &QPushButton::clicked, this, &MainWindow::cancelLoading);
    connect(loads_, &LoadController::started, this, [this](const QString& path) { setBusy(true, tr("Loading %1...").arg(QFileInfo(path).fileName())); });
    connect(loads_, &LoadController::progress, progress_, &QProgressBar::setValue);
    connect(loads_, &LoadController::structureRead, this, &MainWindow::previewStructure);
    connect(loads_, &LoadController::loaded, this, &MainWindow::onModelLoaded);
    connect(loads_, &LoadController::cancelled, this, [this] {
        endPreview();
        statusBar()->showMessage(tr("Loading cancelled"), 4000);
    });
    connect(loads_, &LoadController::failed, this, [this](const QString& error) {
        endPreview();  // the window stays usable and the previous model stays loaded
        showError(tr("Cannot open model"), error, "loadErrorBox");
        emit loadFailed(error);
    });
    QSettings settings;
    if (!restoreGeometry(settings.value("window/geometry").toByteArray())) {
        // First start: maximized (nothing off-screen on a 1280x800 laptop); 1500x950 or the
        // screen when it is un-maximized.
        const QRect avail = screen() ? screen()->availableGeometry() : QRect(0, 0, 1500, 950);
        resize(std::min(1500, avail.width()), std::min(950, avail.height()));
        setWindowState(Qt::WindowMaximized);
    }
    restored_layout_ = restoreState(settings.value("window/state").toByteArray(), kLayoutVersion);
    table_view_->restoreColumns(settings.value("window/columns").toByteArray());
    evaluation_->setDataPath(settings.value("paths/lastDataPath").toString());
}

void MainWindow::layOutDocks() {
    // The table as tall as its rows (at least 4, at most 45% of the window), the plots the rest;
    // the selected layer's plots take a little more of the width than the evaluation's.
    const int rows = std::clamp(table_view_->fittedHeight() + summary_->sizeHint().height() + 16, 180, height() * 45 / 100);
    const int chrome = menuBar()->sizeHint().height() + statusBar()->sizeHint().height();
    resizeDocks(bottom_docks_, {height() - rows - chrome, height() - rows - chrome}, Qt::Vertical);
    resizeDocks(bottom_docks_, {width() * 55 / 100, width() * 45 / 100}, Qt::Horizontal);
}

MainWindow::~MainWindow() {
    // Jobs still running are told to stop; waiting here keeps them from outliving the window.
    loads_->disconnect(this);  // its destructor waits for a load still running
}

const qs::Model* MainWindow::model() const { return model_.get(); }

bool MainWindow::isAnalyzing() const { return analyses_->busy(); }
bool MainWindow::isEvaluating() const { return evaluations_->isRunning(); }
bool MainWindow::isSuggesting() const { return suggestions_->isRunning(); }
std::shared_ptr<const qs::Comparison> MainWindow::lastComparison() const { return evaluations_->last(); }
void MainWindow::runEvaluation() {
    if (!reading()) evaluations_->run(model_, currentConfig());
}
void MainWindow::cancelEvaluation() { evaluations_->cancel(); }
bool MainWindow::keepSnapshot(const QString& name) { return evaluations_->keep(name); }
bool MainWindow::saveComparisonReport(const QString& dir) { return model_ && evaluations_->saveReport(dir, model_->source_path); }
void MainWindow::runSuggest(const qs::SearchBudget& budget) {
    if (!reading()) suggestions_->run(model_, budget);
}
void MainWindow::applySuggestion(int index) { suggestions_->apply(index); }

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* open = file->addAction(tr("&Open..."), this, &MainWindow::chooseAndOpen);
    open->setShortcut(QKeySequence::Open);
    loads_ = new LoadController(file->addMenu(tr("Open &Recent")), this);
    file->addSeparator();
    file->addAction(tr("Open &Config..."), this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, tr("Open quantization config"), QSettings().value("paths/lastConfigDir").toString(),
                                                          tr("Quantscope configs (*.json);;All files (*)"));
        if (!path.isEmpty()) openConfig(path);
    });
    QAction* save = file->addAction(tr("&Save Config..."), this, [this] {
        const QString path = QFileDialog::getSaveFileName(this, tr("Save quantization config"), QSettings().value("paths/lastConfigDir").toString(),
                                                          tr("Quantscope configs (*.json)"));
        if (!path.isEmpty()) saveConfig(path);
    });
    save->setShortcut(QKeySequence::Save);
    file->addSeparator();
    QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);
    QMenu* edit = menuBar()->addMenu(tr("&Edit"));
    QAction* undo = undo_->createUndoAction(this, tr("&Undo"));
    undo->setShortcut(QKeySequence::Undo);
    QAction* redo = undo_->createRedoAction(this, tr("&Redo"));
    redo->setShortcuts({QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Z), QKeySequence::Redo});
    edit->addAction(undo);
    edit->addAction(redo);
    // Bit widths for the selected layers from the keyboard: Ctrl + the number of bits (6 for 16).
    QMenu* layer = menuBar()->addMenu(tr("&Layer"));
    for (const auto& [p, key] : {std::pair{qs::Precision::Int16, Qt::Key_6}, {qs::Precision::Int8, Qt::Key_8}, {qs::Precision::Int4, Qt::Key_4},
                                 {qs::Precision::Int2, Qt::Key_2}, {qs::Precision::Float16, Qt::Key_H}, {qs::Precision::Float32, Qt::Key_0}}) {
        QAction* a = layer->addAction(tr("Weights to %1").arg(QString::fromLatin1(qs::precisionName(p))), this,
                                      [this, p = p] { setSelectedPrecision(p); });
        a->setShortcut(QKeySequence(Qt::CTRL | key));
    }
    QMenu* eval = menuBar()->addMenu(tr("E&valuate"));
    QAction* run = eval->addAction(tr("&Run evaluation"), this, &MainWindow::runEvaluation);
    run->setShortcut(Qt::Key_F5);
    QAction* keep = eval->addAction(tr("&Keep snapshot..."), evaluations_, &EvaluationController::askNameAndKeep);
    keep->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_K));
}

void MainWindow::chooseAndOpen() {
    const QString path = QFileDialog::getOpenFileName(this, tr("Open model"), QSettings().value("paths/lastModelDir").toString(),
                                                      tr("Keras models (*.h5 *.hdf5 *.keras *.weights.h5);;All files (*)"));
    if (!path.isEmpty()) openModel(path);
}

void MainWindow::setDataPath(const QString& path) { evaluation_->setDataPath(path); }

void MainWindow::openModel(const QString& path, const qs::LoadOptions& options) { loads_->open(path, options); }
bool MainWindow::isLoading() const { return loads_->isRunning(); }
void MainWindow::cancelLoading() { loads_->cancel(); }

// The new file's layers show while its values load; the session waits aside, put back if the
// file does not open after all (nothing can be edited or run meanwhile).
void MainWindow::previewStructure(std::shared_ptr<const qs::Model> shapes) {
    if (!previewing_) backup_ = {table_model_->state(), selected_};
    previewing_ = true;
    selected_ = -1;
    analyses_->hold(true);
    table_model_->setModel(std::move(shapes));
    table_view_->fitColumns();
    summary_->setText(table_model_->summaryHtml() + tr("<br><i>Reading the weights...</i>"));
    showSelected();
}

void MainWindow::endPreview() {
    setBusy(false);
    if (!previewing_) return;
    previewing_ = false;
    table_model_->restore(std::move(backup_.first));
    analyses_->hold(false);
    summary_->setText(model_ ? table_model_->summaryHtml() : tr("Open a Keras model (File > Open, or drop a file here)."));
    if (model_ && backup_.second >= 0) selectLayer(backup_.second);
}

bool MainWindow::reading() {
    if (previewing_) statusBar()->showMessage(tr("Still reading the weights of the new file: a moment."), 4000);
    return previewing_;
}

void MainWindow::onModelLoaded(std::shared_ptr<const qs::Model> model, const QString& path) {
    setBusy(false);
    previewing_ = false;
    // A new model: analyses and evaluations of the old one are void.
    analyses_->reset(model);  // (and no longer held)
    evaluations_->reset();  // results and snapshots belong to the model they were run on
    suggestions_->reset();  // so do suggestions
    undo_->clear();
    model_ = std::move(model);
    table_model_->setModel(model_);
    table_view_->fitColumns();
    fit_columns_ = true;
    summary_->setText(table_model_->summaryHtml());
    for (int row = 0; row < table_model_->layerCount(); ++row) analyses_->request(row);
    analyses_->start(selected_);
    if (!restored_layout_) layOutDocks();
    setWindowTitle(tr("%1 - Quantscope").arg(QFileInfo(path).fileName()));
    statusBar()->showMessage(tr("Loaded %1").arg(path), 4000);
    if (table_model_->layerCount() > 0) selectLayer(table_model_->firstQuantizable());
    emit modelLoaded();
}

void MainWindow::onEditRequested(int row, int column, const QString& value) {
    // An edit applies to every selected row when the edited row is one of them.
    std::vector<int> rows = selectedLayerRows();
    if (std::find(rows.begin(), rows.end(), row) == rows.end()) rows = {row};
    std::vector<qs::LayerQuant> values;
    for (int r : rows) {
        qs::LayerQuant q = table_model_->layerQuant(r);
        if (column == LayerTableModel::Bits) {
            if (auto p = qs::parsePrecision(value.toStdString())) q.precision = *p;
        } else if (column == LayerTableModel::Granularity) {
            q.granularity = value == qs::granularityName(qs::Granularity::PerTensor) ? qs::Granularity::PerTensor : qs::Granularity::PerChannel;
        } else if (column == LayerTableModel::Method) {
            q.weight_method = value.toStdString();
        }
        values.push_back(q);
    }
    const QString what = table_model_->headerData(column, Qt::Horizontal, Qt::DisplayRole).toString();
    changeLayers(rows, values, rows.size() == 1 ? tr("%1 = %2 for %3").arg(what, value, QString::fromStdString(model_->layers[static_cast<size_t>(rows[0])].name))
                                                : tr("%1 = %2 for %3 layers").arg(what, value).arg(rows.size()));
}

std::vector<int> MainWindow::selectedLayerRows() const {
    std::vector<int> rows;  // every row with a selected cell (selectedRows() wants every column, hidden ones too)
    for (const QModelIndex& i : table_view_->selectionModel()->selectedIndexes())
        if (table_model_->quantizable(i.row())) rows.push_back(i.row());
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    return rows;
}

void MainWindow::setSelectedPrecision(qs::Precision precision) {
    const std::vector<int> rows = selectedLayerRows();
    if (rows.empty()) return;
    std::vector<qs::LayerQuant> values;
    for (int r : rows) {
        values.push_back(table_model_->layerQuant(r));
        values.back().precision = precision;
    }
    const QString p = QString::fromLatin1(qs::precisionName(precision));
    changeLayers(rows, values, rows.size() == 1 ? tr("Bits = %1 for %2").arg(p, QString::fromStdString(model_->layers[static_cast<size_t>(rows[0])].name))
                                                : tr("Bits = %1 for %2 layers").arg(p).arg(rows.size()));
}

void MainWindow::changeLayers(const std::vector<int>& rows, const std::vector<qs::LayerQuant>& values, const QString& what) {
    if (reading()) return;
    std::vector<qs::LayerQuant> before;
    bool changed = false;
    for (size_t i = 0; i < rows.size(); ++i) {
        before.push_back(table_model_->layerQuant(rows[i]));
        changed |= !(before.back() == values[i]);
    }
    if (changed) undo_->push(new LayerQuantCommand(this, rows, before, values, what));
}

void MainWindow::applyLayers(const std::vector<int>& rows, const std::vector<qs::LayerQuant>& values) {
    for (size_t i = 0; i < rows.size(); ++i) {
        table_model_->setLayerQuant(rows[i], values[i]);
        analyses_->request(rows[i]);
    }
    analyses_->start(selected_);
    showSelected();
}

void MainWindow::selectLayer(int row) {
    // Explicit: QTableView::selectRow on a row already selected toggles it off in ExtendedSelection.
    table_view_->selectionModel()->setCurrentIndex(table_model_->index(row, 0), QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    selected_ = row;
    showSelected();
}

void MainWindow::showSelected() {
    const bool quant = selected_ >= 0 && selected_ < table_model_->layerCount() && table_model_->quantizable(selected_);
    if (!quant || !table_model_->analysis(selected_)) {
        const QString why = previewing_ ? tr("Reading the weights of %1...").arg(QString::fromStdString(table_model_->model()->source_path))
                            : !model_ ? tr("Open a model to see its layers' weights (File > Open, or drop a file here).")
                            : !quant ? tr("This layer has no weights to quantize: select another row.")
                                     : tr("Analysing %1...").arg(QString::fromStdString(model_->layers[static_cast<size_t>(selected_)].name));
        histogram_->setAnalysis(nullptr, why, 0);
        candidates_->setAnalysis(nullptr, 0, why);
        return;
    }
    // The row's analysis with the row's choice marked (every candidate is in the analysis;
    // float32 rows show the analysis' own pick).
    const auto a = table_model_->analysis(selected_);
    const qs::Candidate* c = table_model_->chosen(selected_);
    const int chosen = !a ? 0 : c ? static_cast<int>(c - a->candidates.data()) : a->chosen;
    const QString name = QString::fromStdString(model_->layers[static_cast<size_t>(selected_)].name);
    histogram_->setAnalysis(a, name, chosen);
    candidates_->setAnalysis(a, chosen);
}

qs::QuantConfig MainWindow::currentConfig() const {
    qs::QuantConfig c;
    c.mode = evaluation_->mode();
    c.calibration_samples = evaluation_->calibrationSamples();
    c.calibration_dataset = evaluation_->dataPath().toStdString();
    c.defaults.activation_method = evaluation_->activationMethod();  // the panel sets it for every layer
    table_model_->addLayers(c);
    return c;
}

void MainWindow::showError(const QString& title, const QString& text, const char* name) {
    auto* box = new QMessageBox(QMessageBox::Critical, title, text, QMessageBox::Ok, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->setObjectName(name);
    box->open();  // non-blocking
    statusBar()->showMessage(text, 8000);
}

bool MainWindow::saveConfig(const QString& path) {
    if (!model_ || reading()) return false;
    qs::QuantConfig c = currentConfig();
    try {
        table_model_->addScales(c);
        qs::saveQuantConfig(path.toStdString(), c);
    } catch (const std::exception& e) {
        showError(tr("Cannot save config"), QString::fromStdString(e.what()));
        return false;
    }
    QSettings().setValue("paths/lastConfigDir", QFileInfo(path).absolutePath());
    statusBar()->showMessage(tr("Saved %1").arg(path), 4000);
    return true;
}

bool MainWindow::openConfig(const QString& path) {
    if (reading()) return false;
    if (!model_) {
        showError(tr("Cannot open config"), tr("Open a model first: a config applies to a model's layers."));
        return false;
    }
    qs::QuantConfig c;
    try {
        c = qs::loadQuantConfig(path.toStdString());
        qs::checkConfigAgainstModel(c, *model_, path.toStdString());
    } catch (const std::exception& e) {
        showError(tr("Cannot open config"), QString::fromStdString(e.what()));  // nothing applied
        return false;
    }
    applyConfig(c, tr("Open config %1").arg(QFileInfo(path).fileName()));
    if (!c.calibration_dataset.empty()) evaluation_->setDataPath(QString::fromStdString(c.calibration_dataset));
    QSettings().setValue("paths/lastConfigDir", QFileInfo(path).absolutePath());
    statusBar()->showMessage(tr("Applied %1").arg(path), 4000);
    return true;
}

void MainWindow::applyConfig(const qs::QuantConfig& c, const QString& what) {
    std::vector<int> rows;
    std::vector<qs::LayerQuant> values;
    for (int row = 0; row < table_model_->layerCount(); ++row) {
        if (!table_model_->quantizable(row)) continue;
        rows.push_back(row);
        values.push_back(c.forLayer(model_->layers[static_cast<size_t>(row)].name));
    }
    changeLayers(rows, values, what);
    evaluation_->setCalibrationSamples(c.calibration_samples);
    evaluation_->setMode(c.mode);
    evaluation_->setActivationMethod(c.defaults.activation_method);
}

void MainWindow::setBusy(bool busy, const QString& what) {
    progress_->setVisible(busy);
    cancel_->setVisible(busy);
    progress_->setRange(0, 1000);
    progress_->setValue(0);
    if (busy) statusBar()->showMessage(what);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
    if (event->mimeData()->hasUrls() && event->mimeData()->urls().first().isLocalFile()) event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
    const QList<QUrl> urls = event->mimeData()->urls();
    if (!urls.isEmpty() && urls.first().isLocalFile()) openModel(urls.first().toLocalFile());
}

void MainWindow::closeEvent(QCloseEvent* event) {
    QSettings settings;
    settings.setValue("window/geometry", saveGeometry());
    settings.setValue("window/state", saveState(kLayoutVersion));
    settings.setValue("window/columns", table_view_->saveColumns());
    loads_->cancel();
    analyses_->cancel();
    evaluations_->cancel();
    event->accept();
}
