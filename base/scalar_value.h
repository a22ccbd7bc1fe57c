// ScalarValue: a non-tensor value a checkpoint stores beside its tensors
// (a step counter, a learning rate, a serialized RNG state). Lives in base/
// because both the object API, which saves them (TrackedValue), and the
// reader, which must not depend on the object API, speak it.
#ifndef MESHCKPT_BASE_SCALAR_VALUE_H_
#define MESHCKPT_BASE_SCALAR_VALUE_H_

#include <cstdint>
#include <string>
#include <variant>

namespace meshckpt {

using ScalarValue = std::variant<int64_t, double, std::string>;

}  // namespace meshckpt

#endif  // MESHCKPT_BASE_SCALAR_VALUE_H_
