// DirectFile against HDF5: storage located by HDF5, elements moved with
// pread/pwrite, and HDF5's own H5Dread must agree with what was written.
// A filtered dataset is made with the HDF5 C API, as another writer would.
#include "meshckpt/io/transfer/direct_file.h"

#include <hdf5.h>

#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/io/transfer/data_file.h"
#include "meshckpt/io/transfer/hdf5_writer.h"

namespace meshckpt {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/meshckpt_direct_" + name + "_" + RandomId() +
         ".h5";
}

// Element (r, c) of a [rows, cols] int32 tensor.
int32_t Value(int64_t r, int64_t c) { return static_cast<int32_t>(r * 1000 + c); }

std::vector<int32_t> BoxValues(const Box& b) {
  std::vector<int32_t> v;
  for (int64_t r = 0; r < b.shape()[0]; ++r) {
    for (int64_t c = 0; c < b.shape()[1]; ++c) {
      v.push_back(Value(b.origin()[0] + r, b.origin()[1] + c));
    }
  }
  return v;
}

class DirectFileTest : public ::testing::Test {
 protected:
  void TearDown() override { (void)RemoveFileIfExists(path_); }

  // Creates a [rows, cols] int32 dataset "t" (chunked when chunk is given)
  // and returns its storage blocks; the file stays closed afterwards.
  std::vector<StorageBlock> Create(int64_t rows, int64_t cols,
                                   std::vector<int64_t> chunk) {
    path_ = TempPath(::testing::UnitTest::GetInstance()->current_test_info()->name());
    shape_ = {rows, cols};
    auto comm = SerialCommunicator();
    auto w = Hdf5FileWriter::Create(*comm, path_, {});
    EXPECT_TRUE(w.ok()) << w.status();
    auto d =
        (*w)->CreateDataset({"g/t", DType::kInt32, shape_, chunk, {{"dtype", "int32"}}});
    EXPECT_TRUE(d.ok()) << d.status();
    auto blocks = (*w)->Locate(*d);
    EXPECT_TRUE(blocks.ok()) << blocks.status();
    EXPECT_TRUE((*w)->Close().ok());
    return *blocks;
  }

  // Writes `box` from the blocks that hold it.
  void WriteBox(DirectFile& f, const std::vector<StorageBlock>& blocks, const Box& box) {
    for (const StorageBlock& b : blocks) {
      const Box part = Intersect(box, b.box());
      if (part.empty()) continue;
      ASSERT_TRUE(f.Write(b, Intersect(b.box(), Box::FromShape(shape_)), part, 4,
                          BoxValues(part).data())
                      .ok());
    }
  }

  // The whole dataset as HDF5 reads it.
  std::vector<int32_t> ReadWithHdf5() {
    auto comm = SerialCommunicator();
    auto r = DataFileReader::Open(*comm, path_, {});
    EXPECT_TRUE(r.ok()) << r.status();
    auto d = (*r)->OpenDataset("g/t", DType::kInt32, shape_);
    EXPECT_TRUE(d.ok()) << d.status();
    std::vector<int32_t> out(shape_[0] * shape_[1]);
    EXPECT_TRUE((*r)->Read(*d, Box::FromShape(shape_), out.data()).ok());
    return out;
  }

  // `box` through DirectFile::Read, block by block, into a buffer of the box.
  std::vector<int32_t> ReadDirect(const std::vector<StorageBlock>& blocks, const Box& box,
                                  int64_t* calls = nullptr) {
    auto f = DirectFile::Open(path_, DirectFile::kRead);
    EXPECT_TRUE(f.ok()) << f.status();
    std::vector<int32_t> out(box.num_elements(), -1);
    for (const StorageBlock& b : blocks) {
      const Box part = Intersect(box, b.box());
      if (part.empty()) continue;
      EXPECT_TRUE(
          (*f)->Read(b, part, 4, box.shape(), RelativeTo(part, box), out.data()).ok());
    }
    if (calls != nullptr) *calls = (*f)->io_calls();
    return out;
  }

  std::string path_;
  std::vector<int64_t> shape_;
};

TEST_F(DirectFileTest, ContiguousRowsAreOneWriteEach) {
  std::vector<StorageBlock> blocks = Create(9, 5, {});
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].origin, (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(blocks[0].shape, (std::vector<int64_t>{9, 5}));
  auto f = DirectFile::Open(path_, DirectFile::kWrite, /*start_writeback=*/true);
  ASSERT_TRUE(f.ok()) << f.status();
  WriteBox(**f, blocks, *Box::Create({0, 0}, {4, 5}));
  WriteBox(**f, blocks, *Box::Create({4, 0}, {5, 5}));
  EXPECT_EQ((*f)->io_calls(), 2);
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_EQ(ReadWithHdf5(), BoxValues(Box::FromShape({9, 5})));
}

