#include "evaluation_panel.h"

#include <QComboBox>
#include <QDoubleValidator>
#include <QFileDialog>
#include <QFormLayout>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QMenu>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QStackedWidget>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include <cmath>

#include "plot_export.h"

EvaluationPanel::EvaluationPanel(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    auto* row = new QHBoxLayout;
    path_ = new QLineEdit(this);
    path_->setPlaceholderText(tr("Test set: IDX folder or file, .npz, .npy, HDF5, or a folder of class folders of images"));
    path_->setToolTip(tr("A folder with an IDX images/labels pair (e.g. /usr/share/datasets/fashion-mnist), or a file"));
    auto* browse = new QPushButton(tr("Browse..."), this);
    calib_ = new QSpinBox(this);
    calib_->setRange(1, 100000);
    calib_->setValue(500);
    calib_->setPrefix(tr("calibrate on "));
    calib_->setSuffix(tr(" images"));
    calib_->setToolTip(tr("Images used to measure each layer's activation range (from the training split when the folder has one)"));
    run_ = new QPushButton(tr("Run"), this);
    run_->setToolTip(tr("Quantize with the current settings and evaluate float and quantized on the test set"));
    cancel_ = new QPushButton(tr("Cancel"), this);
    row->addWidget(path_, 1);
    row->addWidget(browse);
    row->addWidget(calib_);
    row->addWidget(run_);
    row->addWidget(cancel_);
    // Second row: what the config holds for the whole model, and the preprocessing.
    auto* settings = new QHBoxLayout;
    mode_ = new QComboBox(this);
    mode_->setObjectName("modeBox");
    for (qs::QuantMode m : {qs::QuantMode::Integer, qs::QuantMode::Hybrid, qs::QuantMode::Float16})
        mode_->addItem(QString::fromLatin1(qs::quantModeName(m)), static_cast<int>(m));
    mode_->setToolTip(tr("integer: int8/int16 weights and activations; hybrid: int8 weights, float activations; float16: half-size floats"));
    activation_ = new QComboBox(this);
    activation_->setObjectName("activationBox");
    for (const std::string& a : qs::activationMethods()) activation_->addItem(QString::fromStdString(a));
    activation_->setToolTip(tr("How each layer's activation range is chosen from the calibration images"));
    auto numberEdit = [this](const QString& placeholder, const QString& tip) {
        auto* e = new QLineEdit(this);
        e->setPlaceholderText(placeholder);
        e->setToolTip(tip);
        e->setValidator(new QDoubleValidator(e));
        e->setMaximumWidth(60);
        return e;
    };
    scale_ = numberEdit(tr("auto"), tr("x = (v / scale - mean) / std; empty: inferred (255 for 8-bit images, else 1)"));
    mean_ = numberEdit(QStringLiteral("0"), tr("mean subtracted after scaling"));
    std_ = numberEdit(QStringLiteral("1"), tr("standard deviation divided by, after the mean"));
    settings->addWidget(new QLabel(tr("Mode"), this));
    settings->addWidget(mode_);
    settings->addWidget(new QLabel(tr("Activations"), this));
    settings->addWidget(activation_);
    settings->addStretch(1);
    // Third row: the preprocessing (a row of its own so the panel fits half a 1280 px window).
    auto* input = new QHBoxLayout;
    input->addWidget(new QLabel(tr("Input x = (v /"), this));
    input->addWidget(scale_);
    input->addWidget(new QLabel(QStringLiteral("\u2212"), this));
    input->addWidget(mean_);
    input->addWidget(new QLabel(tr(") /"), this));
    input->addWidget(std_);
    input->addStretch(1);
    progress_ = new QProgressBar(this);
    progress_->setRange(0, 1000);
    QSizePolicy keep = progress_->sizePolicy();
    keep.setRetainSizeWhenHidden(true);
    progress_->setSizePolicy(keep);
    message_ = new QLabel(this);
    message_->setWordWrap(true);
    summary_ = new QTableWidget(6, 2, this);
    summary_->setHorizontalHeaderLabels({tr("float"), tr("quantized")});
    summary_->setVerticalHeaderLabels({tr("top-1"), tr("top-5"), tr("agreement"), tr("size"), tr("peak activations"), tr("seconds")});
    summary_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    summary_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
    summary_->verticalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    summary_->setMinimumWidth(240);
    confusion_ = new QCustomPlot(this);
    confusion_->setMinimumSize(160, 140);
    sqnr_ = new QCustomPlot(this);
    sqnr_->setMinimumHeight(120);
    installPlotExportMenu(confusion_, "confusion_matrix");
    installPlotExportMenu(sqnr_, "layer_sqnr");
    auto* box = new QWidget(this);
    // Numbers and confusion matrix side by side, the per-layer SQNR under them: fits a dock half
    // of a 1280 px window.
    auto* results = new QGridLayout(box);
    results->setContentsMargins(0, 0, 0, 0);
    results->addWidget(summary_, 0, 0);
    results->addWidget(confusion_, 0, 1);
    results->addWidget(sqnr_, 1, 0, 1, 2);
    results->setColumnStretch(0, 3);
    results->setColumnStretch(1, 2);
    results->setRowStretch(0, 1);
    results->setRowStretch(1, 1);
    // Until the first run, one line on what to do instead of empty axes.
    hint_ = new QLabel(tr("Run an evaluation to see accuracy, the confusion matrix and each layer's SQNR: choose a test set "
                          "above, then Run (F5)."), this);
    hint_->setObjectName("emptyHint");
    hint_->setAlignment(Qt::AlignCenter);
    hint_->setWordWrap(true);
    hint_->setStyleSheet("color: #666;");
    results_ = new QStackedWidget(this);
    results_->addWidget(hint_);
    results_->addWidget(box);
    layout->addLayout(row);
    layout->addLayout(settings);
    layout->addLayout(input);
    layout->addWidget(progress_);
    layout->addWidget(message_);
    layout->addWidget(results_, 1);
    setRunning(false);
    connect(run_, &QPushButton::clicked, this, &EvaluationPanel::runRequested);
    connect(cancel_, &QPushButton::clicked, this, &EvaluationPanel::cancelRequested);
    // A test set is a file (.npz, HDF5, ...) or a folder holding an IDX pair.
    auto* menu = new QMenu(browse);
    menu->addAction(tr("File..."), this, [this] {
        const QString p = QFileDialog::getOpenFileName(this, tr("Test set"), path_->text(),
                                                       tr("Test sets (*.npz *.npy *.h5 *.hdf5 *idx3-ubyte *idx3-ubyte.gz);;All files (*)"));
        if (!p.isEmpty()) path_->setText(p);
    });
    menu->addAction(tr("Folder with an IDX pair..."), this, [this] {
        const QString p = QFileDialog::getExistingDirectory(this, tr("Test set folder"), path_->text());
        if (!p.isEmpty()) path_->setText(p);
    });
    browse->setMenu(menu);
}

