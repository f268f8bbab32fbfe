// Built only in the find_package mode: weft_protobuf_generate from the installed package
// generated hello.weft.h; the service registers, and a request encodes and parses back.
#include <cstdio>
#include <vector>

#include <weft/msg/frame.h>
#include <weft/msg/pb_codec.h>

#include "hello.weft.h"

namespace {
class Greeter final : public consumer::GreeterService {
 public:
  using GreeterService::GreeterService;
  void Hello(const consumer::HelloRequest& rq,
             weft::msg::pb::Responder<consumer::HelloReply>& r) noexcept override {
    r.response().set_text("hello " + rq.name());
    (void)r.reply();
  }
};
}  // namespace

int main() {
  auto ws = weft::msg::pb::Workspace::create({});
  if (!ws) {
    return 1;
  }
  Greeter greeter(*ws.value());
  weft::msg::Registry registry;
  if (!consumer::register_service(registry, greeter) ||
      registry.find(consumer::GreeterRpc::Hello::id) == nullptr) {
    return 2;
  }
  consumer::HelloRequest rq;
  rq.set_name("weft");
  std::vector<std::byte> frame(256);
  auto n = weft::msg::pb::encode_request<consumer::GreeterRpc::Hello>(1, rq, frame);
  if (!n) {
    return 3;
  }
  auto f = weft::msg::parse(std::span<const std::byte>(frame).subspan(4, *n - 4));
  consumer::HelloRequest back;
  if (!f || f->method != consumer::GreeterRpc::Hello::id ||
      !weft::msg::pb::decode(f->payload, back) || back.name() != "weft") {
    return 4;
  }
  std::printf("weft consumer pb ok: %s id 0x%08x\n", consumer::GreeterRpc::Hello::name.data(),
              consumer::GreeterRpc::Hello::id);
  return 0;
}
