// What each backend defines besides the public API: how its state is freed. handles.cc
// (compiled into both libraries) builds Context's and Engine's move and destructor on it.
#pragma once

#include <weft/tls/tls.h>

namespace weft::tls {
inline namespace WEFT_TLS_NS {
namespace detail {

void destroy(ContextImpl* impl) noexcept;
void destroy(EngineImpl* impl) noexcept;

}  // namespace detail
}  // namespace WEFT_TLS_NS
}  // namespace weft::tls
