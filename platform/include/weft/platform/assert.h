// forwarding header; include <weft/base/assert.h>
#pragma once
#include <weft/base/assert.h>  // IWYU pragma: export
