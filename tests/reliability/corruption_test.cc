// Corruption and truncation of a committed checkpoint, in one process
// (SerialCommunicator, a 4-device mesh on one rank).
//
// A small checkpoint (5 tensors: float32 in chunked HDF5 storage, int64,
// float64 and bfloat16 in contiguous storage, strings as one byte blob,
// io/string_blob.h) is saved once with 256-byte checksum tiles. Then,
// seeded, hundreds of trials each damage a copy of it and restore everything
// with RestoreTensors and CheckpointReader (and `meshckpt verify` when the
// CLI is built):
//   - a flipped byte inside a tensor's stored elements must give DataLoss
//     naming that tensor, from the restore and from VerifyAll / the CLI,
//     while the other tensors still restore bit-exactly;
//   - a flipped byte anywhere in the data file (HDF5 metadata included) must
//     end in an error or in values that are bit-exact (the byte was unused);
//     never OK with wrong values;
//   - a flipped index byte is always DataLoss (the index has an XXH3 footer);
//   - truncation of either file at random lengths is a clear error;
//   - deleting the newest checkpoint's index or data file makes
//     LatestCheckpoint fall back to the newest intact checkpoint.
// Every trial's outcome is counted; the counts go to stdout ("CORRUPTION
// ...") and to the test's XML properties.
//
// MESHCKPT_CORRUPTION_SEED and MESHCKPT_CORRUPTION_TRIALS (default 300)
// override the seed and the trials per kind.
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/checkpoint_state.h"
#include "checkpoint/shard_io.h"
#include "comm/communicator.h"
#include "gtest/gtest.h"
#include "io/fs.h"
#include "io/index_file.h"
#include "mpi_tests/test_tensors.h"

namespace meshckpt {
namespace {

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

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Where a tensor's elements are stored in the data file.
struct Extent {
  std::string key;
  int64_t offset = 0;
  int64_t size = 0;
};

// The raw storage of `dataset` (contiguous, or each chunk), via HDF5.
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

// The `meshckpt` CLI, when this build has it.
std::string CliPath() {
#ifdef MESHCKPT_CLI
  if (fs::exists(MESHCKPT_CLI)) return MESHCKPT_CLI;
#endif
  return "";
}

// Exit code of `meshckpt verify --quiet PREFIX`.
int CliVerify(const std::string& prefix) {
  // timeout(1): a CLI stuck in HDF5 must not outlive the test.
  const std::string cmd = absl::StrCat("timeout -s KILL 20 '", CliPath(),
                                       "' verify --quiet '", prefix, "' >/dev/null 2>&1");
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

// Outcome counters of one kind of trial.
struct Counts {
  std::map<std::string, int> n;
  void Add(const std::string& what) { ++n[what]; }
  std::string Line(const std::string& kind) const {
    std::string s = absl::StrCat("CORRUPTION ", kind);
    for (const auto& [k, v] : n) absl::StrAppend(&s, " ", k, "=", v);
    return s;
  }
};

class CorruptionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
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
    SaveOptions options;
    options.checksum_tile_bytes = 256;
    const std::string prefix = *root_ + "/orig/ckpt";
    ASSERT_TRUE(SaveTensors(*comm_, prefix, save, options).ok());
    data_ = new std::string(ReadAll(DataFilePath(prefix)));
    index_ = new std::string(ReadAll(IndexFilePath(prefix)));
    extents_ = new std::vector<Extent>();
    std::printf("checkpoint: data file %zu bytes, index %zu bytes\n", data_->size(),
                index_->size());
    for (const auto& [spec, layout] : *specs_) {
      for (const Extent& e : ExtentsOf(DataFilePath(prefix), spec.key)) {
        extents_->push_back(e);
      }
    }
  }

  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*root_, ec);
  }

  static std::string TrialPrefix() { return *root_ + "/trial/ckpt"; }

  static void WriteTrial(const std::string& data, const std::string& index) {
    WriteAll(DataFilePath(TrialPrefix()), data);
    WriteAll(IndexFilePath(TrialPrefix()), index);
  }

  // The extent holding byte `pos` of the data file, or nullptr.
  static const Extent* ExtentAt(int64_t pos) {
    for (const Extent& e : *extents_) {
      if (pos >= e.offset && pos < e.offset + e.size) return &e;
    }
    return nullptr;
  }

  struct Restored {
    absl::Status status;
    bool exact = false;  // Meaningful when status is OK.
    std::string report;
  };

  // Restores the tensors (all, or all but `skip`) of the trial checkpoint
  // with RestoreTensors and checks every element.
  // With `reshard`, on a mesh x=4,y=1 (other shard boxes than saved).
  static Restored RestoreAll(const std::string& skip = "", bool reshard = false) {
    const Mesh mesh =
        reshard ? Mesh::Create({{"x", 4}, {"y", 1}}, 0, 1).value() : *mesh_;
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
    r.status = RestoreTensors(*comm_, TrialPrefix(), want, RestoreOptions());
    if (r.status.ok()) {
      int64_t bad = 0;
      for (const DeviceBuffers& d : bufs) bad += d.Check(true, 0, &r.report);
      r.exact = bad == 0;
    }
    return r;
  }

  // CheckpointReader's view: VerifyAll problems (or the error opening /
  // verifying), and whether ReadTensor of every tensor is bit-exact.
  struct Inspected {
    absl::Status status;  // Open or VerifyAll error.
    std::vector<std::string> problems;
    bool reads_exact = false;
  };
  static Inspected Inspect() {
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

  static constexpr int kTrialSeconds = 5;
  // The CLI runs on every data-byte flip and on every kCliEvery-th other
  // trial (it repeats VerifyAll in a new process; ~30 ms each).
  static constexpr int kCliEvery = 4;
  static void FlipAnywhere(int64_t pos, char mask, bool cli,
                           std::vector<std::string>* outcomes,
                           std::vector<std::string>* failures);
  static void Isolated(int64_t pos, char mask, int trial, Counts* c);

  static void Report(const Counts& c, const std::string& kind) {
    const std::string line = c.Line(kind);
    std::printf("%s\n", line.c_str());
    for (const auto& [k, v] : c.n) RecordProperty(kind + "." + k, v);
  }

  static std::string* root_;
  static Communicator* comm_;
  static Mesh* mesh_;
  static std::vector<std::pair<TensorSpec, std::vector<std::string>>>* specs_;
  static std::string* data_;
  static std::string* index_;
  static std::vector<Extent>* extents_;
};

