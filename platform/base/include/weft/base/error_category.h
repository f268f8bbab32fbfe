// weft::ErrorCategory<Enum> — the std::error_category of one layer's error enum, in a line.
//
// Every layer has an `enum class <layer>_errc : int` and a `const char* to_string(<layer>_errc)
// noexcept` returning static text (STYLE point 4). This template supplies the category
// class so that a layer's error.cc only holds the text table:
//
//   const std::error_category& frame_category() noexcept {
//     static const weft::ErrorCategory<frame_errc> category("weft.frame", &to_string);
//     return category;
//   }
//
// and its error.h keeps make_error_code() and the std::is_error_code_enum registration.
//
// Contract: `name` must be a string with static storage duration (it is returned by name()
// as is). `to_string` must never return null; it is called by message(), which — because
// std::error_category says so — wraps the text in a std::string, so only control-plane code
// (logs) should call message(); value(), category() and comparisons never allocate.
// The constructor is constexpr, so a function-local static is constant-initialised: it is
// safe to reach from any thread, before or after main().
#pragma once

#include <string>
#include <system_error>
#include <type_traits>

namespace weft {

template <class Enum>
class ErrorCategory final : public std::error_category {
  static_assert(std::is_enum_v<Enum>, "ErrorCategory<Enum>: Enum must be an enum");

 public:
  using ToString = const char* (*)(Enum) noexcept;

  constexpr ErrorCategory(const char* name, ToString to_string) noexcept
      : name_(name), to_string_(to_string) {}

  const char* name() const noexcept override { return name_; }
  std::string message(int ev) const override { return to_string_(static_cast<Enum>(ev)); }

 private:
  const char* name_;
  ToString to_string_;
};

}  // namespace weft
