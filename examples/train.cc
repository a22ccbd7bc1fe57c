// A small training job that checkpoints, dies and resumes on another mesh.
//
// A two-layer perceptron learns a fixed random "teacher" network from noisy
// samples. Parameters are sharded over a 2-D mesh data x model: the hidden
// layer is split over `model` (W1 by columns, b1, W2 by rows: Megatron-style
// tensor parallelism) and replicated over `data`, which splits each global
// batch. Partial outputs are summed over the model group and gradients over
// the data group with MPI_Allreduce. Adam's moments are sharded like the
// parameters. The noise RNG and the data position are checkpointed too, so a
// resumed run sees exactly the samples and noise an uninterrupted one would.
//
// Everything that defines the run (initial values, samples, noise, batch
// composition) is a function of global indices, not of the mesh, so runs on
// different meshes agree up to floating-point summation order (float64).
//
//   mpirun -np 4 train --dir=/tmp/run --mesh=data=2,model=2 --steps=200
//   # killed at any point, then, on another cluster size:
//   mpirun -np 3 train --dir=/tmp/run --mesh=data=1,model=3 --steps=200
//
// Flags: --dir --steps --save-every --max-to-keep --keep-every-hours --mesh
// --batch --hidden --seed --lr --log (CSV step,loss; appended by rank 0)
// --crash-at-step (SIGKILL rank 0 in the middle of that step, for tests)
// --step-ms (sleep per step, so a demo can kill it mid-run)
// --async (saves return once the values are staged; training goes on while
// the checkpoint is written and committed in the background)
// --preempt-signal (TERM, the default, USR1, USR2 or INT: the signal that
// means "save and stop"; SIGTERM is what Slurm and Kubernetes send)
// --preempt-at-step (rank 0 raises that signal on itself in the middle of
// that step, for tests).
//
// Preemption: a PreemptionWatcher's handler sets a flag; at the end of every
// step the ranks agree on it (one all-reduce) and, if any rank got the
// signal, all save that step through the manager, print "preempted at step
// N", and exit 0. The next run resumes from step N.
#include <mpi.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/manager/preemption.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/comm/mpi_communicator.h"

namespace meshckpt {
namespace {

constexpr int64_t kIn = 32, kOut = 8;

struct Flags {
  std::string dir = "/tmp/meshckpt_train";
  std::string mesh = "";
  std::string log;
  int64_t steps = 200, save_every = 20, batch = 48, hidden = 256, seed = 7;
  int64_t max_to_keep = 3, crash_at_step = -1, step_ms = 0, preempt_at_step = -1;
  int preempt_signal = SIGTERM;
  double keep_every_hours = 0, lr = 1e-2;
  bool async = false;
};

bool ParseSignal(absl::string_view name, int* sig) {
  absl::ConsumePrefix(&name, "SIG");
  for (auto [n, s] : {std::pair<const char*, int>{"TERM", SIGTERM},
                      {"USR1", SIGUSR1},
                      {"USR2", SIGUSR2},
                      {"INT", SIGINT}}) {
    if (name == n) {
      *sig = s;
      return true;
    }
  }
  return false;
}

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i], v;
    auto is = [&](absl::string_view name) {
      v = a;
      return absl::ConsumePrefix(&v, name) && absl::ConsumePrefix(&v, "=");
    };
    bool ok = true;
    if (is("--dir"))
      f->dir = std::string(v);
    else if (is("--mesh"))
      f->mesh = std::string(v);
    else if (is("--log"))
      f->log = std::string(v);
    else if (is("--steps"))
      ok = absl::SimpleAtoi(v, &f->steps);
    else if (is("--save-every"))
      ok = absl::SimpleAtoi(v, &f->save_every);
    else if (is("--batch"))
      ok = absl::SimpleAtoi(v, &f->batch);
    else if (is("--hidden"))
      ok = absl::SimpleAtoi(v, &f->hidden);
    else if (is("--seed"))
      ok = absl::SimpleAtoi(v, &f->seed);
    else if (is("--max-to-keep"))
      ok = absl::SimpleAtoi(v, &f->max_to_keep);
    else if (is("--crash-at-step"))
      ok = absl::SimpleAtoi(v, &f->crash_at_step);
    else if (a == "--async")
      f->async = true;
    else if (is("--step-ms"))
      ok = absl::SimpleAtoi(v, &f->step_ms);
    else if (is("--preempt-at-step"))
      ok = absl::SimpleAtoi(v, &f->preempt_at_step);
    else if (is("--preempt-signal"))
      ok = ParseSignal(v, &f->preempt_signal);
    else if (is("--keep-every-hours"))
      ok = absl::SimpleAtod(v, &f->keep_every_hours);
    else if (is("--lr"))
      ok = absl::SimpleAtod(v, &f->lr);
    else
      ok = false;
    if (!ok) {
      std::fprintf(stderr, "train: bad flag '%s'\n", argv[i]);
      return false;
    }
  }
  return true;
}

