#include "experiments/report/png_writer.h"

#include <png.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "framework/core/error.h"

namespace attnlab::experiments {

absl::StatusOr<std::string> EncodePng(const RgbImage& image) {
  if (image.width <= 0 || image.height <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("PNG: empty image (", image.width, "x", image.height, ")"));
  }
  const size_t expected = static_cast<size_t>(image.width) * image.height * 3;
  if (image.pixels.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat("PNG: ", image.width, "x", image.height,
                                                   " RGB image needs ", expected, " bytes, has ",
                                                   image.pixels.size()));
  }
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width);
  png.height = static_cast<png_uint_32>(image.height);
  png.format = PNG_FORMAT_RGB;
  const png_int_32 row_stride = image.width * 3;
  // First call: the size needed (an upper bound); second call: the bytes.
  png_alloc_size_t bytes = 0;
  if (!png_image_write_to_memory(&png, nullptr, &bytes, /*convert_to_8_bit=*/0, image.pixels.data(),
                                 row_stride, /*colormap=*/nullptr)) {
    const std::string message = png.message;
    png_image_free(&png);
    return absl::InternalError(absl::StrCat("PNG: libpng: ", message));
  }
  std::string encoded(bytes, '\0');
  if (!png_image_write_to_memory(&png, encoded.data(), &bytes, 0, image.pixels.data(), row_stride,
                                 nullptr)) {
    const std::string message = png.message;
    png_image_free(&png);
    return absl::InternalError(absl::StrCat("PNG: libpng: ", message));
  }
  encoded.resize(bytes);
  return encoded;
}

absl::StatusOr<std::string> PngDataUri(const RgbImage& image) {
  ASSIGN_OR_RETURN(const std::string png, EncodePng(image));
  return absl::StrCat("data:image/png;base64,", absl::Base64Escape(png));
}

}  // namespace attnlab::experiments
