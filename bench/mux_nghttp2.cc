// weft-mux-nghttp2: the HTTP/2 peer of weft-mux-bench's `bulk` mode — one HTTP/2 stream of
// nghttp2 (Debian's libnghttp2) uploading N MiB on loopback, in one process: a server
// thread and a client on the calling thread, each a non-blocking socket driven by poll()
// and an nghttp2 session (the library's own framing, flow control and buffering).
// Windows are set like weft::mux's: --window-kib (stream) and --conn-window-kib
// (connection), both sides; frames of 16 KiB. Bounded by --seconds.
//
//   weft-mux-nghttp2 [--mib N] [--seconds S] [--window-kib N] [--conn-window-kib N] [--json]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  unsigned long long bytes = 1024ull << 20;
  double seconds = 20;
  int window = 64 * 1024;
  int conn_window = 256 * 1024;
  bool json = false;
};

alignas(64) std::uint8_t g_block[16384];

struct Side {
  int fd = -1;
  nghttp2_session* s = nullptr;
  unsigned long long got = 0;  // server: DATA bytes received
  bool done = false;           // server: END_STREAM seen; client: response received
};

ssize_t send_cb(nghttp2_session*, const std::uint8_t* data, std::size_t len, int, void* user) {
  auto* side = static_cast<Side*>(user);
  const ssize_t n = ::send(side->fd, data, len, MSG_NOSIGNAL);
  if (n < 0) {
    return errno == EAGAIN || errno == EINTR ? NGHTTP2_ERR_WOULDBLOCK
                                             : NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  return n;
}

// Drives one session until `done` or the deadline; false on an error.
bool drive(Side& side, const Clock::time_point end) {
  std::uint8_t buf[65536];
  while (!side.done && Clock::now() < end) {
    if (nghttp2_session_send(side.s) != 0) {
      return false;
    }
    pollfd p{side.fd,
             static_cast<short>(POLLIN | (nghttp2_session_want_write(side.s) ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, 100) < 0 && errno != EINTR) {
      return false;
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t n = ::recv(side.fd, buf, sizeof buf, 0);
      if (n == 0) {
        return side.done;
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
          continue;
        }
        return false;
      }
      if (nghttp2_session_mem_recv(side.s, buf, static_cast<std::size_t>(n)) < 0) {
        return false;
      }
    }
  }
  (void)nghttp2_session_send(side.s);
  return side.done;
}

void settings(nghttp2_session* s, const Args& a) {
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(a.window)},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 16384},
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
  nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, 3);
  nghttp2_session_set_local_window_size(s, NGHTTP2_FLAG_NONE, 0, a.conn_window);
}

// ---- server ------------------------------------------------------------------------------

int on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t, const std::uint8_t*,
                  std::size_t len, void* user) {
  static_cast<Side*>(user)->got += len;
  return 0;
}

int server_on_frame(nghttp2_session* s, const nghttp2_frame* f, void* user) {
  auto* side = static_cast<Side*>(user);
  if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
      (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
    static const nghttp2_nv hdrs[] = {
        {(std::uint8_t*)":status", (std::uint8_t*)"200", 7, 3, NGHTTP2_NV_FLAG_NONE}};
    nghttp2_submit_response(s, f->hd.stream_id, hdrs, 1, nullptr);
    side->done = true;
  }
  return 0;
}

// ---- client ------------------------------------------------------------------------------

struct Upload {
  unsigned long long size = 0, sent = 0;
};

ssize_t read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t len,
                  std::uint32_t* flags, nghttp2_data_source* src, void*) {
  auto* u = static_cast<Upload*>(src->ptr);
  const std::size_t n = static_cast<std::size_t>(std::min<unsigned long long>(
      {static_cast<unsigned long long>(len), sizeof g_block, u->size - u->sent}));
  std::memcpy(buf, g_block, n);
  u->sent += n;
  if (u->sent == u->size) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  return static_cast<ssize_t>(n);
}

int client_on_frame(nghttp2_session*, const nghttp2_frame* f, void* user) {
  if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
    static_cast<Side*>(user)->done = true;
  }
  return 0;
}

