#pragma once
// The evaluation panel: a test set (file or folder), the number of calibration images, Run
// and Cancel with a progress bar; then float vs quantized accuracy, agreement, size and peak
// activation memory, the quantized model's confusion matrix as a heat map and per-layer SQNR
// bars. Display only: the app runs the evaluation and hands the result over.
#include <QWidget>

#include <optional>

#include "eval/evaluation.h"
#include "eval/quantized_evaluation.h"
#include "quant/quant_config.h"

class QComboBox;
class QCustomPlot;
class QLabel;
class QStackedWidget;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;

class EvaluationPanel : public QWidget {
    Q_OBJECT
public:
    explicit EvaluationPanel(QWidget* parent = nullptr);

    QString dataPath() const;
    void setDataPath(const QString& path);
    int calibrationSamples() const;
    void setCalibrationSamples(int n);
    // The whole-model settings of the second row: quantization mode, the activation
    // calibration method (every layer), and the preprocessing x = (v / scale - mean) / std
    // (scale empty: inferred from the data, as the CLI does).
    qs::QuantMode mode() const;
    void setMode(qs::QuantMode m);
    std::string activationMethod() const;
    void setActivationMethod(const std::string& method);
    std::optional<double> scaleOverride() const;  // nullopt: infer
    double mean() const;
    double stddev() const;
    void setPreprocessing(std::optional<double> scale, double mean, double stddev);
    QComboBox* modeBox() const { return mode_; }
    QComboBox* activationBox() const { return activation_; }
    void setRunning(bool running);
    void setProgress(int permille);
    void setResult(const qs::Comparison& c);
    void setMessage(const QString& text);
    void clearResult();

    QPushButton* runButton() const { return run_; }
    QPushButton* cancelButton() const { return cancel_; }
    QTableWidget* summary() const { return summary_; }
    QCustomPlot* confusionPlot() const { return confusion_; }
    QCustomPlot* sqnrPlot() const { return sqnr_; }

signals:
    void runRequested();
    void cancelRequested();

private:
    QLineEdit* path_ = nullptr;
    QSpinBox* calib_ = nullptr;
    QComboBox* mode_ = nullptr;
    QComboBox* activation_ = nullptr;
    QLineEdit* scale_ = nullptr;
    QLineEdit* mean_ = nullptr;
    QLineEdit* std_ = nullptr;
    QPushButton* run_ = nullptr;
    QPushButton* cancel_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QLabel* message_ = nullptr;
    QLabel* hint_ = nullptr;            // shown instead of the results until the first run
    QStackedWidget* results_ = nullptr;
    QTableWidget* summary_ = nullptr;
    QCustomPlot* confusion_ = nullptr;
    QCustomPlot* sqnr_ = nullptr;
};
