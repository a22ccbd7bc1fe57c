// meshckpt: mesh-aware distributed checkpointing. One include for the whole
// public API; each header below also stands alone.
//
//   #include "meshckpt/meshckpt.h"
//
// Object API (after tf.train.Checkpoint / DTensorCheckpoint), the manager,
// the name-based Saver, the one-process reader, the engine on raw buffers,
// and the values they are described with (Mesh, Layout, DType, IoOptions).
#ifndef MESHCKPT_MESHCKPT_H_
#define MESHCKPT_MESHCKPT_H_

#include "meshckpt/base/dtype.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/base/version.h"
#include "meshckpt/checkpoint/engine/async_save.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/manager/preemption.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/object/load_status.h"
#include "meshckpt/checkpoint/object/trackable.h"
#include "meshckpt/checkpoint/object/tracked_value.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/checkpoint/saver/saver.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/comm/mpi_communicator.h"
#include "meshckpt/io/transfer/io_options.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/layout/shard_map.h"
#include "meshckpt/mesh/mesh.h"

#endif  // MESHCKPT_MESHCKPT_H_
