// weft-grpc-bench-server: the gRPC C++ peer of weft-msg-bench-server for
// bench/run_grpc_compare.sh. weft.bench.Bench/Unary (bench.proto) answers a Blob with a Blob
// holding the same bytes, on the async API: one thread polls one ServerCompletionQueue and
// runs every call (gRPC may start helper threads of its own; /proc counts them all, and
// taskset keeps them on the server's core).
//
//   weft-grpc-bench-server [--port N] [--host 127.0.0.1] [--listen-calls N]
//
// --listen-calls: calls kept posted (RequestUnary) at all times, so that N concurrent calls
// are taken without waiting for one to finish (default 2048: the benchmark keeps 64 x 16 in
// flight). Only loopback hosts are accepted. SIGINT/SIGTERM: shutdown (1 s grace), exit 0.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "bench.grpc.pb.h"

namespace {

using weft::bench::Blob;

std::atomic<unsigned long long> g_calls{0};

// One call's state, the classic async-server shape: posted, then answered, then deleted.
class CallData {
 public:
  CallData(weft::bench::Bench::AsyncService* svc, grpc::ServerCompletionQueue* cq)
      : svc_(svc), cq_(cq), responder_(&ctx_) {
    svc_->RequestUnary(&ctx_, &req_, &responder_, cq_, cq_, this);
  }

  void proceed(bool ok) {
    if (answered_ || !ok) {  // finished, or the server is shutting down
      delete this;
      return;
    }
    new CallData(svc_, cq_);  // keep the number of posted calls constant
    resp_.set_data(req_.data());
    answered_ = true;
    g_calls.fetch_add(1, std::memory_order_relaxed);
    responder_.Finish(resp_, grpc::Status::OK, this);
  }

 private:
  weft::bench::Bench::AsyncService* svc_;
  grpc::ServerCompletionQueue* cq_;
  grpc::ServerContext ctx_;
  Blob req_;
  Blob resp_;
  grpc::ServerAsyncResponseWriter<Blob> responder_;
  bool answered_ = false;
};

void usage() {
  std::fprintf(stderr,
               "usage: weft-grpc-bench-server [--port N] [--host 127.0.0.1] [--listen-calls N]\n");
}

bool loopback(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host == "localhost" || host == "::1" || host == "[::1]";
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  unsigned long port = 7200;
  unsigned long listen_calls = 2048;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (!std::strcmp(a, "-h") || !std::strcmp(a, "--help")) {
      usage();
      return 0;
    }
    const char* v = i + 1 < argc ? argv[++i] : "";
    char* end = nullptr;
    if (!std::strcmp(a, "--port")) {
      port = std::strtoul(v, &end, 10);
    } else if (!std::strcmp(a, "--listen-calls")) {
      listen_calls = std::strtoul(v, &end, 10);
    } else if (!std::strcmp(a, "--host")) {
      host = v;
      end = const_cast<char*>(v) + std::strlen(v);
    }
    if (end == nullptr || end == v || *end != '\0' || port == 0 || port > 65535 ||
        listen_calls == 0 || listen_calls > 1u << 20) {
      std::fprintf(stderr, "weft-grpc-bench-server: bad argument: %s %s\n", a, v);
      usage();
      return 2;
    }
  }
  if (!loopback(host)) {
    std::fprintf(stderr, "weft-grpc-bench-server: %s is not a loopback address\n", host.c_str());
    return 2;
  }
  // The termination signals are taken by sigwait on this thread; the server thread (and any
  // thread gRPC starts) inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  weft::bench::Bench::AsyncService service;
  grpc::ServerBuilder builder;
  const std::string where = host + ":" + std::to_string(port);
  int bound = 0;
  builder.AddListeningPort(where, grpc::InsecureServerCredentials(), &bound);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound == 0) {
    std::fprintf(stderr, "weft-grpc-bench-server: cannot listen on %s\n", where.c_str());
    return 1;
  }
  for (unsigned long i = 0; i < listen_calls; ++i) {
    new CallData(&service, cq.get());
  }
  std::thread poller([&cq] {
    void* tag = nullptr;
    bool ok = false;
    while (cq->Next(&tag, &ok)) {
      static_cast<CallData*>(tag)->proceed(ok);
    }
  });
  std::printf("weft-grpc-bench-server listening on %s:%d (1 polling thread, grpc %s)\n",
              host.c_str(), bound, grpc::Version().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  cq->Shutdown();
  poller.join();
  std::printf("weft-grpc-bench-server: signal %d, stopped; calls answered %llu\n", sig,
              g_calls.load());
  return 0;
}