// Deterministic values from (seed, stream, index): splitmix64 and Box-Muller.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
double Uniform(uint64_t a, uint64_t b, uint64_t c) {
  return (Mix(Mix(Mix(a) ^ b) ^ c) >> 11) * 0x1.0p-53 + 0x1.0p-54;
}
double Normal(uint64_t a, uint64_t b, uint64_t c) {
  return std::sqrt(-2 * std::log(Uniform(a, b, 2 * c))) *
         std::cos(2 * M_PI * Uniform(a, b, 2 * c + 1));
}
// One normal draw from the checkpointed engine. No std::normal_distribution:
// it caches a second value that a checkpoint of the engine would lose.
double DrawNormal(std::mt19937_64& rng) {
  const double u1 = (rng() >> 11) * 0x1.0p-53 + 0x1.0p-54;
  const double u2 = (rng() >> 11) * 0x1.0p-53;
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

// Sample s: input x and the teacher's (noise-free) output.
void Sample(uint64_t seed, int64_t s, double* x, double* y) {
  constexpr int64_t kTeacherHidden = 16;
  for (int64_t k = 0; k < kIn; ++k) x[k] = Normal(seed, 1, s * kIn + k);
  double h[kTeacherHidden];
  for (int64_t j = 0; j < kTeacherHidden; ++j) {
    double z = 0;
    for (int64_t k = 0; k < kIn; ++k)
      z += x[k] * Normal(seed, 2, j * kIn + k) / std::sqrt(kIn);
    h[j] = std::tanh(z);
  }
  for (int64_t o = 0; o < kOut; ++o) {
    y[o] = 0;
    for (int64_t j = 0; j < kTeacherHidden; ++j)
      y[o] += h[j] * Normal(seed, 3, o * kTeacherHidden + j);
  }
}

// Parameter, Adam moments, their shapes and layouts.
struct Param {
  std::string name;
  DVariable* w = nullptr;
  DVariable* m = nullptr;
  DVariable* v = nullptr;
  std::vector<double> grad;
};

struct Job {
  Flags flags;
  std::unique_ptr<Communicator> comm;
  MPI_Comm model_comm, data_comm;
  int data_index = 0, data_size = 1;
  Mesh mesh = Mesh::Create({{"data", 1}}, 0, 1).value();
  Module root, *model = nullptr, *adam_m = nullptr, *adam_v = nullptr;
  std::vector<Param> params;  // W1 [in,h], b1 [h], W2 [h,out], b2 [out]
  TrackedValue *step = nullptr, *position = nullptr, *rng_state = nullptr;
};

absl::Status Setup(Job* job) {
  Flags& f = job->flags;
  const int rank = job->comm->rank(), size = job->comm->size();
  std::vector<MeshDimension> dims;
  std::string mesh_text = f.mesh.empty() ? absl::StrCat("data=", size, ",model=1")
                                         : f.mesh;
  for (absl::string_view tok : absl::StrSplit(mesh_text, ',')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(tok, '=');
    int64_t n = 0;
    if (!absl::SimpleAtoi(kv.second, &n)) {
      return absl::InvalidArgumentError(absl::StrCat("bad --mesh '", mesh_text, "'"));
    }
    dims.push_back({kv.first, n});
  }
  MESHCKPT_ASSIGN_OR_RETURN(job->mesh, Mesh::Create(dims, rank, size));
  if (job->mesh.num_devices() != size || !job->mesh.DimIndex("data") ||
      !job->mesh.DimIndex("model")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--mesh must have dimensions data and model with one device per rank (", size,
        " ranks), got ", mesh_text));
  }
  const std::vector<int64_t> c = job->mesh.DeviceCoords(rank);
  const int d = *job->mesh.DimIndex("data"), m = *job->mesh.DimIndex("model");
  job->data_index = static_cast<int>(c[d]);
  job->data_size = static_cast<int>(dims[d].size);
  if (f.batch % job->data_size != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--batch ", f.batch, " must divide by the data dimension"));
  }
  MPI_Comm_split(MPI_COMM_WORLD, static_cast<int>(c[d]), rank, &job->model_comm);
  MPI_Comm_split(MPI_COMM_WORLD, static_cast<int>(c[m]), rank, &job->data_comm);

  job->model = job->root.AddModule("model").value();
  Module* opt = job->root.AddModule("optimizer").value();
  job->adam_m = opt->AddModule("m").value();
  job->adam_v = opt->AddModule("v").value();
  const Mesh& mesh = job->mesh;
  struct Spec {
    const char* name;
    std::vector<int64_t> shape;
    std::vector<std::string> specs;
  };
  const std::vector<Spec> specs = {
      {"W1", {kIn, f.hidden}, {"unsharded", "model"}},
      {"b1", {f.hidden}, {"model"}},
      {"W2", {f.hidden, kOut}, {"model", "unsharded"}},
      {"b2", {kOut}, {"unsharded"}},
  };
  for (const Spec& s : specs) {
    MESHCKPT_ASSIGN_OR_RETURN(Layout layout, Layout::Create(s.specs, mesh));
    Param p;
    p.name = s.name;
    MESHCKPT_ASSIGN_OR_RETURN(
        p.w, job->model->AddVariable(s.name, DType::kFloat64, s.shape, layout));
    MESHCKPT_ASSIGN_OR_RETURN(
        p.m, job->adam_m->AddVariable(s.name, DType::kFloat64, s.shape, layout));
    MESHCKPT_ASSIGN_OR_RETURN(
        p.v, job->adam_v->AddVariable(s.name, DType::kFloat64, s.shape, layout));
    p.grad.resize(p.w->DeviceBox(rank).num_elements());
    job->params.push_back(std::move(p));
  }
  MESHCKPT_ASSIGN_OR_RETURN(job->step,
                            job->root.AddValue("step", TrackedValue::Create(int64_t{0})));
  MESHCKPT_ASSIGN_OR_RETURN(
      job->position,
      job->root.AddValue("data_position", TrackedValue::Create(int64_t{0})));
  std::ostringstream rng;
  rng << std::mt19937_64(f.seed);
  MESHCKPT_ASSIGN_OR_RETURN(
      job->rng_state, job->root.AddValue("noise_rng", TrackedValue::Create(rng.str())));
  return absl::OkStatus();
}

