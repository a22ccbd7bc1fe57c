// Crash driver for mpi_tests/crash_test.sh: a training-like job that saves
// through CheckpointManager, to be killed (MESHCKPT_FAULT, or --kill-after-ms)
// in the middle of a save, and a verifier that runs afterwards on another
// rank count. MESHCKPT_FAULT (the FaultSpec text of
// checkpoint/engine/testing/fault_injector.h) is read here, by this program,
// and armed before anything is saved; a malformed value fails every rank
// with exit code 2.
//
//   crash_test --dir=D --phase=prepare --saves=3
//       Fresh manager over D (max_to_keep=2): saves steps 1..3.
//   crash_test --dir=D --phase=crash [--saves=1] [--kill-after-ms=T --kill-rank=R]
//              [--async]
//       New manager (sweeps), restores the latest checkpoint and checks it,
//       then saves steps s+1..s+saves. Prints "saved step=N" (rank 0) after
//       each save that returned OK on every rank: from then on that step
//       must never be lost. Meant to die on the way (exit code != 0).
//       --async: the manager saves asynchronously and each step's values
//       change as soon as Save returns; a step counts as saved once the
//       next collective call (the next Save, or the final wait) returned OK.
//   crash_test --dir=D --phase=verify --min-step=A --max-step=B
//       What a restarted job sees: the state file's checkpoint and
//       LatestCheckpoint agree, every committed checkpoint in D is complete
//       (index, data file of the committed size, every checksum), the latest
//       one restores bit-exactly here (values are a function of the global
//       index and the step; its step is in [A, B] and matches its name), a
//       new manager sweeps every leftover (no *.partial-*, *.tmp-*, .h5
//       without .index) and can save and restore the next step.
//       Prints "VERIFY ok step=N leftovers_swept=K" on success.
//
// The model: 6 tensors of 4 dtypes and layouts over a mesh batch=<ranks>,
// model=2 (two devices per rank), plus the step counter and a string value.
// Exit code 0 only when every rank passed every check.
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/engine/testing/fault_injector.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/comm/mpi_communicator.h"
#include "meshckpt/io/fs/fs.h"
#include "mpi_tests/test_tensors.h"

namespace meshckpt {
namespace {

struct Args {
  std::string dir, phase;
  int saves = 1;
  int64_t min_step = -1, max_step = -1;
  int64_t kill_after_ms = -1;
  int kill_rank = 0;
  bool async = false;
};

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view s = argv[i];
    bool ok = true;
    if (absl::ConsumePrefix(&s, "--dir=")) {
      a->dir = std::string(s);
    } else if (absl::ConsumePrefix(&s, "--phase=")) {
      a->phase = std::string(s);
    } else if (absl::ConsumePrefix(&s, "--saves=")) {
      ok = absl::SimpleAtoi(s, &a->saves);
    } else if (absl::ConsumePrefix(&s, "--min-step=")) {
      ok = absl::SimpleAtoi(s, &a->min_step);
    } else if (absl::ConsumePrefix(&s, "--max-step=")) {
      ok = absl::SimpleAtoi(s, &a->max_step);
    } else if (absl::ConsumePrefix(&s, "--kill-after-ms=")) {
      ok = absl::SimpleAtoi(s, &a->kill_after_ms);
    } else if (absl::ConsumePrefix(&s, "--kill-rank=")) {
      ok = absl::SimpleAtoi(s, &a->kill_rank);
    } else if (s == "--async") {
      a->async = true;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "crash_test: bad argument '%s'\n", argv[i]);
      return false;
    }
  }
  return !a->dir.empty() &&
         (a->phase == "prepare" || a->phase == "crash" || a->phase == "verify");
}

struct VarSpec {
  std::string module, name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<std::string> specs;
};

