// forwarding header; include <weft/base/result.h>
#pragma once
#include <weft/base/result.h>  // IWYU pragma: export