std::string* CorruptionTest::root_ = nullptr;
Communicator* CorruptionTest::comm_ = nullptr;
Mesh* CorruptionTest::mesh_ = nullptr;
std::vector<std::pair<TensorSpec, std::vector<std::string>>>* CorruptionTest::specs_ =
    nullptr;
std::string* CorruptionTest::data_ = nullptr;
std::string* CorruptionTest::index_ = nullptr;
std::vector<Extent>* CorruptionTest::extents_ = nullptr;

TEST_F(CorruptionTest, TheOriginalIsIntact) {
  WriteTrial(*data_, *index_);
  Restored r = RestoreAll();
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.exact) << r.report;
  Inspected in = Inspect();
  ASSERT_TRUE(in.status.ok()) << in.status;
  EXPECT_TRUE(in.problems.empty());
  EXPECT_TRUE(in.reads_exact);
  // Every tensor's storage was found.
  std::set<std::string> keys;
  for (const Extent& e : *extents_) keys.insert(e.key);
  EXPECT_EQ(keys.size(), specs_->size());
  if (!CliPath().empty()) {
    EXPECT_EQ(CliVerify(TrialPrefix()), 0);
  }
}


// A flipped byte inside a tensor's elements.
TEST_F(CorruptionTest, DataByteFlipsAreDataLossNamingTheTensor) {
  std::mt19937_64 rng(Seed());
  int64_t total = 0;
  for (const Extent& e : *extents_) total += e.size;
  ASSERT_GT(total, 0);
  const bool cli = !CliPath().empty();
  if (!cli) std::printf("meshckpt CLI not built: checking with VerifyAll only\n");
  Counts c;
  for (int trial = 0; trial < Trials(); ++trial) {
    int64_t r = static_cast<int64_t>(rng() % static_cast<uint64_t>(total));
    const Extent* e = nullptr;
    for (const Extent& x : *extents_) {
      if (r < x.size) {
        e = &x;
        break;
      }
      r -= x.size;
    }
    const int64_t pos = e->offset + r;
    std::string d = *data_;
    d[pos] = static_cast<char>(d[pos] ^ static_cast<char>(1 + rng() % 255));
    WriteTrial(d, *index_);
    const std::string where = absl::StrCat("trial ", trial, ": byte ", pos, " of '",
                                           e->key, "'");
    c.Add("flips");

    const Restored all = RestoreAll("", /*reshard=*/trial % 2 == 1);
    if (absl::IsDataLoss(all.status) &&
        absl::StrContains(all.status.message(), absl::StrCat("tensor '", e->key, "'"))) {
      c.Add("restore_dataloss_naming_tensor");
    } else {
      ADD_FAILURE() << where << ": restore returned " << all.status
                    << (all.status.ok() && !all.exact ? " WITH WRONG VALUES" : "");
    }
    const Restored others = RestoreAll(e->key);
    if (others.status.ok() && others.exact) {
      c.Add("other_tensors_intact");
    } else {
      ADD_FAILURE() << where << ": the other tensors: " << others.status << others.report;
    }
    const Inspected in = Inspect();
    bool named = !in.problems.empty();
    for (const std::string& p : in.problems) {
      named &= absl::StrContains(p, absl::StrCat("tensor '", e->key, "'"));
    }
    if (in.status.ok() && named) {
      c.Add("verifyall_detected");
    } else {
      ADD_FAILURE() << where << ": VerifyAll: " << in.status << ", "
                    << in.problems.size() << " problems";
    }
    if (cli) {
      const int rc = CliVerify(TrialPrefix());
      if (rc == 4) {
        c.Add("cli_verify_detected");
      } else {
        ADD_FAILURE() << where << ": meshckpt verify exited " << rc << ", not 4";
      }
    }
  }
  Report(c, "data_byte_flips");
}