TEST_F(DirectFileTest, ContiguousColumnsWriteRowByRow) {
  std::vector<StorageBlock> blocks = Create(6, 8, {});
  auto f = DirectFile::Open(path_, DirectFile::kWrite);
  ASSERT_TRUE(f.ok());
  WriteBox(**f, blocks, *Box::Create({0, 0}, {6, 3}));
  WriteBox(**f, blocks, *Box::Create({0, 3}, {6, 5}));
  // Gaps belong to the other box, so nothing may be packed: a write per row.
  EXPECT_EQ((*f)->io_calls(), 12);
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_EQ(ReadWithHdf5(), BoxValues(Box::FromShape({6, 8})));
}

TEST_F(DirectFileTest, ChunkedEdgeChunksArePacked) {
  // [7, 10] in [3, 4] chunks: edge chunks reach past both dimensions.
  std::vector<StorageBlock> blocks = Create(7, 10, {3, 4});
  ASSERT_EQ(blocks.size(), 9u);
  EXPECT_EQ(blocks[8].origin, (std::vector<int64_t>{6, 8}));
  EXPECT_EQ(blocks[8].shape, (std::vector<int64_t>{3, 4}));
  auto f = DirectFile::Open(path_, DirectFile::kWrite);
  ASSERT_TRUE(f.ok());
  for (const StorageBlock& b : blocks) {
    WriteBox(**f, {b}, Intersect(b.box(), Box::FromShape(shape_)));
  }
  EXPECT_EQ((*f)->io_calls(), 9);  // One per chunk, padded or not.
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_EQ(ReadWithHdf5(), BoxValues(Box::FromShape({7, 10})));
  // Reads across chunk boundaries, including padded edges.
  for (const Box& b : {*Box::Create({1, 2}, {5, 7}), *Box::Create({6, 9}, {1, 1}),
                       Box::FromShape({7, 10})}) {
    EXPECT_EQ(ReadDirect(blocks, b), BoxValues(b)) << b;
  }
}

TEST_F(DirectFileTest, ChunkedSlabsOfAnEdgeChunkArePacked) {
  std::vector<StorageBlock> blocks = Create(8, 10, {8, 4});
  auto f = DirectFile::Open(path_, DirectFile::kWrite);
  ASSERT_TRUE(f.ok());
  // The edge chunk [0,8) x [8,12) holds two valid columns; write it in row
  // slabs as a save does (tile rows), each one packed write.
  WriteBox(**f, blocks, *Box::Create({0, 0}, {8, 8}));
  const int64_t before = (*f)->io_calls();
  WriteBox(**f, blocks, *Box::Create({0, 8}, {3, 2}));
  WriteBox(**f, blocks, *Box::Create({3, 8}, {5, 2}));
  EXPECT_EQ((*f)->io_calls() - before, 2);
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_EQ(ReadWithHdf5(), BoxValues(Box::FromShape({8, 10})));
}

TEST_F(DirectFileTest, NarrowColumnReadsAreSieved) {
  std::vector<StorageBlock> blocks = Create(256, 64, {});
  auto f = DirectFile::Open(path_, DirectFile::kWrite);
  ASSERT_TRUE(f.ok());
  WriteBox(**f, blocks, Box::FromShape({256, 64}));
  ASSERT_TRUE((*f)->Close().ok());
  int64_t calls = 0;
  const Box strip = *Box::Create({3, 10}, {250, 3});
  EXPECT_EQ(ReadDirect(blocks, strip, &calls), BoxValues(strip));
  EXPECT_EQ(calls, 1);  // 250 runs of 12 bytes in one 64 KiB span.
  // Wide runs are read straight into place.
  const Box wide = *Box::Create({0, 0}, {256, 64});
  EXPECT_EQ(ReadDirect(blocks, wide, &calls), BoxValues(wide));
  EXPECT_EQ(calls, 1);
}

