// Test helpers for weft::mqtt against a real broker: mosquitto started on a free loopback
// port with its own directory (config, persistence, log), child processes with bounded
// waits. Shared by broker_test.cc (the Session over a blocking socket) and client_test.cc
// (the loop Client). Header-only, tests only.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace weft::mqtt {

inline std::uint64_t now_ms() {
  using namespace std::chrono;
  return static_cast<std::uint64_t>(
      duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

inline std::string find_exe(const char* name) {
  for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/usr/local/sbin/", "/usr/local/bin/"}) {
    std::string p = std::string(dir) + name;
    if (::access(p.c_str(), X_OK) == 0) {
      return p;
    }
  }
  return {};
}

inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return -1;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

inline int tcp_connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// fork+exec with stdout to `out_fd` (or the log) and stderr to the log.
inline pid_t spawn(const std::vector<std::string>& argv, int out_fd, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int lf = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(out_fd >= 0 ? out_fd : lf, 1);
    ::dup2(lf, 2);
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

// Waits for `pid` up to `ms`; SIGKILLs it after that. True when it exited by itself.
inline bool reap(pid_t pid, int ms) {
  for (int i = 0; i < ms / 10; ++i) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return false;
}

class Broker {
 public:
  explicit Broker(std::string exe) : exe_(std::move(exe)) {
    char tmpl[] = "/tmp/weft-mqtt-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ::chmod(dir_.c_str(), 0777);
    port_ = free_port();
    std::ofstream conf(dir_ + "/mosquitto.conf");
    conf << "listener " << port_ << " 127.0.0.1\n"
         << "allow_anonymous true\n"
         << "persistence true\n"
         << "persistence_location " << dir_ << "/\n"
         << "log_dest stderr\n";
    if (::geteuid() == 0) {
      conf << "user root\n";
    }
  }
  ~Broker() {
    stop();
    std::string cmd = "rm -rf " + dir_;
    (void)std::system(cmd.c_str());
  }
  // Starts mosquitto and waits until it accepts connections (5 s at most).
  bool start() {
    pid_ = spawn({exe_, "-c", dir_ + "/mosquitto.conf"}, -1, dir_ + "/broker.log");
    for (int i = 0; i < 500; ++i) {
      const int fd = tcp_connect(port_);
      if (fd >= 0) {
        ::close(fd);
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // SIGTERM: mosquitto writes its persistence file and exits.
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      reap(pid_, 5000);
      pid_ = -1;
    }
  }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string log() const {
    std::ifstream f(dir_ + "/broker.log");
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  }
  [[nodiscard]] const std::string& dir() const { return dir_; }

 private:
  std::string exe_;
  std::string dir_;
  int port_ = -1;
  pid_t pid_ = -1;
};

}  // namespace weft::mqtt
