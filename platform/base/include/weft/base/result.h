// weft::Result<T> — a small expected-shaped return type for fallible calls.
//
// Design: holds either a T or a std::error_code (an int and a category pointer; it never
// allocates). std::expected is C++23 and weft builds as C++20 on g++ 12, so this is the
// subset weft needs: construct from a value or an error, test, read. Reading the value
// of an error result (or the error of a value result) is a contract violation checked
// by WEFT_ASSERT in debug builds.
//
// Thread-safety: a plain value type; no shared state.
//
// Part of weft::base (header-only, no dependencies): every layer, frame included, uses it
// without linking weft::platform.
#pragma once

#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

#include <weft/base/assert.h>

namespace weft {

// Tag wrapper so that Result<std::error_code> style ambiguities cannot arise:
// `return weft::fail(errc)` always means "error".
struct Failure {
  std::error_code code;
};
[[nodiscard]] inline Failure fail(std::error_code ec) noexcept {
  return Failure{ec};
}
template <class E, class = std::enable_if_t<std::is_error_code_enum_v<E>>>
[[nodiscard]] inline Failure fail(E e) noexcept {
  return Failure{make_error_code(e)};
}
// A negative errno as returned by liburing or a raw syscall wrapper.
[[nodiscard]] inline Failure fail_errno(int neg_or_pos_errno) noexcept {
  int e = neg_or_pos_errno < 0 ? -neg_or_pos_errno : neg_or_pos_errno;
  return Failure{std::error_code(e, std::system_category())};
}

template <class T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  Result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)  // NOLINT(implicit)
      : ok_(true) {
    new (&storage_.value) T(std::move(value));
  }
  Result(Failure f) noexcept : ok_(false) {  // NOLINT(implicit)
    new (&storage_.error) std::error_code(f.code);
  }
  Result(Result&& o) noexcept(std::is_nothrow_move_constructible_v<T>) : ok_(o.ok_) {
    if (ok_) {
      new (&storage_.value) T(std::move(o.storage_.value));
    } else {
      new (&storage_.error) std::error_code(o.storage_.error);
    }
  }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  Result& operator=(Result&& o) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (this != &o) {
      destroy();
      ok_ = o.ok_;
      if (ok_) {
        new (&storage_.value) T(std::move(o.storage_.value));
      } else {
        new (&storage_.error) std::error_code(o.storage_.error);
      }
    }
    return *this;
  }
  ~Result() { destroy(); }

  [[nodiscard]] bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }

  // Precondition: ok().
  [[nodiscard]] T& value() & noexcept {
    WEFT_ASSERT(ok_);
    return storage_.value;
  }
  [[nodiscard]] const T& value() const& noexcept {
    WEFT_ASSERT(ok_);
    return storage_.value;
  }
  [[nodiscard]] T&& value() && noexcept {
    WEFT_ASSERT(ok_);
    return std::move(storage_.value);
  }
  T* operator->() noexcept { return &value(); }
  const T* operator->() const noexcept { return &value(); }
  T& operator*() & noexcept { return value(); }

  // Precondition: !ok().
  [[nodiscard]] std::error_code error() const noexcept {
    return ok_ ? std::error_code() : storage_.error;
  }

 private:
  void destroy() noexcept {
    if (ok_) {
      storage_.value.~T();
    }
  }
  union Storage {
    Storage() {}
    ~Storage() {}
    T value;
    std::error_code error;
  } storage_;
  bool ok_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  // Success holds no std::error_code: a default-constructed one calls the out-of-line
  // std::system_category() on every construction, which showed in the per-message profile.
  Result() noexcept = default;
  Result(Failure f) noexcept  // NOLINT(implicit)
      : category_(&f.code.category()), value_(f.code.value()) {}
  [[nodiscard]] bool ok() const noexcept { return category_ == nullptr; }
  explicit operator bool() const noexcept { return ok(); }
  [[nodiscard]] std::error_code error() const noexcept {
    return category_ == nullptr ? std::error_code() : std::error_code(value_, *category_);
  }

 private:
  const std::error_category* category_ = nullptr;
  int value_ = 0;
};

}  // namespace weft
