// A private temporary directory for Unix-domain socket tests: created under $TMPDIR (or
// /tmp) with mode 0700, emptied and removed when the object goes away, so socket files never
// collide between concurrent test runs and never outlive the test.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace weft::test {

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    // sockaddr_un::sun_path holds 108 bytes: keep the directory short.
    std::string tmpl = (base != nullptr && std::strlen(base) < 48 ? base : "/tmp");
    tmpl += "/weft-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) {
      path_ = tmpl;
    }
  }
  ~TempDir() {
    if (path_.empty()) {
      return;
    }
    if (DIR* d = ::opendir(path_.c_str())) {
      while (dirent* e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
          ::unlink((path_ + "/" + e->d_name).c_str());
        }
      }
      ::closedir(d);
    }
    ::rmdir(path_.c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] bool ok() const { return !path_.empty(); }
  [[nodiscard]] const std::string& path() const { return path_; }
  // The full path of `name` inside the directory.
  [[nodiscard]] std::string file(const char* name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace weft::test
