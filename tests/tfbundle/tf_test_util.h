// Helpers for the tfbundle tests: the shared TensorFlow checkpoints (read in
// place, never copied into the repo), temporary directories, byte packing.
#ifndef MESHCKPT_TESTS_TFBUNDLE_TF_TEST_UTIL_H_
#define MESHCKPT_TESTS_TFBUNDLE_TF_TEST_UTIL_H_

#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace meshckpt::tf {

// ${PROJECT_SOURCE_DIR}/../shared/testdata/tf_checkpoints (CMake sets it).
inline std::string TfTestdata(const std::string& rel) {
  return std::string(MESHCKPT_TF_TESTDATA) + "/" + rel;
}

// A fresh directory under $TMPDIR, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "tfbundle_test_XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Copies every file of a shared checkpoint folder into `dir`, writable.
inline void CopyFolder(const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  for (const auto& e : fs::directory_iterator(from)) {
    const fs::path dst = fs::path(to) / e.path().filename();
    fs::copy_file(e.path(), dst, fs::copy_options::overwrite_existing);
    fs::permissions(dst, fs::perms::owner_read | fs::perms::owner_write);
  }
}

inline std::string ReadFileBytesForTest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void WriteFileBytesForTest(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <typename T>
std::string Pack(const std::vector<T>& v) {
  std::string out(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

template <typename T>
std::vector<T> Unpack(const std::string& bytes) {
  std::vector<T> out(bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

}  // namespace meshckpt::tf

#endif  // MESHCKPT_TESTS_TFBUNDLE_TF_TEST_UTIL_H_