QString EvaluationPanel::dataPath() const { return path_->text().trimmed(); }
void EvaluationPanel::setDataPath(const QString& path) { path_->setText(path); }
int EvaluationPanel::calibrationSamples() const { return calib_->value(); }
void EvaluationPanel::setCalibrationSamples(int n) { calib_->setValue(n); }

qs::QuantMode EvaluationPanel::mode() const { return static_cast<qs::QuantMode>(mode_->currentData().toInt()); }
void EvaluationPanel::setMode(qs::QuantMode m) { mode_->setCurrentIndex(mode_->findData(static_cast<int>(m))); }
std::string EvaluationPanel::activationMethod() const { return activation_->currentText().toStdString(); }
void EvaluationPanel::setActivationMethod(const std::string& method) {
    const int i = activation_->findText(QString::fromStdString(method));
    if (i >= 0) activation_->setCurrentIndex(i);
}

namespace {
std::optional<double> numberIn(const QLineEdit* e) {
    bool ok = false;
    const double v = QLocale().toDouble(e->text().trimmed(), &ok);
    if (ok) return v;
    const double c = e->text().trimmed().toDouble(&ok);  // "127.5" in any locale
    return ok ? std::optional<double>(c) : std::nullopt;
}
}  // namespace

std::optional<double> EvaluationPanel::scaleOverride() const { return numberIn(scale_); }
double EvaluationPanel::mean() const { return numberIn(mean_).value_or(0.0); }
double EvaluationPanel::stddev() const { return numberIn(std_).value_or(1.0); }
void EvaluationPanel::setPreprocessing(std::optional<double> scale, double mean, double stddev) {
    scale_->setText(scale ? QString::number(*scale) : QString());
    mean_->setText(mean == 0 ? QString() : QString::number(mean));
    std_->setText(stddev == 1 ? QString() : QString::number(stddev));
}

void EvaluationPanel::setRunning(bool running) {
    run_->setEnabled(!running);
    cancel_->setEnabled(running);
    // The bar keeps its place when hidden: showing it must not re-lay-out the panel (that
    // resizes and replots every plot in it, tens of ms on the GUI thread at each Run).
    progress_->setVisible(running);
    if (running) progress_->setValue(0);
}

void EvaluationPanel::setProgress(int permille) { progress_->setValue(permille); }
void EvaluationPanel::setMessage(const QString& text) { message_->setText(text); }

