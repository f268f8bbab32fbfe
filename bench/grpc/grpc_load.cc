// weft-grpc-load: the gRPC C++ counterpart of weft-load --proto msg, for
// bench/run_grpc_compare.sh. Closed loop on the async API: N channels (each its own TCP
// connection: a local subchannel pool and a distinct channel argument per channel), K calls
// of weft.bench.Bench/Unary in flight on each, one thread driving one CompletionQueue.
//
//   weft-grpc-load --port P [--host 127.0.0.1] [--conns 64] [--inflight 16] [--size 64]
//                  [--duration 5] [--warmup 1] [--cpu N] [--max-msgs N]
//                  [--server-pid PID] [--server-core N] [--json]
//
// Payload (Blob.data, size >= 16 bytes): [0,8) the send time (CLOCK_MONOTONIC ns), [8,16) the
// call's number, then a pattern. Every answer must carry the request's bytes exactly and
// status OK; a non-OK status is counted (error_frames) and, like a differing answer, is an
// error (exit 1). RTT comes from the send time in the answer.
//
// Phases, each bounded: connect (every channel READY within 5 s), warm-up, measured window,
// then drain (1 s for the calls in flight, then they are cancelled, then the queue is shut
// down); an alarm ends the process as a last resort. The options, histogram, /proc readers
// (server CPU per call over the window) and the report are weft-load's
// (bench/load_common.h): the compare scripts read both tools alike. Unlike weft-load this
// client allocates per call (ClientContext, the reader): gRPC's API requires it; the
// report's steady_allocs is -1 (not counted).
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../load_common.h"
#include "bench.grpc.pb.h"

namespace {

using weft::bench::Blob;
using weft::bench::mono_ns;

struct State : weft::bench::Errors {
  weft::bench::LoadOptions opt;
  std::uint64_t t_start = 0;
  std::uint64_t t_measure = ~std::uint64_t{0};
  std::uint64_t t_end = ~std::uint64_t{0};
  weft::bench::Histogram hist;
  std::uint64_t measured = 0;
  std::uint64_t received = 0;
  std::uint64_t sent = 0;
  std::uint64_t bad_status = 0;
  bool mismatch = false;
};

std::byte pattern_byte(std::size_t j) {
  return static_cast<std::byte>((j * 31u + 7u) & 0xffu);
}

// One slot of K in flight on one channel; reissued as soon as its call ends.
struct Slot {
  weft::bench::Bench::Stub* stub = nullptr;
  std::uint32_t channel = 0;
  std::optional<grpc::ClientContext> ctx;  // a ClientContext serves one call
  Blob req;
  Blob resp;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Blob>> rpc;
  bool busy = false;

  void start(State& st, grpc::CompletionQueue& cq, std::uint64_t number) {
    std::string& d = *req.mutable_data();
    const std::uint64_t now = mono_ns();
    std::memcpy(d.data(), &now, 8);
    std::memcpy(d.data() + 8, &number, 8);
    resp.Clear();
    ctx.emplace();
    rpc = stub->AsyncUnary(&*ctx, req, &cq);
    rpc->Finish(&resp, &status, this);
    busy = true;
    ++st.sent;
  }

