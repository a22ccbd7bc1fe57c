// A saved checkpoint and the raw locations of its bytes, for the corruption tests.
#include "tests/reliability/corruption_fixture.h"

#include <hdf5.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/io/fs/fs.h"

namespace meshckpt {
namespace corruption_test {

namespace fs = std::filesystem;
using test::DeviceBuffers;
using test::TensorSpec;

uint64_t Seed() {
  const char* s = std::getenv("MESHCKPT_CORRUPTION_SEED");
  uint64_t v = 20240601;
  if (s != nullptr) (void)absl::SimpleAtoi(s, &v);
  return v;
}

int Trials() {
  const char* s = std::getenv("MESHCKPT_CORRUPTION_TRIALS");
  int v = 300;
  if (s != nullptr) (void)absl::SimpleAtoi(s, &v);
  return v;
}

std::vector<Extent> ExtentsOf(const std::string& file, const std::string& key) {
  std::vector<Extent> out;
  hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return out;
  hid_t d = H5Dopen2(f, key.c_str(), H5P_DEFAULT);
  hid_t dcpl = H5Dget_create_plist(d);
  if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
    hsize_t n = 0;
    hid_t space = H5Dget_space(d);
    H5Dget_num_chunks(d, space, &n);
    for (hsize_t i = 0; i < n; ++i) {
      hsize_t coords[8];
      unsigned mask = 0;
      haddr_t addr = 0;
      hsize_t size = 0;
      H5Dget_chunk_info(d, space, i, coords, &mask, &addr, &size);
      out.push_back({key, static_cast<int64_t>(addr), static_cast<int64_t>(size)});
    }
    H5Sclose(space);
  } else {
    const haddr_t addr = H5Dget_offset(d);
    if (addr != HADDR_UNDEF) {
      out.push_back({key, static_cast<int64_t>(addr),
                     static_cast<int64_t>(H5Dget_storage_size(d))});
    }
  }
  H5Pclose(dcpl);
  H5Dclose(d);
  H5Fclose(f);
  return out;
}

std::string CliPath() {
#ifdef MESHCKPT_CLI
  if (fs::exists(MESHCKPT_CLI)) return MESHCKPT_CLI;
#endif
  return "";
}

int CliVerify(const std::string& prefix) {
  // timeout(1): a CLI stuck in HDF5 must not outlive the test.
  const std::string cmd = absl::StrCat("timeout -s KILL 20 '", CliPath(),
                                       "' verify --quiet '", prefix, "' >/dev/null 2>&1");
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

void CorruptionFixture::SetUpTestSuite() {
  root_ = new std::string(
      absl::StrCat(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp",
                   "/meshckpt_corruption_", RandomId()));
  fs::create_directories(*root_ + "/orig");
  fs::create_directories(*root_ + "/trial");
  comm_ = SerialCommunicator().release();
  mesh_ = new Mesh(Mesh::Create({{"x", 2}, {"y", 2}}, 0, 1).value());
  specs_ = new std::vector<std::pair<TensorSpec, std::vector<std::string>>>{
      {{"model/w", DType::kFloat32, {64, 48}}, {"x", "y"}},
      {{"model/counts", DType::kInt64, {100}}, {"x"}},
      {{"model/c", DType::kFloat64, {7, 5}}, {"unsharded", "unsharded"}},
      {{"model/h", DType::kBfloat16, {33, 3}}, {"y", "unsharded"}},
      {{"model/names", DType::kString, {6}}, {"unsharded"}},
  };
  std::vector<DeviceBuffers> data;
  std::vector<SaveTensor> save;
  for (const auto& [spec, layout] : *specs_) {
    data.push_back(DeviceBuffers::Filled(spec, Layout::Create(layout, *mesh_).value()));
  }
  for (size_t i = 0; i < specs_->size(); ++i) {
    const auto& [spec, layout] = (*specs_)[i];
    save.push_back(test::MakeSaveTensor(spec, Layout::Create(layout, *mesh_).value(),
                                        data[i].ConstPtrs()));
  }
  IoOptions options;
  options.checksum_tile_bytes = 256;
  const std::string prefix = *root_ + "/orig/ckpt";
  ASSERT_TRUE(SaveTensors(*comm_, prefix, save, {}, options).ok());
  data_ = new std::string(ReadFileBytes(DataFilePath(prefix)));
  index_ = new std::string(ReadFileBytes(IndexFilePath(prefix)));
  extents_ = new std::vector<Extent>();
  std::printf("checkpoint: data file %zu bytes, index %zu bytes\n", data_->size(),
              index_->size());
  for (const auto& [spec, layout] : *specs_) {
    for (const Extent& e : ExtentsOf(DataFilePath(prefix), spec.key)) {
      extents_->push_back(e);
    }
  }
}

void CorruptionFixture::TearDownTestSuite() {
  std::error_code ec;
  fs::remove_all(*root_, ec);
}

void CorruptionFixture::WriteTrial(const std::string& data, const std::string& index) {
  WriteFileBytes(DataFilePath(TrialPrefix()), data);
  WriteFileBytes(IndexFilePath(TrialPrefix()), index);
}

const Extent* CorruptionFixture::ExtentAt(int64_t pos) {
  for (const Extent& e : *extents_) {
    if (pos >= e.offset && pos < e.offset + e.size) return &e;
  }
  return nullptr;
}

CorruptionFixture::Restored CorruptionFixture::RestoreAll(const std::string& skip,
                                                          bool reshard) {
  const Mesh mesh = reshard ? Mesh::Create({{"x", 4}, {"y", 1}}, 0, 1).value() : *mesh_;
  std::vector<DeviceBuffers> bufs;
  std::vector<RestoreTensor> want;
  for (const auto& [spec, layout] : *specs_) {
    if (spec.key == skip) continue;
    bufs.push_back(DeviceBuffers::Sentinel(spec, Layout::Create(layout, mesh).value()));
  }
  size_t b = 0;
  for (const auto& [spec, layout] : *specs_) {
    if (spec.key == skip) continue;
    want.push_back(test::MakeRestoreTensor(spec, Layout::Create(layout, mesh).value(),
                                           bufs[b++].Ptrs()));
  }
  Restored r;
  r.status = RestoreTensors(*comm_, TrialPrefix(), want, IoOptions());
  if (r.status.ok()) {
    int64_t bad = 0;
    for (const DeviceBuffers& d : bufs) bad += d.Check(true, 0, &r.report);
    r.exact = bad == 0;
  }
  return r;
}

CorruptionFixture::Inspected CorruptionFixture::Inspect() {
  Inspected out;
  absl::StatusOr<std::unique_ptr<CheckpointReader>> r =
      CheckpointReader::Open(TrialPrefix());
  if (!r.ok()) {
    out.status = r.status();
    return out;
  }
  absl::StatusOr<std::vector<std::string>> v = (*r)->VerifyAll();
  if (!v.ok()) {
    out.status = v.status();
    return out;
  }
  out.problems = *v;
  out.reads_exact = true;
  for (const auto& [spec, layout] : *specs_) {
    absl::StatusOr<TensorData> t = (*r)->ReadTensor(spec.key);
    if (!t.ok()) {
      out.reads_exact = false;
      continue;
    }
    const uint64_t h = test::KeyHash(spec.key);
    for (int64_t g = 0; g < t->num_elements(); ++g) {
      if (spec.dtype == DType::kString) {
        out.reads_exact &= t->strings[g] == test::ExpectedString(h, g);
      } else {
        const int64_t es = DTypeSize(spec.dtype);
        char want[16];
        test::ExpectedElement(spec.dtype, h, g, want);
        out.reads_exact &= std::memcmp(want, t->bytes.data() + g * es, es) == 0;
      }
    }
  }
  return out;
}

void CorruptionFixture::Report(const Counts& c, const std::string& kind) {
  const std::string line = c.Line(kind);
  std::printf("%s\n", line.c_str());
  for (const auto& [k, v] : c.n) RecordProperty(kind + "." + k, v);
}

std::string* CorruptionFixture::root_ = nullptr;
Communicator* CorruptionFixture::comm_ = nullptr;
Mesh* CorruptionFixture::mesh_ = nullptr;
std::vector<std::pair<TensorSpec, std::vector<std::string>>>* CorruptionFixture::specs_ =
    nullptr;
std::string* CorruptionFixture::data_ = nullptr;
std::string* CorruptionFixture::index_ = nullptr;
std::vector<Extent>* CorruptionFixture::extents_ = nullptr;

}  // namespace corruption_test
}  // namespace meshckpt
