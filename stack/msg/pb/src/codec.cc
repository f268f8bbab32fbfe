#include <weft/msg/pb_codec.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <new>

#include <weft/msg/frame.h>
#include <weft/msg/pb_service.h>
#include <weft/platform/error.h>

namespace weft::msg::pb {

namespace {

constexpr std::size_t kMinBlock = 256;
constexpr std::size_t kMaxBlock = std::size_t{16} << 20;
// protobuf's sizes are int: nothing above INT_MAX parses or serializes.
constexpr std::size_t kMaxPayload = INT_MAX;

// The Workspace whose Scope is open on this thread (the arena's hooks have no context).
thread_local Workspace* tl_current = nullptr;

// The arena hands its blocks to protobuf at 8-byte alignment; keep the spill bump pointer so.
constexpr std::size_t align8(std::size_t n) noexcept {
  return (n + 7) & ~std::size_t{7};
}

}  // namespace

void* Workspace::block_alloc(std::size_t n) noexcept {
  Workspace* ws = tl_current;
  if (ws != nullptr && ws->spill_ != nullptr && n <= ws->config_.spill - ws->spill_used_) {
    void* p = ws->spill_.get() + ws->spill_used_;
    ws->spill_used_ += align8(n);
    if (ws->spill_used_ > ws->config_.spill) {
      ws->spill_used_ = ws->config_.spill;
    }
    return p;
  }
  if (ws != nullptr) {
    ++ws->stats_.heap_blocks;
  }
  // Outside a Scope, or the spill area is used up: the heap, for this one call. The arena
  // has no way to fail an allocation, so this cannot refuse; reset() gives it back.
  return ::operator new(n);
}

void Workspace::block_dealloc(void* p, std::size_t n) noexcept {
  // Spill blocks are given back wholesale by reset(); only heap blocks are freed here. Any
  // Workspace's spill area may hold p (a Scope of another Workspace may be open by now), so
  // the test is on the address range, not on tl_current alone.
  (void)n;
  Workspace* ws = tl_current;
  if (ws != nullptr && ws->spill_ != nullptr) {
    const auto* b = static_cast<const std::byte*>(p);
    if (b >= ws->spill_.get() && b < ws->spill_.get() + ws->config_.spill) {
      return;
    }
  }
  ::operator delete(p);
}

Result<std::unique_ptr<Workspace>> Workspace::create(const WorkspaceConfig& config) noexcept {
  if (config.arena_block < kMinBlock || config.arena_block > kMaxBlock ||
      config.spill > kMaxBlock) {
    return fail(platform::platform_errc::invalid_argument);
  }
  std::unique_ptr<Workspace> ws(new (std::nothrow) Workspace());
  if (ws == nullptr) {
    return fail_errno(ENOMEM);
  }
  ws->config_ = config;
  ws->block_.reset(new (std::nothrow) std::byte[config.arena_block]);
  if (config.spill != 0) {
    ws->spill_.reset(new (std::nothrow) std::byte[config.spill]);
  }
  if (ws->block_ == nullptr || (config.spill != 0 && ws->spill_ == nullptr)) {
    return fail_errno(ENOMEM);
  }
  google::protobuf::ArenaOptions options;
  options.initial_block = reinterpret_cast<char*>(ws->block_.get());
  options.initial_block_size = config.arena_block;
  // Extra blocks are the exception (a refused message), sized to what it asks for.
  options.start_block_size = kMinBlock;
  options.max_block_size = config.arena_block;
  options.block_alloc = &Workspace::block_alloc;
  options.block_dealloc = &Workspace::block_dealloc;
  ws->arena_.reset(new (std::nothrow) google::protobuf::Arena(options));
  if (ws->arena_ == nullptr) {
    return fail_errno(ENOMEM);
  }
  return ws;
}

Workspace::~Workspace() {
  // The arena's destructor frees its extra blocks through block_dealloc: let it see this
  // Workspace's spill range.
  Workspace* previous = tl_current;
  tl_current = this;
  arena_.reset();
  tl_current = previous;
}

bool Workspace::exceeded() const noexcept {
  // SpaceAllocated() counts every block, the first included; one serial arena per thread
  // that touched it (one, the worker's), so this is a short walk.
  return arena_->SpaceAllocated() > config_.arena_block;
}

Result<void> Workspace::parse_into(google::protobuf::MessageLite& m,
                                   std::span<const std::byte> payload) noexcept {
  if (payload.size() > kMaxPayload ||
      !m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    ++stats_.bad_payloads;
    return fail(ProtocolError::bad_payload);
  }
  if (exceeded()) {
    return fail(ProtocolError::too_large);
  }
  return {};
}

void Workspace::reset() noexcept {
  ++stats_.calls;
  if (exceeded()) {
    ++stats_.refused;
  }
  {
    // Reset() hands extra blocks to block_dealloc: it must recognise our spill blocks.
    Workspace* previous = tl_current;
    tl_current = this;
    arena_->Reset();
    tl_current = previous;
  }
  spill_used_ = 0;
}

Workspace::Scope::Scope(Workspace& ws) noexcept : ws_(ws), previous_(tl_current) {
  tl_current = &ws;
}

Workspace::Scope::~Scope() {
  ws_.reset();
  tl_current = previous_;
}

Result<std::size_t> serialize(const google::protobuf::MessageLite& m,
                              std::span<std::byte> out) noexcept {
  const std::size_t size = m.ByteSizeLong();
  if (size > kMaxPayload) {
    return fail(ProtocolError::too_large);
  }
  if (size > out.size()) {
    return fail(msg_errc::buffer_too_small);
  }
  m.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(out.data()));
  return size;
}

