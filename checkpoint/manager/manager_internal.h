// What checkpoint_manager.cc and manager_restore.cc share. Internal.
#ifndef MESHCKPT_CHECKPOINT_MANAGER_MANAGER_INTERNAL_H_
#define MESHCKPT_CHECKPOINT_MANAGER_MANAGER_INTERNAL_H_

#include <string>

#include "absl/strings/string_view.h"

namespace meshckpt::internal {

// True when `name` is `<checkpoint_name>-<digits>`: a checkpoint this
// manager numbered.
bool IsManagedName(absl::string_view name, const std::string& checkpoint_name);

}  // namespace meshckpt::internal

#endif  // MESHCKPT_CHECKPOINT_MANAGER_MANAGER_INTERNAL_H_