void EvaluationPanel::clearResult() {
    for (int r = 0; r < summary_->rowCount(); ++r)
        for (int c = 0; c < 2; ++c) summary_->setItem(r, c, new QTableWidgetItem);
    confusion_->clearPlottables();
    confusion_->clearItems();
    confusion_->replot();
    sqnr_->clearPlottables();
    sqnr_->replot();
    results_->setCurrentWidget(hint_);
}

void EvaluationPanel::setResult(const qs::Comparison& c) {
    const QLocale loc = QLocale::system();
    auto set = [&](int r, const QString& f, const QString& q) {
        summary_->setItem(r, 0, new QTableWidgetItem(f));
        summary_->setItem(r, 1, new QTableWidgetItem(q));
    };
    set(0, QString::number(c.float_result.top1, 'f', 4), QString::number(c.quantized.top1, 'f', 4));
    set(1, QString::number(c.float_result.top5, 'f', 4), QString::number(c.quantized.top5, 'f', 4));
    set(2, QString(), tr("%1 (simulation %2)").arg(c.agreement_float, 0, 'f', 4).arg(c.agreement_fake_quant, 0, 'f', 4));
    const double reduction = c.float_bytes ? 100.0 * (1.0 - static_cast<double>(c.quantized_bytes) / static_cast<double>(c.float_bytes)) : 0;
    set(3, loc.formattedDataSize(c.float_bytes), tr("%1 (-%2%)").arg(loc.formattedDataSize(c.quantized_bytes)).arg(reduction, 0, 'f', 1));
    set(4, loc.formattedDataSize(c.float_peak_activation_bytes), loc.formattedDataSize(c.quantized_peak_activation_bytes));
    set(5, QString::number(c.seconds_float, 'f', 2), QString::number(c.seconds_quantized, 'f', 2));
    message_->setText(tr("%1 test images; calibrated on %2").arg(c.quantized.n).arg(c.calibration_samples));
    results_->setCurrentIndex(1);

    // Confusion matrix of the quantized model, row = true label (top = 0), column = prediction;
    // colour on a log scale so the off-diagonal errors show next to ~1,000-count diagonals.
    confusion_->clearPlottables();
    confusion_->clearItems();
    const int k = c.quantized.classes;
    if (k > 0) {
        auto* map = new QCPColorMap(confusion_->xAxis, confusion_->yAxis);
        map->data()->setSize(k, k);
        map->data()->setRange(QCPRange(0, k - 1), QCPRange(0, k - 1));
        map->setInterpolate(false);
        for (int t = 0; t < k; ++t)
            for (int p = 0; p < k; ++p) {
                const int64_t n = c.quantized.confusion[static_cast<size_t>(t * k + p)];
                map->data()->setCell(p, t, std::log1p(static_cast<double>(n)));
                if (k <= 12 && n > 0) {
                    auto* label = new QCPItemText(confusion_);
                    label->position->setCoords(p, t);
                    label->setText(QString::number(n));
                    label->setFont(QFont(font().family(), 7));
                    label->setColor(p == t ? Qt::black : Qt::white);
                }
            }
        map->setGradient(QCPColorGradient::gpThermal);
        map->rescaleDataRange();
        QSharedPointer<QCPAxisTickerFixed> ticker(new QCPAxisTickerFixed);
        ticker->setTickStep(1);
        confusion_->xAxis->setTicker(ticker);
        confusion_->yAxis->setTicker(ticker);
        confusion_->xAxis->setLabel(tr("predicted"));
        confusion_->yAxis->setLabel(tr("true"));
        confusion_->rescaleAxes();
        confusion_->xAxis->setRange(-0.5, k - 0.5);
        confusion_->yAxis->setRange(-0.5, k - 0.5);
        confusion_->yAxis->setRangeReversed(true);
    }
    confusion_->replot();

    // Per-layer SQNR of the integer engine against float, ops with weights or own scales.
    sqnr_->clearPlottables();
    auto* bars = new QCPBars(sqnr_->xAxis, sqnr_->yAxis);
    bars->setBrush(QColor(70, 140, 90));
    bars->setPen(Qt::NoPen);
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    int i = 0;
    for (const qs::OpReport& r : c.ops) {
        if (!std::isfinite(r.sqnr_db)) continue;
        bars->addData(i, r.sqnr_db);
        ticker->addTick(i, QString::fromStdString(r.name));
        ++i;
    }
    sqnr_->xAxis->setTicker(ticker);
    sqnr_->xAxis->setTickLabelRotation(60);
    sqnr_->yAxis->setLabel(tr("SQNR dB (vs float)"));
    sqnr_->rescaleAxes();
    sqnr_->xAxis->setRange(-0.7, i - 0.3);
    sqnr_->yAxis->setRangeLower(0);
    sqnr_->replot();
}
