#pragma once
// Exports of a quantized model for other toolchains (README "Exports"). Each writes
// atomically (atomic_file.h: the old file stays intact on any failure) and returns notes on
// what it could not express (e.g. int2 layers in AIMET, whose schema starts at 4 bits).
#include <string>
#include <vector>

#include "engine/quantized_model.h"
#include "model/model.h"
#include "quant/quant_config.h"

namespace qs {

// Quantized weights as HDF5 in the Keras weights-only layout (layer_names / weight_names),
// so our loader reads it as any save_weights file. Each quantized kernel is an integer
// dataset "as stored": int8 (8 bits), int16 (16), or uint8 bytes packing two int4 or four
// int2 values (element i in byte i*bits/8, lowest bits first, two's complement), with
// attributes quantscope_bits, quantscope_shape (the kernel's shape), quantscope_scale and
// quantscope_zero_point (one per channel; element i belongs to channel i % channels) and
// quantscope_method. Everything else (biases, BatchNormalization vectors, float layers) is
// float32 as loaded. Reading dequantizes: x = scale * (q - zero_point).
std::vector<std::string> exportQuantizedWeightsH5(const Model& model, const QuantConfig& config, const std::string& path);

// AIMET encodings JSON, format version 0.5.0 (AIMET's quantization_encoding_specification:
// per tensor a list of encodings, one per channel; offset such that real = scale * (q + offset)
// with q unsigned in [0, 2^bitwidth - 1]; is_symmetric as the strings "True"/"False"; dtype
// "int" or "float"). param_encodings: each quantized kernel by its Keras weight name (after
// BatchNormalization folding when a BN follows, as AIMET folds before quantizing);
// activation_encodings: each integer op's output as "<op name>:0".
std::vector<std::string> exportAimetEncodings(const QuantizedModel& qm, const std::string& path);

// A C99 header for microcontroller firmware: per quantized layer its packed weights, shape,
// per-channel scales, int32 biases, requantization multipliers and shifts (TFLite's
// fixed-point form), input/output scales and zero points and the output clamp.
std::vector<std::string> exportCHeader(const QuantizedModel& qm, const std::string& path, const std::string& prefix = "qs");

// Packs integer values of `bits` (2, 4) into bytes as described above; 8 and 16 are not packed.
std::vector<uint8_t> packLowBits(const std::vector<int32_t>& q, int bits);
int32_t unpackLowBits(const uint8_t* bytes, int64_t index, int bits);

}  // namespace qs
