// Context and Engine own one backend object each; moving hands it over, destruction frees it
// through the backend's detail::destroy().
#include <weft/tls/tls.h>

#include "backend.h"

namespace weft::tls {
inline namespace WEFT_TLS_NS {

Context::Context(Context&& o) noexcept : impl_(o.impl_) {
  o.impl_ = nullptr;
}
Context& Context::operator=(Context&& o) noexcept {
  if (this != &o) {
    detail::destroy(impl_);
    impl_ = o.impl_;
    o.impl_ = nullptr;
  }
  return *this;
}
Context::~Context() {
  detail::destroy(impl_);
}

Engine::Engine(Engine&& o) noexcept : impl_(o.impl_) {
  o.impl_ = nullptr;
}
Engine& Engine::operator=(Engine&& o) noexcept {
  if (this != &o) {
    detail::destroy(impl_);
    impl_ = o.impl_;
    o.impl_ = nullptr;
  }
  return *this;
}
Engine::~Engine() {
  detail::destroy(impl_);
}

}  // namespace WEFT_TLS_NS
}  // namespace weft::tls