// Flips byte `pos` of the data file and classifies what restore, VerifyAll
// and the CLI make of it. Appends outcomes to `outcomes` and violations
// (OK with wrong values, a data flip not reported as DataLoss of its tensor)
// to `failures`. Runs in a child process (see Isolated).
void CorruptionTest::FlipAnywhere(int64_t pos, char mask, bool cli,
                                  std::vector<std::string>* outcomes,
                                  std::vector<std::string>* failures) {
  std::string d = *data_;
  d[pos] = static_cast<char>(d[pos] ^ mask);
  WriteTrial(d, *index_);
  const Extent* e = ExtentAt(pos);
  const Restored r = RestoreAll();
  if (e != nullptr && !(absl::IsDataLoss(r.status) &&
                        absl::StrContains(r.status.message(), "tensor '" + e->key + "'"))) {
    failures->push_back(absl::StrCat("flip in elements of '", e->key,
                                     "': restore returned ", r.status.ToString()));
  }
  if (!r.status.ok()) {
    outcomes->push_back(
        absl::StrCat("restore_error_", absl::StatusCodeToString(r.status.code())));
  } else if (r.exact) {
    outcomes->push_back("restore_ok_bit_exact");
  } else {
    outcomes->push_back("restore_ok_WRONG_VALUES");
    failures->push_back("restore returned OK with wrong values: " + r.report);
  }
  const Inspected in = Inspect();
  if (!in.status.ok() || !in.problems.empty()) {
    outcomes->push_back("verify_detected");
  } else if (in.reads_exact) {
    outcomes->push_back("verify_clean_reads_bit_exact");
  } else {
    outcomes->push_back("verify_clean_WRONG_VALUES");
    failures->push_back("VerifyAll found nothing but reads differ");
  }
  if (cli) {
    const int rc = CliVerify(TrialPrefix());
    if (rc != 0) {
      outcomes->push_back(absl::StrCat("cli_exit_", rc));
    } else if (in.reads_exact && (!r.status.ok() || r.exact)) {
      outcomes->push_back("cli_clean_reads_bit_exact");
    } else {
      failures->push_back("meshckpt verify says intact but values differ");
    }
    if (rc != 0 && rc != 4) {
      failures->push_back(absl::StrCat("meshckpt verify exited ", rc, ", not 0 or 4"));
    }
  }
}

