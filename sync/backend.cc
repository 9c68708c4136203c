#include "sync/backend.h"

namespace tidings::sync {

ErrorClass Classify(const Status& status) {
  switch (status.code()) {
    case Code::kUnavailable:
    case Code::kDeadlineExceeded:
    case Code::kResourceExhausted:
    case Code::kAborted:
    case Code::kCancelled:
      return ErrorClass::kTransient;
    case Code::kUnauthenticated:
      return ErrorClass::kAuth;
    default:
      return ErrorClass::kPermanent;
  }
}

}  // namespace tidings::sync
