#include <curl/curl.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "sync/http/http_client.h"

namespace tidings::http {

namespace {

// libcurl's buffer for a body read as it is sent (its default is 64 KiB):
// fewer, larger reads of a part's file.
constexpr long kUploadBufferBytes = 256 << 10;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

class CurlHttpClient final : public HttpClient {
 public:
  explicit CurlHttpClient(const HttpOptions& options) : options_(options) {
    GlobalInit();
    curl_ = curl_easy_init();
  }
  ~CurlHttpClient() override {
    if (curl_ != nullptr) curl_easy_cleanup(curl_);
  }

  Result<Response> Send(const Request& request) override {
    if (cancelled_.load()) return Cancelled("the HTTP client was shut down");
    if (curl_ == nullptr) return Internal("libcurl failed to initialize");
    Response response;
    Sink sink{&response, options_.max_response_bytes, curl_, &request.body_writer};
    Feed feed{&request, 0, Status::Ok()};
    curl_easy_reset(curl_);  // keeps the connection cache
    curl_easy_setopt(curl_, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (request.body_reader) {
      // Read as it is sent, with its length announced; libcurl seeks back
      // to the start if it must send the body again on this connection.
      curl_easy_setopt(curl_, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(curl_, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body_size));
      curl_easy_setopt(curl_, CURLOPT_READFUNCTION, &Feed::Read);
      curl_easy_setopt(curl_, CURLOPT_READDATA, &feed);
      curl_easy_setopt(curl_, CURLOPT_SEEKFUNCTION, &Feed::Seek);
      curl_easy_setopt(curl_, CURLOPT_SEEKDATA, &feed);
      curl_easy_setopt(curl_, CURLOPT_UPLOAD_BUFFERSIZE, kUploadBufferBytes);
    } else if (request.method == "POST" || request.method == "PUT" || !request.body.empty()) {
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    } else if (request.method == "GET") {
      curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
    } else if (request.method == "HEAD") {
      // Without NOBODY libcurl waits for the Content-Length bytes a HEAD
      // response announces but never sends (S3's HeadObject).
      curl_easy_setopt(curl_, CURLOPT_NOBODY, 1L);
    }
    curl_slist* headers = nullptr;
    bool content_type = false;
    for (const auto& [k, v] : request.headers) {
      if (k == "host") continue;  // libcurl derives it from the URL
      content_type |= k.size() == 12 && strncasecmp(k.c_str(), "content-type", 12) == 0;
      headers = curl_slist_append(headers, (k + ": " + v).c_str());
    }
    // Unlabelled stays unlabelled: libcurl would call a POST or PUT body
    // application/x-www-form-urlencoded, and a server may parse it as a form
    // (moto's S3 then fails an UploadPart).
    if (!content_type) headers = curl_slist_append(headers, "Content-Type:");
    headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl_, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, options_.verify_tls ? 1L : 0L);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L);
    // AWS_CA_BUNDLE (the AWS CLI's variable): a private CA's PEM file, e.g. a
    // local emulator's; the system's CA directory stays trusted.
    if (const char* ca = std::getenv("AWS_CA_BUNDLE"); ca != nullptr && *ca != '\0') {
      curl_easy_setopt(curl_, CURLOPT_CAINFO, ca);
    }
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, options_.connect_timeout_ms);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, options_.total_timeout_ms);
    curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_LIMIT, options_.low_speed_bytes_per_s);
    curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_TIME, options_.low_speed_time_s);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &Sink::Write);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &Sink::Header);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &sink);
    curl_easy_setopt(curl_, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl_, CURLOPT_XFERINFOFUNCTION, &Progress);
    curl_easy_setopt(curl_, CURLOPT_XFERINFODATA, this);
    CURLcode rc = curl_easy_perform(curl_);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
      if (!feed.error.ok()) return feed.error;
      if (!sink.error.ok()) return sink.error;
      if (sink.overflow) {
        return ResourceExhausted("the server's response exceeded " +
                                 std::to_string(options_.max_response_bytes) + " bytes");
      }
      if (rc == CURLE_ABORTED_BY_CALLBACK) return Cancelled("request cancelled by shutdown");
      std::string what = curl_easy_strerror(rc);
      if (rc == CURLE_OPERATION_TIMEDOUT) {
        return DeadlineExceeded("HTTP request timed out (" + what + "); the outcome is unknown");
      }
      return Unavailable("HTTP request failed: " + what);
    }
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &response.status);
    response.body_written = sink.written;
    return response;
  }

  void Cancel() override { cancelled_.store(true); }

 private:
  struct Sink {
    Response* response;
    size_t cap;
    CURL* curl;
    const BodyWriter* writer;  // Request::body_writer
    bool overflow = false;
    uint64_t written = 0;  // bytes handed to `writer`
    Status error;          // the writer's, which stopped the request
    static size_t Write(char* data, size_t size, size_t n, void* user) {
      auto* self = static_cast<Sink*>(user);
      if (*self->writer) {
        // The headers are complete once the body starts.
        long status = 0;
        curl_easy_getinfo(self->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) {
          self->response->status = status;
          self->error =
              (*self->writer)(*self->response, self->written, std::string_view(data, size * n));
          if (!self->error.ok()) return 0;
          self->written += size * n;
          return size * n;
        }
      }
      if (self->response->body.size() + size * n > self->cap) {
        self->overflow = true;
        return 0;
      }
      // A body of announced length is allocated once (an 8 MiB range read
      // by doubling would hold 16 MiB at its peak).
      if (self->response->body.empty()) {
        curl_off_t length = -1;
        if (curl_easy_getinfo(self->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) ==
                CURLE_OK &&
            length > 0 && static_cast<uint64_t>(length) <= self->cap) {
          self->response->body.reserve(static_cast<size_t>(length));
        }
      }
      self->response->body.append(data, size * n);
      return size * n;
    }
    static size_t Header(char* data, size_t size, size_t n, void* user) {
      auto* self = static_cast<Sink*>(user);
      std::string_view line(data, size * n);
      if (line.rfind("HTTP/", 0) == 0) self->response->headers.clear();  // redirects, 100s
      auto colon = line.find(':');
      if (colon != std::string_view::npos) {
        std::string name(line.substr(0, colon));
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
          value.remove_prefix(1);
        while (!value.empty() &&
               (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
          value.remove_suffix(1);
        }
        self->response->headers.emplace_back(std::move(name), std::string(value));
      }
      return size * n;
    }
  };

  // A body read as it is sent (Request::body_reader), from `offset` on.
  struct Feed {
    const Request* request;
    uint64_t offset;
    Status error;  // the reader's, which stopped the request
    static size_t Read(char* buf, size_t size, size_t n, void* user) {
      auto* self = static_cast<Feed*>(user);
      const uint64_t left =
          self->request->body_size - std::min(self->offset, self->request->body_size);
      const size_t cap = static_cast<size_t>(std::min<uint64_t>(size * n, left));
      if (cap == 0) return 0;
      Result<size_t> got = self->request->body_reader(self->offset, buf, cap);
      if (got.ok() && (*got == 0 || *got > cap)) {
        got = DataLoss("a request body ended before its announced length");
      }
      if (!got.ok()) {
        self->error = got.status();
        return CURL_READFUNC_ABORT;
      }
      self->offset += *got;
      return *got;
    }
    static int Seek(void* user, curl_off_t offset, int origin) {
      auto* self = static_cast<Feed*>(user);
      if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
      self->offset = static_cast<uint64_t>(offset);
      return CURL_SEEKFUNC_OK;
    }
  };

  static int Progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<CurlHttpClient*>(user)->cancelled_.load() ? 1 : 0;
  }

  HttpOptions options_;
  CURL* curl_ = nullptr;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

std::unique_ptr<HttpClient> NewCurlHttpClient(const HttpOptions& options) {
  return std::make_unique<CurlHttpClient>(options);
}

}  // namespace tidings::http
