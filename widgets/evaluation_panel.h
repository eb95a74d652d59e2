#pragma once
// The evaluation panel: a test set (file or folder), the number of calibration images, Run
// and Cancel with a progress bar; then float vs quantized accuracy, agreement, size and peak
// activation memory, the quantized model's confusion matrix as a heat map and per-layer SQNR
// bars. Display only: the app runs the evaluation and hands the result over.
#include <QWidget>

#include "quantized_evaluation.h"

class QCustomPlot;
class QLabel;
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
    QPushButton* run_ = nullptr;
    QPushButton* cancel_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QLabel* message_ = nullptr;
    QTableWidget* summary_ = nullptr;
    QCustomPlot* confusion_ = nullptr;
    QCustomPlot* sqnr_ = nullptr;
};