// One damaged-file trial in a child process with a time limit, so that a
// hang or crash inside HDF5 is counted and reported instead of stopping the
// whole test. Outcomes "hang" and "crash_<signal>" come from here.
void CorruptionTest::Isolated(int64_t pos, char mask, int trial, Counts* c) {
  const Extent* e = ExtentAt(pos);
  const std::string where = absl::StrCat("trial ", trial, ": byte ", pos, " (",
                                         e ? e->key : "not tensor elements", ")");
  c->Add("flips");
  c->Add(e ? "in_elements" : "elsewhere");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::fflush(nullptr);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    ::alarm(kTrialSeconds);
    std::vector<std::string> outcomes, failures;
    FlipAnywhere(pos, mask, !CliPath().empty() && trial % kCliEvery == 0, &outcomes,
                 &failures);
    std::string msg;
    for (const std::string& o : outcomes) absl::StrAppend(&msg, "O", o, "\n");
    for (std::string f : failures) {
      std::replace(f.begin(), f.end(), '\n', ' ');
      absl::StrAppend(&msg, "F", f, "\n");
    }
    ssize_t unused = ::write(fds[1], msg.data(), msg.size());
    (void)unused;
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) msg.append(buf, n);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  bool failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  for (absl::string_view line : absl::StrSplit(msg, '\n', absl::SkipEmpty())) {
    if (line[0] == 'O') c->Add(std::string(line.substr(1)));
    if (line[0] == 'F') {
      ADD_FAILURE() << where << ": " << line.substr(1);
      failed = true;
    }
  }
  if (failed) {  // Keep the damaged checkpoint for a reproduction.
    const std::string keep = absl::StrCat("/tmp/meshckpt_corruption_failures/trial",
                                          trial, "_byte", pos);
    std::error_code ec;
    fs::create_directories("/tmp/meshckpt_corruption_failures", ec);
    fs::copy_file(DataFilePath(TrialPrefix()), DataFilePath(keep),
                  fs::copy_options::overwrite_existing, ec);
    fs::copy_file(IndexFilePath(TrialPrefix()), IndexFilePath(keep),
                  fs::copy_options::overwrite_existing, ec);
    std::printf("%s: damaged checkpoint kept as %s\n", where.c_str(), keep.c_str());
  }
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
    c->Add("hang");
    ADD_FAILURE() << where << ": restore or verify hung (> " << kTrialSeconds << " s)";
  } else if (WIFSIGNALED(status)) {
    c->Add(absl::StrCat("crash_signal_", WTERMSIG(status)));
    ADD_FAILURE() << where << ": the restore crashed with signal " << WTERMSIG(status);
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ADD_FAILURE() << where << ": trial process exited with " << status;
  }
}

// A flipped byte anywhere in the data file, uniformly: HDF5 metadata,
// alignment padding or tensor elements.
TEST_F(CorruptionTest, RandomByteFlipsAnywhereNeverGiveWrongValues) {
  std::mt19937_64 rng(Seed() + 1);
  Counts c;
  for (int trial = 0; trial < Trials(); ++trial) {
    const int64_t pos = static_cast<int64_t>(rng() % data_->size());
    Isolated(pos, static_cast<char>(1 + rng() % 255), trial, &c);
  }
  Report(c, "random_data_file_flips");
}

// A flipped byte in HDF5's own structures: non-zero bytes outside tensor
// elements (superblock, object headers, B-trees, heaps, attributes), where
// padding does not dilute the trials.
TEST_F(CorruptionTest, Hdf5MetadataFlipsNeverGiveWrongValues) {
  std::vector<int64_t> candidates;
  for (int64_t pos = 0; pos < static_cast<int64_t>(data_->size()); ++pos) {
    if ((*data_)[pos] != 0 && ExtentAt(pos) == nullptr) candidates.push_back(pos);
  }
  ASSERT_FALSE(candidates.empty());
  std::mt19937_64 rng(Seed() + 6);
  Counts c;
  for (int trial = 0; trial < Trials(); ++trial) {
    const int64_t pos = candidates[rng() % candidates.size()];
    Isolated(pos, static_cast<char>(1 + rng() % 255), trial, &c);
  }
  Report(c, "hdf5_metadata_flips");
}

// A string tensor's stored lengths claiming more bytes than there are: a
// clear DataLoss naming the tensor. (Strings were HDF5 variable-length
// strings once; HDF5 1.10.8 loops forever on a damaged global heap object
// size, so they are now a byte blob we split ourselves, io/string_blob.h.)
TEST_F(CorruptionTest, DamagedStringLengthIsDataLossNotAHang) {
  const auto names = std::find_if(extents_->begin(), extents_->end(),
                                  [](const Extent& e) { return e.key == "model/names"; });
  ASSERT_NE(names, extents_->end());
  for (char mask : {'\x01', '\x80'}) {
    std::string data = *data_;
    data[names->offset + 7] ^= mask;  // Top byte of the first length.
    WriteTrial(data, *index_);
    const Restored r = RestoreAll();
    EXPECT_TRUE(absl::IsDataLoss(r.status)) << r.status;
    EXPECT_TRUE(absl::StrContains(r.status.message(), "model/names")) << r.status;
  }
}

