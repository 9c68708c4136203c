#include "sync/s3/s3_xml.h"

#include <expat.h>

#include <charconv>
#include <climits>
#include <memory>

namespace tidings::s3 {
namespace {

constexpr size_t kMaxDepth = 16;
constexpr size_t kMaxElements = 200'000;

// Builds the tree from expat's callbacks. The stack holds the open elements;
// only the innermost one gains children, so pointers to its ancestors (which
// live in their parents' vectors) stay valid.
struct Builder {
  XML_Parser parser = nullptr;
  XmlElement root;
  bool have_root = false;
  std::vector<XmlElement*> open;
  size_t elements = 0;
  std::string refused;  // why the handlers stopped the parser

  void Refuse(std::string why) {
    if (refused.empty()) refused = std::move(why);
    XML_StopParser(parser, XML_FALSE);
  }

  static void Start(void* user, const XML_Char* name, const XML_Char** /*attributes*/) {
    auto* b = static_cast<Builder*>(user);
    if (!b->refused.empty()) return;
    if (++b->elements > kMaxElements) {
      return b->Refuse("more than " + std::to_string(kMaxElements) + " elements");
    }
    if (b->open.size() >= kMaxDepth) {
      return b->Refuse("elements nested deeper than " + std::to_string(kMaxDepth));
    }
    XmlElement* element;
    if (b->open.empty()) {
      // expat itself rejects a second root ("junk after document element").
      element = &b->root;
      b->have_root = true;
    } else {
      element = &b->open.back()->children.emplace_back();
    }
    element->name = name;
    b->open.push_back(element);
  }

  static void End(void* user, const XML_Char* /*name*/) {
    auto* b = static_cast<Builder*>(user);
    if (!b->open.empty()) b->open.pop_back();
  }

  static void Text(void* user, const XML_Char* s, int len) {
    auto* b = static_cast<Builder*>(user);
    if (!b->open.empty() && len > 0) b->open.back()->text.append(s, static_cast<size_t>(len));
  }

  static void Doctype(void* user, const XML_Char*, const XML_Char*, const XML_Char*, int) {
    static_cast<Builder*>(user)->Refuse("a DOCTYPE (S3 sends none)");
  }
};

struct ParserDeleter {
  void operator()(XML_ParserStruct* p) const { XML_ParserFree(p); }
};

Status Malformed(std::string_view what, std::string_view why) {
  return InvalidArgument("malformed S3 " + std::string(what) + " response: " + std::string(why));
}

// A decimal number with no sign, spaces or other characters, at most `max`.
bool ParseNumber(std::string_view text, uint64_t max, uint64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v > max) return false;
  *out = v;
  return true;
}

// IsTruncated: "true" or "false"; absent means false.
bool ParseBool(std::string_view text, bool* out) {
  if (text == "true") return *out = true, true;
  if (text == "false" || text.empty()) return *out = false, true;
  return false;
}

// The root, checked to be `name` (or `also`, if given).
Result<XmlElement> Document(std::string_view body, std::string_view name, std::string_view what,
                            std::string_view also = {}) {
  auto doc = ParseXml(body);
  if (!doc.ok()) return Malformed(what, doc.status().message());
  if (doc->name != name && (also.empty() || doc->name != also)) {
    return Malformed(what, "the root element is <" + doc->name.substr(0, 64) + ">, not <" +
                               std::string(name) + ">");
  }
  return doc;
}

}  // namespace

const XmlElement* XmlElement::Child(std::string_view n) const {
  for (const auto& c : children) {
    if (c.name == n) return &c;
  }
  return nullptr;
}

std::string_view XmlElement::ChildText(std::string_view n) const {
  const XmlElement* c = Child(n);
  return c ? std::string_view(c->text) : std::string_view();
}

Result<XmlElement> ParseXml(std::string_view body) {
  if (body.size() > static_cast<size_t>(INT_MAX)) {
    return InvalidArgument("malformed XML: the document is over 2 GiB");
  }
  Builder b;
  std::unique_ptr<XML_ParserStruct, ParserDeleter> parser(XML_ParserCreate(nullptr));
  if (!parser) return ResourceExhausted("out of memory for the XML parser");
  b.parser = parser.get();
  XML_SetUserData(b.parser, &b);
  XML_SetElementHandler(b.parser, &Builder::Start, &Builder::End);
  XML_SetCharacterDataHandler(b.parser, &Builder::Text);
  XML_SetStartDoctypeDeclHandler(b.parser, &Builder::Doctype);
  // No external entity or DTD is ever read (expat's default, stated).
  XML_SetParamEntityParsing(b.parser, XML_PARAM_ENTITY_PARSING_NEVER);
  if (XML_Parse(b.parser, body.data(), static_cast<int>(body.size()), XML_TRUE) ==
      XML_STATUS_ERROR) {
    if (!b.refused.empty()) return InvalidArgument("malformed XML: refused " + b.refused);
    return InvalidArgument(std::string("malformed XML: ") +
                           XML_ErrorString(XML_GetErrorCode(b.parser)) + " at line " +
                           std::to_string(XML_GetCurrentLineNumber(b.parser)));
  }
  if (!b.have_root) return InvalidArgument("malformed XML: no element");
  return std::move(b.root);
}

