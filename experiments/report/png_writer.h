// PNG encoding with libpng (Debian libpng-dev), for images embedded in the HTML report
// as data URIs. Uses libpng's "simplified" API (png_image_*), which reports errors through
// its return value and a message rather than longjmp, so no C++ object is ever skipped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attnlab::experiments {

// An 8-bit sRGB image: pixels are row-major, 3 bytes (R, G, B) per pixel, top row first.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3

  RgbImage() = default;
  RgbImage(int width, int height) : width(width), height(height), pixels(width * height * 3) {}
  void Set(int x, int y, uint8_t r, uint8_t g, uint8_t b) {
    uint8_t* pixel = &pixels[(static_cast<size_t>(y) * width + x) * 3];
    pixel[0] = r;
    pixel[1] = g;
    pixel[2] = b;
  }
};

// The PNG file bytes of `image`. Errors for an empty image or a pixel buffer of the wrong
// size, and for anything libpng reports (its message is included).
absl::StatusOr<std::string> EncodePng(const RgbImage& image);

// "data:image/png;base64,..." of the encoded image, for <img src> or SVG <image href>.
absl::StatusOr<std::string> PngDataUri(const RgbImage& image);

}  // namespace attnlab::experiments
