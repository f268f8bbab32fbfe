// http_parser behind bench/http_peers.h.
#include <http_parser.h>

#include "http_peers.h"

namespace weft::bench {

struct HttpParser::Impl {
  http_parser_settings settings;
  http_parser parser;
  Pieces pieces;
};

HttpParser::HttpParser() : impl_(std::make_unique<Impl>()) {
  http_parser_settings_init(&impl_->settings);
  impl_->settings.on_message_begin = on_begin<http_parser>;
  impl_->settings.on_url = on_url<http_parser>;
  impl_->settings.on_header_field = on_field<http_parser>;
  impl_->settings.on_header_value = on_value<http_parser>;
  impl_->settings.on_message_complete = on_complete<http_parser>;
  http_parser_init(&impl_->parser, HTTP_REQUEST);
  impl_->parser.data = &impl_->pieces;
}

HttpParser::~HttpParser() = default;

std::size_t HttpParser::parse(const char* data, std::size_t n) {
  impl_->pieces.done = 0;
  if (http_parser_execute(&impl_->parser, &impl_->settings, data, n) != n ||
      impl_->parser.http_errno != HPE_OK) {
    return static_cast<std::size_t>(-1);
  }
  return impl_->pieces.done;
}

}  // namespace weft::bench
