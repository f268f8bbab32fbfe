// weft::mux streams — messages and calls on channels (docs/protocol.md §7.11).
//
// A channel is a pair of byte streams. Calls that stream (server-stream, client-stream,
// bidirectional; protoc-gen-weft's traits name them) carry MESSAGES on it: each message is a
// u32 big-endian length and that many payload bytes (a protobuf-lite encoding, or any
// bytes). The channel of a call is named "rpc:<package>.<Service>/<Method>" (the generated
// traits' `channel`). The caller opens it, writes its request message(s) and closes its
// direction when it has no more; the server writes its response message(s) and closes its
// direction: FIN is the successful end of a stream. A failed call ends with RESET (a
// ChannelError: `internal` for a handler failure, `cancel` when the caller gives up); a name
// no service serves is REFUSEd (`refused`). A unary call is the case of one message each way.
//
//   MessageReader  splits a channel's bytes into messages: a message that arrives whole in
//                  one DATA is handed over in place (zero copy), one split across DATA is
//                  assembled in caller-provided storage. A length above the storage is
//                  frame_errc::oversize: reset the channel.
//   write_message  queues one message, all or nothing (Endpoint::write_all): would_block
//                  means "retry from ChannelHandler::on_writable".
//   write_pb       the same for a protobuf-lite message, serialised into caller scratch.
//   Services       an Acceptor that routes the peer's OPENs by exact name to a function
//                  returning the channel's handler (nullptr: refused).
//
// Memory: nothing here allocates after construction (Services reserves its table).
// Threading: the connection's worker thread, like the Endpoint.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include <weft/base/result.h>
#include <weft/frame/length_prefix.h>
#include <weft/mux/endpoint.h>

namespace weft::mux {

inline constexpr std::string_view kCallPrefix = "rpc:";
inline constexpr std::size_t kMessagePrefixSize = 4;

// Queues one message on ch: the u32 length, then payload. Errors: Endpoint::write_all's.
[[nodiscard]] Result<void> write_message(Endpoint& ep, std::uint16_t ch,
                                         std::span<const std::byte> payload) noexcept;

// Serialises m (a protobuf-lite message: ByteSizeLong and SerializeWithCachedSizesToArray)
// into scratch and queues it as one message. Errors: bad_argument (m does not fit scratch),
// write_message's.
template <class Message>
[[nodiscard]] Result<void> write_pb(Endpoint& ep, std::uint16_t ch, const Message& m,
                                    std::span<std::byte> scratch) noexcept {
  const std::size_t n = m.ByteSizeLong();
  if (n > scratch.size()) {
    return fail(mux_errc::bad_argument);
  }
  m.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(scratch.data()));
  return write_message(ep, ch, scratch.first(n));
}

class MessageReader {
 public:
  // storage: where a message split across DATA frames is assembled; its size is the
  // largest message accepted.
  explicit MessageReader(std::span<std::byte> storage) noexcept;

  // Feeds a channel's bytes; calls on_message(std::span<const std::byte>) for each complete
  // message (valid during the call). Errors (sticky until reset()): frame_errc::oversize.
  template <class Fn>
  [[nodiscard]] Result<void> feed(std::span<const std::byte> in, Fn&& on_message) noexcept {
    while (!in.empty()) {
      const frame::Decoded d = dec_.feed(in);
      if (d.state == frame::DecodeState::error) {
        return fail(dec_.error());
      }
      in = in.subspan(d.consumed);
      if (d.state == frame::DecodeState::ready) {
        ++messages_;
        on_message(dec_.frame());
      }
    }
    return {};
  }
  // At the peer's FIN: ok between messages, frame_errc::truncated inside one.
  [[nodiscard]] Result<void> finish() noexcept { return dec_.finish(); }
  void reset() noexcept { dec_.reset(); }
  [[nodiscard]] std::uint64_t messages() const noexcept { return messages_; }
  [[nodiscard]] bool mid_message() const noexcept { return dec_.mid_frame(); }

 private:
  frame::LengthPrefixDecoder dec_;
  std::uint64_t messages_ = 0;
};

class Services final : public Acceptor {
 public:
  // Returns the channel's handler, or nullptr to refuse it.
  using OpenFn = ChannelHandler* (*)(void* ctx, Endpoint& ep, std::uint16_t ch) noexcept;
  using ReadyFn = void (*)(void* ctx, Endpoint& ep) noexcept;
  explicit Services(std::size_t capacity = 16);

  // Serves channels named exactly `name` (it must outlive this: literals, traits' channel).
  // Errors: bad_argument (empty or over 255 bytes, or the table is full), closed (the name
  // is taken).
  [[nodiscard]] Result<void> add(std::string_view name, OpenFn fn, void* ctx) noexcept;
  // Called when a connection is ready (the peer's settings arrived): open channels there.
  void on_ready(ReadyFn fn, void* ctx) noexcept {
    ready_ = fn;
    ready_ctx_ = ctx;
  }
  [[nodiscard]] std::uint64_t refused() const noexcept { return refused_; }

  void on_ready(Endpoint& ep) noexcept override;
  ChannelHandler* on_open(Endpoint& ep, std::uint16_t ch, std::string_view name) noexcept override;

 private:
  struct Route {
    std::string_view name;
    OpenFn fn = nullptr;
    void* ctx = nullptr;
  };
  std::vector<Route> routes_;
  std::size_t capacity_;
  ReadyFn ready_ = nullptr;
  void* ready_ctx_ = nullptr;
  std::uint64_t refused_ = 0;
};

}  // namespace weft::mux
