// Peak resident memory for tests that check memory follows the work, not
// the device count. Memory is deterministic enough to assert; time is not.
//
//   PeakRssGrowth growth;           // resets the peak where Linux allows
//   DoWork();
//   EXPECT_LT(growth.MiB(), 32.0);
#ifndef MESHCKPT_TESTS_PEAK_RSS_H_
#define MESHCKPT_TESTS_PEAK_RSS_H_

#include <sys/resource.h>

#include <cstdint>
#include <fstream>
#include <string>

namespace meshckpt {

// KiB, per getrusage(2).
inline int64_t MaxRssKiB(int who = RUSAGE_SELF) {
  rusage u{};
  getrusage(who, &u);
  return u.ru_maxrss;
}

// VmRSS of this process in KiB, or -1.
inline int64_t CurrentRssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

// Growth of this process's peak RSS since construction. Writing "5" to
// /proc/self/clear_refs (Linux >= 4.0) lowers the peak to the current RSS,
// so earlier tests in the same process do not hide growth; without it the
// old peak is the baseline, which can only under-report.
class PeakRssGrowth {
 public:
  PeakRssGrowth() {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
    clear.close();
    const int64_t current = CurrentRssKiB();
    const int64_t peak = MaxRssKiB();
    base_kib_ = clear.good() && current > 0 ? current : peak;
  }
  double MiB() const { return (MaxRssKiB() - base_kib_) / 1024.0; }

 private:
  int64_t base_kib_ = 0;
};

}  // namespace meshckpt

#endif  // MESHCKPT_TESTS_PEAK_RSS_H_