TEST_F(CorruptionTest, IndexByteFlipsAreAlwaysDataLoss) {
  std::mt19937_64 rng(Seed() + 2);
  const bool cli = !CliPath().empty();
  Counts c;
  for (int trial = 0; trial < Trials(); ++trial) {
    const int64_t pos = static_cast<int64_t>(rng() % index_->size());
    std::string idx = *index_;
    idx[pos] = static_cast<char>(idx[pos] ^ static_cast<char>(1 + rng() % 255));
    WriteTrial(*data_, idx);
    const std::string where = absl::StrCat("trial ", trial, ": index byte ", pos, " of ",
                                           index_->size());
    c.Add("flips");
    const Restored r = RestoreAll();
    if (absl::IsDataLoss(r.status)) {
      c.Add("restore_dataloss");
    } else {
      ADD_FAILURE() << where << ": restore returned " << r.status
                    << (r.status.ok() && !r.exact ? " WITH WRONG VALUES" : "");
    }
    const Inspected in = Inspect();
    if (absl::IsDataLoss(in.status)) {
      c.Add("reader_dataloss");
    } else {
      ADD_FAILURE() << where << ": CheckpointReader::Open returned " << in.status;
    }
    if (cli && trial % kCliEvery == 0) {
      const int rc = CliVerify(TrialPrefix());
      if (rc == 4) {
        c.Add("cli_verify_detected");
      } else {
        ADD_FAILURE() << where << ": meshckpt verify exited " << rc << ", not 4";
      }
    }
  }
  Report(c, "index_byte_flips");
}

TEST_F(CorruptionTest, TruncatedDataFileIsDataLoss) {
  std::mt19937_64 rng(Seed() + 3);
  Counts c;
  const int trials = std::max(Trials() / 5, 10);
  for (int trial = 0; trial < trials; ++trial) {
    const size_t len = rng() % data_->size();
    WriteTrial(data_->substr(0, len), *index_);
    c.Add("truncations");
    const Restored r = RestoreAll();
    EXPECT_TRUE(absl::IsDataLoss(r.status)) << "length " << len << ": " << r.status;
    EXPECT_TRUE(absl::StrContains(r.status.message(), "truncated")) << r.status;
    const Inspected in = Inspect();
    EXPECT_TRUE(absl::IsDataLoss(in.status)) << "length " << len << ": " << in.status;
    if (absl::IsDataLoss(r.status) && absl::IsDataLoss(in.status)) c.Add("dataloss");
  }
  Report(c, "data_file_truncations");
}

TEST_F(CorruptionTest, TruncatedIndexIsDataLoss) {
  std::mt19937_64 rng(Seed() + 4);
  Counts c;
  const int trials = std::max(Trials() / 5, 10);
  for (int trial = 0; trial < trials; ++trial) {
    const size_t len = rng() % index_->size();
    WriteTrial(*data_, index_->substr(0, len));
    c.Add("truncations");
    const Restored r = RestoreAll();
    EXPECT_TRUE(absl::IsDataLoss(r.status)) << "length " << len << ": " << r.status;
    const Inspected in = Inspect();
    EXPECT_TRUE(absl::IsDataLoss(in.status)) << "length " << len << ": " << in.status;
    if (absl::IsDataLoss(r.status) && absl::IsDataLoss(in.status)) c.Add("dataloss");
  }
  Report(c, "index_truncations");
}

