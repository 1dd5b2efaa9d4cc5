#include "framework/distributed/mpi_status.h"

#include <mpi.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace attnlab::distributed {
namespace {

// The names of the MPI-3.1 error classes that a collective can return.
std::string_view ErrorClassName(int error_class) {
  switch (error_class) {
    case MPI_ERR_BUFFER:
      return "MPI_ERR_BUFFER";
    case MPI_ERR_COUNT:
      return "MPI_ERR_COUNT";
    case MPI_ERR_TYPE:
      return "MPI_ERR_TYPE";
    case MPI_ERR_ROOT:
      return "MPI_ERR_ROOT";
    case MPI_ERR_COMM:
      return "MPI_ERR_COMM";
    case MPI_ERR_OP:
      return "MPI_ERR_OP";
    case MPI_ERR_ARG:
      return "MPI_ERR_ARG";
    case MPI_ERR_TRUNCATE:
      return "MPI_ERR_TRUNCATE";
    case MPI_ERR_OTHER:
      return "MPI_ERR_OTHER";
    case MPI_ERR_INTERN:
      return "MPI_ERR_INTERN";
    case MPI_ERR_IN_STATUS:
      return "MPI_ERR_IN_STATUS";
    case MPI_ERR_PENDING:
      return "MPI_ERR_PENDING";
    case MPI_ERR_REQUEST:
      return "MPI_ERR_REQUEST";
    case MPI_ERR_NO_MEM:
      return "MPI_ERR_NO_MEM";
    case MPI_ERR_UNKNOWN:
      return "MPI_ERR_UNKNOWN";
    default:
      return "MPI error";
  }
}

}  // namespace

absl::Status MpiStatus(int code, int rank, int size, std::string_view call, std::string_view what) {
  if (code == MPI_SUCCESS) return absl::OkStatus();
  int error_class = MPI_ERR_UNKNOWN;
  if (MPI_Error_class(code, &error_class) != MPI_SUCCESS) error_class = MPI_ERR_UNKNOWN;
  char description[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, description, &length) != MPI_SUCCESS) length = 0;
  // (Debian's Abseil has its own string_view, which StrCat wants.)
  const std::string message =
      absl::StrCat("rank ", rank, " of ", size, ": ", std::string(call), " (", std::string(what),
                   ") failed: ", std::string(ErrorClassName(error_class)), ": ",
                   std::string(description, static_cast<size_t>(length)));
  // Open MPI reports a lost peer as MPI_ERR_OTHER or MPI_ERR_INTERN (the MPI-4 ULFM
  // classes are not in 4.1); either way the job cannot go on.
  return absl::InternalError(message);
}

}  // namespace attnlab::distributed
