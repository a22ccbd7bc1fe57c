// Helpers for the integration tests of the `meshckpt` tool
// (mpi_tests/cli_test.cc, cli_scale_test.cc): whole tensors saved with
// SaveTensors on a SerialCommunicator over a multi-device mesh, shell-quoted
// runs of the binary with captured output, a fixture with a fresh work
// directory (under MESHCKPT_CLI_WORK, TEST_TMPDIR or /tmp; kept when a test
// fails) and one that also runs the binary under mpiexec with 2 ranks.
#ifndef MESHCKPT_TESTS_TOOLS_CLI_TEST_UTIL_H_
#define MESHCKPT_TESTS_TOOLS_CLI_TEST_UTIL_H_

#include <sys/wait.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/layout/shard_map.h"
#include "tests/file_bytes.h"

namespace meshckpt {
namespace cli_test {

// A whole tensor to save: row-major bytes (or strings) and its layout specs.
struct TestTensor {
  std::string key;
  std::string dataset;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<std::string> specs;
  std::vector<char> bytes;
  std::vector<std::string> strings;
};

template <typename T>
TestTensor Numeric(std::string key, std::string dataset, DType dtype,
                   std::vector<int64_t> shape, std::vector<std::string> specs,
                   const std::vector<T>& values) {
  TestTensor t{std::move(key),
               std::move(dataset),
               dtype,
               std::move(shape),
               std::move(specs),
               {},
               {}};
  t.bytes.resize(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

// Global flat index of element `i` (row-major) of `box` in a tensor of `shape`.
inline int64_t GlobalIndex(const Box& box, const std::vector<int64_t>& shape, int64_t i) {
  std::vector<int64_t> idx(box.rank(), 0);
  for (int k = box.rank() - 1; k >= 0; --k) {
    idx[k] = i % box.shape()[k];
    i /= box.shape()[k];
  }
  int64_t g = 0;
  for (int k = 0; k < box.rank(); ++k) g = g * shape[k] + box.origin()[k] + idx[k];
  return g;
}

// Saves `tensors` on one rank holding every device of the mesh `dims`.
inline absl::Status Save(const std::string& prefix,
                         const std::vector<TestTensor>& tensors,
                         const CheckpointContents& contents,
                         std::vector<MeshDimension> dims = {{"x", 2}, {"y", 3}}) {
  std::unique_ptr<Communicator> comm = SerialCommunicator();
  absl::StatusOr<Mesh> mesh = Mesh::Create(dims, 0, 1);
  if (!mesh.ok()) return mesh.status();
  std::deque<std::vector<char>> byte_buffers;
  std::deque<std::vector<std::string>> string_buffers;
  std::vector<SaveTensor> saves;
  for (const TestTensor& t : tensors) {
    absl::StatusOr<Layout> layout = Layout::Create(t.specs, *mesh);
    if (!layout.ok()) return layout.status();
    ShardMap map = ShardMap::Create(*layout, t.shape).value();
    SaveTensor s{t.key, t.dataset, t.dtype, t.shape, *layout, {}};
    const int64_t esize = DTypeSize(t.dtype);
    for (int64_t d : mesh->local_device_ids()) {
      const Box box = map.DeviceBox(d);
      if (t.dtype == DType::kString) {
        auto& buf = string_buffers.emplace_back();
        for (int64_t i = 0; i < box.num_elements(); ++i) {
          buf.push_back(t.strings[GlobalIndex(box, t.shape, i)]);
        }
        s.device_data.push_back(buf.data());
      } else {
        auto& buf = byte_buffers.emplace_back();
        for (int64_t i = 0; i < box.num_elements(); ++i) {
          const int64_t g = GlobalIndex(box, t.shape, i);
          buf.insert(buf.end(), t.bytes.begin() + g * esize,
                     t.bytes.begin() + (g + 1) * esize);
        }
        s.device_data.push_back(buf.data());
      }
    }
    saves.push_back(std::move(s));
  }
  return SaveTensors(*comm, prefix, saves, contents, {});
}

inline std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("MESHCKPT_BIN");
    ASSERT_NE(bin, nullptr) << "set MESHCKPT_BIN to the meshckpt binary";
    bin_ = bin;
    const char* work = std::getenv("MESHCKPT_CLI_WORK");
    if (work == nullptr) work = std::getenv("TEST_TMPDIR");
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = absl::StrCat(work ? work : "/tmp", "/", info->test_suite_name(), ".",
                        info->name(), "-", RandomId());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Runs `command` (a shell fragment); stdout and stderr captured.
  Result Shell(const std::string& command) {
    const std::string out = dir_ + "/.stdout", err = dir_ + "/.stderr";
    const int rc =
        std::system(absl::StrCat(command, " >", Quote(out), " 2>", Quote(err)).c_str());
    Result r;
    r.code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = ReadFileBytes(out);
    r.err = ReadFileBytes(err);
    return r;
  }
  // Runs meshckpt with `args` (each quoted).
  Result Run(const std::vector<std::string>& args) {
    std::string cmd = Quote(bin_);
    for (const std::string& a : args) absl::StrAppend(&cmd, " ", Quote(a));
    return Shell(cmd);
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string bin_;
  std::string dir_;
};

// `meshckpt reshard` under mpiexec with 2 ranks (skipped unless
// MESHCKPT_MPIEXEC is set, as mpi_tests/CMakeLists.txt does).
class CliReshardTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    const char* mpiexec = std::getenv("MESHCKPT_MPIEXEC");
    if (mpiexec == nullptr) GTEST_SKIP() << "MESHCKPT_MPIEXEC not set";
    const char* np_flag = std::getenv("MESHCKPT_MPIEXEC_NUMPROC_FLAG");
    const char* pre = std::getenv("MESHCKPT_MPIEXEC_PREFLAGS");
    const char* post = std::getenv("MESHCKPT_MPIEXEC_POSTFLAGS");
    launcher_ =
        absl::StrCat(Quote(mpiexec), " ", np_flag ? np_flag : "-n",
                     " 2 --oversubscribe --mca mpi_yield_when_idle 1 --timeout 60 ",
                     pre ? pre : "", " ", Quote(bin_), " ", post ? post : "");
  }
  Result MpiRun(const std::vector<std::string>& args) {
    std::string cmd = launcher_;
    for (const std::string& a : args) absl::StrAppend(&cmd, " ", Quote(a));
    return Shell(cmd);
  }
  std::string launcher_;
};

}  // namespace cli_test
}  // namespace meshckpt

#endif  // MESHCKPT_TESTS_TOOLS_CLI_TEST_UTIL_H_
