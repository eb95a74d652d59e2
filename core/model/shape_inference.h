#pragma once
// Infers each layer's output shape from the model's input shape and the layer configs, and
// checks every weight tensor against the config and the incoming shape (Dense kernel (in, units),
// Conv2D (kh, kw, in, filters), ...). A disagreement is a qs::Error naming the layer: a file whose
// weights do not fit its architecture must not open as if it were fine.
// Shapes include the batch dimension as -1. Layers we do not know get no shape (nor do their
// consumers); that is reported, not fatal.
#include <string>

#include "model/model.h"

namespace qs {

void inferShapes(Model& model);

// "(None, 26, 26, 32)" as Keras prints it.
std::string shapeToString(const Shape& s);

}  // namespace qs
