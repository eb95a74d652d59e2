// The quantized-weights HDF5 export (exports.h) and its reading side (hdf5_util.h calls
// readQuantizedTensor for integer datasets that carry quantscope_scale).
#include <H5Cpp.h>
#include <cmath>

#include "base/atomic_file.h"
#include "base/error.h"
#include "export/exports.h"
#include "formats/hdf5_util.h"
#include "quant/quant_params.h"
#include "quant/tensor_stats.h"

namespace qs {

std::vector<uint8_t> packLowBits(const std::vector<int32_t>& q, int bits) {
    const int per_byte = 8 / bits;
    const uint32_t mask = (1u << bits) - 1;
    std::vector<uint8_t> out((q.size() + static_cast<size_t>(per_byte) - 1) / static_cast<size_t>(per_byte), 0);
    for (size_t i = 0; i < q.size(); ++i)
        out[i / static_cast<size_t>(per_byte)] |= static_cast<uint8_t>((static_cast<uint32_t>(q[i]) & mask) << ((i % static_cast<size_t>(per_byte)) * static_cast<size_t>(bits)));
    return out;
}

int32_t unpackLowBits(const uint8_t* bytes, int64_t index, int bits) {
    const int per_byte = 8 / bits;
    const uint32_t raw = (bytes[index / per_byte] >> ((index % per_byte) * bits)) & ((1u << bits) - 1);
    const int32_t sign = 1 << (bits - 1);
    return static_cast<int32_t>(raw ^ static_cast<uint32_t>(sign)) - sign;  // sign-extend
}

namespace {

void writeStrings(H5::H5Object& obj, const std::string& name, const std::vector<std::string>& values) {
    H5::StrType st(H5::PredType::C_S1, H5T_VARIABLE);
    st.setCset(H5T_CSET_UTF8);
    if (values.empty()) {  // h5py writes an empty list as an empty float array
        const hsize_t zero = 0;
        obj.createAttribute(name, H5::PredType::IEEE_F64LE, H5::DataSpace(1, &zero));
        return;
    }
    std::vector<const char*> ptrs;
    for (const std::string& v : values) ptrs.push_back(v.c_str());
    const hsize_t n = values.size();
    obj.createAttribute(name, st, H5::DataSpace(1, &n)).write(st, ptrs.data());
}

void writeString(H5::H5Object& obj, const std::string& name, const std::string& value) {
    H5::StrType st(H5::PredType::C_S1, H5T_VARIABLE);
    st.setCset(H5T_CSET_UTF8);
    const char* p = value.c_str();
    obj.createAttribute(name, st, H5::DataSpace(H5S_SCALAR)).write(st, &p);
}

template <class T>
void writeArrayAttr(H5::H5Object& obj, const std::string& name, const std::vector<T>& v, const H5::PredType& file_type,
                    const H5::PredType& mem_type) {
    const hsize_t n = v.size();
    obj.createAttribute(name, file_type, H5::DataSpace(1, &n)).write(mem_type, v.data());
}

// Opens or creates the groups of "a/b/c:0" below `g`, returning the last one and the leaf.
H5::Group parentFor(H5::Group g, const std::string& path, std::string& leaf) {
    size_t start = 0;
    for (size_t slash; (slash = path.find('/', start)) != std::string::npos; start = slash + 1) {
        const std::string part = path.substr(start, slash - start);
        g = h5::hasChild(g, part) ? g.openGroup(part) : g.createGroup(part);
    }
    leaf = path.substr(start);
    return g;
}

void writeFloatTensor(H5::Group& lg, const Tensor& t) {
    std::string leaf;
    H5::Group parent = parentFor(lg, t.name, leaf);
    std::vector<hsize_t> dims(t.shape.begin(), t.shape.end());
    H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
    parent.createDataSet(leaf, H5::PredType::IEEE_F32LE, space).write(t.data.data(), H5::PredType::NATIVE_FLOAT);
}

void writeQuantizedTensor(H5::Group& lg, const Tensor& t, const Candidate& c, int64_t channels) {
    std::vector<int32_t> q(t.data.size());
    for (size_t i = 0; i < q.size(); ++i) q[i] = quantize(t.data[i], c.params[c.params.size() == 1 ? 0 : i % static_cast<size_t>(channels)]);
    std::string leaf;
    H5::Group parent = parentFor(lg, t.name, leaf);
    H5::DataSet ds;
    if (c.bits == 8) {
        std::vector<int8_t> v(q.begin(), q.end());
        std::vector<hsize_t> dims(t.shape.begin(), t.shape.end());
        ds = parent.createDataSet(leaf, H5::PredType::STD_I8LE, H5::DataSpace(static_cast<int>(dims.size()), dims.data()));
        ds.write(v.data(), H5::PredType::NATIVE_INT8);
    } else if (c.bits == 16) {
        std::vector<int16_t> v(q.begin(), q.end());
        std::vector<hsize_t> dims(t.shape.begin(), t.shape.end());
        ds = parent.createDataSet(leaf, H5::PredType::STD_I16LE, H5::DataSpace(static_cast<int>(dims.size()), dims.data()));
        ds.write(v.data(), H5::PredType::NATIVE_INT16);
    } else {
        const std::vector<uint8_t> packed = packLowBits(q, c.bits);
        const hsize_t n = packed.size();
        ds = parent.createDataSet(leaf, H5::PredType::STD_U8LE, H5::DataSpace(1, &n));
        ds.write(packed.data(), H5::PredType::NATIVE_UINT8);
    }
    std::vector<double> scales;
    std::vector<int32_t> zps;
    for (const QuantParams& p : c.params) scales.push_back(p.scale), zps.push_back(p.zero_point);
    const std::vector<int64_t> shape(t.shape.begin(), t.shape.end());
    const std::vector<int32_t> bits = {c.bits};
    writeArrayAttr(ds, "quantscope_bits", bits, H5::PredType::STD_I32LE, H5::PredType::NATIVE_INT32);
    writeArrayAttr(ds, "quantscope_shape", shape, H5::PredType::STD_I64LE, H5::PredType::NATIVE_INT64);
    writeArrayAttr(ds, "quantscope_scale", scales, H5::PredType::IEEE_F64LE, H5::PredType::NATIVE_DOUBLE);
    writeArrayAttr(ds, "quantscope_zero_point", zps, H5::PredType::STD_I32LE, H5::PredType::NATIVE_INT32);
    writeString(ds, "quantscope_method", c.method);
}

}  // namespace

std::vector<std::string> exportQuantizedWeightsH5(const Model& model, const QuantConfig& config, const std::string& path) {
    std::vector<std::string> notes;
    replaceFileAtomically(path, [&](const std::string& tmp) {
        try {
            h5::silenceErrorStack();
            H5::H5File f(tmp, H5F_ACC_TRUNC);
            H5::Group root = f.openGroup("/");
            const bool keras1 = model.keras_version.empty() || model.keras_version.rfind("1.", 0) == 0;
            // Keras 1 kernels were converted to Keras 2 layout on load; say 2.x so they are not again.
            writeString(root, "keras_version", keras1 ? "2.0.0" : model.keras_version);
            writeString(root, "backend", "tensorflow");
            writeString(root, "quantscope_format", "quantized-weights");
            writeString(root, "quantscope_source", model.source_path);
            std::vector<std::string> names;
            for (const Layer& l : model.layers) names.push_back(l.name);
            writeStrings(root, "layer_names", names);
            for (const Layer& layer : model.layers) {
                H5::Group lg = root.createGroup(layer.name);
                std::vector<std::string> weight_names;
                for (const Tensor& t : layer.weights) weight_names.push_back(t.name);
                writeStrings(lg, "weight_names", weight_names);
                const Tensor* kernel = layerKernel(layer);
                const LayerQuant& q = config.forLayer(layer.name);
                for (const Tensor& t : layer.weights) {
                    if (&t == kernel && isInteger(q.precision)) {
                        writeQuantizedTensor(lg, t, weightCandidate(t, channelCount(layer, t), q), channelCount(layer, t));
                    } else if (&t == kernel && q.precision == Precision::Float16) {
                        Tensor rounded = t;  // HDF5's C++ API has no half type: float16 values kept in float32
                        for (float& v : rounded.data) v = roundToFloat16(v);
                        writeFloatTensor(lg, rounded);
                    } else {
                        writeFloatTensor(lg, t);
                    }
                }
                if (kernel && q.precision == Precision::Float16) notes.push_back(layer.name + ": float16 kernel stored as float32 values rounded to float16");
            }
            f.close();
        } catch (const H5::Exception& e) {
            throw Error(path, "", "cannot write HDF5 (" + e.getDetailMsg() + "); the previous file is unchanged");
        }
    });
    return notes;
}

namespace h5 {

bool isQuantizedDataset(const H5::DataSet& ds) { return ds.getTypeClass() == H5T_INTEGER && ds.attrExists("quantscope_scale"); }

namespace {

template <class T>
std::vector<T> readArrayAttr(const H5::DataSet& ds, const std::string& name, const H5::PredType& mem, const std::string& file,
                             const std::string& where) {
    if (!ds.attrExists(name)) throw Error(file, where, "quantized tensor without its " + name + " attribute");
    H5::Attribute a = ds.openAttribute(name);
    const hssize_t n = a.getSpace().getSimpleExtentNpoints();
    if (n < 1 || n > (1 << 24)) throw Error(file, where + "@" + name, "has " + std::to_string(n) + " values");
    std::vector<T> v(static_cast<size_t>(n));
    a.read(mem, v.data());
    return v;
}

}  // namespace

Tensor readQuantizedTensor(const H5::DataSet& ds, const std::string& file, const std::string& h5_path, const std::string& name) {
    Tensor t;
    t.name = name;
    t.h5_path = h5_path;
    t.stored_dtype = DType::Other;
    try {
        const std::vector<int32_t> bits_v = readArrayAttr<int32_t>(ds, "quantscope_bits", H5::PredType::NATIVE_INT32, file, h5_path);
        const int bits = bits_v[0];
        if (bits != 2 && bits != 4 && bits != 8 && bits != 16) throw Error(file, h5_path + "@quantscope_bits", std::to_string(bits) + " is not 2, 4, 8 or 16");
        const std::vector<int64_t> shape = readArrayAttr<int64_t>(ds, "quantscope_shape", H5::PredType::NATIVE_INT64, file, h5_path);
        const std::vector<double> scales = readArrayAttr<double>(ds, "quantscope_scale", H5::PredType::NATIVE_DOUBLE, file, h5_path);
        const std::vector<int32_t> zps = readArrayAttr<int32_t>(ds, "quantscope_zero_point", H5::PredType::NATIVE_INT32, file, h5_path);
        int64_t n = 1;
        for (int64_t d : shape) {
            if (d < 0 || (d > 0 && n > maxTensorBytes() / 4 / d)) throw Error(file, h5_path + "@quantscope_shape", "invalid or too large");
            n *= d;
        }
        if (zps.size() != scales.size()) throw Error(file, h5_path, "scale and zero point counts differ");
        const int64_t channels = static_cast<int64_t>(scales.size());
        if (n % channels != 0) throw Error(file, h5_path, std::to_string(n) + " values do not split into " + std::to_string(channels) + " channels");
        for (double s : scales)
            if (!(s > 0) || !std::isfinite(s)) throw Error(file, h5_path + "@quantscope_scale", "scales must be finite and positive");
        const int64_t stored = ds.getSpace().getSimpleExtentNpoints();
        const int64_t want = bits >= 8 ? n : (n * bits + 7) / 8;
        if (stored != want) throw Error(file, h5_path, "holds " + std::to_string(stored) + " values; " + std::to_string(bits) + "-bit shape needs " + std::to_string(want));
        std::vector<int32_t> q(static_cast<size_t>(n));
        if (bits >= 8) {
            ds.read(q.data(), H5::PredType::NATIVE_INT32);
        } else {
            std::vector<uint8_t> packed(static_cast<size_t>(stored));
            ds.read(packed.data(), H5::PredType::NATIVE_UINT8);
            for (int64_t i = 0; i < n; ++i) q[static_cast<size_t>(i)] = unpackLowBits(packed.data(), i, bits);
        }
        t.shape = shape;
        t.stored_shape = shape;
        t.data.resize(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
            const size_t c = static_cast<size_t>(i % channels);
            t.data[static_cast<size_t>(i)] = static_cast<float>(scales[c] * (q[static_cast<size_t>(i)] - zps[c]));
        }
    } catch (const H5::Exception& e) {
        throw Error(file, h5_path, "cannot read quantized dataset (" + e.getDetailMsg() + ")");
    }
    return t;
}

}  // namespace h5
}  // namespace qs
