// weft::msg::pb — protobuf-lite payloads for the binary message protocol (docs/protocol.md
// §6): a per-worker parse Workspace whose arena never grows, and serialization straight into
// caller memory or the server's pool buffers. The typed services on top are pb_service.h;
// the code generated from .proto files (protoc-gen-weft) uses both.
//
// Memory (docs/design.md, "weft::msg_pb"): a Workspace owns, from its creation on:
//   - an arena whose first block is `arena_block` bytes of the Workspace's own memory. Every
//     message parsed or built on it lives there until reset(), which the dispatch code calls
//     after each call the handler answered (or deferred). A message that needs more than
//     that block is refused (ProtocolError::too_large): the arena is never allowed to keep a
//     second block, so memory per worker is fixed.
//   - a spill area of `spill` bytes that serves the arena's extra blocks while a call runs,
//     so refusing an oversized message does not touch the heap either. Only a message that
//     needs more than block + spill reaches the heap, for the duration of that one refused
//     call (counted in WorkspaceStats::heap_blocks; bounded by the frame size the server
//     accepts times the message's in-memory expansion).
// What protobuf 3.21 still allocates on an arena: the characters of a string or bytes field
// longer than the C++ library's small-string buffer (15 bytes with libstdc++) go on the
// global heap (one malloc + free per such field per message); the std::string object itself
// is on the arena. MessageStorage::reused avoids that: each method keeps one request and one
// response object for the life of the service, Clear()ed before each call, and strings keep
// their capacity. It allocates only when a message is bigger than every one before it (and
// for proto3 singular message fields without `optional`, which Clear() frees: declare them
// `optional`). tests/msg/pb_alloc_test.cc measures both.
//
// Threading: a Workspace belongs to one thread (its worker); nothing here is thread-safe.
// The free functions (serialize, encode_request, decode) keep no state and may be called
// from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include <google/protobuf/arena.h>
#include <google/protobuf/message_lite.h>

#include <weft/base/result.h>
#include <weft/msg/error.h>

namespace weft::msg::pb {

// Where a service's request and response messages live (see the file comment).
enum class MessageStorage : std::uint8_t {
  arena,   // parsed onto the Workspace arena per call; the default
  reused,  // one preallocated request/response pair per method, Clear()ed per call
};

struct WorkspaceConfig {
  // The arena's first and only kept block. A request plus its response must fit (the arena
  // takes about 100 bytes of it for itself); more is refused with ERROR too_large.
  // Limits: 256 .. 16 MiB, else invalid_argument from create().
  std::size_t arena_block = 16 * 1024;
  // Preallocated space for the extra blocks a refused message asks for (0: none, the heap
  // serves them). Limit: <= 16 MiB.
  std::size_t spill = 16 * 1024;
  MessageStorage storage = MessageStorage::arena;
};

struct WorkspaceStats {
  std::uint64_t calls = 0;         // reset() calls (one per dispatched call)
  std::uint64_t refused = 0;       // calls whose messages outgrew the arena block
  std::uint64_t heap_blocks = 0;   // arena blocks the spill area could not serve
  std::uint64_t bad_payloads = 0;  // payloads that did not parse
};

class Workspace {
 public:
  // Allocates the arena block and the spill area (init time only). Errors: invalid_argument
  // (a limit above; platform_errc), ENOMEM.
  [[nodiscard]] static Result<std::unique_ptr<Workspace>> create(
      const WorkspaceConfig& config) noexcept;
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  [[nodiscard]] google::protobuf::Arena& arena() noexcept { return *arena_; }
  [[nodiscard]] const WorkspaceConfig& config() const noexcept { return config_; }
  [[nodiscard]] const WorkspaceStats& stats() const noexcept { return stats_; }

  // True once the arena has needed more than its first block since the last reset().
  [[nodiscard]] bool exceeded() const noexcept;

  // Parses `payload` into `m` (for the arena storage, a message created on arena()).
  // Errors: ProtocolError::bad_payload (it does not parse; also a payload over 2 GiB),
  // ProtocolError::too_large (it parsed but outgrew the arena block: exceeded()).
  [[nodiscard]] Result<void> parse_into(google::protobuf::MessageLite& m,
                                        std::span<const std::byte> payload) noexcept;
  // The same, creating the message on arena(). Valid until reset().
  template <class M>
  [[nodiscard]] Result<M*> parse(std::span<const std::byte> payload) noexcept;

  // Frees everything on the arena (runs the destructors of its messages) and keeps the first
  // block; gives back spill and heap blocks. Invalidates every message on the arena.
  void reset() noexcept;

  // While a Scope lives on this thread, the arena's extra blocks come from this Workspace's
  // spill area; its destructor calls reset(). Scopes nest (the previous one is restored).
  class Scope {
   public:
    explicit Scope(Workspace& ws) noexcept;
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Workspace& ws_;
    Workspace* previous_;
  };

 private:
  Workspace() = default;
  friend class Scope;
  // The arena's block hooks (ArenaOptions has no context pointer: they find the Workspace
  // of the running Scope through a thread_local).
  static void* block_alloc(std::size_t n) noexcept;
  static void block_dealloc(void* p, std::size_t n) noexcept;

  WorkspaceConfig config_;
  WorkspaceStats stats_;
  std::unique_ptr<std::byte[]> block_;
  std::unique_ptr<std::byte[]> spill_;
  std::size_t spill_used_ = 0;
  std::unique_ptr<google::protobuf::Arena> arena_;
};

// ---- payloads without a Workspace (client side, deferred answers, tools) ---------------

// Serializes `m` into out[0..n) and returns n (== m.ByteSizeLong()). Errors:
// msg_errc::buffer_too_small (nothing useful is written), ProtocolError::too_large (over
// 2 GiB, which protobuf cannot serialize).
[[nodiscard]] Result<std::size_t> serialize(const google::protobuf::MessageLite& m,
                                            std::span<std::byte> out) noexcept;

// Parses a RESPONSE (or any) payload into `m`, replacing its contents.
// Errors: ProtocolError::bad_payload.
[[nodiscard]] Result<void> decode(std::span<const std::byte> payload,
                                  google::protobuf::MessageLite& m) noexcept;

// Writes one complete REQUEST frame (u32 prefix included, docs/protocol.md §6.3) for
// method `method` with correlation id `id` and `request` serialized as its payload, straight
// into out (no intermediate copy). Returns the frame's size. Errors: msg_errc::bad_id (id 0),
// msg_errc::buffer_too_small, ProtocolError::too_large (payload over 2 GiB).
[[nodiscard]] Result<std::size_t> encode_request(std::uint32_t id, std::uint32_t method,
                                                 const google::protobuf::MessageLite& request,
                                                 std::span<std::byte> out,
                                                 std::uint32_t deadline_ms = 0) noexcept;
// With the method taken from generated traits: encode_request<CalcRpc::Add>(7, req, out).
template <class Traits>
[[nodiscard]] Result<std::size_t> encode_request(std::uint32_t id,
                                                 const typename Traits::Request& request,
                                                 std::span<std::byte> out,
                                                 std::uint32_t deadline_ms = 0) noexcept {
  return encode_request(id, Traits::id, request, out, deadline_ms);
}

// ---- inline definitions ---------------------------------------------------------------

template <class M>
Result<M*> Workspace::parse(std::span<const std::byte> payload) noexcept {
  M* m = google::protobuf::Arena::CreateMessage<M>(arena_.get());
  if (Result<void> r = parse_into(*m, payload); !r) {
    return Failure{r.error()};
  }
  return m;
}

}  // namespace weft::msg::pb