const std::vector<VarSpec>& Specs() {
  static const auto* specs = new std::vector<VarSpec>{
      {"model", "embed", DType::kFloat32, {50, 8}, {"batch", "unsharded"}},
      {"model", "kernel", DType::kFloat32, {37, 24}, {"unsharded", "model"}},
      {"model", "bias", DType::kFloat32, {24}, {"unsharded"}},
      {"model", "big", DType::kFloat32, {256, 64}, {"batch", "model"}},
      {"model", "grid", DType::kFloat64, {10, 9}, {"model", "batch"}},
      {"optimizer", "counts", DType::kInt64, {13}, {"model"}},
  };
  return *specs;
}

// A value key per tensor and step: every step has different values.
uint64_t ValueHash(const VarSpec& v, int64_t step) {
  return test::KeyHash(absl::StrCat(v.module, "/", v.name, "@", step));
}

struct Model {
  Module root;
  std::vector<std::pair<const VarSpec*, DVariable*>> vars;
  TrackedValue* step = nullptr;
  TrackedValue* note = nullptr;
  std::unique_ptr<DTensorCheckpoint> ckpt;
};

std::unique_ptr<Model> BuildModel(Communicator& comm) {
  auto m = std::make_unique<Model>();
  const Mesh mesh =
      Mesh::Create({{"batch", comm.size()}, {"model", 2}}, comm.rank(), comm.size())
          .value();
  for (const VarSpec& v : Specs()) {
    Trackable* existing = m->root.FindChild(v.module);
    Module* module = existing ? static_cast<Module*>(existing)
                              : m->root.AddModule(v.module).value();
    DVariable* var =
        module
            ->AddVariable(v.name, v.dtype, v.shape, Layout::Create(v.specs, mesh).value())
            .value();
    m->vars.emplace_back(&v, var);
  }
  m->step = m->root.AddValue("step", TrackedValue::Create(int64_t{0})).value();
  m->note = m->root.AddValue("note", TrackedValue::Create(std::string())).value();
  m->ckpt = DTensorCheckpoint::Create(&comm, mesh, {{"job", &m->root}}).value();
  m->ckpt->SetWarningSink([](const std::string&) {});
  return m;
}

void SetStep(Model& m, int64_t step) {
  for (auto& entry : m.vars) {
    const VarSpec* spec = entry.first;
    DVariable* var = entry.second;
    const uint64_t h = ValueHash(*spec, step);
    const int64_t esize = DTypeSize(spec->dtype);
    for (int64_t d : var->layout().mesh().local_device_ids()) {
      char* out = var->mutable_bytes(d).data();
      test::ForEachInBox(var->DeviceBox(d), var->shape(),
                         [&](int64_t local, const std::vector<int64_t>&, int64_t g) {
                           test::ExpectedElement(spec->dtype, h, g, out + esize * local);
                         });
    }
  }
  (void)m.step->set(step);
  (void)m.note->set(absl::StrCat("step-", step));
}

// Zeroes everything so a restore that leaves something untouched shows.
void Scramble(Model& m) {
  for (auto& [spec, var] : m.vars) {
    for (int64_t d : var->layout().mesh().local_device_ids()) {
      absl::Span<char> b = var->mutable_bytes(d);
      std::memset(b.data(), 0x5a, b.size());
    }
  }
  (void)m.step->set(int64_t{-1});
  (void)m.note->set(std::string("scrambled"));
}

// Elements that differ from the values of `step` on this rank; describes
// the first few in `report`.
int64_t CountWrong(const Model& m, int64_t step, std::string* report) {
  int64_t bad = 0;
  for (const auto& entry : m.vars) {
    const VarSpec* spec = entry.first;
    const DVariable* var = entry.second;
    const uint64_t h = ValueHash(*spec, step);
    const int64_t esize = DTypeSize(spec->dtype);
    for (int64_t d : var->layout().mesh().local_device_ids()) {
      const char* got = var->bytes(d).data();
      test::ForEachInBox(var->DeviceBox(d), var->shape(),
                         [&](int64_t local, const std::vector<int64_t>& c, int64_t g) {
                           char want[16];
                           test::ExpectedElement(spec->dtype, h, g, want);
                           if (std::memcmp(want, got + esize * local, esize) != 0) {
                             if (++bad <= 3) {
                               absl::StrAppend(report, " ", spec->module, "/", spec->name,
                                               test::CoordText(c));
                             }
                           }
                         });
    }
  }
  if (m.note->value() != TrackedValue::Value(absl::StrCat("step-", step))) {
    ++bad;
    absl::StrAppend(report, " note");
  }
  return bad;
}

