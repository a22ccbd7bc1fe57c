// Lexical helpers for '/'-separated file paths and checkpoint prefixes.
//
// Everything here is string work except CurrentDirectory and MakeAbsolute,
// which ask getcwd(3). Nothing is resolved through symlinks, and ".."
// components are kept as written: collapsing "a/.." is only right when "a"
// is not a symlink, and a kept ".." stays detectable (state files refuse
// entries with one). A checkpoint prefix is treated like a file path: its
// files are `<prefix>.index` and `<prefix>.h5`, so Dirname("/ckpt-1") is "/".
//
//   Dirname("/run/ckpt-3")              -> "/run"
//   Basename("/run/ckpt-3")             -> "ckpt-3"
//   JoinPath("/run", "checkpoint")      -> "/run/checkpoint"
//   NormalizePath("a//./b/")            -> "a/b"
//   MakeAbsoluteAgainst("../x", "/w")   -> "/w/../x"
//   RelativePathUnder("/run", "/run/ckpt-3") -> "ckpt-3"
//
// Thread-safe (no shared state; the working directory is the process's).
#ifndef MESHCKPT_BASE_PATH_H_
#define MESHCKPT_BASE_PATH_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshckpt {

// True when `path` starts with '/'.
bool IsAbsolutePath(absl::string_view path);

// The directory holding `path`: everything before its last '/', without
// trailing slashes; "/" when only slashes precede it, "." when `path` has
// no '/'. "a/" -> "a" (the prefix "a/" names files inside "a").
std::string Dirname(absl::string_view path);

// Everything after the last '/' of `path` (all of it when there is none):
// the file name, or the stem a checkpoint prefix gives its files. "" for a
// path ending in '/'.
std::string Basename(absl::string_view path);

// `name` inside `dir`: "dir/name", with no slash doubled when `dir` ends in
// one; just `name` when `dir` is empty. `name` is appended as it is.
std::string JoinPath(absl::string_view dir, absl::string_view name);

// Repeated slashes and "." components removed, ".." kept, no trailing
// slash: "a//./b/" -> "a/b", "./" -> ".", "/" -> "/", "" -> "".
std::string NormalizePath(absl::string_view path);

// True when some '/'-separated component of `path` is "..".
bool HasDotDotComponent(absl::string_view path);

// `path` against the absolute directory `base` (when relative), normalized
// as NormalizePath does: ("a/./b", "/w") -> "/w/a/b", ("", "/w") -> "/w".
std::string MakeAbsoluteAgainst(absl::string_view path, absl::string_view base);

// The process's working directory (getcwd); Internal when it cannot be
// told (e.g. it was removed).
absl::StatusOr<std::string> CurrentDirectory();

// MakeAbsoluteAgainst(path, working directory). An absolute `path` needs no
// working directory and never fails.
absl::StatusOr<std::string> MakeAbsolute(absl::string_view path);

// `path` relative to `dir` when it lies lexically strictly under it, else
// nullopt. Both are normalized first and must be both absolute or both
// relative; the part below `dir` may not contain ".." (a ".." in `dir`
// itself is kept on both sides). `dir` "." holds every relative path without
// "..". ("/run", "/run//sub/x") -> "sub/x"; ("../run", "../run/x") -> "x";
// ("/run", "/run") -> nullopt; ("/run", "/run/../x") -> nullopt.
std::optional<std::string> RelativePathUnder(absl::string_view dir,
                                             absl::string_view path);

}  // namespace meshckpt

#endif  // MESHCKPT_BASE_PATH_H_
