// llhttp behind bench/http_peers.h.
#include <llhttp.h>

#include "http_peers.h"

namespace weft::bench {

struct Llhttp::Impl {
  llhttp_settings_t settings;
  llhttp_t parser;
  Pieces pieces;
};

Llhttp::Llhttp() : impl_(std::make_unique<Impl>()) {
  llhttp_settings_init(&impl_->settings);
  impl_->settings.on_message_begin = on_begin<llhttp_t>;
  impl_->settings.on_url = on_url<llhttp_t>;
  impl_->settings.on_header_field = on_field<llhttp_t>;
  impl_->settings.on_header_value = on_value<llhttp_t>;
  impl_->settings.on_message_complete = on_complete<llhttp_t>;
  llhttp_init(&impl_->parser, HTTP_REQUEST, &impl_->settings);
  impl_->parser.data = &impl_->pieces;
}

Llhttp::~Llhttp() = default;

std::size_t Llhttp::parse(const char* data, std::size_t n) {
  impl_->pieces.done = 0;
  if (llhttp_execute(&impl_->parser, data, n) != HPE_OK) {
    return static_cast<std::size_t>(-1);
  }
  return impl_->pieces.done;
}

}  // namespace weft::bench
