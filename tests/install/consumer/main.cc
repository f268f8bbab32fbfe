// Uses a few public weft APIs through the installed headers and libraries, and keeps
// exceptions on: weft builds with -fno-exceptions, its consumers need not.
#include <cstddef>
#include <cstdio>
#include <span>
#include <stdexcept>
#include <string_view>

#include <weft/frame/length_prefix.h>
#include <weft/http/parser.h>
#include <weft/msg/frame.h>
#include <weft/platform/buffer_pool.h>
#include <weft/platform/cpu_list.h>

int main() {
  try {
    throw std::runtime_error("consumers keep exceptions");
  } catch (const std::exception&) {
  }

  auto cpus = weft::platform::parse_cpu_list("0-3,6");
  if (!cpus.ok() || cpus.value().size() != 5) {
    std::puts("parse_cpu_list failed");
    return 1;
  }

  weft::platform::BufferPool pool;
  if (!pool.init(8, 4096, 4).ok()) {
    std::puts("BufferPool::init failed");
    return 1;
  }
  weft::platform::BufRef buf(&pool, pool.acquire());
  if (!buf.valid() || pool.free_general() != 3) {
    std::puts("BufferPool::acquire failed");
    return 1;
  }

  // One u32 big-endian length-prefixed frame: 00 00 00 02 'h' 'i'.
  const std::byte wire[] = {std::byte{0}, std::byte{0},   std::byte{0},
                            std::byte{2}, std::byte{'h'}, std::byte{'i'}};
  weft::frame::LengthPrefixDecoder decoder;
  weft::frame::Decoded d = decoder.feed(wire);
  if (d.state != weft::frame::DecodeState::ready || decoder.frame().size() != 2) {
    std::puts("LengthPrefixDecoder failed");
    return 1;
  }

  // The same bytes through weft::msg: a CANCEL for request 5, encoded then parsed.
  std::byte msg_wire[16];
  auto n = weft::msg::encode(weft::msg::make_cancel(5), msg_wire);
  if (!n.ok() || n.value() != 12) {
    std::puts("weft::msg::encode failed");
    return 1;
  }
  auto cancel = weft::msg::parse(std::span<const std::byte>(msg_wire).subspan(4, 8));
  if (!cancel.ok() || cancel.value().type != weft::msg::FrameType::cancel ||
      cancel.value().id != 5) {
    std::puts("weft::msg::parse failed");
    return 1;
  }

  // An HTTP/1.1 request head through weft::http.
  weft::http::RequestParser http;
  weft::http::Header fields[32];
  static char assembly[weft::http::assembly_size(weft::http::Config{})];
  if (!http.set_storage(fields, assembly).ok() ||
      http.feed(std::string_view("GET /x HTTP/1.1\r\nHost: h\r\n\r\n")).state !=
          weft::http::DecodeState::head ||
      http.request().path != "/x") {
    std::puts("weft::http::RequestParser failed");
    return 1;
  }

  std::printf("weft consumer ok: %zu cpus, %u x %u byte buffers, %zu byte frame, msg id %u\n",
              cpus.value().size(), pool.count(), pool.buffer_size(), decoder.frame().size(),
              static_cast<unsigned>(cancel.value().id));
  return 0;
}