void nonblock(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "0";
    if (k == "--json") {
      a.json = true;
      continue;
    }
    ++i;
    if (k == "--mib") {
      a.bytes = std::strtoull(v, nullptr, 10) << 20;
    } else if (k == "--seconds") {
      a.seconds = std::strtod(v, nullptr);
    } else if (k == "--window-kib") {
      a.window = std::atoi(v) * 1024;
    } else if (k == "--conn-window-kib") {
      a.conn_window = std::atoi(v) * 1024;
    } else {
      std::fprintf(stderr,
                   "usage: weft-mux-nghttp2 [--mib N] [--seconds S] [--window-kib N] "
                   "[--conn-window-kib N] [--json]\n");
      return 2;
    }
  }
  if (a.seconds <= 0 || a.seconds > 600 || a.bytes == 0) {
    return 2;
  }
  const int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // loopback only
  socklen_t sl = sizeof sa;
  if (ls < 0 || ::bind(ls, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::listen(ls, 1) != 0 || ::getsockname(ls, reinterpret_cast<sockaddr*>(&sa), &sl) != 0) {
    std::perror("listen");
    return 1;
  }
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(a.seconds));
  Side server;
  std::atomic<bool> server_ok{false};
  std::thread th([&] {
    server.fd = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
    if (server.fd < 0) {
      return;
    }
    nonblock(server.fd);
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, send_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, server_on_frame);
    nghttp2_session_server_new(&server.s, cb, &server);
    nghttp2_session_callbacks_del(cb);
    settings(server.s, a);
    server_ok = drive(server, end);
    // Let the response leave before closing.
    for (int i = 0; i < 100 && nghttp2_session_want_write(server.s); ++i) {
      (void)nghttp2_session_send(server.s);
    }
    ::shutdown(server.fd, SHUT_WR);
  });
  Side client;
  client.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(client.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::perror("connect");
    return 1;
  }
  nonblock(client.fd);
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_send_callback(cb, send_cb);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, client_on_frame);
  nghttp2_session_client_new(&client.s, cb, &client);
  nghttp2_session_callbacks_del(cb);
  settings(client.s, a);
  Upload up;
  up.size = a.bytes;
  nghttp2_data_provider dp{};
  dp.source.ptr = &up;
  dp.read_callback = read_body;
  static const nghttp2_nv req[] = {
      {(std::uint8_t*)":method", (std::uint8_t*)"POST", 7, 4, NGHTTP2_NV_FLAG_NONE},
      {(std::uint8_t*)":scheme", (std::uint8_t*)"http", 7, 4, NGHTTP2_NV_FLAG_NONE},
      {(std::uint8_t*)":authority", (std::uint8_t*)"127.0.0.1", 10, 9, NGHTTP2_NV_FLAG_NONE},
      {(std::uint8_t*)":path", (std::uint8_t*)"/upload", 5, 7, NGHTTP2_NV_FLAG_NONE}};
  const auto t0 = Clock::now();
  nghttp2_submit_request(client.s, nullptr, req, 4, &dp, nullptr);
  const bool ok = drive(client, end);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  th.join();
  const double mib_s = static_cast<double>(server.got) / (1 << 20) / s;
  if (a.json) {
    std::printf("{\"mode\":\"nghttp2\",\"mib\":%.0f,\"mib_s\":%.1f,\"ok\":%s}\n",
                static_cast<double>(server.got) / (1 << 20), mib_s,
                ok && server_ok ? "true" : "false");
  } else {
    std::printf("nghttp2, one HTTP/2 stream: %.0f MiB in %.2f s: %.1f MiB/s%s\n",
                static_cast<double>(server.got) / (1 << 20), s, mib_s,
                ok && server_ok ? "" : " (INCOMPLETE)");
  }
  nghttp2_session_del(client.s);
  nghttp2_session_del(server.s);
  ::close(client.fd);
  ::close(server.fd);
  ::close(ls);
  return ok && server_ok && server.got == a.bytes ? 0 : 1;
}
