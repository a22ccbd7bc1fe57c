// Helpers shared by the Mesh tests (mesh_test.cc, mesh_string_test.cc,
// mesh_range_test.cc).
#ifndef MESHCKPT_TESTS_MESH_MESH_TEST_UTIL_H_
#define MESHCKPT_TESTS_MESH_MESH_TEST_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt::test {

inline std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// FromString(text) fails with InvalidArgument whose message contains `token`.
inline void ExpectInvalid(const std::string& text, const std::string& token) {
  absl::StatusOr<Mesh> mesh = Mesh::FromString(text);
  ASSERT_FALSE(mesh.ok()) << "'" << text << "' parsed as " << mesh->ToString();
  EXPECT_EQ(mesh.status().code(), absl::StatusCode::kInvalidArgument)
      << text << ": " << mesh.status();
  EXPECT_THAT(Msg(mesh.status()), ::testing::HasSubstr(token)) << "input: " << text;
}

}  // namespace meshckpt::test

#endif  // MESHCKPT_TESTS_MESH_MESH_TEST_UTIL_H_