// Failure bookkeeping: every rank collects its own, the exit code is agreed.
class Checker {
 public:
  explicit Checker(Communicator& comm) : comm_(comm) {}
  bool Expect(bool ok, const std::string& what) {
    if (!ok) {
      ++failures_;
      std::fprintf(stderr, "[rank %d] FAILED: %s\n", comm_.rank(), what.c_str());
    }
    return ok;
  }
  bool ExpectOk(const absl::Status& s, const std::string& what) {
    return Expect(s.ok(), absl::StrCat(what, ": ", s.ToString()));
  }
  int ExitCode() { return comm_.AllReduceMax(failures_) > 0 ? 1 : 0; }

 private:
  Communicator& comm_;
  int64_t failures_ = 0;
};

CheckpointManagerOptions ManagerOptions(Model& m) {
  CheckpointManagerOptions o;
  o.max_to_keep = 2;
  o.step_counter = m.step;
  return o;
}

int64_t StepOfName(const std::string& prefix) {
  int64_t n = -1;
  const std::string base = prefix.substr(prefix.rfind('/') + 1);
  if (!absl::StartsWith(base, "ckpt-") || !absl::SimpleAtoi(base.substr(5), &n))
    return -1;
  return n;
}

// Rank 0: files in `dir` that a finished save never leaves behind.
std::vector<std::string> Leftovers(const std::string& dir) {
  std::vector<std::string> out;
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) names.push_back(e->d_name);
    ::closedir(d);
  }
  for (const std::string& n : names) {
    if (n == "." || n == "..") continue;
    const std::string path = dir + "/" + n;
    if (absl::StrContains(n, ".partial-") || absl::StrContains(n, ".tmp-")) {
      out.push_back(n);
    } else if (absl::EndsWith(n, ".h5") &&
               !FileExists(path.substr(0, path.size() - 3) + ".index")) {
      out.push_back(n + " (no index)");
    } else if (absl::EndsWith(n, ".index") &&
               !FileExists(path.substr(0, path.size() - 6) + ".h5")) {
      out.push_back(n + " (no data file)");
    }
  }
  return out;
}

// Restores `prefix` into a scrambled model and checks it bit-exactly against
// the step it holds. Returns that step, or -1.
int64_t RestoreAndCheck(Communicator& comm, Model& m, const std::string& prefix,
                        Checker& check) {
  Scramble(m);
  absl::StatusOr<LoadStatus> status = m.ckpt->Restore(prefix);
  if (!check.ExpectOk(status.status(), "restore " + prefix)) return -1;
  check.ExpectOk(status->AssertConsumed(), "restore consumed everything of " + prefix);
  const int64_t step = m.step->int64();
  std::string report;
  const int64_t bad = CountWrong(m, step, &report);
  check.Expect(bad == 0, absl::StrCat(prefix, " restored with ", bad,
                                      " wrong elements for step ", step, ":", report));
  check.Expect(step == StepOfName(prefix), absl::StrCat(prefix, " holds step ", step));
  return bad == 0 ? step : -1;
}

void StartKillTimer(const Args& a, int rank) {
  if (a.kill_after_ms < 0 || rank != a.kill_rank) return;
  std::thread([ms = a.kill_after_ms, rank] {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    std::fprintf(stderr, "crash_test: timer kills rank %d after %lld ms\n", rank,
                 static_cast<long long>(ms));
    std::fflush(stderr);
    ::raise(SIGKILL);
  }).detach();
}

