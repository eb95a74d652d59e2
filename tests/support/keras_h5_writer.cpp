#include "keras_h5_writer.h"

#include <H5Cpp.h>

#include <algorithm>

namespace qs::testing {

namespace {

void stringAttr(H5::H5Object& obj, const std::string& name, const std::vector<std::string>& values, StringKind kind, bool scalar) {
    H5::DataSpace space = scalar ? H5::DataSpace(H5S_SCALAR) : H5::DataSpace();
    if (!scalar) {
        hsize_t n = values.size();
        space = H5::DataSpace(1, &n);
    }
    if (kind == StringKind::VariableLength) {
        H5::StrType st(H5::PredType::C_S1, H5T_VARIABLE);
        st.setCset(H5T_CSET_UTF8);
        std::vector<const char*> ptrs;
        for (const std::string& v : values) ptrs.push_back(v.c_str());
        H5::Attribute a = obj.createAttribute(name, st, space);
        a.write(st, ptrs.data());
    } else {
        size_t width = 1;
        for (const std::string& v : values) width = std::max(width, v.size());
        H5::StrType st(H5::PredType::C_S1, width);
        st.setStrpad(H5T_STR_NULLPAD);
        std::vector<char> buf(values.size() * width, '\0');
        for (size_t i = 0; i < values.size(); ++i) std::copy(values[i].begin(), values[i].end(), buf.begin() + i * width);
        H5::Attribute a = obj.createAttribute(name, st, space);
        a.write(st, buf.data());
    }
}

void emptyFloatArrayAttr(H5::H5Object& obj, const std::string& name) {
    // h5py writes an empty weight_names list as float64[0].
    hsize_t n = 0;
    H5::DataSpace space(1, &n);
    obj.createAttribute(name, H5::PredType::IEEE_F64LE, space);
}

H5::DataType fileType(FloatKind k) {
    if (k == FloatKind::F64) return H5::PredType::IEEE_F64LE;
    if (k == FloatKind::F32) return H5::PredType::IEEE_F32LE;
    // IEEE half, as numpy/h5py define it.
    H5::FloatType t(H5::PredType::IEEE_F32LE);
    t.setFields(15, 10, 5, 0, 10);
    t.setOffset(0);
    t.setPrecision(16);
    t.setSize(2);
    t.setEbias(15);
    return t;
}

}  // namespace

void writeKerasH5(const std::string& path, const std::vector<LayerSpec>& layers, const WriteOptions& o) {
    H5::FileAccPropList fapl;
    // HDF5 1.8's format keeps attributes over 64 KiB in dense storage (h5py does the same).
    if (o.latest_format) H5Pset_libver_bounds(fapl.getId(), H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    H5::H5File f(path, H5F_ACC_TRUNC, H5::FileCreatPropList::DEFAULT, fapl);
    H5::Group root = f.openGroup("/");
    stringAttr(root, "keras_version", {o.keras_version}, o.strings, true);
    stringAttr(root, "backend", {"tensorflow"}, o.strings, true);
    if (o.model_config && !o.weights_only) stringAttr(root, "model_config", {*o.model_config}, o.strings, true);
    H5::Group mw = o.weights_only ? root : f.createGroup("model_weights");
    std::vector<std::string> names;
    for (const LayerSpec& l : layers) names.push_back(l.name);
    stringAttr(mw, "layer_names", names, o.strings, false);
    // A '/' in a layer name makes nested groups, as h5py does.
    H5::LinkCreatPropList nested;
    H5Pset_create_intermediate_group(nested.getId(), 1);
    for (const LayerSpec& l : layers) {
        H5::Group lg = mw.createGroup(l.name, nested);
        if (l.weights.empty()) {
            emptyFloatArrayAttr(lg, "weight_names");
            continue;
        }
        std::vector<std::string> wnames;
        H5::Group inner = lg.createGroup(l.name, nested);
        for (const WeightSpec& w : l.weights) {
            wnames.push_back(l.name + "/" + w.name);
            H5::DataSpace space(static_cast<int>(w.shape.size()), w.shape.data());
            H5::LinkCreatPropList lcpl;
            H5Pset_create_intermediate_group(lcpl.getId(), 1);  // names like "inner/kernel:0"
            H5::DataSet ds = inner.createDataSet(w.name, fileType(o.floats), space, H5::DSetCreatPropList::DEFAULT,
                                                 H5::DSetAccPropList::DEFAULT, lcpl);
            uint64_t n = 1;
            for (hsize_t d : w.shape) n *= d;
            // Write in row blocks of at most 16M floats so huge tensors need little memory here.
            const uint64_t row = w.shape.empty() ? 1 : n / std::max<uint64_t>(1, w.shape[0]);
            const uint64_t rows_per_chunk = std::max<uint64_t>(1, (uint64_t(1) << 24) / std::max<uint64_t>(1, row));
            const uint64_t nrows = w.shape.empty() ? 1 : w.shape[0];
            std::vector<float> buf;
            for (uint64_t r0 = 0; r0 < nrows; r0 += rows_per_chunk) {
                const uint64_t rn = std::min(rows_per_chunk, nrows - r0);
                buf.assign(rn * row, 0.0f);
                if (w.fill) w.fill(buf.data(), r0 * row, rn * row);
                else
                    for (uint64_t i = 0; i < rn * row; ++i) buf[i] = static_cast<float>((r0 * row + i) % 251) / 251.0f - 0.5f;
                if (w.shape.empty()) {
                    ds.write(buf.data(), H5::PredType::NATIVE_FLOAT);
                    break;
                }
                std::vector<hsize_t> start(w.shape.size(), 0), count(w.shape.begin(), w.shape.end());
                start[0] = r0;
                count[0] = rn;
                H5::DataSpace fs = ds.getSpace();
                fs.selectHyperslab(H5S_SELECT_SET, count.data(), start.data());
                H5::DataSpace ms(static_cast<int>(count.size()), count.data());
                ds.write(buf.data(), H5::PredType::NATIVE_FLOAT, ms, fs);
            }
        }
        stringAttr(lg, "weight_names", wnames, o.strings, false);
    }
}

void writeStringAttr(const std::string& path, const std::string& name, const std::string& value) {
    H5::H5File f(path, H5F_ACC_RDWR);
    H5::Group root = f.openGroup("/");
    if (H5Aexists(root.getId(), name.c_str()) > 0) root.removeAttr(name);
    stringAttr(root, name, {value}, StringKind::VariableLength, true);
}

}  // namespace qs::testing