bool ParseS3Error(std::string_view body, aws::AwsErrorBody* out) {
  auto doc = ParseXml(body);
  if (!doc.ok() || doc->name != "Error") return false;
  out->type = std::string(doc->ChildText("Code"));
  out->message = std::string(doc->ChildText("Message"));
  return !out->type.empty();
}

Result<std::string> ParseCreateMultipartUpload(std::string_view body) {
  constexpr std::string_view kWhat = "CreateMultipartUpload";
  TIDINGS_ASSIGN_OR_RETURN(XmlElement doc, Document(body, "InitiateMultipartUploadResult", kWhat));
  std::string_view id = doc.ChildText("UploadId");
  if (id.empty()) return Malformed(kWhat, "no UploadId");
  return std::string(id);
}

Result<ListPartsPage> ParseListParts(std::string_view body) {
  constexpr std::string_view kWhat = "ListParts";
  // moto names the root ListPartsResponse; botocore reads either.
  TIDINGS_ASSIGN_OR_RETURN(XmlElement doc,
                           Document(body, "ListPartsResult", kWhat, "ListPartsResponse"));
  ListPartsPage page;
  if (!ParseBool(doc.ChildText("IsTruncated"), &page.truncated)) {
    return Malformed(kWhat, "IsTruncated is neither true nor false");
  }
  uint64_t marker = 0;
  if (std::string_view m = doc.ChildText("NextPartNumberMarker");
      !m.empty() && !ParseNumber(m, 10000, &marker)) {
    return Malformed(kWhat, "NextPartNumberMarker is not a part number");
  }
  page.next_marker = static_cast<int>(marker);
  for (const auto& c : doc.children) {
    if (c.name != "Part") continue;
    PartInfo part;
    uint64_t number = 0;
    if (!ParseNumber(c.ChildText("PartNumber"), 10000, &number) || number == 0) {
      return Malformed(kWhat, "a Part without a PartNumber in 1..10000");
    }
    part.part_number = static_cast<int>(number);
    if (!ParseNumber(c.ChildText("Size"), uint64_t{5} << 30, &part.size)) {
      return Malformed(kWhat, "part " + std::to_string(number) + " has no Size up to 5 GiB");
    }
    part.etag = std::string(c.ChildText("ETag"));
    if (part.etag.empty())
      return Malformed(kWhat, "part " + std::to_string(number) + " has no ETag");
    page.parts.push_back(std::move(part));
  }
  if (page.truncated && page.next_marker == 0) {
    return Malformed(kWhat, "IsTruncated is true without a NextPartNumberMarker");
  }
  return page;
}

Result<ListUploadsPage> ParseListMultipartUploads(std::string_view body) {
  constexpr std::string_view kWhat = "ListMultipartUploads";
  TIDINGS_ASSIGN_OR_RETURN(XmlElement doc, Document(body, "ListMultipartUploadsResult", kWhat));
  ListUploadsPage page;
  if (!ParseBool(doc.ChildText("IsTruncated"), &page.truncated)) {
    return Malformed(kWhat, "IsTruncated is neither true nor false");
  }
  page.next_key_marker = std::string(doc.ChildText("NextKeyMarker"));
  page.next_upload_id_marker = std::string(doc.ChildText("NextUploadIdMarker"));
  for (const auto& c : doc.children) {
    if (c.name != "Upload") continue;
    UploadInfo upload{std::string(c.ChildText("Key")), std::string(c.ChildText("UploadId")),
                      std::string(c.ChildText("Initiated"))};
    if (upload.key.empty() || upload.upload_id.empty()) {
      return Malformed(kWhat, "an Upload without its Key or UploadId");
    }
    page.uploads.push_back(std::move(upload));
  }
  if (page.truncated && page.next_key_marker.empty()) {
    return Malformed(kWhat, "IsTruncated is true without a NextKeyMarker");
  }
  return page;
}

Result<std::string> ParseCompleteMultipartUpload(std::string_view body, aws::AwsErrorBody* error) {
  constexpr std::string_view kWhat = "CompleteMultipartUpload";
  auto doc = ParseXml(body);
  if (!doc.ok()) return Malformed(kWhat, doc.status().message());
  if (doc->name == "Error") {
    error->type = std::string(doc->ChildText("Code"));
    error->message = std::string(doc->ChildText("Message"));
    if (error->type.empty()) return Malformed(kWhat, "an Error without a Code");
    return std::string();
  }
  // moto names the root CompleteMultipartUploadResponse; botocore reads either.
  if (doc->name != "CompleteMultipartUploadResult" &&
      doc->name != "CompleteMultipartUploadResponse") {
    return Malformed(kWhat, "the root element is <" + doc->name.substr(0, 64) +
                                ">, not <CompleteMultipartUploadResult>");
  }
  std::string_view etag = doc->ChildText("ETag");
  if (etag.empty()) return Malformed(kWhat, "no ETag");
  return std::string(etag);
}

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string CompleteMultipartUploadBody(std::span<const PartInfo> parts) {
  std::string out = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (const auto& p : parts) {
    out += "<Part><PartNumber>" + std::to_string(p.part_number) + "</PartNumber><ETag>" +
           XmlEscape(p.etag) + "</ETag></Part>";
  }
  out += "</CompleteMultipartUpload>";
  return out;
}

}  // namespace tidings::s3