int Prepare(Communicator& comm, const Args& a, Checker& check) {
  auto m = BuildModel(comm);
  auto manager = CheckpointManager::Create(m->ckpt.get(), a.dir, ManagerOptions(*m));
  if (!check.ExpectOk(manager.status(), "manager")) return check.ExitCode();
  for (int64_t step = 1; step <= a.saves; ++step) {
    SetStep(*m, step);
    absl::StatusOr<std::optional<std::string>> saved = (*manager)->Save();
    if (!check.ExpectOk(saved.status(), absl::StrCat("save step ", step))) break;
    if (comm.rank() == 0) std::printf("saved step=%lld\n", static_cast<long long>(step));
  }
  return check.ExitCode();
}

int Crash(Communicator& comm, const Args& a, Checker& check) {
  StartKillTimer(a, comm.rank());
  auto m = BuildModel(comm);
  CheckpointManagerOptions options = ManagerOptions(*m);
  if (a.async) options.async_save = AsyncSaveOptions();
  auto manager = CheckpointManager::Create(m->ckpt.get(), a.dir, options);
  if (!check.ExpectOk(manager.status(), "manager")) return check.ExitCode();
  auto report_saved = [&](int64_t saved_step) {
    if (comm.rank() == 0) {
      std::printf("saved step=%lld\n", static_cast<long long>(saved_step));
      std::fflush(stdout);
    }
  };
  int64_t step = 0;
  if (std::optional<std::string> latest = (*manager)->latest_checkpoint()) {
    step = RestoreAndCheck(comm, *m, *latest, check);
    if (step < 0) return check.ExitCode();
  }
  for (int i = 0; i < a.saves; ++i) {
    ++step;
    if (comm.rank() == 0) {
      std::printf("attempt step=%lld\n", static_cast<long long>(step));
      std::fflush(stdout);
    }
    SetStep(*m, step);
    absl::StatusOr<std::optional<std::string>> saved = (*manager)->Save();
    if (!check.ExpectOk(saved.status(), absl::StrCat("save step ", step)))
      return check.ExitCode();
    // Async: this Save returning OK means the one before is committed.
    if (!a.async) {
      report_saved(step);
    } else if (i > 0) {
      report_saved(step - 1);
    }
  }
  if (a.async && a.saves > 0 &&
      check.ExpectOk((*manager)->WaitUntilFinished(),
                     absl::StrCat("async save step ", step))) {
    report_saved(step);
  }
  return check.ExitCode();
}

