// quantscope: the desktop application. Usage: quantscope [MODEL] [--arch FILE] [--data TEST_SET]
#include <QApplication>
#include <QCommandLineParser>

#include "base/allocator.h"
#include "formats/h5_preflight.h"
#include "main_window.h"

int main(int argc, char** argv) {
    qs::tuneAllocator();
    // The process that reads HDF5 metadata first (h5_preflight.h), forked while we have one thread.
    qs::h5::startPreflightHelper();
    QApplication app(argc, argv);
    QApplication::setOrganizationName("Quantscope");
    QApplication::setApplicationName("Quantscope");
    QApplication::setApplicationVersion(QUANTSCOPE_VERSION);

    QCommandLineParser parser;
    parser.setApplicationDescription("Per-layer quantization analysis of Keras models");
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument("model", "Keras model to open (.h5, .keras, .weights.h5, any HDF5)");
    QCommandLineOption arch("arch", "Architecture (JSON/YAML/.keras) for a weights-only file", "file");
    parser.addOption(arch);
    QCommandLineOption data("data", "Test set for the evaluation panel (IDX folder, .npz, .npy, HDF5)", "path");
    parser.addOption(data);
    parser.process(app);

    MainWindow window;
    window.show();
    if (parser.isSet(data)) window.setDataPath(parser.value(data));
    if (!parser.positionalArguments().isEmpty()) {
        qs::LoadOptions options;
        options.arch_path = parser.value(arch).toStdString();
        window.openModel(parser.positionalArguments().first(), options);
    }
    return app.exec();
}
