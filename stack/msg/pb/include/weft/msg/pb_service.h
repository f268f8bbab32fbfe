// weft::msg::pb services — typed handlers for methods declared in .proto files, on top of
// the untyped weft::msg::Registry / Call of server.h.
//
// protoc-gen-weft generates, per service S (docs/protocol.md §6.8 for the names and ids):
//   SRpc::M        traits of method M: Request, Response, id, name
//   SService       derives from ServiceBase; one pure virtual per method:
//                    void M(const Request& request, Responder<Response>& responder) noexcept;
//   register_service(Registry&, SService&)   adds method<...>() of every M.
//
// One call, as method<>()'s dispatch runs it on the worker's thread:
//   1. a Workspace::Scope opens on the service's Workspace;
//   2. the request is parsed (MessageStorage::arena: onto the arena; reused: into the
//      method's preallocated request object). A payload that does not parse is answered
//      ERROR bad_payload, one that outgrows the arena block ERROR too_large; the handler is
//      not called;
//   3. the handler runs. It answers before returning (responder.reply(), fail()) or takes
//      responder.defer() and answers later with pb::answer() / msg::answer_error();
//   4. the Scope closes: the arena is reset. The request, response() and everything else on
//      the arena are gone. A deferred handler copies what it needs into its own storage
//      before returning, and answers with a message it owns.
//
// Example:
//   class Calc final : public weft::test::CalcService {
//    public:
//     using CalcService::CalcService;
//     void Add(const AddRequest& rq, Responder<AddReply>& r) noexcept override {
//       r.response().set_sum(rq.a() + rq.b());
//       (void)r.reply();
//     }
//     ...
//   };
//   options.setup = [](Registry& reg, platform::Loop&) {   // once per worker
//     thread_local auto ws = pb::Workspace::create({}).value();   // per worker, for good
//     thread_local Calc calc(*ws);
//     if (!register_service(reg, calc)) { WEFT_PANIC("register"); }
//   };
//
// Threading: a service object and its Workspace belong to one worker; handlers run on that
// worker's thread. answer() may be called from any worker of the runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

#include <google/protobuf/arena.h>
#include <google/protobuf/message_lite.h>

#include <weft/base/result.h>
#include <weft/msg/error.h>
#include <weft/msg/pb_codec.h>
#include <weft/msg/server.h>
#include <weft/platform/loop.h>

namespace weft::msg::pb {

// The base of every generated service: the Workspace its calls parse on. Not copyable (the
// Registry holds its address).
class ServiceBase {
 public:
  explicit ServiceBase(Workspace& workspace) noexcept : workspace_(&workspace) {}
  virtual ~ServiceBase() = default;
  ServiceBase(const ServiceBase&) = delete;
  ServiceBase& operator=(const ServiceBase&) = delete;

  [[nodiscard]] Workspace& workspace() const noexcept { return *workspace_; }

 private:
  Workspace* workspace_;
};

// One method's preallocated messages (MessageStorage::reused); a member of the generated
// service per method.
template <class Traits>
struct Messages {
  typename Traits::Request request;
  typename Traits::Response response;
};

// RESPONSE with `m` serialized straight into the worker's pool buffers (Call::reply_with).
// Refused with ERROR too_large (and the error returned) when the Workspace's arena outgrew
// its block during this call. Other errors: Call::reply_with's.
[[nodiscard]] Result<void> reply_message(Call& call, Workspace& ws,
                                         const google::protobuf::MessageLite& m) noexcept;

// A call's answer, typed. Lives only during the handler (the dispatch code owns it).
template <class Resp>
class Responder {
 public:
  Responder(Call& call, Workspace& ws, Resp* reused) noexcept
      : call_(call), ws_(ws), response_(reused) {}
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  // The call's response message, empty on first use: on the arena, or the method's reused
  // object. Valid until the handler returns.
  [[nodiscard]] Resp& response() noexcept;
  // RESPONSE with response() / with r. At most one answer per call (server.h).
  Result<void> reply() noexcept { return reply(response()); }
  Result<void> reply(const Resp& r) noexcept { return reply_message(call_, ws_, r); }
  // ERROR with code (not a connection-fatal one) and a short static detail.
  Result<void> fail(ProtocolError code, std::string_view detail = {}) noexcept {
    return call_.fail(code, detail);
  }
  // Keeps the call open; answer it with pb::answer(). See the file comment, step 4.
  [[nodiscard]] Deferred defer() noexcept { return call_.defer(); }

  [[nodiscard]] Call& call() noexcept { return call_; }
  [[nodiscard]] Workspace& workspace() noexcept { return ws_; }

 private:
  Call& call_;
  Workspace& ws_;
  Resp* response_;
};

// A generated service's handler of method Traits (a pure virtual of the SService class).
template <class Traits, class Svc>
using HandlerOf = void (Svc::*)(const typename Traits::Request&,
                                Responder<typename Traits::Response>&) noexcept;

// Answers a deferred call with `m` from the worker `here` (any worker): serializes m into
// `scratch` and hands it to msg::answer(), which copies it. Errors: serialize()'s
// (buffer_too_small: the call is left open, answer it with answer_error), msg::answer()'s.
[[nodiscard]] Result<void> answer(platform::Loop& here, const Deferred& d,
                                  const google::protobuf::MessageLite& m,
                                  std::span<std::byte> scratch) noexcept;

// The Registry entry of method Traits of service svc (what generated register_service
// passes to Registry::add). svc must outlive the registry.
template <class Traits, class Svc, HandlerOf<Traits, Svc> Handler, Messages<Traits> Svc::*Slot>
[[nodiscard]] Method method(Svc& svc) noexcept;

namespace detail {
// Answers `call` for a request that failed Workspace::parse_into with `why`.
void refuse(Call& call, std::error_code why) noexcept;
// WriteFn for Call::reply_with: serializes *static_cast<const MessageLite*>(ctx), whose
// cached size (ByteSizeLong) is the size declared, into the writer's pieces.
bool write_message(const void* ctx, PayloadWriter& w) noexcept;

template <class Traits, class Svc, HandlerOf<Traits, Svc> Handler, Messages<Traits> Svc::*Slot>
void dispatch(void* ctx, Call& call, std::span<const std::byte> payload) noexcept {
  using Req = typename Traits::Request;
  using Resp = typename Traits::Response;
  Svc& svc = *static_cast<Svc*>(ctx);
  Workspace& ws = svc.workspace();
  Workspace::Scope scope(ws);
  Req* request;
  Resp* reused = nullptr;
  if (ws.config().storage == MessageStorage::reused) {
    request = &(svc.*Slot).request;
    reused = &(svc.*Slot).response;
    reused->Clear();
  } else {
    request = google::protobuf::Arena::CreateMessage<Req>(&ws.arena());
  }
  if (Result<void> r = ws.parse_into(*request, payload); !r) {
    refuse(call, r.error());
    return;
  }
  Responder<Resp> responder(call, ws, reused);
  (svc.*Handler)(*request, responder);
}
}  // namespace detail

// ---- inline definitions ---------------------------------------------------------------

template <class Resp>
Resp& Responder<Resp>::response() noexcept {
  if (response_ == nullptr) {
    response_ = google::protobuf::Arena::CreateMessage<Resp>(&ws_.arena());
  }
  return *response_;
}

template <class Traits, class Svc, HandlerOf<Traits, Svc> Handler, Messages<Traits> Svc::*Slot>
Method method(Svc& svc) noexcept {
  return Method{Traits::id, Traits::name, &detail::dispatch<Traits, Svc, Handler, Slot>, &svc};
}

}  // namespace weft::msg::pb