// A truncated data file whose index was rewritten to claim that size: the
// size check passes, so HDF5 and the checksums must catch it.
TEST_F(CorruptionTest, TruncatedDataFileBehindAMatchingIndexIsAnError) {
  std::mt19937_64 rng(Seed() + 5);
  absl::StatusOr<proto::CheckpointIndexProto> index = DecodeIndexFile(*index_, "orig");
  ASSERT_TRUE(index.ok()) << index.status();
  Counts c;
  const int trials = std::max(Trials() / 5, 10);
  for (int trial = 0; trial < trials; ++trial) {
    const size_t len = rng() % data_->size();
    proto::CheckpointIndexProto p = *index;
    p.set_data_file_size(static_cast<int64_t>(len));
    WriteTrial(data_->substr(0, len), EncodeIndexFile(p));
    c.Add("truncations");
    const Restored r = RestoreAll();
    if (!r.status.ok()) {
      c.Add(absl::StrCat("restore_error_", absl::StatusCodeToString(r.status.code())));
    } else if (r.exact) {
      c.Add("restore_ok_bit_exact");
    } else {
      ADD_FAILURE() << "length " << len << ": OK with wrong values\n" << r.report;
    }
    const Inspected in = Inspect();
    EXPECT_TRUE(!in.status.ok() || !in.problems.empty() || in.reads_exact)
        << "length " << len << ": reader found nothing but reads differ";
  }
  Report(c, "data_truncations_behind_matching_index");
}

// Three committed checkpoints ckpt-1..3 in `dir` (copies of the original,
// newer index timestamps for newer ones), with or without a state file.
void MakeThreeCheckpoints(const std::string& dir, const std::string& data,
                          const std::string& index, bool with_state) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  for (int n = 1; n <= 3; ++n) {
    const std::string p = absl::StrCat(dir, "/ckpt-", n);
    WriteAll(DataFilePath(p), data);
    proto::CheckpointIndexProto idx = DecodeIndexFile(index, "orig").value();
    idx.set_timestamp(idx.timestamp() + n);  // The directory scan sorts by it.
    WriteAll(IndexFilePath(p), EncodeIndexFile(idx));
  }
  if (with_state) {
    proto::CheckpointState s;
    s.set_model_checkpoint_path("ckpt-3");
    for (int n = 1; n <= 3; ++n) s.add_all_model_checkpoint_paths(absl::StrCat("ckpt-", n));
    ASSERT_TRUE(WriteCheckpointState(dir, s).ok());
  }
  ASSERT_EQ(LatestCheckpoint(dir).value_or(""), dir + "/ckpt-3");
}

// Deleting the newest checkpoint's index: it no longer exists, and
// LatestCheckpoint falls back to the newest intact one, with and without a
// state file.
TEST_F(CorruptionTest, LatestCheckpointFallsBackWhenNewestLosesItsIndex) {
  const std::string dir = *root_ + "/latest_index";
  for (bool with_state : {true, false}) {
    SCOPED_TRACE(absl::StrCat("state file: ", with_state));
    MakeThreeCheckpoints(dir, *data_, *index_, with_state);
    fs::remove(IndexFilePath(dir + "/ckpt-3"));
    absl::StatusOr<std::string> latest = LatestCheckpoint(dir);
    ASSERT_TRUE(latest.ok()) << latest.status();
    EXPECT_EQ(*latest, dir + "/ckpt-2");
  }
}

// A checkpoint whose data file is gone, asked for by name: DataLoss naming
// the missing file, never values.
TEST_F(CorruptionTest, CheckpointWithoutDataFileIsDataLoss) {
  const std::string dir = *root_ + "/latest_data";
  MakeThreeCheckpoints(dir, *data_, *index_, /*with_state=*/true);
  fs::remove(DataFilePath(dir + "/ckpt-3"));
  absl::StatusOr<std::unique_ptr<CheckpointReader>> r =
      CheckpointReader::Open(dir + "/ckpt-3");
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "missing")) << r.status();
  std::vector<RestoreTensor> none;
  absl::Status s = RestoreTensors(*comm_, dir + "/ckpt-3", none, RestoreOptions());
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
}

// LatestCheckpoint falls back to the newest checkpoint whose files are all
// there.
TEST_F(CorruptionTest, LatestCheckpointFallsBackWhenNewestLosesItsDataFile) {
  const std::string dir = *root_ + "/latest_data_fallback";
  for (bool with_state : {true, false}) {
    SCOPED_TRACE(absl::StrCat("state file: ", with_state));
    MakeThreeCheckpoints(dir, *data_, *index_, with_state);
    fs::remove(DataFilePath(dir + "/ckpt-3"));
    absl::StatusOr<std::string> latest = LatestCheckpoint(dir);
    ASSERT_TRUE(latest.ok()) << latest.status();
    EXPECT_EQ(*latest, dir + "/ckpt-2");
  }
}

}  // namespace
}  // namespace meshckpt