// Fresh parameters: a function of (seed, parameter, global index) only.
void Initialize(Job* job) {
  for (size_t p = 0; p < job->params.size(); ++p) {
    DVariable* w = job->params[p].w;
    const double scale = w->shape().size() == 2 ? 1.0 / std::sqrt(w->shape()[0]) : 0.0;
    for (const DVariable::Shard<double>& s : w->Shards<double>()) {
      const Box& box = s.box;
      const int64_t cols = box.rank() == 2 ? box.shape()[1] : 1;
      for (int64_t i = 0; i < box.num_elements(); ++i) {
        int64_t g = box.origin()[0] + i / cols;
        if (box.rank() == 2) g = g * w->shape()[1] + box.origin()[1] + i % cols;
        s.data[i] = scale * Normal(job->flags.seed, 100 + p, g);
      }
    }
  }
}

// One step of forward, backward and Adam. Returns the global mean loss.
double Step(Job* job) {
  const Flags& f = job->flags;
  const int rank = job->comm->rank();
  const int64_t local_batch = f.batch / job->data_size;
  const int64_t first = job->position->int64() + job->data_index * local_batch;
  const int64_t h = job->params[0].w->DeviceBox(rank).shape()[1];  // Local hidden units.
  absl::Span<double> W1 = job->params[0].w->shard<double>(rank),
                     b1 = job->params[1].w->shard<double>(rank),
                     W2 = job->params[2].w->shard<double>(rank),
                     b2 = job->params[3].w->shard<double>(rank);

  // Noise for the whole global batch, drawn identically on every rank.
  std::mt19937_64 rng;
  std::istringstream(job->rng_state->bytes()) >> rng;
  std::vector<double> noise(f.batch * kOut);
  for (double& n : noise) n = 0.05 * DrawNormal(rng);
  std::ostringstream rng_out;
  rng_out << rng;
  (void)job->rng_state->set(rng_out.str());

  std::vector<double> x(local_batch * kIn), y(local_batch * kOut), hid(local_batch * h),
      out(local_batch * kOut, 0.0);
  for (int64_t s = 0; s < local_batch; ++s) {
    Sample(f.seed, first + s, &x[s * kIn], &y[s * kOut]);
    for (int64_t o = 0; o < kOut; ++o)
      y[s * kOut + o] += noise[(job->data_index * local_batch + s) * kOut + o];
    for (int64_t j = 0; j < h; ++j) {
      double z = b1[j];
      for (int64_t k = 0; k < kIn; ++k) z += x[s * kIn + k] * W1[k * h + j];
      hid[s * h + j] = std::tanh(z);
      for (int64_t o = 0; o < kOut; ++o)
        out[s * kOut + o] += hid[s * h + j] * W2[j * kOut + o];
    }
  }
  MPI_Allreduce(MPI_IN_PLACE, out.data(), static_cast<int>(out.size()), MPI_DOUBLE,
                MPI_SUM, job->model_comm);
  double sse = 0;
  std::vector<double> dout(out.size());
  for (int64_t s = 0; s < local_batch; ++s) {
    for (int64_t o = 0; o < kOut; ++o) {
      const double err = out[s * kOut + o] + b2[o] - y[s * kOut + o];
      sse += err * err;
      dout[s * kOut + o] = 2 * err / (f.batch * kOut);
    }
  }
  MPI_Allreduce(MPI_IN_PLACE, &sse, 1, MPI_DOUBLE, MPI_SUM, job->data_comm);

  for (Param& p : job->params) std::fill(p.grad.begin(), p.grad.end(), 0.0);
  std::vector<double>&gW1 = job->params[0].grad, &gb1 = job->params[1].grad,
  &gW2 = job->params[2].grad, &gb2 = job->params[3].grad;
  for (int64_t s = 0; s < local_batch; ++s) {
    for (int64_t o = 0; o < kOut; ++o) gb2[o] += dout[s * kOut + o];
    for (int64_t j = 0; j < h; ++j) {
      double dh = 0;
      for (int64_t o = 0; o < kOut; ++o) {
        gW2[j * kOut + o] += hid[s * h + j] * dout[s * kOut + o];
        dh += dout[s * kOut + o] * W2[j * kOut + o];
      }
      dh *= 1 - hid[s * h + j] * hid[s * h + j];
      gb1[j] += dh;
      for (int64_t k = 0; k < kIn; ++k) gW1[k * h + j] += x[s * kIn + k] * dh;
    }
  }
  const int64_t t = job->step->int64() + 1;
  for (Param& p : job->params) {
    MPI_Allreduce(MPI_IN_PLACE, p.grad.data(), static_cast<int>(p.grad.size()),
                  MPI_DOUBLE, MPI_SUM, job->data_comm);
    // An in-place update: Shards() visits each buffer once (here the rank's
    // one device's; with several devices per rank, shard(d) per device would
    // apply it once per device sharing a buffer). m and v share w's layout,
    // so their shards come in the same order.
    std::vector<DVariable::Shard<double>> ws = p.w->Shards<double>(),
                                          ms = p.m->Shards<double>(),
                                          vs = p.v->Shards<double>();
    for (size_t s = 0; s < ws.size(); ++s) {
      absl::Span<double> w = ws[s].data, m = ms[s].data, v = vs[s].data;
      for (size_t i = 0; i < w.size(); ++i) {
        m[i] = 0.9 * m[i] + 0.1 * p.grad[i];
        v[i] = 0.999 * v[i] + 0.001 * p.grad[i] * p.grad[i];
        const double mh = m[i] / (1 - std::pow(0.9, t)),
                     vh = v[i] / (1 - std::pow(0.999, t));
        w[i] -= f.lr * mh / (std::sqrt(vh) + 1e-8);
      }
    }
  }
  (void)job->step->set(t);
  (void)job->position->set(job->position->int64() + f.batch);
  return sse / (f.batch * kOut);
}

