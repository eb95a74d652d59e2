#pragma once
// Models from quantization-aware training (QKeras, HGQ) as Keras files hold them: custom layer
// classes, and integer or boolean state tensors (HGQ's `bits`, `integers`, `keep_negative`) next
// to the float weights. Those tensors are moved out of the weights (never converted to float,
// never analysed) and, with the layers' quantizer configs, tell the bit width each layer was
// trained for.
#include <optional>
#include <string>

#include "model/model.h"

namespace qs {

// Moves every integer or boolean tensor of each layer from `weights` to `other_tensors`.
void separateIntegerTensors(Model& model);

// QKeras: "quantized_bits(4,0,1)", "quantized_relu(8,4)", or the dict form
// {"class_name": "quantized_bits", "config": {"bits": 4, "integer": 0, "keep_negative": true}}.
std::optional<TrainedQuantization> parseQKerasQuantizer(const nlohmann::json& q, const std::string& where);

// Fills Layer::trained from the first quantizer a layer's config names (kernel_quantizer,
// activation of QActivation, quantizer) or from its `bits` / `integers` / `keep_negative`
// tensors (HGQ FixedPointQuantizer).
void readTrainedQuantization(Model& model);

}  // namespace qs
