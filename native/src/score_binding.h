#pragma once
#include <napi.h>

namespace flashslide {
// Registers createNearestIndex, nearestDistances, projectCentered and combineCentered.
void InitScore(Napi::Env env, Napi::Object exports);
}
