// The dashboard's static files, compiled into weft-demo by weft_embed_assets()
// (cmake/WeftEmbed.cmake generates the definitions from examples/demo/assets/).
#pragma once

#include <cstddef>
#include <string_view>

namespace weft::examples {

struct Asset {
  std::string_view path;          // "/" for index.html, else "/app.js", "/style.css", ...
  std::string_view content_type;  // from the extension, e.g. "text/html; charset=utf-8"
  std::string_view body;          // the file's exact bytes
};

extern const Asset kAssets[];
extern const std::size_t kAssetCount;

}  // namespace weft::examples