TEST_F(DirectFileTest, ManyShortRunsTakeSeveralScatterReads) {
  std::vector<StorageBlock> blocks = Create(3000, 40, {});
  auto f = DirectFile::Open(path_, DirectFile::kWrite);
  ASSERT_TRUE(f.ok());
  WriteBox(**f, blocks, Box::FromShape({3000, 40}));
  ASSERT_TRUE((*f)->Close().ok());
  int64_t calls = 0;
  const Box strip = *Box::Create({1, 30}, {2999, 4});  // 2999 runs of 16 bytes.
  EXPECT_EQ(ReadDirect(blocks, strip, &calls), BoxValues(strip));
  EXPECT_GE(calls, 6);  // At most 511 runs per preadv.
  EXPECT_LE(calls, 10);
  // Runs far apart are read one by one rather than reading the gaps.
  const Box sparse = *Box::Create({0, 0}, {3000, 1});
  (void)RemoveFileIfExists(path_);
  std::vector<StorageBlock> wide = Create(3000, 1000, {});
  auto g = DirectFile::Open(path_, DirectFile::kWrite);
  ASSERT_TRUE(g.ok());
  WriteBox(**g, wide, Box::FromShape({3000, 1000}));
  ASSERT_TRUE((*g)->Close().ok());
  EXPECT_EQ(ReadDirect(wide, sparse, &calls), BoxValues(sparse));
  EXPECT_EQ(calls, 3000);
}

TEST_F(DirectFileTest, ReadIntoRegionOfLargerBuffer) {
  std::vector<StorageBlock> blocks = Create(5, 6, {});
  auto f = DirectFile::Open(path_, DirectFile::kWrite);
  ASSERT_TRUE(f.ok());
  WriteBox(**f, blocks, Box::FromShape({5, 6}));
  ASSERT_TRUE((*f)->Close().ok());
  auto r = DirectFile::Open(path_, DirectFile::kRead);
  ASSERT_TRUE(r.ok());
  std::vector<int32_t> dst(4 * 4, -1);
  ASSERT_TRUE((*r)->Read(blocks[0], *Box::Create({2, 1}, {2, 3}), 4, {4, 4},
                         *Box::Create({1, 1}, {2, 3}), dst.data())
                  .ok());
  EXPECT_THAT(dst, ::testing::ElementsAre(-1, -1, -1, -1,                             //
                                          -1, Value(2, 1), Value(2, 2), Value(2, 3),  //
                                          -1, Value(3, 1), Value(3, 2), Value(3, 3),  //
                                          -1, -1, -1, -1));
}

TEST_F(DirectFileTest, ReadPastEndIsDataLoss) {
  std::vector<StorageBlock> blocks = Create(4, 4, {});
  StorageBlock far = blocks[0];
  far.offset += int64_t{1} << 30;
  auto r = DirectFile::Open(path_, DirectFile::kRead);
  ASSERT_TRUE(r.ok());
  std::vector<int32_t> out(16);
  absl::Status s = (*r)->Read(far, Box::FromShape({4, 4}), 4, {4, 4},
                              Box::FromShape({4, 4}), out.data());
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr(path_));
}

TEST_F(DirectFileTest, MissingFileIsNotFound) {
  EXPECT_EQ(DirectFile::Open("/nonexistent/x.h5", DirectFile::kRead).status().code(),
            absl::StatusCode::kNotFound);
}

// A file from another writer whose dataset has a filter (HDF5's Fletcher32
// checksum, which our writer never sets): its chunks are not the raw
// elements, so they must not be moved directly; HDF5 still reads them.
TEST_F(DirectFileTest, FilteredDatasetsCannotBeLocated) {
  path_ = TempPath("filtered");
  std::vector<int32_t> values(64);
  std::iota(values.begin(), values.end(), 0);
  {
    const hid_t file = H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    const hsize_t dims[2] = {8, 8}, chunk[2] = {4, 4};
    const hid_t space = H5Screate_simple(2, dims, nullptr);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    ASSERT_GE(H5Pset_chunk(dcpl, 2, chunk), 0);
    ASSERT_GE(H5Pset_fletcher32(dcpl), 0);
    const hid_t d =
        H5Dcreate2(file, "t", H5T_STD_I32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ASSERT_GE(d, 0);
    ASSERT_GE(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
              0);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
    ASSERT_GE(H5Fclose(file), 0);
  }
  auto comm = SerialCommunicator();
  auto r = DataFileReader::Open(*comm, path_, {});
  ASSERT_TRUE(r.ok()) << r.status();
  auto d = (*r)->OpenDataset("t", DType::kInt32, {8, 8});
  ASSERT_TRUE(d.ok()) << d.status();
  auto blocks = (*r)->Locate(*d);
  ASSERT_TRUE(blocks.ok()) << blocks.status();
  EXPECT_TRUE(blocks->empty());
  std::vector<int32_t> back(values.size());
  ASSERT_TRUE((*r)->Read(*d, Box::FromShape({8, 8}), back.data()).ok());
  EXPECT_EQ(back, values);
  ASSERT_TRUE((*r)->Close().ok());
}

}  // namespace
}  // namespace meshckpt
