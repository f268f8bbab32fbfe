// The dashboard's files, compiled into weft-demo (generated from examples/demo/assets).
#pragma once

#include <cstddef>
#include <string_view>

namespace weft::examples {

struct Asset {
  std::string_view path;          // "/" for index.html, "/app.js", ...
  std::string_view content_type;  // from the extension
  std::string_view body;          // the file's bytes
};

extern const Asset kAssets[];
extern const std::size_t kAssetCount;

}  // namespace weft::examples
