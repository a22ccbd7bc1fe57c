// The fault hook the save path calls through (fault_injection.h): null
// unless a test installs one; nothing here runs before main().
#include "meshckpt/checkpoint/engine/fault_injection.h"

#include "absl/base/attributes.h"

namespace meshckpt {
namespace internal {

// Constant-initialized: std::atomic's constructor is constexpr.
ABSL_CONST_INIT std::atomic<FaultHook> g_fault_hook{nullptr};

}  // namespace internal
}  // namespace meshckpt
