// What the full-disk tests share: a small filesystem (rank 0 mounts a
// size-limited tmpfs, root only, otherwise the tests skip saying why, and
// fills it to leave an exact number of bytes free) and a model whose values
// are a function of the step, so a restore can be checked bit for bit.
#ifndef MESHCKPT_MPI_TESTS_FULL_DISK_UTIL_H_
#define MESHCKPT_MPI_TESTS_FULL_DISK_UTIL_H_

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/object/tracked_value.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/fs/fs.h"
#include "mpi_tests/test_tensors.h"

namespace meshckpt::test {

// "<--dir or default_dir>/np<ranks>/<name>", absolute.
inline std::string WorkPath(const std::string& default_dir, int ranks,
                            const std::string& name) {
  std::string d = default_dir;
  for (const std::string& arg : ::testing::internal::GetArgvs()) {
    absl::string_view a = arg;
    if (absl::ConsumePrefix(&a, "--dir=")) d = std::string(a);
  }
  return (std::filesystem::absolute(d) / absl::StrCat("np", ranks) / name).string();
}

// Rank 0 mounts a tmpfs of `size` (mount(8) syntax, "8m") at `mnt`. Returns
// "" on success, else why not; the same on every rank.
inline std::string MountTmpfs(Communicator& world, const std::string& mnt,
                              const std::string& size) {
  std::string why;
  if (world.rank() == 0) {
    std::error_code ec;
    ::umount2(mnt.c_str(), MNT_DETACH);  // A leftover of an aborted run.
    std::filesystem::create_directories(mnt, ec);
    if (::geteuid() != 0) {
      why = absl::StrCat("not running as root (uid ", ::geteuid(),
                         "): cannot mount a size-limited tmpfs");
    } else if (::mount("tmpfs", mnt.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                       absl::StrCat("size=", size, ",mode=0755").c_str()) != 0) {
      why = absl::StrCat("mount -t tmpfs -o size=", size, " on '", mnt,
                         "' failed: ", std::strerror(errno),
                         " (a container without CAP_SYS_ADMIN?)");
    }
  }
  world.Broadcast(&why, 0);
  return why;
}

inline void UnmountTmpfs(Communicator& world, const std::string& mnt) {
  world.Barrier();
  if (world.rank() == 0) ::umount2(mnt.c_str(), MNT_DETACH);
  world.Barrier();
}

// Bytes an unprivileged writer may still use on the filesystem of `path`.
inline int64_t FreeBytes(const std::string& path) {
  struct statvfs s;
  if (::statvfs(path.c_str(), &s) != 0) return -1;
  return static_cast<int64_t>(s.f_bavail) * static_cast<int64_t>(s.f_frsize);
}

// Rank 0 only: grows or shrinks `<mnt>/filler` so that `bytes` (rounded up
// to whole pages) stay free. Returns the bytes free afterwards.
inline int64_t LeaveFree(const std::string& mnt, int64_t bytes) {
  const std::string filler = mnt + "/filler";
  const int fd = ::open(filler.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  const int64_t page = ::sysconf(_SC_PAGESIZE);
  const int64_t have = ::lseek(fd, 0, SEEK_END);
  const int64_t target =
      std::max<int64_t>(0, (have + FreeBytes(mnt) - bytes) / page * page);
  if (target < have) {
    (void)::ftruncate(fd, target);
  } else if (target > have) {
    (void)::fallocate(fd, 0, have, target - have);
  }
  ::close(fd);
  return FreeBytes(mnt);
}

// A [rows, 256] float32 split over both mesh dimensions, a [rows] float64
// held whole, a step, and (with `rng_bytes` > 0) a per-rank string, which
// is written through the string path of a save.
struct DiskModel {
  Module root;
  std::vector<DVariable*> vars;
  TrackedValue* step = nullptr;
  TrackedValue* rng = nullptr;
  std::unique_ptr<DTensorCheckpoint> ckpt;
};

inline std::unique_ptr<DiskModel> BuildDiskModel(Communicator& world, int64_t rows,
                                                 int64_t rng_bytes = 0) {
  auto m = std::make_unique<DiskModel>();
  const Mesh mesh =
      Mesh::Create({{"x", world.size()}, {"y", 2}}, world.rank(), world.size()).value();
  m->vars.push_back(m->root
                        .AddVariable("w", DType::kFloat32, {rows, 256},
                                     Layout::Create({"x", "y"}, mesh).value())
                        .value());
  m->vars.push_back(m->root
                        .AddVariable("b", DType::kFloat64, {rows},
                                     Layout::Create({"unsharded"}, mesh).value())
                        .value());
  m->step = m->root.AddValue("step", TrackedValue::Create(int64_t{0})).value();
  if (rng_bytes > 0) {
    m->rng = m->root
                 .AddValue("rng", TrackedValue::Create(std::string(rng_bytes, 'r'),
                                                       TrackedValue::Scope::kPerRank))
                 .value();
  }
  m->ckpt = DTensorCheckpoint::Create(&world, mesh, {{"m", &m->root}}).value();
  m->ckpt->SetWarningSink([](const std::string&) {});
  return m;
}

inline std::string RngValue(int rank, int64_t step, int64_t bytes) {
  std::string s = absl::StrCat("rank ", rank, " step ", step, " ");
  s.resize(bytes, static_cast<char>('a' + step % 26));
  return s;
}

inline uint64_t DiskHash(const DVariable* v, int64_t step) {
  return KeyHash(absl::StrCat(v->name(), "@", step));
}

inline void SetDiskStep(Communicator& world, DiskModel& m, int64_t step) {
  for (DVariable* v : m.vars) {
    const int64_t es = DTypeSize(v->dtype());
    for (int64_t d : v->layout().mesh().local_device_ids()) {
      char* out = v->mutable_bytes(d).data();
      ForEachInBox(v->DeviceBox(d), v->shape(),
                   [&](int64_t l, const std::vector<int64_t>&, int64_t g) {
                     ExpectedElement(v->dtype(), DiskHash(v, step), g, out + es * l);
                   });
    }
  }
  (void)m.step->set(step);
  if (m.rng != nullptr) {
    (void)m.rng->set(
        RngValue(world.rank(), step, static_cast<int64_t>(m.rng->bytes().size())));
  }
}

// Elements (and the string) that differ from what step `step` holds.
inline int64_t CountWrongAtStep(Communicator& world, const DiskModel& m, int64_t step) {
  int64_t bad = 0;
  for (const DVariable* v : m.vars) {
    const int64_t es = DTypeSize(v->dtype());
    for (int64_t d : v->layout().mesh().local_device_ids()) {
      const char* got = v->bytes(d).data();
      ForEachInBox(v->DeviceBox(d), v->shape(),
                   [&](int64_t l, const std::vector<int64_t>&, int64_t g) {
                     char want[16];  // ExpectedElement writes up to 16 bytes.
                     ExpectedElement(v->dtype(), DiskHash(v, step), g, want);
                     bad += std::memcmp(want, got + es * l, es) != 0;
                   });
    }
  }
  if (m.rng != nullptr) {
    bad += m.rng->bytes() !=
           RngValue(world.rank(), step, static_cast<int64_t>(m.rng->bytes().size()));
  }
  return bad;
}

// Rank 0: partial or temporary files, and data files without an index.
inline std::string Leftovers(const std::string& dir) {
  std::string out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    const std::string p = e.path().string();
    if (absl::StrContains(n, ".partial-") || absl::StrContains(n, ".tmp-") ||
        (absl::EndsWith(n, ".h5") && !FileExists(p.substr(0, p.size() - 3) + ".index"))) {
      absl::StrAppend(&out, n, " ");
    }
  }
  return out;
}

}  // namespace meshckpt::test

#endif  // MESHCKPT_MPI_TESTS_FULL_DISK_UTIL_H_
