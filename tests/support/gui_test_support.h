#pragma once
// Helpers the GUI tests share (header-only: they need Qt Test and the app library, which the
// support library does not link): open a model and wait for its analyses, and measure the
// longest pause of the GUI thread's event loop.
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QSettings>
#include <QSignalSpy>
#include <QTimer>
#include <QtTest>

#include <algorithm>
#include <filesystem>

#include "formats/h5_preflight.h"
#include "main_window.h"

namespace qs::testing {

// Every GUI test's first step: the metadata preflight helper forked before Qt starts threads
// (h5_preflight.h), the test's own settings (the user's stay untouched), the default layout
// whatever an earlier run saved.
inline void startGuiTests() {
    qs::h5::startPreflightHelper();
    QCoreApplication::setOrganizationName("QuantscopeTest");
    QSettings().remove("window");
}

// Opens `file` and waits (up to 120 s) until it is loaded and every layer's analysis is in.
inline bool openAndSettle(MainWindow& w, const std::filesystem::path& file) {
    QSignalSpy loaded(&w, &MainWindow::modelLoaded), settled(&w, &MainWindow::analysesSettled);
    w.openModel(QString::fromStdString(file.string()));
    for (int i = 0; i < 6000 && (loaded.isEmpty() || settled.isEmpty()); ++i) QTest::qWait(20);
    return !loaded.isEmpty() && !settled.isEmpty();
}

// A 5 ms timer on the GUI thread; the longest time between two of its ticks is the longest
// the event loop did not turn (each pause over 50 ms is logged with when it ended).
class EventLoopGaps {
public:
    EventLoopGaps() {
        timer_.setInterval(5);
        QObject::connect(&timer_, &QTimer::timeout, [this] {
            const qint64 g = since_.restart();
            if (g > 50) qInfo("GAP %lld ms ending at %lld ms", g, clock_.elapsed());
            max_gap_ = std::max(max_gap_, g);
            ++ticks_;
        });
    }
    void start() {
        clock_.start();
        since_.start();
        timer_.start();
    }
    void stop() { timer_.stop(); }
    qint64 longest() const { return max_gap_; }
    qint64 ticks() const { return ticks_; }
    qint64 elapsed() const { return clock_.elapsed(); }

private:
    QTimer timer_;
    QElapsedTimer clock_, since_;
    qint64 max_gap_ = 0, ticks_ = 0;
};

}  // namespace qs::testing
