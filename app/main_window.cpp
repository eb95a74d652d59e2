#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHeaderView>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QStatusBar>
#include <QTableView>
#include <QVBoxLayout>

#include "layer_table_model.h"

namespace {
constexpr int kMaxRecent = 8;
}

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
    setWindowTitle(tr("Quantscope"));
    setAcceptDrops(true);

    auto* central = new QWidget(this);
    auto* layout = new QVBoxLayout(central);
    summary_ = new QLabel(tr("Open a Keras model (File > Open, or drop a file here)."), central);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    summary_->setWordWrap(true);
    table_model_ = new LayerTableModel(this);
    table_view_ = new QTableView(central);
    table_view_->setModel(table_model_);
    table_view_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_view_->setAlternatingRowColors(true);
    table_view_->verticalHeader()->setVisible(false);
    table_view_->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 8);
    table_view_->horizontalHeader()->setStretchLastSection(true);
    layout->addWidget(summary_);
    layout->addWidget(table_view_, 1);
    setCentralWidget(central);

    progress_ = new QProgressBar(this);
    progress_->setMaximumWidth(240);
    cancel_ = new QPushButton(tr("Cancel"), this);
    statusBar()->addPermanentWidget(progress_);
    statusBar()->addPermanentWidget(cancel_);
    setBusy(false);
    connect(cancel_, &QPushButton::clicked, this, [this] { load_watcher_.cancel(); });
    connect(&load_watcher_, &QFutureWatcher<LoadResult>::progressValueChanged, progress_, &QProgressBar::setValue);
    connect(&load_watcher_, &QFutureWatcher<LoadResult>::finished, this, &MainWindow::onLoadFinished);

    buildMenus();
    QSettings settings;
    restoreGeometry(settings.value("window/geometry").toByteArray());
    if (!settings.contains("window/geometry")) resize(1100, 700);
}

MainWindow::~MainWindow() {
    // A job still running is told to stop; waiting here keeps it from outliving the window.
    load_watcher_.disconnect(this);
    load_watcher_.cancel();
    load_watcher_.waitForFinished();
}

const qs::Model* MainWindow::model() const { return model_.get(); }

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* open = file->addAction(tr("&Open..."), this, &MainWindow::chooseAndOpen);
    open->setShortcut(QKeySequence::Open);
    recent_menu_ = file->addMenu(tr("Open &Recent"));
    updateRecentMenu();
    file->addSeparator();
    QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);
}

void MainWindow::chooseAndOpen() {
    QSettings settings;
    const QString dir = settings.value("paths/lastModelDir").toString();
    const QString path = QFileDialog::getOpenFileName(this, tr("Open model"), dir,
                                                      tr("Keras models (*.h5 *.hdf5 *.keras *.weights.h5);;All files (*)"));
    if (!path.isEmpty()) openModel(path);
}

void MainWindow::openModel(const QString& path, const qs::LoadOptions& options) {
    if (load_watcher_.isRunning()) {
        load_watcher_.cancel();  // a newer request replaces an older one
        load_watcher_.waitForFinished();
    }
    setBusy(true, tr("Loading %1...").arg(QFileInfo(path).fileName()));
    load_watcher_.setFuture(startLoadModel(path, options));
}

void MainWindow::onLoadFinished() {
    setBusy(false);
    if (load_watcher_.isCanceled() || load_watcher_.future().resultCount() == 0) {
        statusBar()->showMessage(tr("Loading cancelled"), 4000);
        return;
    }
    const LoadResult r = load_watcher_.result();
    if (r.cancelled) {
        statusBar()->showMessage(tr("Loading cancelled"), 4000);
        return;
    }
    if (!r.model) {
        // Non-blocking: the window stays usable and the previous model stays loaded.
        auto* box = new QMessageBox(QMessageBox::Critical, tr("Cannot open model"), r.error, QMessageBox::Ok, this);
        box->setAttribute(Qt::WA_DeleteOnClose);
        box->setObjectName("loadErrorBox");
        box->open();
        emit loadFailed(r.error);
        return;
    }
    model_ = r.model;
    table_model_->setModel(model_);
    table_view_->resizeColumnsToContents();
    updateSummary();
    QSettings settings;
    settings.setValue("paths/lastModelDir", QFileInfo(r.path).absolutePath());
    QStringList recent = settings.value("recentFiles").toStringList();
    recent.removeAll(r.path);
    recent.prepend(r.path);
    settings.setValue("recentFiles", recent.mid(0, kMaxRecent));
    updateRecentMenu();
    setWindowTitle(tr("%1 - Quantscope").arg(QFileInfo(r.path).fileName()));
    statusBar()->showMessage(tr("Loaded %1").arg(r.path), 4000);
    emit modelLoaded();
}

void MainWindow::updateSummary() {
    const qs::Model& m = *model_;
    QString text = tr("<b>%1</b> &nbsp; format: %2 &nbsp; Keras: %3 &nbsp; %4 &nbsp; %5 layers, %6 parameters, %7 as float32")
                       .arg(QFileInfo(QString::fromStdString(m.source_path)).fileName().toHtmlEscaped(),
                            QString::fromLatin1(qs::formatName(m.format)),
                            m.keras_version.empty() ? tr("not recorded") : QString::fromStdString(m.keras_version).toHtmlEscaped(),
                            m.model_class.empty() ? tr("no architecture") : QString::fromStdString(m.model_class))
                       .arg(m.layers.size())
                       .arg(QLocale::system().toString(static_cast<qlonglong>(m.paramCount())))
                       .arg(LayerTableModel::formatBytes(m.paramCount() * 4));
    for (const std::string& w : m.warnings) text += "<br><i>" + QString::fromStdString(w).toHtmlEscaped() + "</i>";
    summary_->setText(text);
}

void MainWindow::updateRecentMenu() {
    recent_menu_->clear();
    const QStringList recent = QSettings().value("recentFiles").toStringList();
    for (const QString& path : recent) recent_menu_->addAction(path, this, [this, path] { openModel(path); });
    recent_menu_->setEnabled(!recent.isEmpty());
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
    QSettings().setValue("window/geometry", saveGeometry());
    load_watcher_.cancel();
    event->accept();
}
