// Fuzz target: a server weft::tls::Engine fed arbitrary ciphertext split at fuzzer-chosen
// boundaries (the record layer and the handshake parser of the linked backend).
//
// Input (fuzz_common.h layout): byte 0 = mode, byte 1 = k, k chunk sizes, then the stream.
//   mode % 3 == 0: the stream goes straight to a fresh server Engine (a hostile ClientHello).
//   mode % 3 == 1: a real client Engine finishes a handshake with the server first; then the
//                  stream is fed as records after the handshake (hostile records with the
//                  keys in place).
//   mode % 3 == 2: the real client's ClientHello flight, XORed with the stream, then the
//                  stream itself (mutations of a valid handshake).
// Invariants: no crash or sanitizer report; feed() takes at most what it is offered; an
// error is connection-fatal and sticky (every later call returns it, state() is failed,
// error() holds it); take() always drains.
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include <weft/tls/tls.h>

#include "fuzz_common.h"

namespace {

using namespace weft::tls;
using weft::Result;

// A throw-away self-signed P-256 certificate for CN=localhost (public: used only here).
constexpr const char* kCert = R"(-----BEGIN CERTIFICATE-----
MIIBfjCCASWgAwIBAgIUHmWFJNYrYNbHyA3imBeGjdpxbxMwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMzE2NDk1M1oYDzIxMjYxMTA5
MTY0OTUzWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAS7OkC6/zkb4z2RvATbCFm8oG3FdIr2XIQp/DXYIS5mqgBXbf5k4AqP
M+OC0R5FcXg5rFqgWKXaAgbMCBDxe4V2o1MwUTAdBgNVHQ4EFgQUOQ8qCr7Iv6rO
8NSExTkSdUDU8XcwHwYDVR0jBBgwFoAUOQ8qCr7Iv6rO8NSExTkSdUDU8XcwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiA+wz9fja2N0V4BJ8B0f8FP
dlVkYYQEBzAOKI9EYP3s8QIgPIj3qAqh1bsROwovcRDBNx0Wb1c0HpcqXSFSUWqw
jIk=
-----END CERTIFICATE-----
)";
constexpr const char* kKey = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgwmV0he4rdQa0dUeF
bItdnAWTONXJ9dTfkkrm55JVweShRANCAAS7OkC6/zkb4z2RvATbCFm8oG3FdIr2
XIQp/DXYIS5mqgBXbf5k4AqPM+OC0R5FcXg5rFqgWKXaAgbMCBDxe4V2
-----END PRIVATE KEY-----
)";

std::string write_temp(const char* text, const char* suffix) {
  std::string path = "/tmp/weft-tls-fuzz-XXXXXX";
  path += suffix;
  const int fd = ::mkstemps(path.data(), static_cast<int>(std::char_traits<char>::length(suffix)));
  FUZZ_CHECK(fd >= 0);
  const std::string_view s(text);
  FUZZ_CHECK(::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
  ::close(fd);
  return path;
}

struct Contexts {
  Context server;
  Context client;
};

Contexts* contexts() {
  static Contexts* c = [] {
    const std::string cert = write_temp(kCert, ".pem");
    const std::string key = write_temp(kKey, ".pem");
    const std::array<std::string_view, 2> alpn = {"weft", "http/1.1"};
    Config s;
    s.cert_chain_file = cert.c_str();
    s.key_file = key.c_str();
    s.alpn = alpn;
    Result<Context> server = Context::create(s);
    Config cl;
    cl.role = Role::client;
    cl.verify_peer = false;
    cl.alpn = alpn;
    Result<Context> client = Context::create(cl);
    ::unlink(cert.c_str());
    ::unlink(key.c_str());
    FUZZ_CHECK(server.ok() && client.ok());
    return new Contexts{std::move(server.value()), std::move(client.value())};
  }();
  return c;
}

std::array<std::byte, 32 * 1024> g_buf;

void drain(Engine& e) {
  while (e.take(g_buf) > 0) {
  }
  FUZZ_CHECK(e.pending() == 0);
}

// Feeds one chunk and reads what it yields; checks the error contract.
void feed_chunk(Engine& e, std::span<const std::byte> chunk) {
  const bool failed_before = e.state() == State::failed;
  const std::error_code before = e.error();
  Result<std::size_t> f = e.feed(chunk);
  if (failed_before) {
    FUZZ_CHECK(!f.ok() && f.error() == before);
  }
  if (!f.ok()) {
    FUZZ_CHECK(e.state() == State::failed && e.error() == f.error());
    drain(e);
    return;
  }
  FUZZ_CHECK(f.value() <= chunk.size());
  for (int i = 0; i < 64; ++i) {
    Result<std::size_t> r = e.read(g_buf);
    if (!r.ok()) {
      FUZZ_CHECK(e.state() == State::failed && e.error() == r.error());
      break;
    }
    if (r.value() == 0) {
      break;
    }
  }
  if (e.state() == State::failed) {
    FUZZ_CHECK(e.read(g_buf).error() == e.error());
    FUZZ_CHECK(e.write(std::as_bytes(std::span("x", 1))).error() == e.error());
  }
  drain(e);
}

// Moves bytes between the real client and the server until quiet.
void handshake(Engine& c, Engine& s) {
  for (int round = 0; round < 32; ++round) {
    bool moved = false;
    for (std::size_t n = c.take(g_buf); n > 0; n = c.take(g_buf)) {
      moved = true;
      FUZZ_CHECK(s.feed(std::span<const std::byte>(g_buf).first(n)).ok());
    }
    for (std::size_t n = s.take(g_buf); n > 0; n = s.take(g_buf)) {
      moved = true;
      FUZZ_CHECK(c.feed(std::span<const std::byte>(g_buf).first(n)).ok());
    }
    if (!moved) {
      break;
    }
  }
  FUZZ_CHECK(c.handshake_done() && s.handshake_done());
  std::array<std::byte, 1024> plain{};
  while (c.read(plain).value() > 0) {
  }
}

void feed_stream(Engine& s, const weft::fuzz::Input& in, std::span<const std::byte> stream) {
  std::size_t off = 0;
  std::size_t i = 0;
  while (off < stream.size()) {
    const std::size_t want = in.chunk_sizes[i++ % in.chunk_sizes.size()];
    const std::size_t len = std::min(want, stream.size() - off);
    weft::fuzz::Chunk chunk(stream, off, len);
    feed_chunk(s, chunk.span());
    off += len;
    if (want == 0 && i > 4 * in.chunk_sizes.size() + stream.size()) {
      break;  // a pattern of only empty chunks
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  weft::fuzz::Input in;
  if (!weft::fuzz::parse_input(data, size, in)) {
    return 0;
  }
  Contexts* ctx = contexts();
  Result<Engine> server = ctx->server.engine();
  FUZZ_CHECK(server.ok());
  Engine& s = server.value();
  switch (in.config % 3) {
    case 0:
      feed_stream(s, in, in.stream);
      break;
    case 1: {
      Result<Engine> client = ctx->client.engine("localhost");
      FUZZ_CHECK(client.ok());
      handshake(client.value(), s);
      feed_stream(s, in, in.stream);
      break;
    }
    default: {
      Result<Engine> client = ctx->client.engine("localhost");
      FUZZ_CHECK(client.ok());
      std::vector<std::byte> hello(client->pending());
      hello.resize(client->take(hello));
      for (std::size_t i = 0; i < hello.size() && i < in.stream.size(); ++i) {
        hello[i] ^= in.stream[i];
      }
      feed_stream(s, in, hello);
      feed_stream(s, in, in.stream);
      break;
    }
  }
  return 0;
}
