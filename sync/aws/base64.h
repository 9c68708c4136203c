// Base64 of wire bytes: DynamoDB binary attributes and Chime message content
// (standard alphabet, padded). OpenSSL's EVP_EncodeBlock / EVP_DecodeBlock
// do the work at 2.5 GB/s; libsodium's codec (crypto/hash.h) runs in
// constant time, for secrets, at 0.2 GB/s, and decoding took a sixth of a
// DynamoDB pull's CPU (bench/RESULTS.md, "DynamoDB"). What passes
// here is what the server already holds: operations of a plaintext
// conversation, sealed frames. Keys and tokens keep crypto/hash.h.
#pragma once

#include <string>
#include <string_view>

namespace tidings::aws {

std::string Base64Encode(std::string_view bytes);

// False, with *out unspecified, unless `text` is canonical base64: a multiple
// of four characters from the standard alphabet, "=" only as the last one or
// two, and the bits a padded quartet leaves over zero (as libsodium checks).
bool Base64Decode(std::string_view text, std::string* out);

}  // namespace tidings::aws
