// Lexical path helpers (path.h): splitting, joining, normalizing and making
// paths absolute without touching the filesystem.
#include "meshckpt/base/path.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace meshckpt {

bool IsAbsolutePath(absl::string_view path) { return absl::StartsWith(path, "/"); }

std::string Dirname(absl::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return ".";
  absl::string_view dir = path.substr(0, slash);
  while (!dir.empty() && dir.back() == '/') dir.remove_suffix(1);
  return dir.empty() ? "/" : std::string(dir);
}

std::string Basename(absl::string_view path) {
  const size_t slash = path.rfind('/');
  return std::string(slash == absl::string_view::npos ? path : path.substr(slash + 1));
}

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  if (dir.empty()) return std::string(name);
  if (dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

std::string NormalizePath(absl::string_view path) {
  std::vector<absl::string_view> parts;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part != ".") parts.push_back(part);
  }
  const std::string joined = absl::StrJoin(parts, "/");
  if (IsAbsolutePath(path)) return absl::StrCat("/", joined);
  return joined.empty() && !path.empty() ? "." : joined;
}

bool HasDotDotComponent(absl::string_view path) {
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return true;
  }
  return false;
}

std::string MakeAbsoluteAgainst(absl::string_view path, absl::string_view base) {
  if (IsAbsolutePath(path)) return NormalizePath(path);
  return NormalizePath(absl::StrCat(base, "/", path));
}

absl::StatusOr<std::string> CurrentDirectory() {
  // getcwd(nullptr, 0) allocates as much as the path needs (glibc, BSDs).
  char* cwd = ::getcwd(nullptr, 0);
  if (cwd == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot tell the working directory: ", std::strerror(errno)));
  }
  std::string out = cwd;
  std::free(cwd);
  return out;
}

absl::StatusOr<std::string> MakeAbsolute(absl::string_view path) {
  if (IsAbsolutePath(path)) return NormalizePath(path);
  absl::StatusOr<std::string> cwd = CurrentDirectory();
  if (!cwd.ok()) {
    return absl::Status(
        cwd.status().code(),
        absl::StrCat("cannot make '", path, "' absolute: ", cwd.status().message()));
  }
  return MakeAbsoluteAgainst(path, *cwd);
}

std::optional<std::string> RelativePathUnder(absl::string_view dir,
                                             absl::string_view path) {
  if (dir.empty() || IsAbsolutePath(dir) != IsAbsolutePath(path)) return std::nullopt;
  const std::string d = NormalizePath(dir);
  const std::string p = NormalizePath(path);
  std::string rest;
  if (d == ".") {
    if (p.empty() || p == ".") return std::nullopt;
    rest = p;
  } else {
    const std::string head = d == "/" ? d : d + "/";
    if (!absl::StartsWith(p, head) || p.size() == head.size()) return std::nullopt;
    rest = p.substr(head.size());
  }
  // A ".." inside `dir` itself is fine: `dir` + "/" + rest spells `path`
  // exactly. Below it, ".." could lead anywhere.
  if (HasDotDotComponent(rest)) return std::nullopt;
  return rest;
}

}  // namespace meshckpt
