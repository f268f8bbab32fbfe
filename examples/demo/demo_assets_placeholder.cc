#include "demo_assets.h"
namespace weft::examples {
const Asset kAssets[] = {
    {"/", "text/html; charset=utf-8", "<!doctype html><title>weft-demo</title><p>weft-demo</p>"}};
const std::size_t kAssetCount = 1;
}  // namespace weft::examples
