// What a job sees of the hosts it runs on, for the multinode harness
// (scripts/multinode/, docs/multinode.md). Every rank reports its host; the
// probe fails (exit 1) unless
//   - MPI_Get_processor_name is the rank's host name (gethostname), and the
//     job spans exactly --expect-hosts=H distinct hosts;
//   - OpenMPI's own idea of a node agrees: the ranks of MPI_COMM_TYPE_SHARED
//     (and OMPI_COMM_WORLD_LOCAL_SIZE) are exactly the ranks with this host
//     name;
//   - a file rank 0 writes under /tmp is seen by the ranks on rank 0's host
//     and by no other rank (node-local /tmp), while a file it writes under
//     --shared-dir=DIR is seen by every rank.
// Usage: multinode_probe --expect-hosts=H --shared-dir=DIR
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

namespace {

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

std::vector<std::string> AllGather(const std::string& s, int size) {
  std::vector<char> mine(MPI_MAX_PROCESSOR_NAME, '\0');
  std::strncpy(mine.data(), s.c_str(), mine.size() - 1);
  std::vector<char> all(mine.size() * size);
  MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_CHAR, all.data(),
                static_cast<int>(mine.size()), MPI_CHAR, MPI_COMM_WORLD);
  std::vector<std::string> out;
  for (int r = 0; r < size; ++r) out.emplace_back(all.data() + r * mine.size());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int expect_hosts = 0;
  std::string shared_dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--expect-hosts=", 0) == 0) expect_hosts = std::atoi(a.c_str() + 15);
    if (a.rfind("--shared-dir=", 0) == 0) shared_dir = a.substr(13);
  }
  if (expect_hosts <= 0 || shared_dir.empty()) {
    if (rank == 0)
      std::fprintf(stderr, "usage: multinode_probe --expect-hosts=H --shared-dir=DIR\n");
    MPI_Finalize();
    return 2;
  }
  int failures = 0;
  auto fail = [&](const std::string& what) {
    std::fprintf(stderr, "[rank %d] FAIL: %s\n", rank, what.c_str());
    ++failures;
  };

  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  MPI_Get_processor_name(name, &len);
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  if (std::string(name) != host)
    fail(std::string("processor name ") + name + " is not gethostname " + host);
  const std::vector<std::string> names = AllGather(name, size);
  const std::set<std::string> distinct(names.begin(), names.end());

  int same_host = 0;
  for (const std::string& n : names) same_host += n == name;
  MPI_Comm shared;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &shared);
  int shared_size = 0;
  MPI_Comm_size(shared, &shared_size);
  MPI_Comm_free(&shared);
  const char* local_size_env = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  const int local_size = local_size_env ? std::atoi(local_size_env) : -1;
  std::printf(
      "rank %d of %d on %s: %d rank(s) with this host name, MPI_COMM_TYPE_SHARED size "
      "%d, "
      "OMPI_COMM_WORLD_LOCAL_SIZE %d\n",
      rank, size, name, same_host, shared_size, local_size);
  std::fflush(stdout);
  if (shared_size != same_host)
    fail("MPI_COMM_TYPE_SHARED does not match the host names");
  if (local_size != same_host)
    fail("OMPI_COMM_WORLD_LOCAL_SIZE does not match the host names");
  if (rank == 0 && static_cast<int>(distinct.size()) != expect_hosts) {
    fail("the job spans " + std::to_string(distinct.size()) + " hosts, expected " +
         std::to_string(expect_hosts));
  }

  // A name no earlier job used: rank 0's pid, on every rank.
  int token = static_cast<int>(getpid());
  MPI_Bcast(&token, 1, MPI_INT, 0, MPI_COMM_WORLD);
  const std::string leaf = "meshckpt_multinode_probe_" + std::to_string(token);
  const std::string local_file = "/tmp/" + leaf;
  const std::string shared_file = shared_dir + "/" + leaf;
  if (rank == 0) {
    std::ofstream(local_file) << "written on " << name << "\n";
    std::ofstream(shared_file) << "written on " << name << "\n";
    if (!Exists(local_file) || !Exists(shared_file))
      fail("rank 0 could not write its files");
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const bool on_rank0_host = names[0] == name;
  if (Exists(local_file) && !on_rank0_host) {
    fail(local_file + " written on " + names[0] + " is visible on " + name);
  }
  if (!Exists(local_file) && on_rank0_host)
    fail(local_file + " is missing on rank 0's host");
  if (!Exists(shared_file)) fail(shared_file + " (shared) is missing on " + name);
  std::printf("rank %d on %s: %s %s, %s visible\n", rank, name, local_file.c_str(),
              Exists(local_file) ? "visible" : "not visible", shared_file.c_str());
  std::fflush(stdout);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    std::remove(local_file.c_str());
    std::remove(shared_file.c_str());
  }

  int any = 0;
  MPI_Allreduce(&failures, &any, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) {
    std::printf("%s: %zu hosts, %d ranks\n", any ? "PROBE FAILED" : "probe ok",
                distinct.size(), size);
  }
  MPI_Finalize();
  return any ? 1 : 0;
}
