// Unit tests for the loader's pieces, on small inputs worked out by hand: architecture JSON of
// every Keras era, Keras 3 group keys, YAML sidecars, dtype and string-attribute variants that
// different h5py versions write, nested models, Theano kernel conversion.
#include <H5Cpp.h>
#include <zip.h>
#include <QTemporaryDir>
#include <QtTest>

#include <csignal>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "base/allocator.h"
#include "base/error.h"
#include "formats/architecture_file.h"
#include "formats/h5_preflight.h"
#include "formats/h5_vlen_check.h"
#include "formats/hdf5_util.h"
#include "formats/keras_config.h"
#include "formats/model_loader.h"
#include "formats/qat_layers.h"
#include "formats/weight_binding.h"
#include "formats/zip_reader.h"
#include "keras_h5_writer.h"
#include "model/shape_inference.h"

using nlohmann::json;
using qs::testing::LayerSpec;

namespace {

// Helper jobs for the preflight tests (run in the forked helper: plain functions of this program).
void slowSteps(const std::vector<std::string>&) {
    qs::h5::noteStep("one");
    usleep(150'000);
    qs::h5::noteStep("two");
    usleep(150'000);
    qs::h5::noteStep("three");
}

void crashAtSecondStep(const std::vector<std::string>&) {
    qs::h5::noteStep("/model_weights@layer_names");
    qs::h5::noteStep("/@backend");
    raise(SIGSEGV);  // as libhdf5 1.10 does on a damaged global-heap reference
}

void slowThenCrash(const std::vector<std::string>&) {
    qs::h5::noteStep("one");
    qs::h5::noteLibraryFree();
    usleep(600'000);
    qs::h5::noteStep("two");
    raise(SIGSEGV);
}

double secondsSince(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}


// A file whose group "g" holds the variable-length string attributes a = "hello" and
// b = {"x", "yy"} (global heap objects 1, 2 and 3 of one collection, in that order) and a
// fixed-length c; with HDF5 1.8+ headers (OHDR, attribute messages version 3) when `latest`,
// every attribute in dense storage (a fractal heap) when `dense`.
void writeVlenFile(const std::string& path, bool latest, bool dense) {
    const hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (latest) H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    const hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (dense) H5Pset_attr_phase_change(gcpl, 0, 0);
    const hid_t g = H5Gcreate2(f, "g", H5P_DEFAULT, gcpl, H5P_DEFAULT);
    const hid_t vlen = H5Tcopy(H5T_C_S1);
    H5Tset_size(vlen, H5T_VARIABLE);
    auto attr = [&](const char* name, hid_t type, hsize_t n, const void* data) {
        const hid_t space = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr);
        const hid_t a = H5Acreate2(g, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, type, data);
        H5Aclose(a);
        H5Sclose(space);
    };
    const char* hello = "hello";
    const char* pair[2] = {"x", "yy"};
    attr("a", vlen, 0, &hello);
    attr("b", vlen, 2, pair);
    const hid_t fixed = H5Tcopy(H5T_C_S1);
    H5Tset_size(fixed, 4);
    attr("c", fixed, 0, "abcd");
    H5Tclose(fixed);
    H5Tclose(vlen);
    H5Gclose(g);
    H5Pclose(gcpl);
    H5Fclose(f);
    H5Pclose(fapl);
}

std::string fileBytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
}

// Rewrites `n` little-endian bytes at `at` of the file.
void patchBytes(const std::string& path, size_t at, uint64_t value, int n) {
    std::string b = fileBytes(path);
    for (int i = 0; i < n; ++i) b[at + static_cast<size_t>(i)] = static_cast<char>((value >> (8 * i)) & 0xff);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << b;
}

qs::h5::VlenHeapCheck checkAttr(const H5::H5File& file, const char* name) {
    return qs::h5::checkVlenStringHeap(file.openGroup("g").getId(), name);
}

}  // namespace
using qs::testing::WriteOptions;

class LoaderUnitsTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    std::string path(const char* n) const { return tmp_.filePath(n).toStdString(); }

private slots:
    // QKeras quantizer specs, worked out from QKeras' signatures: quantized_bits(bits=8,
    // integer=0, symmetric=0, keep_negative=True, ...), quantized_relu(bits=8, integer=0, ...).
    void qkerasQuantizer_data() {
        QTest::addColumn<QString>("spec");
        QTest::addColumn<int>("bits");      // -1: not a quantizer
        QTest::addColumn<int>("integer");   // -1: not given
        QTest::addColumn<int>("negative");  // -1: not known, 0 / 1
        QTest::newRow("bits positional") << "quantized_bits(4,0,1)" << 4 << 0 << 1;
        QTest::newRow("bits keywords") << "quantized_bits(bits=3, integer=1, keep_negative=False)" << 3 << 1 << 0;
        QTest::newRow("keep_negative 4th positional") << "quantized_bits(6, 2, 0, 0)" << 6 << 2 << 0;
        QTest::newRow("relu, width only") << "quantized_relu(8)" << 8 << -1 << 0;
        QTest::newRow("relu with integer") << "quantized_relu(6,2)" << 6 << 2 << 0;
        QTest::newRow("default width") << "quantized_bits()" << 8 << -1 << 1;
        QTest::newRow("po2") << "quantized_po2(4)" << 4 << -1 << -1;
        QTest::newRow("dict") << R"({"class_name": "quantized_bits", "config": {"bits": 5, "integer": 1, "keep_negative": true}})" << 5 << 1 << 1;
        QTest::newRow("plain activation") << "\"relu\"" << -1 << -1 << -1;
        QTest::newRow("not a call") << "\"quantized_bits(4\"" << -1 << -1 << -1;
        QTest::newRow("absurd width") << "quantized_bits(400)" << -1 << -1 << -1;
    }
    void qkerasQuantizer() {
        QFETCH(QString, spec);
        QFETCH(int, bits);
        QFETCH(int, integer);
        QFETCH(int, negative);
        const json q = spec.startsWith('{') || spec.startsWith('"') ? json::parse(spec.toStdString()) : json(spec.toStdString());
        const auto t = qs::parseQKerasQuantizer(q, "kernel_quantizer");
        QCOMPARE(t.has_value(), bits >= 0);
        if (!t) return;
        QCOMPARE(t->bits, bits);
        QCOMPARE(t->integer_bits.value_or(-1), integer);
        QCOMPARE(t->keep_negative ? int(*t->keep_negative) : -1, negative);
    }