  // Checks the answer; false (and the error noted) when it is wrong.
  bool check(State& st, std::uint64_t now) {
    if (!status.ok()) {
      ++st.bad_status;
      st.note_error("channel %u: status %d: %s", channel, static_cast<int>(status.error_code()),
                    status.error_message().c_str());
      return false;
    }
    if (resp.data() != req.data()) {
      st.mismatch = true;
      st.note_error("channel %u: answer of %zu bytes differs from the request sent", channel,
                    resp.data().size());
      return false;
    }
    std::uint64_t sent;
    std::memcpy(&sent, resp.data().data(), 8);
    ++st.received;
    if (now >= st.t_measure && now < st.t_end) {
      st.hist.add(now - sent);
      ++st.measured;
    }
    return true;
  }
};

void usage() {
  std::fprintf(stderr,
               "usage: weft-grpc-load --port P [--host 127.0.0.1] [--conns N] [--inflight K]\n"
               "                      [--size 16..65536] [--duration S] [--warmup S] [--cpu N]\n"
               "                      [--max-msgs N] [--server-pid PID] [--server-core N]\n"
               "                      [--json]\n");
}

bool loopback(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

int main(int argc, char** argv) {
  State st;
  weft::bench::LoadOptions& o = st.opt;
  const int rc =
      weft::bench::parse_args(argc, argv, "weft-grpc-load", usage, 65536, o,
                              [](const char*, const char*) { return weft::bench::Arg::bad; });
  if (rc != 0) {
    return rc < 0 ? 0 : rc;
  }
  if (!loopback(o.host)) {
    std::fprintf(stderr, "weft-grpc-load: %s is not a loopback address\n", o.host.c_str());
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  ::alarm(static_cast<unsigned>(o.warmup + o.duration) + 30);
  if (!weft::bench::pin_to(o, "weft-grpc-load")) {
    return 2;
  }
  const std::string target = (o.host == "::1" ? "[::1]" : o.host) + ":" + std::to_string(o.port);

  // Channels: one TCP connection each.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<weft::bench::Bench::Stub>> stubs;
  st.t_start = mono_ns();
  const auto connect_deadline = std::chrono::system_clock::now() + std::chrono::seconds(5);
  for (std::uint32_t i = 0; i < o.conns; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("weft.bench.channel", static_cast<int>(i));
    channels.push_back(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
    stubs.push_back(weft::bench::Bench::NewStub(channels.back()));
  }
  for (std::uint32_t i = 0; i < o.conns; ++i) {
    if (!channels[i]->WaitForConnected(connect_deadline)) {
      std::fprintf(stderr, "weft-grpc-load: channel %u to %s not ready within 5 s\n", i,
                   target.c_str());
      return 1;
    }
  }

  // Slots, requests filled once: only the send time and number change per call.
  grpc::CompletionQueue cq;
  std::vector<Slot> slots(std::size_t{o.conns} * o.inflight);
  for (std::size_t s = 0; s < slots.size(); ++s) {
    Slot& slot = slots[s];
    slot.channel = static_cast<std::uint32_t>(s / o.inflight);
    slot.stub = stubs[slot.channel].get();
    std::string& d = *slot.req.mutable_data();
    d.resize(o.size);
    for (std::size_t j = 16; j < o.size; ++j) {
      d[j] = static_cast<char>(pattern_byte(j + slot.channel % 256));
    }
  }

  const std::uint64_t t_run = mono_ns();
  st.t_measure = t_run + static_cast<std::uint64_t>(o.warmup * 1e9);
  st.t_end = st.t_measure + static_cast<std::uint64_t>(o.duration * 1e9);
  std::uint64_t number = 0;
  std::uint64_t outstanding = 0;
  for (Slot& s : slots) {
    s.start(st, cq, ++number);
    ++outstanding;
  }
  weft::bench::CpuSample s0;
  std::uint64_t r0 = 0;
  bool measuring = false;
  std::uint64_t now = t_run;
  while (st.errors == 0) {
    void* tag = nullptr;
    bool ok = false;
    const auto r =
        cq.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + std::chrono::milliseconds(5));
    now = mono_ns();
    if (r == grpc::CompletionQueue::GOT_EVENT) {
      Slot& s = *static_cast<Slot*>(tag);
      s.busy = false;
      --outstanding;
      if (!ok || !s.check(st, now)) {
        if (!ok) {
          st.note_error("channel %u: call failed (completion not ok)", s.channel);
        }
        break;
      }
      if (now < st.t_end) {
        s.start(st, cq, ++number);
        ++outstanding;
      }
    } else if (r == grpc::CompletionQueue::SHUTDOWN) {
      st.note_error("completion queue shut down");
      break;
    }
    if (!measuring && now >= st.t_measure) {
      s0 = weft::bench::sample_cpu(o.server_pid, o.server_core);
      r0 = st.received;
      measuring = true;
    }
    if (now >= st.t_end || (o.max_msgs != 0 && st.measured >= o.max_msgs)) {
      break;
    }
  }
  if (now < st.t_end) {
    st.t_end = now;
  }
  const weft::bench::CpuSample s1 = weft::bench::sample_cpu(o.server_pid, o.server_core);
  if (!measuring) {
    s0 = s1;
    r0 = st.received;
  }
  const std::uint64_t measured = st.measured;
  const std::uint64_t received_in_window = st.received - r0;

  // Drain: 1 s for the calls in flight, then cancel what is left and collect it.
  const std::uint64_t drain_end = mono_ns() + 1'000'000'000ull;
  bool cancelled = false;
  while (outstanding != 0) {
    if (!cancelled && mono_ns() >= drain_end) {
      for (Slot& s : slots) {
        if (s.busy) {
          s.ctx->TryCancel();
        }
      }
      cancelled = true;
    }
    void* tag = nullptr;
    bool ok = false;
    const auto r =
        cq.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + std::chrono::milliseconds(10));
    if (r == grpc::CompletionQueue::GOT_EVENT) {
      static_cast<Slot*>(tag)->busy = false;
      --outstanding;
    } else if (r == grpc::CompletionQueue::SHUTDOWN || mono_ns() >= drain_end + 2'000'000'000ull) {
      break;
    }
  }
  cq.Shutdown();
  {
    void* tag = nullptr;
    bool ok = false;
    while (cq.AsyncNext(&tag, &ok,
                        std::chrono::system_clock::now() + std::chrono::milliseconds(100)) ==
           grpc::CompletionQueue::GOT_EVENT) {
    }
  }

  weft::bench::Report rep;
  rep.tool = "weft-grpc-load";
  rep.target = target.c_str();
  rep.backend = "grpc-async-cq";
  rep.proto = "grpc";
  rep.opt = &o;
  rep.frame_bytes = o.size;  // payload only: HTTP/2 and gRPC framing are not counted
  rep.window_s = static_cast<double>(st.t_end - st.t_measure) / 1e9;
  rep.msgs = measured;
  rep.hist = &st.hist;
  rep.cpu = weft::bench::cpu_figures(s0, s1, received_in_window);
  rep.sent = st.sent;
  rep.received = st.received;
  rep.steady_allocs = -1;
  rep.errors = st.errors;
  rep.error_frames = st.bad_status;
  rep.mismatch = st.mismatch;
  rep.error = st.first_error;
  rep.ok = st.errors == 0 && measured != 0;
  weft::bench::print_report(rep);
  if (st.first_error[0] != '\0') {
    std::fprintf(stderr, "weft-grpc-load: %s\n", st.first_error);
  }
  return rep.ok ? 0 : 1;
}
