// The subcommands of the `meshckpt` tool. Each takes the arguments after its
// name, writes results to stdout and errors to stderr ("meshckpt <cmd>: "),
// and returns the process exit code (cli::ExitCode).
//
// inspect, ls, verify, diff and convert to TensorFlow run in one process
// without MPI; reshard (and convert to meshckpt, which is a reshard)
// initializes MPI itself (MpiEnvironment) and is collective over
// MPI_COMM_WORLD. Not thread-safe (HDF5 and MPI are process-global).
#ifndef MESHCKPT_TOOLS_COMMANDS_H_
#define MESHCKPT_TOOLS_COMMANDS_H_

#include <string>
#include <vector>

namespace meshckpt {

int RunInspect(const std::vector<std::string>& args);
int RunLs(const std::vector<std::string>& args);
int RunVerify(const std::vector<std::string>& args);
int RunReshard(const std::vector<std::string>& args);
int RunDiff(const std::vector<std::string>& args);
// meshckpt -> TensorFlow in one process; TensorFlow -> meshckpt is RunReshard.
int RunConvert(const std::vector<std::string>& args);

}  // namespace meshckpt

#endif  // MESHCKPT_TOOLS_COMMANDS_H_
