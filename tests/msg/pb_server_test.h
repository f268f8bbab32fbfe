// A fixture for tests that serve a generated weft::msg_pb service on loopback: every worker
// gets, in Options::setup, its own Workspace and its own service object Svc registered on
// it, as an application would; the test keeps them for reading after the workers stop.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <weft/msg/pb_codec.h>
#include <weft/msg/server.h>

#include "msg_server_test.h"

namespace weft::msg::pb {

template <class Svc>
class PbServerTest : public test::MsgServerTest {
 protected:
  // Starts the server with options o, its setup replaced by the per-worker one above.
  void start(Options o, WorkspaceConfig wc = {}) {
    o.setup = [this, wc](Registry& reg, platform::Loop&) {
      auto ws = Workspace::create(wc);
      ASSERT_TRUE(ws.ok());
      auto svc = std::make_unique<Svc>(*ws.value());
      ASSERT_TRUE(register_service(reg, *svc));
      std::lock_guard<std::mutex> lock(mu_);
      workspaces_.push_back(std::move(ws).value());
      services_.push_back(std::move(svc));
    };
    MsgServerTest::start(std::move(o));
  }

  // Stops the workers (joined), so the first worker's statistics can be read here.
  const WorkspaceStats& stopped_stats() {
    stop();
    return workspaces_.at(0)->stats();
  }

  // Per worker; destroyed after TearDown has stopped the workers.
  std::mutex mu_;
  std::vector<std::unique_ptr<Workspace>> workspaces_;
  std::vector<std::unique_ptr<Svc>> services_;
};

}  // namespace weft::msg::pb