    void snakeCase_data() {
        QTest::addColumn<QString>("cls");
        QTest::addColumn<QString>("key");
        // keras/src/utils/naming.py to_snake_case, evaluated by hand on each.
        QTest::newRow("Conv2D") << "Conv2D" << "conv2d";
        QTest::newRow("Dense") << "Dense" << "dense";
        QTest::newRow("BatchNormalization") << "BatchNormalization" << "batch_normalization";
        QTest::newRow("ReLU") << "ReLU" << "re_lu";
        QTest::newRow("GlobalAveragePooling2D") << "GlobalAveragePooling2D" << "global_average_pooling2d";
        QTest::newRow("DepthwiseConv2D") << "DepthwiseConv2D" << "depthwise_conv2d";
        QTest::newRow("Conv2DTranspose") << "Conv2DTranspose" << "conv2d_transpose";
        QTest::newRow("LSTM") << "LSTM" << "lstm";
    }
    void snakeCase() {
        QFETCH(QString, cls);
        QFETCH(QString, key);
        QCOMPARE(QString::fromStdString(qs::kerasSnakeCase(cls.toStdString())), key);
    }

    void legacyNamesMapped() {
        // Keras 1 Sequential (bare list) with Keras 1 argument names.
        const json cfg = json::parse(R"({"class_name": "Sequential", "config": [
          {"class_name": "Convolution2D", "config": {"name": "c", "nb_filter": 8, "nb_row": 5, "nb_col": 3,
             "border_mode": "same", "subsample": [2, 2], "dim_ordering": "tf", "batch_input_shape": [null, 10, 9, 1]}},
          {"class_name": "Dropout", "config": {"name": "d", "p": 0.3}},
          {"class_name": "Flatten", "config": {"name": "f"}},
          {"class_name": "Dense", "config": {"name": "o", "output_dim": 4}}]})");
        qs::Architecture a = qs::parseKerasArchitecture(cfg, "x", "");
        QCOMPARE(a.model_class, std::string("Sequential"));
        QCOMPARE(a.layers.size(), size_t(4));
        const qs::Layer& c = a.layers[0];
        QCOMPARE(*c.class_name, std::string("Convolution2D"));
        QCOMPARE(c.kind, std::string("Conv2D"));
        QCOMPARE(c.config["filters"].get<int>(), 8);
        QCOMPARE(c.config["kernel_size"], json::array({5, 3}));
        QCOMPARE(c.config["padding"].get<std::string>(), std::string("same"));
        QCOMPARE(c.config["data_format"].get<std::string>(), std::string("channels_last"));
        QCOMPARE(a.layers[1].config["rate"].get<double>(), 0.3);
        QCOMPARE(a.layers[3].config["units"].get<int>(), 4);
        QCOMPARE(a.layers[3].inbound.front().layer, std::string("f"));
        // Shapes: 'same' with stride 2 on 10x9 -> ceil(10/2) x ceil(9/2) = 5x5, 8 filters -> 200.
        qs::Model m;
        qs::adoptArchitecture(m, std::move(a), "x");
        qs::inferShapes(m);
        QCOMPARE(*m.layers[0].output_shape, (qs::Shape{-1, 5, 5, 8}));
        QCOMPARE(*m.layers[2].output_shape, (qs::Shape{-1, 200}));
        QCOMPARE(*m.layers[3].output_shape, (qs::Shape{-1, 4}));
    }

    void functionalInboundShapes() {
        // Keras 2 node lists, TFOpLambda's flat spec with an operand in kwargs, Keras 3 args.
        const json k2 = json::parse(R"({"class_name": "Functional", "config": {"layers": [
          {"class_name": "InputLayer", "name": "in", "config": {"name": "in", "batch_input_shape": [null, 4]}, "inbound_nodes": []},
          {"class_name": "Dense", "name": "a", "config": {"name": "a", "units": 4}, "inbound_nodes": [[["in", 0, 0, {}]]]},
          {"class_name": "TFOpLambda", "name": "plus", "config": {"name": "plus", "function": "__operators__.add"},
           "inbound_nodes": [["a", 0, 0, {"y": ["in", 0, 0], "name": null}]]},
          {"class_name": "Add", "name": "k3add", "config": {"name": "k3add"}, "inbound_nodes": [{"args": [[
             {"class_name": "__keras_tensor__", "config": {"shape": [null, 4], "keras_history": ["plus", 0, 0]}},
             {"class_name": "__keras_tensor__", "config": {"shape": [null, 4], "keras_history": ["a", 0, 0]}}]], "kwargs": {}}]}],
          "input_layers": [["in", 0, 0]], "output_layers": ["k3add", 0, 0]}})");
        const qs::Architecture a = qs::parseKerasArchitecture(k2, "x", "");
        QCOMPARE(a.layers[2].inbound.size(), size_t(2));
        QCOMPARE(a.layers[2].inbound[0].layer, std::string("a"));
        QCOMPARE(a.layers[2].inbound[1].layer, std::string("in"));
        QCOMPARE(a.layers[3].inbound.size(), size_t(2));
        QCOMPARE(a.layers[3].inbound[0].layer, std::string("plus"));
        QCOMPARE(a.outputs.size(), size_t(1));
        QCOMPARE(a.outputs[0].layer, std::string("k3add"));
    }

    void missingInboundLayerIsAnError() {
        const json cfg = json::parse(R"({"class_name": "Model", "config": {"layers": [
          {"class_name": "Dense", "name": "a", "config": {"name": "a", "units": 4}, "inbound_nodes": [[["nowhere", 0, 0, {}]]]}],
          "input_layers": [], "output_layers": [["a", 0, 0]]}})");
        try {
            qs::parseKerasArchitecture(cfg, "m.json", "");
            QFAIL("accepted");
        } catch (const qs::Error& e) {
            QVERIFY(std::string(e.what()).find("unknown layer 'nowhere'") != std::string::npos);
        }
    }

    void deepJsonRefused() {
        std::string deep(5000, '[');
        deep += std::string(5000, ']');
        try {
            qs::parseJsonText(deep, "deep.json", "");
            QFAIL("accepted");
        } catch (const qs::Error& e) {
            QVERIFY(std::string(e.what()).find("nested 5000 deep") != std::string::npos);
        }
    }

    void yamlSidecar() {
        // to_yaml() output with !!python/tuple tags and anchors, as Keras 2.0 wrote it.
        const json j = qs::yamlToJson(R"(class_name: Sequential
config:
- class_name: Conv2D
  config:
    batch_input_shape: !!python/tuple [null, 1, 28, 28]
    kernel_size: !!python/tuple [3, 3]
    strides: &id001 !!python/tuple [1, 1]
    name: conv2d_1
    filters: 32
    use_bias: true
    name_quoted: '12'
- class_name: MaxPooling2D
  config: {name: pool, strides: *id001, pool_size: !!python/tuple [2, 2]}
)", "m.yaml");
        QCOMPARE(j["config"][0]["config"]["batch_input_shape"], json::parse("[null, 1, 28, 28]"));
        QCOMPARE(j["config"][0]["config"]["filters"].get<int>(), 32);
        QCOMPARE(j["config"][0]["config"]["use_bias"].get<bool>(), true);
        QCOMPARE(j["config"][0]["config"]["name_quoted"].get<std::string>(), std::string("12"));
        QCOMPARE(j["config"][1]["config"]["strides"], json::array({1, 1}));
    }

    void sidecarFound() {
        std::ofstream(path("net_weights.h5")) << "x";
        std::ofstream(path("net.yaml")) << "x";
        QCOMPARE(qs::findSidecarArchitecture(path("net_weights.h5")).value_or(""), path("net.yaml"));
        std::ofstream(path("m3.weights.h5")) << "x";
        std::ofstream(path("m3.keras")) << "x";
        QCOMPARE(qs::findSidecarArchitecture(path("m3.weights.h5")).value_or(""), path("m3.keras"));
        QVERIFY(!qs::findSidecarArchitecture(path("alone.h5")));
    }

    // float16 / float64 datasets and both string-attribute kinds load to the same float32 values.
    void dtypesAndStringKinds_data() {
        QTest::addColumn<int>("floats");
        QTest::addColumn<int>("strings");
        for (int f = 0; f < 3; ++f)
            for (int s = 0; s < 2; ++s) QTest::newRow(qPrintable(QString("f%1 s%2").arg(f).arg(s))) << f << s;
    }
    void dtypesAndStringKinds() {
        QFETCH(int, floats);
        QFETCH(int, strings);
        WriteOptions o;
        o.floats = static_cast<qs::testing::FloatKind>(floats);
        o.strings = static_cast<qs::testing::StringKind>(strings);
        o.model_config = R"({"class_name": "Sequential", "config": {"layers": [
            {"class_name": "Dense", "config": {"name": "d", "units": 2, "batch_input_shape": [null, 3]}}]}})";
        // Values exact in float16: k/4 for small k.
        auto fill = [](float* p, uint64_t off, uint64_t n) {
            for (uint64_t i = 0; i < n; ++i) p[i] = static_cast<float>(static_cast<int>(off + i) - 3) / 4.0f;
        };
        qs::testing::writeKerasH5(path("dt.h5"), {LayerSpec{"d", {{"kernel:0", {3, 2}, fill}, {"bias:0", {2}, fill}}}}, o);
        const qs::Model m = qs::loadModel(path("dt.h5"));
        const qs::Tensor& k = m.layers[0].weights[0];
        QCOMPARE(k.name, std::string("d/kernel:0"));
        QCOMPARE(std::string(qs::dtypeName(k.stored_dtype)), std::string(floats == 0 ? "float16" : floats == 1 ? "float32" : "float64"));
        QCOMPARE(k.data, (std::vector<float>{-0.75f, -0.5f, -0.25f, 0.0f, 0.25f, 0.5f}));
        QCOMPARE(m.keras_version, std::string("2.4.0"));
    }

    // Keras splits huge attributes into layer_names0, layer_names1, ... (over 64 KiB).
    void splitLayerNamesAttribute() {
        WriteOptions o;
        o.weights_only = true;
        qs::testing::writeKerasH5(path("split.h5"), {LayerSpec{"a", {{"w:0", {2}, {}}}}, LayerSpec{"b", {{"w:0", {3}, {}}}}}, o);
        {
            H5::H5File f(path("split.h5"), H5F_ACC_RDWR);
            H5::Group root = f.openGroup("/");
            root.removeAttr("layer_names");
            H5::StrType st(H5::PredType::C_S1, H5T_VARIABLE);
            hsize_t one = 1;
            H5::DataSpace sp(1, &one);
            const char* a = "a";
            const char* b = "b";
            root.createAttribute("layer_names0", st, sp).write(st, &a);
            root.createAttribute("layer_names1", st, sp).write(st, &b);
        }
        const qs::Model m = qs::loadModel(path("split.h5"));
        QCOMPARE(m.layers.size(), size_t(2));
        QCOMPARE(m.layers[1].name, std::string("b"));
        QCOMPARE(m.paramCount(), int64_t(5));
    }

    // A Sequential inside a Sequential (a pretrained base): weights live in the nested model's
    // group with names like "inner_dense/kernel:0"; layers are flattened and wired through.
    void nestedSequential() {
        WriteOptions o;
        o.model_config = R"({"class_name": "Sequential", "config": {"name": "outer", "layers": [
          {"class_name": "Sequential", "config": {"name": "base", "layers": [
             {"class_name": "Dense", "config": {"name": "inner_a", "units": 3, "batch_input_shape": [null, 2]}},
             {"class_name": "Dense", "config": {"name": "inner_b", "units": 4}}]}},
          {"class_name": "Dense", "config": {"name": "head", "units": 1}}]}})";
        qs::testing::writeKerasH5(path("nested.h5"),
                                  {LayerSpec{"base", {{"inner_a/kernel:0", {2, 3}, {}}, {"inner_a/bias:0", {3}, {}},
                                                      {"inner_b/kernel:0", {3, 4}, {}}, {"inner_b/bias:0", {4}, {}}}},
                                   LayerSpec{"head", {{"kernel:0", {4, 1}, {}}, {"bias:0", {1}, {}}}}},
                                  o);
        const qs::Model m = qs::loadModel(path("nested.h5"));
        QCOMPARE(m.layers.size(), size_t(3));
        QCOMPARE(m.layers[0].name, std::string("inner_a"));
        QCOMPARE(m.layers[1].weights.size(), size_t(2));
        QCOMPARE(m.layers[2].inbound.front().layer, std::string("inner_b"));
        QCOMPARE(*m.layers[2].output_shape, (qs::Shape{-1, 1}));
        QCOMPARE(m.paramCount(), int64_t(9 + 16 + 5));
    }

    // Theano 'th' kernel (out=1, in=1, kh=2, kw=2) = [[1, 2], [3, 4]]: flipped it is
    // [[4, 3], [2, 1]], laid out (kh, kw, in, out).
    void theanoFlip() {
        qs::Model m;
        qs::Layer l;
        l.name = "c";
        l.kind = "Conv2D";
        l.config = json::parse(R"({"dim_ordering": "th", "data_format": "channels_first"})");
        qs::Tensor k;
        k.shape = {1, 1, 2, 2};
        k.data = {1, 2, 3, 4};
        l.weights.push_back(k);
        m.layers.push_back(l);
        qs::Model flipped = m;
        qs::convertTheanoKernels(flipped, true);
        QCOMPARE(flipped.layers[0].weights[0].shape, (std::vector<int64_t>{2, 2, 1, 1}));
        QCOMPARE(flipped.layers[0].weights[0].data, (std::vector<float>{4, 3, 2, 1}));
        qs::convertTheanoKernels(m, false);
        QCOMPARE(m.layers[0].weights[0].data, (std::vector<float>{1, 2, 3, 4}));
    }

    // Any HDF5 file: every float dataset becomes a tensor, grouped by parent group; ints skipped.
    void genericHdf5() {
        {
            H5::H5File f(path("generic.h5"), H5F_ACC_TRUNC);
            H5::Group g = f.createGroup("enc");
            hsize_t d[2] = {2, 3};
            H5::DataSpace sp(2, d);
            std::vector<double> v{1, 2, 3, 4, 5, 6};
            g.createDataSet("w", H5::PredType::IEEE_F64LE, sp).write(v.data(), H5::PredType::NATIVE_DOUBLE);
            std::vector<int> iv(6, 1);
            g.createDataSet("ids", H5::PredType::STD_I32LE, sp).write(iv.data(), H5::PredType::NATIVE_INT);
        }
        const qs::Model m = qs::loadModel(path("generic.h5"));
        QCOMPARE(std::string(qs::formatName(m.format)), std::string("generic-h5"));
        QCOMPARE(m.layers.size(), size_t(1));
        QCOMPARE(m.layers[0].name, std::string("enc"));
        QCOMPARE(m.layers[0].weights.size(), size_t(1));
        QCOMPARE(m.layers[0].weights[0].data[5], 6.0f);
    }

    // A stored member's span, mapped in place or read, gives the bytes read() unpacks; a deflated
    // member or one over the limit has no span (both processes then unpack it with libzip). The archive has a
    // comment, so its end record is not the file's last 22 bytes, and the member a local extra field.
    void mappedStoredMember() {
        QTemporaryDir tmp;
        const std::string path = tmp.filePath("m.keras").toStdString();
        std::string stored(100'000, '\0'), deflated(50'000, 'z');
        for (size_t i = 0; i < stored.size(); ++i) stored[i] = static_cast<char>((i * 7919) >> 3);
        int err = 0;
        zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
        QVERIFY(z);
        const zip_int64_t a = zip_file_add(z, "first.txt", zip_source_buffer(z, "x", 1, 0), 0);
        const zip_int64_t b = zip_file_add(z, "model.weights.h5", zip_source_buffer(z, stored.data(), stored.size(), 0), 0);
        const zip_int64_t c = zip_file_add(z, "packed.bin", zip_source_buffer(z, deflated.data(), deflated.size(), 0), 0);
        QVERIFY(a >= 0 && b >= 0 && c >= 0);
        QCOMPARE(zip_set_file_compression(z, static_cast<zip_uint64_t>(b), ZIP_CM_STORE, 0), 0);
        // A local header's extra field moves the data (the central directory's copy may differ).
        const zip_uint8_t extra[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        QCOMPARE(zip_file_extra_field_set(z, static_cast<zip_uint64_t>(b), 0x7a7a, ZIP_EXTRA_FIELD_NEW, extra, sizeof extra, ZIP_FL_LOCAL), 0);
        QCOMPARE(zip_set_file_compression(z, static_cast<zip_uint64_t>(c), ZIP_CM_DEFLATE, 9), 0);
        QCOMPARE(zip_set_archive_comment(z, "an archive comment", 18), 0);
        QCOMPARE(zip_close(z), 0);

        const qs::ZipArchive archive(path);
        const auto span = archive.storedSpan("model.weights.h5", size_t(1) << 20);
        QVERIFY(span);
        const qs::MappedMember m = archive.mapSpan(*span);
        QVERIFY(m);
        QCOMPARE(m.size(), stored.size());
        QVERIFY(std::memcmp(m.data(), stored.data(), stored.size()) == 0);
        const std::vector<char> unpacked = archive.read("model.weights.h5", size_t(1) << 20);
        QVERIFY(archive.readSpan("model.weights.h5", *span) == unpacked);
        QVERIFY(std::memcmp(m.data(), unpacked.data(), unpacked.size()) == 0);
        QVERIFY(!archive.storedSpan("packed.bin", size_t(1) << 20));
        QVERIFY(!archive.storedSpan("model.weights.h5", 1000));
        QVERIFY(!archive.storedSpan("missing", size_t(1) << 20));
        // A byte of the member changed after the archive was written: the CRC refuses it.
        {
            std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
            f.seekp(static_cast<std::streamoff>(span->offset + 500));
            f.put('\x5a' ^ stored[500]);
        }
        const qs::ZipArchive changed(path);
        QVERIFY_THROWS_EXCEPTION(qs::Error, changed.readSpan("model.weights.h5", *changed.storedSpan("model.weights.h5", size_t(1) << 20)));
        // libzip's own read reports it only on the read after the data: refused there too.
        try {
            changed.read("model.weights.h5", size_t(1) << 20);
            QFAIL("a member that does not match its CRC was read");
        } catch (const qs::Error& e) {
            QVERIFY2(e.message().find("does not match its CRC") != std::string::npos, e.what());
        }
    }

    // The global-heap check (h5_vlen_check.h) reads version 1 and 2 object headers, through the
    // sec2 and core drivers, and leaves dense attribute storage to libhdf5.
    void vlenHeapCheckReadsTheLayouts() {
        using qs::h5::HeapCheck;
        QTemporaryDir tmp;
        for (bool latest : {false, true}) {
            const std::string path = tmp.filePath(latest ? "v2.h5" : "v1.h5").toStdString();
            writeVlenFile(path, latest, false);
            H5::H5File f(path, H5F_ACC_RDONLY);
            QCOMPARE(checkAttr(f, "a").result, HeapCheck::Consistent);
            QCOMPARE(checkAttr(f, "b").result, HeapCheck::Consistent);
            QCOMPARE(checkAttr(f, "c").result, HeapCheck::Consistent);  // fixed length: no heap
            QCOMPARE(checkAttr(f, "none").result, HeapCheck::Unchecked);
            // The same bytes as an in-memory image (a .keras archive's model.weights.h5).
            const std::string bytes = fileBytes(path);
            std::vector<char> image(bytes.begin(), bytes.end());
            const qs::h5::ImageBytes lent{image.data(), image.size()};
            H5::H5File in_memory = qs::h5::openImageReadOnly(lent, "image");
            QCOMPARE(checkAttr(in_memory, "b").result, HeapCheck::Consistent);
            QCOMPARE(qs::h5::readStringArrayAttr(in_memory.openGroup("g"), "b", "image", "/g"), (std::vector<std::string>{"x", "yy"}));
        }
        const std::string dense = tmp.filePath("dense.h5").toStdString();
        writeVlenFile(dense, true, true);
        H5::H5File f(dense, H5F_ACC_RDONLY);
        QCOMPARE(checkAttr(f, "a").result, HeapCheck::Unchecked);
        QCOMPARE(qs::h5::readStringAttr(f.openGroup("g"), "a", dense, "/g").value_or(""), std::string("hello"));
    }

    // Damaged heap objects that libhdf5 1.10 would follow out of bounds: refused by the check,
    // with the collection named, before libhdf5 reads them (this process could crash otherwise).
    void vlenHeapCheckFindsDamage_data() {
        QTest::addColumn<int>("field");  // 0: object 1's size, 1: its index
        QTest::addColumn<qulonglong>("value");
        QTest::addColumn<QString>("message");
        QTest::newRow("size past the collection") << 0 << 65535ull << "object 1 claims 65535 bytes, past the collection's end";
        QTest::newRow("more bytes than the string") << 0 << 7ull << "object 1: holds 7 bytes for a string of 5";
        QTest::newRow("index missing") << 1 << 9ull << "object 1: no such object";
    }
    void vlenHeapCheckFindsDamage() {
        QFETCH(int, field);
        QFETCH(qulonglong, value);
        QFETCH(QString, message);
        QTemporaryDir tmp;
        for (bool latest : {false, true}) {
            const std::string path = tmp.filePath("damaged.h5").toStdString();
            writeVlenFile(path, latest, false);
            const size_t gcol = fileBytes(path).find("GCOL");
            QVERIFY(gcol != std::string::npos);
            // Object 1 ("hello") right after the 16-byte collection header: index (2 bytes),
            // reference count (2), reserved (4), size (8) (File Format Specification III.E).
            if (field == 0) patchBytes(path, gcol + 16 + 8, value, 8);
            else patchBytes(path, gcol + 16, value, 2);
            H5::H5File f(path, H5F_ACC_RDONLY);
            const qs::h5::VlenHeapCheck c = checkAttr(f, "a");
            QCOMPARE(c.result, qs::h5::HeapCheck::Damaged);
            QVERIFY2(QString::fromStdString(c.why).contains(message), c.why.c_str());
            QVERIFY2(c.why.find("global heap collection at " + std::to_string(gcol)) != std::string::npos, c.why.c_str());
            try {
                qs::h5::readStringAttr(f.openGroup("g"), "a", path, "/g");
                QFAIL("a damaged heap object was read");
            } catch (const qs::Error& e) {
                QCOMPARE(e.file(), path);
                QCOMPARE(e.objectPath(), std::string("/g@a"));
                QVERIFY2(e.message().find("the file is damaged: global heap collection") != std::string::npos, e.what());
            }
        }
    }

    // The in-process load trails the helper step by step (h5_preflight.h): a step returns only
    // once the helper has finished it (named the next one, or ended), never earlier.
    void preflightCallerTrailsTheHelper() {
        if (qEnvironmentVariable("QUANTSCOPE_PREFLIGHT") == "0") QSKIP("preflight turned off");
        const auto t0 = std::chrono::steady_clock::now();
        qs::h5::Preflight checked(&slowSteps, {}, 0, "trail.h5");
        qs::h5::noteStep("one");  // the helper names "two" after 150 ms
        QVERIFY(secondsSince(t0) >= 0.14);
        qs::h5::noteStep("two");  // "three" after 300 ms
        QVERIFY(secondsSince(t0) >= 0.29);
        qs::h5::noteStep("three");  // the end
        checked.finish();
        QVERIFY(secondsSince(t0) >= 0.29);
    }

    // A helper that crashes stops the caller at the step it crashed in, naming it.
    void preflightCrashStopsTheCaller() {
        if (qEnvironmentVariable("QUANTSCOPE_PREFLIGHT") == "0") QSKIP("preflight turned off");
        {
            qs::h5::Preflight checked(&crashAtSecondStep, {}, 0, "crash.h5");
            qs::h5::noteStep("/model_weights@layer_names");  // the helper passed this one
            try {
                qs::h5::noteStep("/@backend");
                QFAIL("the step the helper crashed in returned");
            } catch (const qs::Error& e) {
                QCOMPARE(e.file(), std::string("crash.h5"));
                QCOMPARE(e.objectPath(), std::string("/@backend"));
                QVERIFY2(e.message().find("crashed") != std::string::npos, e.what());
            }
        }
        // The next file gets a new helper.
        qs::h5::Preflight next(&slowSteps, {}, 0, "next.h5");
        next.finish();
    }

    // A step without libhdf5 does not wait (the caller reads its own architecture meanwhile); the
    // next real step does.
    void preflightLibraryFreeStepDoesNotWait() {
        if (qEnvironmentVariable("QUANTSCOPE_PREFLIGHT") == "0") QSKIP("preflight turned off");
        const auto t0 = std::chrono::steady_clock::now();
        qs::h5::Preflight checked(&slowThenCrash, {}, 0, "free.h5");
        qs::h5::noteStep("one");  // waits only for the helper's next step: the free one, at once
        qs::h5::noteLibraryFree();
        QVERIFY2(secondsSince(t0) < 0.5, "the step without libhdf5 waited for the helper");
        QVERIFY_THROWS_EXCEPTION(qs::Error, qs::h5::noteStep("two"));
        QVERIFY(secondsSince(t0) >= 0.59);
    }

    // A large tensor buffer advised before its first write (the loader's weights, a .keras
    // archive's model.weights.h5) is backed by 2 MiB pages where the kernel has transparent huge
    // pages on ("always" or "madvise"): /proc/self/smaps counts them for its mapping.
    void largeBuffersOnHugePages() {
        std::ifstream mode_file("/sys/kernel/mm/transparent_hugepage/enabled");
        std::string mode;
        std::getline(mode_file, mode);
        if (mode.find("[always]") == std::string::npos && mode.find("[madvise]") == std::string::npos)
            QSKIP("transparent huge pages are off on this machine");
        std::vector<float> v;
        v.reserve(size_t(16) << 20);  // 64 MiB
        qs::adviseHugePages(v.data(), v.capacity() * sizeof(float));
        v.resize(v.capacity(), 1.0f);
        // The advice splits the mapping: count every part that overlaps the buffer.
        const auto begin = reinterpret_cast<uintptr_t>(v.data()), end = begin + v.size() * sizeof(float);
        std::ifstream smaps("/proc/self/smaps");
        std::string line;
        bool inside = false;
        int64_t huge_kb = 0;
        while (std::getline(smaps, line)) {
            uintptr_t lo = 0, hi = 0;
            if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
                inside = lo < end && begin < hi;
                continue;
            }
            if (inside && line.rfind("AnonHugePages:", 0) == 0) huge_kb += std::atoll(line.c_str() + 14);
        }
        // 64 MiB holds 31 whole aligned 2 MiB pages; most should be huge (the kernel may fall
        // back to small pages for a few when memory is fragmented).
        QVERIFY2(huge_kb >= 16 * 2048, qPrintable(QString("AnonHugePages over the buffer: %1 kB").arg(huge_kb)));
        QCOMPARE(v[12345678], 1.0f);
    }
};

QTEST_GUILESS_MAIN(LoaderUnitsTest)
#include "test_loader_units.moc"