Result<void> decode(std::span<const std::byte> payload, google::protobuf::MessageLite& m) noexcept {
  if (payload.size() > kMaxPayload ||
      !m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return fail(ProtocolError::bad_payload);
  }
  return {};
}

Result<std::size_t> encode_request(std::uint32_t id, std::uint32_t method,
                                   const google::protobuf::MessageLite& request,
                                   std::span<std::byte> out, std::uint32_t deadline_ms) noexcept {
  // The header alone (an empty payload) first: encode() checks the id and the space, then
  // the payload is serialized right after it and L (the big-endian u32 at offset 0,
  // docs/protocol.md §6.1) grows by its size. No copy of the payload.
  Result<std::size_t> header = msg::encode(make_request(id, method, deadline_ms, {}), out);
  if (!header) {
    return header;
  }
  Result<std::size_t> body = serialize(request, out.subspan(*header));
  if (!body) {
    return body;
  }
  const std::size_t length = *header - kPrefixSize + *body;
  if (length > UINT32_MAX) {
    return fail(ProtocolError::too_large);
  }
  for (std::size_t i = 0; i < kPrefixSize; ++i) {
    out[i] = static_cast<std::byte>(length >> (8 * (kPrefixSize - 1 - i)));
  }
  return *header + *body;
}

namespace detail {

namespace {
// The PayloadWriter's pieces as a ZeroCopyOutputStream, capped at the declared size so the
// coded stream never asks the writer for more than the frame header promised.
class PieceStream final : public google::protobuf::io::ZeroCopyOutputStream {
 public:
  PieceStream(PayloadWriter& w, std::span<std::byte> first, std::size_t size) noexcept
      : w_(w), piece_(first), left_(size) {}

  bool Next(void** data, int* size) override {
    if (handed_) {
      w_.wrote(piece_.size());
      piece_ = w_.next();
    }
    if (piece_.size() > left_) {
      piece_ = piece_.first(left_);
    }
    if (piece_.empty()) {
      return false;
    }
    if (piece_.size() > static_cast<std::size_t>(INT_MAX)) {
      piece_ = piece_.first(INT_MAX);
    }
    handed_ = true;
    left_ -= piece_.size();
    total_ += piece_.size();
    *data = piece_.data();
    *size = static_cast<int>(piece_.size());
    return true;
  }
  void BackUp(int count) override {
    const auto n = static_cast<std::size_t>(count);
    piece_ = piece_.first(piece_.size() - n);
    left_ += n;
    total_ -= n;
  }
  [[nodiscard]] std::int64_t ByteCount() const override {
    return static_cast<std::int64_t>(total_);
  }
  // Reports the last piece's use; true when the declared size was written exactly.
  bool finish() noexcept {
    if (handed_) {
      w_.wrote(piece_.size());
    }
    return left_ == 0;
  }

 private:
  PayloadWriter& w_;
  std::span<std::byte> piece_;
  std::size_t left_;
  std::size_t total_ = 0;
  bool handed_ = false;  // piece_ has been given to the coded stream
};
}  // namespace

bool write_message(const void* ctx, PayloadWriter& w) noexcept {
  const auto& m = *static_cast<const google::protobuf::MessageLite*>(ctx);
  const auto size = static_cast<std::size_t>(m.GetCachedSize());
  if (size == 0) {
    return true;
  }
  std::span<std::byte> first = w.next();
  if (first.size() >= size) {
    // The common case: the whole payload fits after the frame header in one pool buffer.
    m.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(first.data()));
    w.wrote(size);
    return true;
  }
  PieceStream stream(w, first, size);
  bool ok;
  {
    google::protobuf::io::CodedOutputStream out(&stream);
    m.SerializeWithCachedSizes(&out);
    ok = !out.HadError();
  }  // the coded stream's destructor backs up what it did not use
  return stream.finish() && ok;
}

}  // namespace detail

}  // namespace weft::msg::pb