int Run(int argc, char** argv) {
  Job job;
  if (!ParseFlags(argc, argv, &job.flags)) return 2;
  const Flags& f = job.flags;
  job.comm = MpiCommunicator::World().value();
  const int rank = job.comm->rank();
  auto fail = [&](const absl::Status& s) {
    if (rank == 0) std::fprintf(stderr, "train: %s\n", std::string(s.message()).c_str());
    return 1;
  };
  if (absl::Status s = job.comm->Agree(Setup(&job)); !s.ok()) return fail(s);

  absl::StatusOr<std::unique_ptr<DTensorCheckpoint>> ckpt =
      DTensorCheckpoint::Create(job.comm.get(), job.mesh, {}, &job.root);
  if (!ckpt.ok()) return fail(ckpt.status());
  CheckpointManagerOptions mo;
  mo.max_to_keep = static_cast<int>(f.max_to_keep);
  mo.keep_checkpoint_every_n_hours = f.keep_every_hours;
  mo.step_counter = job.step;
  if (f.async) mo.async_save = AsyncSaveOptions();
  absl::StatusOr<std::unique_ptr<CheckpointManager>> manager =
      CheckpointManager::Create(ckpt->get(), f.dir, mo);
  if (!manager.ok()) return fail(manager.status());
  absl::StatusOr<std::unique_ptr<PreemptionWatcher>> watcher =
      PreemptionWatcher::Create({f.preempt_signal});
  if (!watcher.ok()) return fail(watcher.status());

  Initialize(&job);
  const auto t0 = std::chrono::steady_clock::now();
  // Everything matched: a checkpoint of another model or a model that
  // changed shape is an error, not a silent fresh start.
  absl::StatusOr<RestoreResult> restored =
      (*manager)->RestoreOrInitialize(RestoreMatch::kAllMatched);
  if (!restored.ok()) return fail(restored.status());
  const std::optional<std::string>& from = restored->restored_from;
  const double restore_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (rank == 0) {
    if (from.has_value()) {
      std::printf("resumed from %s at step %lld on %d ranks, mesh %s (restore %.3f s)\n",
                  from->c_str(), static_cast<long long>(job.step->int64()),
                  job.comm->size(), job.mesh.ToString().c_str(), restore_s);
    } else {
      std::printf("fresh start on %d ranks, mesh %s\n", job.comm->size(),
                  job.mesh.ToString().c_str());
    }
    std::fflush(stdout);
  }
  FILE* log = (rank == 0 && !f.log.empty()) ? std::fopen(f.log.c_str(), "a") : nullptr;
  while (job.step->int64() < f.steps) {
    const int64_t step = job.step->int64() + 1;
    if (step == f.crash_at_step && rank == 0) ::kill(::getpid(), SIGKILL);
    if (step == f.preempt_at_step && rank == 0) std::raise(f.preempt_signal);
    const double loss = Step(&job);
    if (f.step_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(f.step_ms));
    if (log) {
      std::fprintf(log, "%lld,%.17g\n", static_cast<long long>(step), loss);
      std::fflush(log);
    }
    if (rank == 0 && step % 10 == 0) {
      std::printf("step %lld loss %.6f\n", static_cast<long long>(step), loss);
      std::fflush(stdout);
    }
    // The step boundary: every rank learns whether any rank was told to stop.
    const bool preempted = (*watcher)->Reached(*job.comm);
    if (step % f.save_every == 0 || step == f.steps || preempted) {
      const auto s0 = std::chrono::steady_clock::now();
      absl::StatusOr<std::optional<std::string>> saved = (*manager)->Save();
      if (!saved.ok()) return fail(saved.status());
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
      if (rank == 0 && saved->has_value() && f.async) {
        std::printf("saving %s in the background: training stalled %.3f s\n",
                    (*saved)->c_str(), secs);
        std::fflush(stdout);
      } else if (rank == 0 && saved->has_value()) {
        std::error_code ignored;  // A size we cannot read counts as 0.
        const auto size = [&](const std::string& path) -> int64_t {
          const auto n = std::filesystem::file_size(path, ignored);
          return ignored ? 0 : static_cast<int64_t>(n);
        };
        const int64_t bytes = size(DataFilePath(**saved)) + size(IndexFilePath(**saved));
        std::printf("saved %s: %lld bytes in %.3f s (%.3f GB/s)\n", (*saved)->c_str(),
                    static_cast<long long>(bytes), secs, bytes / secs / 1e9);
        std::fflush(stdout);
      }
    }
    if (preempted) {
      // Durable before saying so, async or not.
      if (absl::Status s = (*manager)->WaitUntilFinished(); !s.ok()) return fail(s);
      if (rank == 0) {
        std::printf("preempted at step %lld: saved, exiting\n",
                    static_cast<long long>(step));
        std::fflush(stdout);
      }
      break;
    }
  }
  if (log) std::fclose(log);
  if (absl::Status s = (*manager)->WaitUntilFinished(); !s.ok()) return fail(s);
  if (f.async && rank == 0) {
    std::printf("last async save durable %.3f s after its call\n",
                (*ckpt)->last_async_stats().durable_seconds);
  }
  MPI_Comm_free(&job.model_comm);
  MPI_Comm_free(&job.data_comm);
  return 0;
}

}  // namespace
}  // namespace meshckpt

int main(int argc, char** argv) {
  meshckpt::MpiEnvironment env(&argc, &argv);
  return meshckpt::Run(argc, argv);
}
