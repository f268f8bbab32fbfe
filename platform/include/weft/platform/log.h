// forwarding header; include <weft/base/log.h>
#pragma once
#include <weft/base/log.h>  // IWYU pragma: export
