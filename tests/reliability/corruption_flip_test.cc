// Flipped bytes in a committed checkpoint, in one process (the fixture, the
// tensors and how a trial is read back: corruption_fixture.h). Seeded,
// hundreds of trials each flip one byte of a copy of the checkpoint and
// restore everything with RestoreTensors and CheckpointReader (and
// `meshckpt verify` when the CLI is built):
//   - a flipped byte inside a tensor's stored elements must give DataLoss
//     naming that tensor, from the restore and from VerifyAll / the CLI,
//     while the other tensors still restore bit-exactly;
//   - a flipped byte anywhere in the data file (HDF5 metadata included) must
//     end in an error or in values that are bit-exact (the byte was unused);
//     never OK with wrong values;
//   - a flipped index byte is always DataLoss (the index has an XXH3 footer).
// Every trial's outcome is counted; the counts go to stdout ("CORRUPTION
// ...") and to the test's XML properties.
//
// MESHCKPT_CORRUPTION_SEED and MESHCKPT_CORRUPTION_TRIALS (default 300)
// override the seed and the trials per kind. Truncated and deleted files
// and damaged string lengths: corruption_truncation_test.cc.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "tests/reliability/corruption_fixture.h"

namespace meshckpt {
namespace corruption_test {
namespace {

namespace fs = std::filesystem;

// The shared fixture plus the child-process trials of the flip tests. The
// suite keeps the name it had before the split (ctest names, filters, docs).
class CorruptionTest : public CorruptionFixture {
 protected:
  static constexpr int kTrialSeconds = 5;
  // The CLI runs on every data-byte flip and on every kCliEvery-th other
  // trial (it repeats VerifyAll in a new process; ~30 ms each).
  static constexpr int kCliEvery = 4;
  static void FlipAnywhere(int64_t pos, char mask, bool cli,
                           std::vector<std::string>* outcomes,
                           std::vector<std::string>* failures);
  static void Isolated(int64_t pos, char mask, int trial, Counts* c);
};

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
    const std::string where =
        absl::StrCat("trial ", trial, ": byte ", pos, " of '", e->key, "'");
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
      ADD_FAILURE() << where << ": VerifyAll: " << in.status << ", " << in.problems.size()
                    << " problems";
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
  if (e != nullptr &&
      !(absl::IsDataLoss(r.status) &&
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
    const std::string keep =
        absl::StrCat("/tmp/meshckpt_corruption_failures/trial", trial, "_byte", pos);
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

TEST_F(CorruptionTest, IndexByteFlipsAreAlwaysDataLoss) {
  std::mt19937_64 rng(Seed() + 2);
  const bool cli = !CliPath().empty();
  Counts c;
  for (int trial = 0; trial < Trials(); ++trial) {
    const int64_t pos = static_cast<int64_t>(rng() % index_->size());
    std::string idx = *index_;
    idx[pos] = static_cast<char>(idx[pos] ^ static_cast<char>(1 + rng() % 255));
    WriteTrial(*data_, idx);
    const std::string where =
        absl::StrCat("trial ", trial, ": index byte ", pos, " of ", index_->size());
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

}  // namespace
}  // namespace corruption_test
}  // namespace meshckpt
