// Whole-file reads and in-place overwrites for tests that damage checkpoint
// files. Plain and non-atomic on purpose: damage on disk looks like this.
#ifndef MESHCKPT_TESTS_FILE_BYTES_H_
#define MESHCKPT_TESTS_FILE_BYTES_H_

#include <fstream>
#include <iterator>
#include <string>

namespace meshckpt {

inline std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void WriteFileBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace meshckpt

#endif  // MESHCKPT_TESTS_FILE_BYTES_H_