int Verify(Communicator& comm, const Args& a, Checker& check) {
  // Rank 0 inspects the directory; everyone gets the verdict.
  std::string latest, problems, existing;
  int64_t committed = 0, leftovers = 0;
  if (comm.rank() == 0) {
    absl::StatusOr<std::string> l = LatestCheckpoint(a.dir);
    absl::StatusOr<CheckpointState> state = ReadCheckpointState(a.dir);
    if (!l.ok()) {
      absl::StrAppend(&problems, "LatestCheckpoint: ", l.status().ToString(), "; ");
    } else {
      latest = *l;
    }
    if (!state.ok()) {
      absl::StrAppend(&problems, "state file: ", state.status().ToString(), "; ");
    } else if (!CheckpointIsIntact(
                   ResolveCheckpointPath(a.dir, state->model_checkpoint_path))) {
      // It may lag behind LatestCheckpoint (a kill after the index, before
      // the state file), but never names what is not there.
      absl::StrAppend(&problems, "state file names '", state->model_checkpoint_path,
                      "', which is not an intact checkpoint; ");
    }
    // No partial checkpoint: whatever is committed is complete.
    for (const std::string& p : ListCommittedCheckpoints(a.dir)) {
      ++committed;
      absl::StrAppend(&existing, p, "\n");
      absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(p);
      if (!r.ok()) {
        absl::StrAppend(&problems, "committed '", p,
                        "' does not open: ", r.status().ToString(), "; ");
        continue;
      }
      absl::StatusOr<std::vector<std::string>> v = (*r)->VerifyAll();
      if (!v.ok() || !v->empty()) {
        absl::StrAppend(&problems, "committed '", p, "' fails verification; ");
      }
    }
    leftovers = static_cast<int64_t>(Leftovers(a.dir).size());
  }
  comm.Broadcast(&latest, 0);
  comm.Broadcast(&problems, 0);
  check.Expect(problems.empty(), problems);
  if (latest.empty()) return check.ExitCode();

  auto m = BuildModel(comm);
  const int64_t step = RestoreAndCheck(comm, *m, latest, check);
  check.Expect(step >= a.min_step && (a.max_step < 0 || step <= a.max_step),
               absl::StrCat("latest checkpoint holds step ", step, ", expected [",
                            a.min_step, ", ", a.max_step, "]"));

  // A restarted job: the manager sweeps the leftovers and carries on.
  auto manager = CheckpointManager::Create(m->ckpt.get(), a.dir, ManagerOptions(*m));
  if (!check.ExpectOk(manager.status(), "manager")) return check.ExitCode();
  check.Expect((*manager)->latest_checkpoint() == latest,
               "manager's latest checkpoint is LatestCheckpoint's");
  std::string after;
  if (comm.rank() == 0) {
    for (const std::string& f : Leftovers(a.dir)) absl::StrAppend(&after, f, " ");
  }
  comm.Broadcast(&after, 0);
  check.Expect(after.empty(), "leftovers after a new manager swept: " + after);

  if (step >= 0) {
    SetStep(*m, step + 1);
    absl::StatusOr<std::optional<std::string>> saved = (*manager)->Save();
    if (check.ExpectOk(saved.status(), "save after recovery") && saved->has_value()) {
      RestoreAndCheck(comm, *m, **saved, check);
      check.Expect(!absl::StrContains(existing, **saved + "\n"),
                   absl::StrCat("the save after recovery reused the name of committed '",
                                **saved, "'"));
      if (comm.rank() == 0) {
        // The save repaired the state file: it names the new checkpoint.
        absl::StatusOr<CheckpointState> state = ReadCheckpointState(a.dir);
        check.Expect(state.ok() && ResolveCheckpointPath(
                                       a.dir, state->model_checkpoint_path) == **saved,
                     "after the save, the state file names the new checkpoint");
        std::printf("saved step=%lld\n", static_cast<long long>(step + 1));
      }
    }
  }
  const int rc = check.ExitCode();
  if (rc == 0 && comm.rank() == 0) {
    std::printf("VERIFY ok step=%lld committed=%lld leftovers_swept=%lld ranks=%d\n",
                static_cast<long long>(step), static_cast<long long>(committed),
                static_cast<long long>(leftovers), comm.size());
  }
  return rc;
}

}  // namespace
}  // namespace meshckpt

int main(int argc, char** argv) {
  meshckpt::MpiEnvironment env(&argc, &argv);
  meshckpt::Args args;
  if (!meshckpt::ParseArgs(argc, argv, &args)) {
    std::fprintf(
        stderr,
        "usage: crash_test --dir=D --phase=prepare|crash|verify [--saves=N] "
        "[--min-step=A] [--max-step=B] [--kill-after-ms=T --kill-rank=R] [--async]\n");
    return 2;
  }
  if (const char* fault = std::getenv("MESHCKPT_FAULT"); fault != nullptr) {
    absl::StatusOr<meshckpt::FaultSpec> spec = meshckpt::ParseFaultSpec(fault);
    if (!spec.ok()) {
      std::fprintf(stderr, "crash_test: bad MESHCKPT_FAULT: %s\n",
                   std::string(spec.status().message()).c_str());
      return 2;
    }
    meshckpt::ArmFault(*spec);
  }
  auto world = meshckpt::MpiCommunicator::World();
  if (!world.ok()) {
    std::fprintf(stderr, "%s\n", world.status().ToString().c_str());
    return 2;
  }
  meshckpt::Communicator& comm = **world;
  meshckpt::Checker check(comm);
  int rc = 0;
  if (args.phase == "prepare") {
    rc = meshckpt::Prepare(comm, args, check);
  } else if (args.phase == "crash") {
    rc = meshckpt::Crash(comm, args, check);
  } else {
    rc = meshckpt::Verify(comm, args, check);
  }
  std::fflush(stdout);
  world->reset();
  return rc;
}
